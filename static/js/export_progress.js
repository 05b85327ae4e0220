// Progress of running exports; the page reloads to show the download links once one is done.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.export-active"));
  if (!rows.length) return;
  function tick() {
    Promise.all(rows.map(function (row) {
      return fetch(row.getAttribute("data-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (e) {
          var bar = row.querySelector("progress");
          if (bar) { bar.max = e.rows_total || 1; bar.value = e.rows_done; }
          row.querySelector(".export-rows").textContent = e.rows_done;
          row.querySelector(".export-status").textContent = e.status;
          return e.status === "queued" || e.status === "running";
        });
    })).then(function (active) {
      if (active.some(Boolean)) setTimeout(tick, 1500);
      else window.location.reload();
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1000);
})();
