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
