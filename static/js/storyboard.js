/* Castboard storyboard and takes: small enhancements over pages that work without them.
 *
 * - drag-and-drop reordering of scene cards (Sortable.js, vendored), saved at once;
 * - a long storyboard's cards arrive a slice at a time (htmx loaders in the list), and a
 *   change answers with the cards from the first position it changed (merged here);
 * - the timeline strip (the timeline view) fetched again after a change to the list;
 * - @-suggestions in prompts and dialogue (the list comes from the server through htmx);
 * - "Cancel" on inserted forms, spritesheet scrubbing over takes, span marking in the player.
 */
(function () {
  "use strict";

  // --- Reordering ---------------------------------------------------------------
  // The list may hold only some of the episode's cards, so a dropped card names its new
  // neighbour (the card before it, or the one after it when it is first) and the server
  // works out the position from that neighbour's.
  function neighbour(card, step) {
    var other = step < 0 ? card.previousElementSibling : card.nextElementSibling;
    while (other && !other.matches(".scene-card[data-position]")) {
      other = step < 0 ? other.previousElementSibling : other.nextElementSibling;
    }
    return other;
  }

  function initSortable(list) {
    if (!window.Sortable || list.dataset.sortableReady) return;
    list.dataset.sortableReady = "1";
    window.Sortable.create(list, {
      handle: ".drag-handle",
      draggable: ".scene-card[data-move-url]",
      animation: 150,
      ghostClass: "drag-ghost",
      forceFallback: true, // pointer events: the same on mouse, pen and touch screens
      onEnd: function (event) {
        if (event.oldDraggableIndex === event.newDraggableIndex) return;
        var card = event.item;
        var before = neighbour(card, -1), after = neighbour(card, 1);
        var values = before ? { after: before.dataset.scene } : after ? { before: after.dataset.scene } : null;
        if (!values) return;
        list.setAttribute("aria-busy", "true");
        // The answer is the cards from the first position that changed (numbers updated).
        htmx.ajax("POST", card.dataset.moveUrl, { source: card, target: "#scene-list", swap: "beforeend", values: values });
      },
    });
  }

  // --- Slices -------------------------------------------------------------------
  // A change that shifts numbers (add, duplicate, move, delete) answers with the cards from
  // position N on, N in the Storyboard-From header, and htmx adds them at the end of the
  // list: first take away what they replace, i.e. everything after the card at N - 1. If
  // that card is not in the list (the list starts later), nothing of it is kept and the
  // answer brings its own "Show earlier scenes".
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var from = xhr && xhr.status < 300 ? xhr.getResponseHeader("Storyboard-From") : null;
    var list = document.getElementById("scene-list");
    if (from === null || !list) return;
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var opened = source && source.closest && source.closest("#scene-list > li.editing");
    if (opened) opened.remove(); // the form that was saved
    var start = Number(from);
    var keep = start > 0 ? list.querySelector('.scene-card[data-position="' + (start - 1) + '"]') : null;
    var children = Array.prototype.slice.call(list.children);
    children.slice(keep ? children.indexOf(keep) + 1 : 0).forEach(function (child) {
      child.remove();
    });
    list.removeAttribute("aria-busy");
  });

  // After a change saved on the page (a move, an edit, a new scene...; the card it swapped
  // may be gone from the document by now), the timeline strip over the list, when the page
  // shows one, fetches itself again (its hx-trigger).
  document.addEventListener("htmx:afterSwap", function (event) {
    var config = event.detail.requestConfig;
    var xhr = event.detail.xhr;
    if (!config || config.verb !== "post" || !xhr || xhr.status >= 300) return;
    if (document.getElementById("timeline")) htmx.trigger(document.body, "storyboard-changed");
  });

  // After a merge, a "Show earlier scenes" that follows a card is one too many.
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = document.getElementById("scene-list");
    if (!list || event.detail.target !== list) return;
    list.querySelectorAll(".scene-card[data-position] ~ [data-earlier]").forEach(function (extra) {
      extra.remove();
    });
  });

  // --- @-suggestions --------------------------------------------------------------
  var MENTION_AT_CARET = /(^|[^\w@])@([A-Za-z0-9_]{0,40})$/;
  // The fields that name characters: a scene's prompt and its dialogue.
  var MENTION_FIELDS =
    "[data-mention-url] textarea[name=prompt], [data-mention-url] textarea[name=dialogue]";

  function mentionBox(textarea) {
    var box = textarea.parentNode.querySelector(".mention-box");
    if (!box) {
      box = document.createElement("ul");
      box.className = "mention-box";
      box.setAttribute("role", "listbox");
      box.id = textarea.id + "-mentions";
      box.hidden = true;
      textarea.setAttribute("aria-controls", box.id);
      textarea.setAttribute("aria-autocomplete", "list");
      textarea.insertAdjacentElement("afterend", box);
      box.addEventListener("mousedown", function (event) {
        var option = event.target.closest("[data-handle]");
        if (option) {
          event.preventDefault();
          insertMention(textarea, option.dataset.handle);
        }
      });
    }
    return box;
  }

  function typedMention(textarea) {
    var before = textarea.value.slice(0, textarea.selectionStart);
    var match = before.match(MENTION_AT_CARET);
    return match ? match[2] : null;
  }

  function insertMention(textarea, handle) {
    var caret = textarea.selectionStart;
    var before = textarea.value.slice(0, caret);
    var after = textarea.value.slice(caret);
    var start = before.lastIndexOf("@");
    var inserted = "@" + handle + (after.charAt(0) === " " ? "" : " ");
    textarea.value = before.slice(0, start) + inserted + after;
    var position = start + inserted.length;
    textarea.setSelectionRange(position, position);
    closeBox(textarea);
    textarea.focus();
  }

  function closeBox(textarea) {
    var box = mentionBox(textarea);
    box.hidden = true;
    box.innerHTML = "";
    textarea.removeAttribute("aria-activedescendant");
  }

  function moveActive(textarea, step) {
    var box = mentionBox(textarea);
    var options = Array.prototype.slice.call(box.querySelectorAll("[data-handle]"));
    if (!options.length) return;
    var current = options.findIndex(function (o) { return o.classList.contains("active"); });
    options.forEach(function (o) { o.classList.remove("active"); o.removeAttribute("aria-selected"); });
    var next = options[(current + step + options.length) % options.length];
    next.classList.add("active");
    next.setAttribute("aria-selected", "true");
    textarea.setAttribute("aria-activedescendant", next.id);
  }

  // The textarea asks the server (htmx) for characters matching what follows the "@" at
  // the caret; a newer keystroke replaces an older request, and nothing is asked when the
  // caret is not in a mention. The input listener below sends "mention-query" only while
  // the caret is in one, and the query is added as the request leaves: htmx evaluates no
  // expression under the Content-Security-Policy (no trigger filter, no js: values).
  function enableMentions(textarea) {
    var form = textarea.closest("[data-mention-url]");
    if (!form || textarea.hasAttribute("hx-get")) return;
    var box = mentionBox(textarea);
    textarea.setAttribute("hx-get", form.dataset.mentionUrl);
    textarea.setAttribute("hx-trigger", "mention-query changed delay:120ms");
    textarea.setAttribute("hx-target", "#" + box.id);
    textarea.setAttribute("hx-swap", "innerHTML");
    textarea.setAttribute("hx-sync", "this:replace");
    textarea.setAttribute("hx-params", "q");
    textarea.addEventListener("htmx:configRequest", function (event) {
      if (event.detail.elt === textarea) event.detail.parameters.q = typedMention(textarea) || "";
    });
    htmx.process(textarea);
    box.addEventListener("htmx:afterSwap", function () {
      var query = typedMention(textarea);
      box.hidden = query === null || !box.children.length;
      var first = box.querySelector("[data-handle]");
      if (first) {
        first.classList.add("active");
        first.setAttribute("aria-selected", "true");
        textarea.setAttribute("aria-activedescendant", first.id);
      }
    });
  }

  document.addEventListener("input", function (event) {
    var textarea = event.target;
    if (!textarea.matches(MENTION_FIELDS)) return;
    if (typedMention(textarea) === null) {
      closeBox(textarea);
    } else if (textarea.hasAttribute("hx-get")) {
      htmx.trigger(textarea, "mention-query");
    }
  });

  document.addEventListener("keydown", function (event) {
    var textarea = event.target;
    if (!textarea.matches || !textarea.matches(MENTION_FIELDS)) return;
    var box = textarea.parentNode.querySelector(".mention-box");
    if (!box || box.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveActive(textarea, event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" || event.key === "Tab") {
      var active = box.querySelector(".active[data-handle]");
      if (active) {
        event.preventDefault();
        insertMention(textarea, active.dataset.handle);
      }
    } else if (event.key === "Escape") {
      closeBox(textarea);
    }
  });

  document.addEventListener("focusout", function (event) {
    if (event.target.matches && event.target.matches(MENTION_FIELDS)) {
      setTimeout(function () { closeBox(event.target); }, 150);
    }
  });

  // --- Small behaviours -------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      event.preventDefault();
      var gone = dismiss.closest(dismiss.dataset.dismiss);
      if (gone) gone.remove();
      return;
    }
    var mark = event.target.closest("[data-mark]");
    if (mark) {
      var form = mark.closest("form");
      var video = document.querySelector(form.dataset.spanFor);
      if (video) {
        form.querySelector("[name=" + mark.dataset.mark + "]").value = video.currentTime.toFixed(1);
      }
    }
  });

  // Hovering a take's player shows the frame under the pointer from its spritesheet.
  document.addEventListener("mousemove", function (event) {
    var player = event.target.closest && event.target.closest(".player[data-spritesheet]");
    if (!player) return;
    var video = player.querySelector("video");
    var preview = player.querySelector(".scrub-preview");
    if (!video || !preview || !video.paused) return;
    var rect = player.getBoundingClientRect();
    var fraction = Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 0.999);
    var columns = Number(player.dataset.columns), rows = Number(player.dataset.rows);
    var tile = Math.floor(fraction * columns * rows);
    preview.style.backgroundImage = "url(" + player.dataset.spritesheet + ")";
    preview.style.backgroundSize = columns * 100 + "% " + rows * 100 + "%";
    preview.style.backgroundPosition =
      ((tile % columns) / (columns - 1)) * 100 + "% " + (Math.floor(tile / columns) / Math.max(rows - 1, 1)) * 100 + "%";
    preview.style.left = Math.min(Math.max(event.clientX - rect.left - 80, 0), rect.width - 160) + "px";
    preview.classList.add("shown");
  });
  document.addEventListener("mouseout", function (event) {
    var player = event.target.closest && event.target.closest(".player[data-spritesheet]");
    if (player && !player.contains(event.relatedTarget)) {
      var preview = player.querySelector(".scrub-preview");
      if (preview) preview.classList.remove("shown");
    }
  });

  htmx.onLoad(function (element) {
    var lists = element.matches && element.matches("[data-sortable]")
      ? [element]
      : element.querySelectorAll ? element.querySelectorAll("[data-sortable]") : [];
    Array.prototype.forEach.call(lists, initSortable);
    var prompts = element.querySelectorAll ? element.querySelectorAll(MENTION_FIELDS) : [];
    Array.prototype.forEach.call(prompts, enableMentions);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-sortable]").forEach(initSortable);
  });
})();
