/* The admin's take list: a row shows the take's thumbnail and a Play link; clicking it swaps
   the link for a player, so a page of takes opens no video until one is asked for. Without
   JavaScript the link opens the video itself. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.take-play[data-video]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    var player = document.createElement("video");
    player.controls = true;
    player.autoplay = true;
    player.width = Number(link.dataset.width) || 112;
    var picture = link.querySelector("img");
    if (picture) {
      player.poster = picture.currentSrc || picture.src;
    }
    player.src = link.dataset.video;
    player.className = "take-player";
    link.replaceWith(player);
    player.focus();
  });
})();
