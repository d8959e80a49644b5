/* Live progress on the storyboard: one connection per page, not a request per card.
 *
 * The page's #live element holds `sse-connect` (htmx's SSE extension, from django-htmx): the
 * server sends an event named `scene-<id>` with a card's new status block, and the block
 * with that `sse-swap` name swaps it in, cards loaded later included. The browser reconnects
 * by itself when the server ends a stream (it does every minute or so).
 *
 * With a batch of blocks comes the episode's header line (`episode-counts`), swapped in
 * for #episode-counts wherever it is on the page.
 *
 * Where there is no EventSource, or the stream keeps failing (a proxy that cuts it, a
 * server that refuses it), the page polls instead: one request every few seconds for the
 * blocks that changed since its cursor, each swapped in where its card is on the page.
 *
 * An estimated progress (a provider that reports none: jobs/estimates.py) moves on here as
 * time passes, in the server's words: no event comes while such a job says nothing.
 */
(function () {
  "use strict";

  // --- Estimates: the same figures and words as jobs/estimates.py ---
  var ALMOST_DONE = 95;

  function ago(seconds) {
    var minutes = Math.floor(seconds / 60);
    if (minutes < 1) return "under a minute ago";
    if (minutes < 60) return minutes + " min ago";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min ago";
  }

  function left(seconds) {
    var minutes = Math.round(seconds / 60);
    return minutes < 1 ? "under a minute left" : "about " + minutes + " min left";
  }

  function estimate(elapsed, typical) {
    if (!typical) return { percent: null, text: "started " + ago(elapsed) };
    var percent = Math.floor((elapsed / typical) * 100);
    if (percent >= ALMOST_DONE) return { percent: ALMOST_DONE, text: "almost done (estimate)" };
    percent = Math.max(percent, 1);
    return { percent: percent, text: "about " + percent + "% (estimate) · " + left(typical - elapsed) };
  }

  function moveEstimates() {
    var now = Date.now();
    document.querySelectorAll("[data-estimate-elapsed]").forEach(function (words) {
      // Elapsed as the server counted it when it rendered the block, plus the time since
      // this page first saw the block (the two clocks need not agree).
      if (!words.dataset.estimateSeen) words.dataset.estimateSeen = String(now);
      var since = (now - Number(words.dataset.estimateSeen)) / 1000;
      var elapsed = Number(words.dataset.estimateElapsed) + since;
      var figure = estimate(elapsed, Number(words.dataset.estimateTypical) || 0);
      if (words.textContent !== figure.text) words.textContent = figure.text;
      var bar = document.getElementById(words.dataset.estimateBar || "");
      if (!bar) return;
      bar.setAttribute("aria-valuetext", figure.text);
      bar.textContent = figure.text;
      if (figure.percent !== null) {
        bar.value = figure.percent;
        bar.setAttribute("aria-valuenow", String(figure.percent));
      }
    });
  }

  window.setInterval(moveEstimates, 5000); // estimates swapped in later move on too

  // --- The stream, or the poll ---
  var FAILURES_BEFORE_POLLING = 5;
  var root = document.getElementById("live");
  if (!root) return;

  function swapCounts(html, fromStream) {
    var current = document.getElementById("episode-counts");
    // Inside the stream's element, htmx's extension swaps it in by its sse-swap name.
    if (!current || (fromStream && root.contains(current) && root.hasAttribute("sse-connect"))) {
      return;
    }
    htmx.swap(current, html, { swapStyle: "outerHTML" });
  }

  function poll() {
    if (root.dataset.livePolling) return;
    root.dataset.livePolling = "true";
    root.removeAttribute("sse-connect"); // the extension's own reconnects then find nothing
    var cursor = root.dataset.liveSince;
    var every = 3; // seconds, until the server says (LIVE_POLL_SECONDS)

    function apply(html) {
      var parsed = document.createElement("template");
      parsed.innerHTML = html;
      var mark = parsed.content.querySelector("#live-cursor");
      if (!mark) return; // not an answer of ours (a login page): ask again from the same cursor
      parsed.content.querySelectorAll(".scene-status[id]").forEach(function (block) {
        var current = document.getElementById(block.id);
        if (current) htmx.swap(current, block.outerHTML, { swapStyle: "outerHTML" });
      });
      var counts = parsed.content.querySelector("#episode-counts");
      if (counts) swapCounts(counts.outerHTML, false);
      cursor = mark.dataset.since;
      every = Number(mark.dataset.poll) || every;
    }

    function next() {
      window.setTimeout(tick, every * 1000);
    }

    function tick() {
      if (document.hidden) return next(); // the cursor waits: the changes come when it is seen
      var url = root.dataset.liveStatuses + "?since=" + encodeURIComponent(cursor);
      fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (response) {
          return response.ok ? response.text() : "";
        })
        .then(apply)
        .catch(function () {}) // offline for now: the next tick asks from the same cursor
        .then(next);
    }

    tick(); // the first answer also says how often to ask
  }

  if (typeof window.EventSource !== "function" || !htmx.createEventSource) {
    poll(); // before htmx processes the page (this script is deferred): no stream is tried
    return;
  }

  // The extension makes each stream through htmx.createEventSource. Wrapped here: a browser
  // fires "error" each time a stream ends and it reconnects by itself (every minute or so,
  // with the last cursor), which the extension would log as an error. Only a stream that
  // is closed for good (refused, not an event stream) goes on to the extension, which logs
  // it and tries again later; one that keeps failing makes the page poll instead.
  var failures = 0;
  var create = htmx.createEventSource;
  htmx.createEventSource = function (url) {
    var source = create(url);
    var extensionHandler = null;
    Object.defineProperty(source, "onerror", {
      configurable: true,
      get: function () {
        return extensionHandler;
      },
      set: function (handler) {
        extensionHandler = handler;
      },
    });
    source.addEventListener("open", function () {
      failures = 0;
    });
    source.addEventListener("episode-counts", function (event) {
      swapCounts(event.data, true);
    });
    source.addEventListener("error", function (event) {
      failures += 1;
      if (failures >= FAILURES_BEFORE_POLLING) {
        source.close();
        poll();
      } else if (source.readyState === EventSource.CLOSED && extensionHandler) {
        extensionHandler.call(source, event);
      }
    });
    return source;
  };
})();
