/* The episode preview: the chosen takes played one after another, nothing assembled.
 *
 * The playlist is the page's <script type="application/json" id="preview-playlist"> block
 * (data, never run): the scenes that have a video, in order. Scenes with no chosen take are
 * listed as skipped and never played (no black card: the gap is visible in the list).
 *
 * Two <video> elements take turns: while one plays, the other already loads the next
 * scene's take, so the end of a scene is a swap of two ready players rather than a fresh
 * fetch and decode in one (which shows black for a moment between scenes).
 *
 *   Space   play, pause        ←  →   previous, next scene
 *
 * Keys are ignored while typing in a field, and with Ctrl, Alt or Meta. Without this file
 * the page still works: the first take plays in the browser's own player, and each scene
 * in the list is a link to the page starting at that scene (?scene=<id>).
 */
(function () {
  "use strict";

  var TEXT_TAGS = /^(TEXTAREA|SELECT)$/;
  var NOT_TEXT_INPUTS = /^(checkbox|radio|button|submit|reset|color|file|image)$/;
  var ACTIVATES = /^(BUTTON|SUMMARY|INPUT)$/; // Space presses these (on a link it only scrolls)

  function typingIn(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable || TEXT_TAGS.test(element.tagName)) return true;
    return element.tagName === "INPUT" && !NOT_TEXT_INPUTS.test(element.type);
  }

  function clock(seconds) {
    var whole = Math.max(0, Math.floor(seconds || 0));
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var rest = whole % 60;
    var mm = hours ? (minutes < 10 ? "0" : "") + minutes : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function quietly(promise) {
    if (promise && promise.catch) promise.catch(function () {});
  }

  function start(root) {
    var source = document.getElementById("preview-playlist");
    var tracks = source ? JSON.parse(source.textContent) : [];
    var players = root.querySelectorAll("[data-preview-video]");
    if (!tracks.length || players.length < 2) return;

    var active = players[0];
    var standby = players[1];
    var index = Math.min(Math.max(parseInt(root.dataset.start, 10) || 0, 0), tracks.length - 1);
    var finished = false;
    var controls = root.querySelector("[data-preview-controls]");
    var playButton = root.querySelector("[data-play]");
    var previousButton = root.querySelector("[data-previous]");
    var nextButton = root.querySelector("[data-next]");
    var now = root.querySelector("[data-now]");
    var readout = root.querySelector("[data-clock]");
    var list = root.querySelector("[data-preview-scenes]");

    function position(sceneId) {
      for (var n = 0; n < tracks.length; n++) {
        if (String(tracks[n].scene) === String(sceneId)) return n;
      }
      return -1;
    }

    function elapsedBefore(n) {
      var seconds = 0;
      for (var i = 0; i < n; i++) seconds += tracks[i].duration;
      return seconds;
    }

    function tick() {
      var total = elapsedBefore(tracks.length);
      var at = finished ? total : elapsedBefore(index) + (active.currentTime || 0);
      readout.value = clock(at) + " / " + clock(total);
    }

    function labelPlay() {
      var playing = !active.paused && !active.ended;
      playButton.firstChild.nodeValue = playing ? "Pause " : finished ? "Play again " : "Play ";
    }

    function row(track) {
      return document.getElementById("preview-scene-" + track.scene);
    }

    // Keep the playing scene in sight within the list, without scrolling the page (on a
    // phone the list is below the player: the page must not leave the player).
    function reveal(item) {
      if (!item || list.scrollHeight <= list.clientHeight) return;
      var top = item.offsetTop - list.offsetTop;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + item.offsetHeight > list.scrollTop + list.clientHeight) {
        list.scrollTop = top + item.offsetHeight - list.clientHeight;
      }
    }

    function show() {
      var track = tracks[index];
      root.dataset.playing = String(track.number);
      if (finished) root.dataset.state = "finished";
      else delete root.dataset.state;
      now.textContent =
        "Scene " + track.number + " of " + root.dataset.scenes + (track.title ? ": " + track.title : "");
      var current = row(track);
      root.querySelectorAll(".preview-scene.playing").forEach(function (item) {
        if (item === current) return;
        item.classList.remove("playing");
        item.removeAttribute("aria-current");
      });
      if (current) {
        current.classList.add("playing");
        current.setAttribute("aria-current", "true");
        reveal(current);
      }
      previousButton.disabled = index === 0;
      nextButton.disabled = index === tracks.length - 1;
      tick();
      labelPlay();
    }

    function load(video, track) {
      if (video.dataset.scene === String(track.scene) && video.getAttribute("src")) return;
      video.dataset.scene = String(track.scene);
      if (track.poster) video.poster = track.poster;
      else video.removeAttribute("poster");
      video.src = track.video; // starts loading (preload="auto")
    }

    function preloadNext() {
      var next = tracks[index + 1];
      if (next) load(standby, next);
    }

    function swap() {
      var previous = active;
      active = standby;
      standby = previous;
      active.muted = previous.muted;
      active.volume = previous.volume;
      active.controls = true;
      previous.controls = false;
      active.hidden = false;
      previous.hidden = true;
      previous.pause();
    }

    function playActive() {
      quietly(active.play());
    }

    function go(to, play) {
      if (to < 0 || to >= tracks.length) return;
      var track = tracks[to];
      finished = false;
      if (standby.dataset.scene === String(track.scene) && standby.getAttribute("src")) {
        swap();
      } else {
        active.pause();
        load(active, track);
      }
      active.currentTime = 0; // a player used before may stand at its end
      index = to;
      show();
      preloadNext();
      if (play) playActive();
      // The address names the scene, so a reload (or a shared link) starts there.
      if (window.history.replaceState) {
        window.history.replaceState(null, "", "?scene=" + track.scene + window.location.hash);
      }
    }

    function toggle() {
      if (finished) go(0, true);
      else if (active.paused || active.ended) playActive();
      else active.pause();
    }

    function ended(event) {
      if (event.target !== active) return;
      if (index + 1 < tracks.length) {
        go(index + 1, true);
        return;
      }
      finished = true;
      show();
    }

    function broken(event) {
      var video = event.target;
      var n = position(video.dataset.scene);
      if (n < 0 || !video.getAttribute("src")) return;
      var item = row(tracks[n]);
      if (item && !item.classList.contains("broken")) {
        item.classList.add("broken");
        var note = item.querySelector(".preview-what .muted");
        if (note) note.textContent = "Its video could not be played";
      }
      // Playing through: a scene that cannot play is passed over, as a skipped one is.
      if (video === active && n === index && n + 1 < tracks.length && playButton.dataset.wanted) {
        go(n + 1, true);
      }
    }

    players.forEach(function (video) {
      video.addEventListener("ended", ended);
      video.addEventListener("error", broken);
      video.addEventListener("timeupdate", function () {
        if (video === active) tick();
      });
      video.addEventListener("play", function () {
        if (video !== active) return;
        playButton.dataset.wanted = "1";
        labelPlay();
      });
      video.addEventListener("pause", function () {
        if (video !== active) return;
        if (!video.ended) delete playButton.dataset.wanted;
        labelPlay();
      });
      // The file's own length, which the total (from the provider's report) may miss.
      video.addEventListener("loadedmetadata", function () {
        var n = position(video.dataset.scene);
        if (n >= 0 && isFinite(video.duration) && video.duration > 0) {
          tracks[n].duration = video.duration;
          tick();
        }
      });
    });

    playButton.addEventListener("click", toggle);
    previousButton.addEventListener("click", function () {
      go(index - 1, !active.paused);
    });
    nextButton.addEventListener("click", function () {
      go(index + 1, !active.paused);
    });
    root.addEventListener("click", function (event) {
      var link = event.target.closest("[data-jump]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button) return;
      var n = position(link.dataset.jump);
      if (n < 0) return;
      event.preventDefault();
      go(n, true);
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.altKey || event.metaKey || event.defaultPrevented) return;
      var target = event.target;
      if (typingIn(target)) return;
      if (event.key === " " || event.key === "Spacebar") {
        if (ACTIVATES.test(target.tagName)) return; // pressing the focused button or link
        event.preventDefault();
        toggle();
      } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        if (target.tagName === "INPUT") return; // a range or radio moves with arrows
        event.preventDefault();
        var playing = !active.paused && !active.ended;
        go(index + (event.key === "ArrowLeft" ? -1 : 1), playing);
      }
    });

    // The page's own player is now ours: the other player is set up to follow it.
    active.dataset.scene = String(tracks[index].scene);
    controls.hidden = false;
    show();
    preloadNext();
  }

  function ready() {
    var root = document.querySelector("[data-preview]");
    if (root) start(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
