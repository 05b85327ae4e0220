// Progress of the project's re-scoring job, polled until it ends.
(function () {
  "use strict";
  var box = document.getElementById("scoring");
  var bar = document.getElementById("job-bar");
  if (!box || !bar) return;
  function tick() {
    fetch(box.getAttribute("data-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var job = data.job;
        if (!job) return;
        bar.max = job.total; bar.value = job.done;
        document.getElementById("job-done").textContent = job.done;
        document.getElementById("job-total").textContent = job.total;
        document.getElementById("job-status").textContent = job.status;
        if (job.status === "queued" || job.status === "running") setTimeout(tick, 1500);
      });
  }
  tick();
})();
