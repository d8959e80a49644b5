/* The review board's keyboard, frame stepping and the player's time readout. The board works
 * without them (plain forms and links, htmx swapping #review-board); these make it quick.
 *
 *   a          approve (the board then moves to the next take awaiting review)
 *   r          reject: focuses the reasons; 1-8 tick reasons; Enter rejects
 *   j  →       next take          k  ←   previous take
 *   ,  .       one frame back, forward (1/fps; 24 fps unless the take says)
 *   Space      play, pause        s      select the take for its scene (owners, editors)
 *   ?          show or hide the keys
 *   Esc        leave a text field, stop rejecting, hide the keys
 *
 * Keys are ignored while typing in a text field (Esc leaves it), and with Ctrl, Alt or Meta.
 */
(function () {
  "use strict";

  var TEXT_TAGS = /^(TEXTAREA|SELECT)$/;
  var NOT_TEXT_INPUTS = /^(checkbox|radio|button|submit|reset|range|color|file|image)$/;
  var ACTIVATES = /^(BUTTON|A|SUMMARY|INPUT|VIDEO|AUDIO)$/; // Space already means something there

  function typingIn(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable || TEXT_TAGS.test(element.tagName)) return true;
    return element.tagName === "INPUT" && !NOT_TEXT_INPUTS.test(element.type);
  }

  function reviewForm() {
    return document.querySelector("[data-review-form]");
  }

  function player() {
    return document.getElementById("review-video");
  }

  function busy(form) {
    return form.classList.contains("htmx-request");
  }

  function press(selector) {
    var target = document.querySelector(selector);
    if (!target) return false;
    var form = target.closest("form");
    if (form && busy(form)) return true; // one decision at a time
    target.click();
    return true;
  }

  // --- The player -----------------------------------------------------------------

  function framesPerSecond(video) {
    var fps = parseFloat(video.dataset.fps);
    return fps > 0 ? fps : 24;
  }

  function frameIndex(video) {
    return Math.floor(video.currentTime * framesPerSecond(video) + 1e-3);
  }

  function step(frames) {
    var video = player();
    if (!video) return;
    var fps = framesPerSecond(video);
    video.pause();
    var index = Math.max(0, frameIndex(video) + frames);
    if (isFinite(video.duration) && video.duration > 0) {
      index = Math.min(index, Math.max(0, Math.ceil(video.duration * fps) - 1));
    }
    // The middle of the frame: a boundary time may round to the frame before it.
    video.currentTime = (index + 0.5) / fps;
    // Show the frame asked for now: "seeked" comes only once the frame is decoded, which
    // on a slow connection can be long after the key.
    showTime();
  }

  function playOrPause() {
    var video = player();
    if (!video) return;
    if (video.paused) {
      var playing = video.play();
      if (playing && playing.catch) playing.catch(function () {});
    } else {
      video.pause();
    }
  }

  function showTime() {
    var video = player();
    var readout = document.querySelector("[data-readout]");
    if (!video || !readout) return;
    readout.value = video.currentTime.toFixed(2) + " s · frame " + (frameIndex(video) + 1);
    var play = document.querySelector("[data-play]");
    if (play) play.firstChild.nodeValue = video.paused ? "Play " : "Pause ";
  }

  function enhance() {
    document.querySelectorAll("[data-frame-controls][hidden]").forEach(function (controls) {
      controls.hidden = false;
    });
    showTime();
  }

  // Media events do not bubble: listen in the capture phase, for whichever player is there.
  ["timeupdate", "seeked", "play", "pause", "loadedmetadata"].forEach(function (name) {
    document.addEventListener(
      name,
      function (event) {
        if (event.target.id === "review-video") showTime();
      },
      true
    );
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-step], [data-play]");
    if (!button) return;
    if (button.hasAttribute("data-play")) playOrPause();
    else step(parseInt(button.dataset.step, 10));
  });

  // --- Rejecting -----------------------------------------------------------------

  function startRejecting(form) {
    form.classList.add("rejecting");
    var focused = form.querySelector("[data-codes] input:focus");
    if (!focused) {
      var first = form.querySelector("[data-codes] input");
      if (first) first.focus();
    }
  }

  function stopRejecting(form) {
    form.classList.remove("rejecting");
  }

  function toggleReason(form, key) {
    var box = form.querySelector('[data-codes] input[data-key="' + key + '"]');
    if (!box) return;
    box.checked = !box.checked;
    startRejecting(form);
    box.focus();
  }

  function toggleKeys(open) {
    var keys = document.getElementById("review-keys");
    if (keys) keys.open = open === undefined ? !keys.open : open;
  }

  // --- Keys ----------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (!document.querySelector("[data-review-board]")) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    var form = reviewForm();
    var key = event.key;

    if (typingIn(target)) {
      if (key === "Escape") {
        target.blur();
        event.preventDefault();
      } else if (key === "Enter" && target.tagName === "INPUT" && form && form.contains(target)) {
        // Enter in a score field: reject when rejecting, else nothing (never approve by accident).
        event.preventDefault();
        if (form.classList.contains("rejecting")) press("[data-review-form] [data-reject]");
      }
      return;
    }

    if (key === "Enter") {
      if (!form || !form.classList.contains("rejecting")) return;
      if (/^(BUTTON|A|SUMMARY)$/.test(target.tagName)) return; // they do their own thing
      event.preventDefault();
      press("[data-review-form] [data-reject]");
      return;
    }
    if (key === "Escape") {
      if (form) stopRejecting(form);
      toggleKeys(false);
      if (target && target.blur) target.blur();
      return;
    }
    if (key === " ") {
      if (ACTIVATES.test(target.tagName)) return;
      event.preventDefault();
      playOrPause();
      return;
    }

    var handled = true;
    switch (key) {
      case "a":
        if (event.repeat || !form) return;
        press("[data-review-form] [data-approve]");
        break;
      case "r":
        if (!form) return;
        startRejecting(form);
        break;
      case "s":
        if (event.repeat) return;
        handled = press("[data-review-form] [data-select]");
        break;
      case "j":
      case "ArrowRight":
        handled = press("[data-review-next]");
        break;
      case "k":
      case "ArrowLeft":
        handled = press("[data-review-previous]");
        break;
      case ",":
        step(-1);
        break;
      case ".":
        step(1);
        break;
      case "?":
        toggleKeys();
        break;
      default:
        if (form && /^[1-8]$/.test(key)) toggleReason(form, key);
        else handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", enhance);
  document.addEventListener("htmx:load", enhance);
})();
