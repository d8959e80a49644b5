/* The cut's player: each scene's button seeks the video to the scene's start and plays it,
 * and the scene on screen is marked in the list (aria-current) as the video plays. Without
 * this script the list still links each scene to its card, and the video has its controls,
 * subtitles and chapters.
 */
(function () {
  "use strict";

  function player() {
    return document.getElementById("cut-video");
  }

  function markCurrent(video) {
    var now = video.currentTime;
    document.querySelectorAll("[data-chapter]").forEach(function (item) {
      var start = parseFloat(item.dataset.start);
      var end = parseFloat(item.dataset.end);
      if (now >= start && now < end) {
        item.setAttribute("aria-current", "true");
      } else {
        item.removeAttribute("aria-current");
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-seek]");
    var video = player();
    if (!button || !video) return;
    event.preventDefault();
    video.currentTime = parseFloat(button.dataset.seek);
    markCurrent(video);
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () {}); // autoplay refused: stay paused
  });

  document.addEventListener("DOMContentLoaded", function () {
    var video = player();
    if (!video) return;
    video.addEventListener("timeupdate", function () { markCurrent(video); });
    video.addEventListener("seeked", function () { markCurrent(video); });
  });
})();
