// Progress of background imports on the Documents page; the page reloads to show the reports once all are done.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.import-active"));
  if (!rows.length) return;
  function tick() {
    Promise.all(rows.map(function (row) {
      return fetch(row.getAttribute("data-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          var bar = row.querySelector("progress");
          bar.max = job.files_total || 1; bar.value = job.files_done;
          row.querySelector(".import-files").textContent = job.files_done + " / " + job.files_total;
          row.querySelector(".import-status").textContent = job.status;
          return job.status === "queued" || job.status === "running";
        });
    })).then(function (active) {
      if (active.some(Boolean)) setTimeout(tick, 1500);
      else window.location.reload();
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1000);
})();
