/* The take viewer's and the compare page's keys, frame stepping and shared transport. Both
 * pages work without this file (links, form posts, each video's own controls).
 *
 * Viewer:   ← →  previous, next take     ↑ ↓ (or [ ])  previous, next scene
 *           s    select this take         c  compare      Esc  back to the storyboard
 * Both:     ,  .  one frame back, forward (1/fps; 24 fps unless the take says)
 *           Space play, pause             ?  show or hide the keys
 *
 * A key that goes somewhere clicks the element that names it in data-keys (a link or a
 * form's button), so the key does exactly what the visible control does.
 *
 * Compare: the first video is the clock; the others follow it (a seek when they drift more
 * than a quarter of a second, a slightly faster or slower rate for smaller drift), and only
 * one plays its sound. Keys are ignored while typing in a field and with Ctrl, Alt or Meta.
 */
(function () {
  "use strict";

  var TEXT_TAGS = /^(TEXTAREA|SELECT)$/;
  var NOT_TEXT_INPUTS = /^(checkbox|radio|button|submit|reset|range|color|file|image)$/;
  var ACTIVATES = /^(BUTTON|A|SUMMARY|INPUT|VIDEO)$/; // Space already means something there
  var SEEK_DRIFT = 0.25; // seconds: further apart than this, a follower seeks to the clock
  var NUDGE_DRIFT = 0.04; // seconds: closer than this, a follower plays at the normal rate

  function typingIn(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable || TEXT_TAGS.test(element.tagName)) return true;
    return element.tagName === "INPUT" && !NOT_TEXT_INPUTS.test(element.type);
  }

  function page() {
    return document.querySelector("[data-viewer], [data-compare]");
  }

  function videos() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-viewer-video]"));
  }

  function clock() {
    return videos()[0] || null;
  }

  function framesPerSecond(video) {
    var fps = parseFloat(video.dataset.fps);
    return fps > 0 ? fps : 24;
  }

  function frameIndex(video) {
    return Math.floor(video.currentTime * framesPerSecond(video) + 1e-3);
  }

  function longest() {
    return videos().reduce(function (most, video) {
      return isFinite(video.duration) && video.duration > most ? video.duration : most;
    }, 0);
  }

  function ignore() {}

  // --- Moving every video together -----------------------------------------------

  function seekAll(seconds) {
    videos().forEach(function (video) {
      var end = isFinite(video.duration) && video.duration > 0 ? video.duration : seconds;
      video.currentTime = Math.max(0, Math.min(seconds, end));
    });
    showTime();
  }

  function pauseAll() {
    videos().forEach(function (video) {
      video.pause();
      video.playbackRate = 1;
    });
  }

  function playAll() {
    var lead = clock();
    if (!lead) return;
    if (lead.ended) seekAll(0);
    videos().forEach(function (video) {
      if (video !== lead && Math.abs(video.currentTime - lead.currentTime) > NUDGE_DRIFT) {
        video.currentTime = lead.currentTime;
      }
      var playing = video.play();
      if (playing && playing.catch) playing.catch(ignore);
    });
    requestAnimationFrame(keepInStep);
  }

  function playOrPause() {
    var lead = clock();
    if (!lead) return;
    if (lead.paused) playAll();
    else pauseAll();
  }

  function keepInStep() {
    var lead = clock();
    if (!lead || lead.paused) return;
    videos().forEach(function (video) {
      if (video === lead || video.ended) return;
      if (isFinite(video.duration) && lead.currentTime >= video.duration) return;
      var drift = video.currentTime - lead.currentTime;
      if (Math.abs(drift) > SEEK_DRIFT) {
        video.currentTime = lead.currentTime;
        video.playbackRate = 1;
      } else if (Math.abs(drift) > NUDGE_DRIFT) {
        video.playbackRate = drift > 0 ? 0.95 : 1.05;
      } else {
        video.playbackRate = 1;
      }
      if (video.paused) {
        var playing = video.play();
        if (playing && playing.catch) playing.catch(ignore);
      }
    });
    requestAnimationFrame(keepInStep);
  }

  function step(frames) {
    var lead = clock();
    if (!lead) return;
    var fps = framesPerSecond(lead);
    pauseAll();
    var index = Math.max(0, frameIndex(lead) + frames);
    var seconds = longest();
    if (seconds > 0) index = Math.min(index, Math.max(0, Math.ceil(seconds * fps) - 1));
    // The middle of the frame: a boundary time may round to the frame before it.
    seekAll((index + 0.5) / fps);
  }

  function showTime() {
    var lead = clock();
    if (!lead) return;
    var readout = document.querySelector("[data-readout]");
    if (readout) {
      readout.value = lead.currentTime.toFixed(2) + " s · frame " + (frameIndex(lead) + 1);
    }
    var play = document.querySelector("[data-play]");
    if (play) play.firstChild.nodeValue = lead.paused ? "Play " : "Pause ";
    var seek = document.querySelector("[data-seek]");
    if (seek && !seek.matches(":active")) {
      var seconds = longest();
      if (seconds > 0) seek.max = String(seconds);
      seek.value = String(lead.currentTime);
    }
  }

  function listenTo(takeId) {
    document.querySelectorAll("[data-compare-take]").forEach(function (column) {
      var video = column.querySelector("[data-viewer-video]");
      var mine = column.dataset.compareTake === String(takeId);
      if (video) video.muted = !mine;
      var button = column.querySelector("[data-sound]");
      if (button) button.firstChild.nodeValue = mine ? "Sound on" : "Hear this take";
    });
  }

  // --- Setting up ------------------------------------------------------------------

  function enhance() {
    if (!page()) return;
    document.querySelectorAll("[data-frame-controls][hidden], [data-transport][hidden]").forEach(
      function (controls) {
        controls.hidden = false;
      }
    );
    if (document.querySelector("[data-compare]")) {
      // One transport drives them all: a video's own controls would pull it out of step.
      videos().forEach(function (video) {
        video.controls = false;
      });
      document.querySelectorAll("[data-sound][hidden]").forEach(function (button) {
        button.hidden = false;
      });
    }
    showTime();
  }

  // Media events do not bubble: listen in the capture phase.
  ["timeupdate", "seeked", "play", "pause", "loadedmetadata", "ended"].forEach(function (name) {
    document.addEventListener(
      name,
      function (event) {
        if (event.target !== clock()) return;
        if (name === "ended") pauseAll();
        showTime();
      },
      true
    );
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-seek]")) {
      pauseAll();
      seekAll(parseFloat(event.target.value) || 0);
    }
  });

  document.addEventListener("click", function (event) {
    if (!page()) return;
    var control = event.target.closest("[data-step], [data-play], [data-sound]");
    if (control) {
      if (control.hasAttribute("data-play")) playOrPause();
      else if (control.hasAttribute("data-sound")) listenTo(control.dataset.sound);
      else step(parseInt(control.dataset.step, 10));
      return;
    }
    // On the compare page the videos have no controls of their own: a click plays or pauses.
    if (event.target.matches("[data-compare] [data-viewer-video]")) playOrPause();
  });

  function keyTarget(key) {
    var found = null;
    document.querySelectorAll("[data-keys]").forEach(function (element) {
      if (!found && element.dataset.keys.split(" ").indexOf(key) !== -1) found = element;
    });
    return found;
  }

  function toggleKeys(open) {
    var keys = document.querySelector("[data-viewer-keys]");
    if (!keys) return false;
    keys.open = open === undefined ? !keys.open : open;
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (!page()) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    var key = event.key;

    if (typingIn(target)) {
      if (key === "Escape") {
        target.blur();
        event.preventDefault();
      }
      return;
    }
    if (target && target.matches && target.matches("input[type=range]") && /^Arrow/.test(key)) {
      return; // the seek bar's own arrows
    }
    if (key === " ") {
      // Space on the seek bar plays (a range has no use for it); on a button it presses it.
      if (ACTIVATES.test(target.tagName) && target.type !== "range") return;
      event.preventDefault();
      playOrPause();
      return;
    }
    if (key === "Escape") {
      var keys = document.querySelector("[data-viewer-keys]");
      if (keys && keys.open) {
        keys.open = false;
        event.preventDefault();
        return;
      }
    }
    if (key === ",") step(-1);
    else if (key === ".") step(1);
    else if (key === "?") toggleKeys();
    else {
      if (event.repeat && (key === "s" || key === "c")) return;
      var control = keyTarget(key);
      if (!control) return;
      var form = control.closest("form");
      if (form && form.dataset.sent) return; // one post at a time
      if (form) form.dataset.sent = "1";
      control.click();
    }
    event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", enhance);
})();
