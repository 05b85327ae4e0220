// Live progress of a generation run: polls the run's JSON until it ends.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box) return;
  var url = box.getAttribute("data-url");
  var labels = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
                 dispatch_failed: "Failed to dispatch" };
  function text(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  // Multi-line text (a failure and its fix) as text nodes and line breaks; hidden when empty.
  function lines(id, value) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = "";
    (value || "").split("\n").forEach(function (line, i) {
      if (i) el.append(document.createElement("br"));
      el.append(document.createTextNode(line));
    });
    el.hidden = !value;
  }
  // The parts the server renders from more than the progress numbers (throughput per worker, the sampling the
  // workers used, the model check) follow from the page itself, parsed as our own escaped HTML, when the run moved.
  var FOLLOWED = ["run-workers-box", "run-sampling-used", "run-preflight"];
  var seen = null, seenDone = null, refreshed = 0;
  function refreshDetails() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        FOLLOWED.forEach(function (id) {
          var fresh = page.getElementById(id), here = document.getElementById(id);
          if (fresh && here) here.replaceWith(document.adoptNode(fresh));
        });
      })
      .catch(function () { /* the next change tries again */ });
  }
  function tick() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        var bar = document.getElementById("run-bar");
        bar.max = p.samples_expected; bar.value = p.samples_done;
        text("run-status", labels[p.status] || p.status);
        text("run-done", p.samples_done);
        text("run-rate", p.pairs_per_minute === null ? "–" : p.pairs_per_minute);
        text("run-eta", p.eta_seconds === null ? "–" : p.eta_seconds + " s");
        text("run-failed", p.batches_failed);
        lines("run-error", p.status === "dispatch_failed" ? "" : p.error);  // that one has its own paragraph
        lines("run-notice", p.notice);
        var list = document.getElementById("run-errors");
        list.textContent = "";
        p.failed_batches.concat(p.retrying_batches).forEach(function (b) {
          var li = document.createElement("li");
          li.textContent = "Batch " + b.index + " (attempt " + b.attempts + "): " + b.error;
          list.append(li);
        });
        // At once when the run or its model check changes state; every 10 s at most while pairs come in.
        var state = [p.status, p.preflight_status].join("/"), now = Date.now();
        if (seen !== null && (state !== seen || (p.samples_done !== seenDone && now - refreshed >= 10000))) {
          refreshDetails();
          refreshed = now;
        }
        seen = state;
        seenDone = p.samples_done;
        if (p.status === "queued" || p.status === "running") setTimeout(tick, 2000);
        else if (!box.hasAttribute("data-final")) {
          box.setAttribute("data-final", p.status);
          // A run that ended while the page was open can no longer be cancelled.
          if (p.status !== "dispatch_failed") {
            document.querySelectorAll("form.run-cancel").forEach(function (f) { f.hidden = true; });
          }
        }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  tick();
})();
