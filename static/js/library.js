/* The character library's reference pickers: drop several images and clips onto a
   file input, see them listed with a preview, remove one before sending.

   Progressive enhancement over <input type="file" multiple data-dropzone>: the files
   chosen or dropped are merged into the input itself (through a DataTransfer), so the
   form posts them as usual. Without this script, or in a browser that cannot set an
   input's files, the plain input works exactly as before. */
(function () {
  "use strict";

  function canSetFiles() {
    try {
      return typeof DataTransfer === "function" && new DataTransfer().files !== undefined;
    } catch (error) {
      return false;
    }
  }

  function formatBytes(size) {
    if (size >= 1024 * 1024) return (size / (1024 * 1024)).toFixed(1) + " MB";
    if (size >= 1024) return (size / 1024).toFixed(1) + " KB";
    return size + " bytes";
  }

  function sameFile(a, b) {
    return a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The file's kind in a word, from its name ("notes.pdf": "PDF") or else its type.
  function fileKind(file) {
    var dot = file.name.lastIndexOf(".");
    if (dot > 0 && dot < file.name.length - 1) {
      return file.name.slice(dot + 1, dot + 6).toUpperCase();
    }
    var subtype = file.type.split("/")[1];
    return subtype ? subtype.slice(0, 5).toUpperCase() : "FILE";
  }

  // A tile standing for a file that cannot be previewed: a document icon and its kind.
  function fileTile(file) {
    var tile = element("span", "dropzone-preview file-tile");
    var kind = fileKind(file);
    tile.setAttribute("role", "img");
    tile.setAttribute("aria-label", kind + " file, no preview");
    tile.title = file.type || "unknown type";
    var icon = element("span", "file-tile-icon");  // a page with a folded corner (library.css)
    icon.setAttribute("aria-hidden", "true");
    tile.append(icon, element("span", "file-tile-kind", kind));
    return tile;
  }

  function enhance(input) {
    var maxFiles = parseInt(input.dataset.maxFiles, 10) || Infinity;
    var maxBytes = parseInt(input.dataset.maxBytes, 10) || Infinity;
    var chosen = [];
    var previews = [];

    var zone = element("div", "dropzone");
    var prompt = element("label", "dropzone-prompt", "Drop images and clips here, or choose them:");
    prompt.htmlFor = input.id;
    var note = element("p", "dropzone-note error");
    note.setAttribute("role", "status");
    note.setAttribute("aria-live", "polite");
    var list = element("ul", "dropzone-files");
    input.parentNode.insertBefore(zone, input);
    zone.append(prompt, input, note, list);

    function render() {
      previews.forEach(function (url) { URL.revokeObjectURL(url); });
      previews = [];
      list.textContent = "";
      chosen.forEach(function (file, index) {
        var item = element("li", "dropzone-file");
        var preview;
        if (file.type.indexOf("image/") === 0) {
          preview = element("img", "dropzone-preview");
          preview.alt = "";
        } else if (file.type.indexOf("video/") === 0) {
          preview = element("video", "dropzone-preview");
          preview.muted = true;
          preview.preload = "metadata";
        } else {
          preview = fileTile(file);
        }
        if (preview.tagName !== "SPAN") {
          var url = URL.createObjectURL(file);
          previews.push(url);
          // A file that says it is a picture or a clip but cannot be shown (a renamed
          // file, a format the browser does not draw) becomes a tile, not a broken image.
          preview.addEventListener("error", function (event) {
            var shown = event.currentTarget;
            if (shown.parentNode) shown.parentNode.replaceChild(fileTile(file), shown);
          });
          preview.src = url;
        }
        var size = element("small", "muted", formatBytes(file.size));
        if (file.size > maxBytes) {
          size.className = "error";
          size.textContent += ": over " + formatBytes(maxBytes) + ", it will be refused";
        }
        var remove = element("button", "link danger", "Remove");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", function () {
          chosen.splice(index, 1);
          note.textContent = "";
          update();
          input.focus();
        });
        item.append(preview, element("span", "dropzone-name", file.name), size, remove);
        list.appendChild(item);
      });
    }

    // The input's own files become exactly the chosen ones, so the form sends those.
    function update() {
      var transfer = new DataTransfer();
      chosen.forEach(function (file) { transfer.items.add(file); });
      input.files = transfer.files;
      render();
    }

    function add(files) {
      var leftOut = 0;
      Array.prototype.forEach.call(files, function (file) {
        if (chosen.some(function (known) { return sameFile(known, file); })) return;
        if (chosen.length >= maxFiles) {
          leftOut += 1;
          return;
        }
        chosen.push(file);
      });
      note.textContent = leftOut
        ? "At most " + maxFiles + " files at once: " + leftOut + " left out."
        : "";
      update();
    }

    // Choosing in the picker replaces an input's files: add them to those already chosen.
    input.addEventListener("change", function () {
      add(Array.prototype.slice.call(input.files));
    });

    var depth = 0;  // dragenter/dragleave fire for every child crossed
    zone.addEventListener("dragenter", function (event) {
      event.preventDefault();
      depth += 1;
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      depth = 0;
      zone.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) add(event.dataTransfer.files);
    });
    if (input.form) {
      input.form.addEventListener("reset", function () {
        chosen = [];
        note.textContent = "";
        render();
      });
    }
  }

  function start() {
    if (!canSetFiles()) return;
    document.querySelectorAll("input[type=file][data-dropzone]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
