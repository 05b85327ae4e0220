// Upload each chosen file on its own request, with a progress bar and the server's report per file.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var list = document.getElementById("upload-progress");
  var input = form.querySelector("input[type=file]");

  function row(name) {
    var li = document.createElement("li");
    var label = document.createElement("span");
    label.textContent = name + " ";
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    var status = document.createElement("span");
    status.className = "status";
    li.append(label, bar, status);
    list.append(li);
    return { bar: bar, status: status, li: li };
  }

  // The form's own errors (a 400: "The submitted file is empty."), as text.
  function formErrors(report) {
    var errors = report && report.errors, out = [];
    if (!errors) return "";
    Object.keys(errors).forEach(function (field) {
      (errors[field] || []).forEach(function (e) { out.push(e && e.message ? e.message : String(e)); });
    });
    return out.join(" ");
  }

  // The document table as the server has it now (text nodes and elements parsed from our own page, never scripts).
  function refreshDocuments() {
    var here = document.getElementById("document-list");
    if (!here || !window.fetch) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("document-list");
        if (fresh) here.replaceWith(document.adoptNode(fresh));
      })
      .catch(function () { /* the link below still reloads the page */ });
  }

  function show(report, httpStatus, ui) {
    var f = report && report.files && report.files[0];
    if (f && f.status !== "failed") {
      ui.status.textContent = " " + f.documents_created + " new, " + f.documents_existing + " already present, " + f.chunks_created + (f.chunks_created === 1 ? " chunk" : " chunks") + (f.encoding ? ", read as " + f.encoding : "");
      ui.li.className = "ok";
    } else {
      ui.status.textContent = " failed: " + (f ? (f.locator ? f.locator + ": " : "") + f.error : (report && report.error) || formErrors(report) || "HTTP " + httpStatus) + " (nothing imported)";
      ui.li.className = "error";
    }
  }

  function follow(url, ui, resolve) {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (job) {
        ui.bar.max = job.files_total || 1; ui.bar.value = job.files_done;
        if (job.status === "queued" || job.status === "running") {
          setTimeout(function () { follow(url, ui, resolve); }, 1000);
          return;
        }
        ui.bar.max = 100; ui.bar.value = 100;
        if (job.report && job.report.files.length) {
          show(job.report, job.status, ui);
        } else {
          ui.status.textContent = " failed: " + (job.error || job.status) + " (nothing imported)";
          ui.li.className = "error";
        }
        resolve();
      })
      .catch(function () { setTimeout(function () { follow(url, ui, resolve); }, 3000); });
  }

  function send(file, ui) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("files", file, file.name);
      ["text_field", "title_field", "id_field", "csrfmiddlewaretoken"].forEach(function (name) {
        var el = form.elements[name];
        if (el) data.append(name, el.value);
      });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) ui.bar.value = (100 * e.loaded) / e.total; };
      xhr.onload = function () {
        ui.bar.value = 100;
        var report;
        try { report = JSON.parse(xhr.responseText); } catch (err) { report = null; }
        if (xhr.status === 202 && report && report.status_url) {
          // A large file: a worker imports it; follow the job until its report is there.
          ui.status.textContent = " importing in the background";
          ui.bar.max = report.files_total || 1; ui.bar.value = 0;
          follow(report.status_url, ui, resolve);
          return;
        }
        show(report, xhr.status, ui);
        resolve();
      };
      xhr.onerror = function () { ui.status.textContent = " network error"; ui.li.className = "error"; resolve(); };
      xhr.send(data);
    });
  }

  form.addEventListener("submit", function (event) {
    if (!input.files.length) return;
    event.preventDefault();
    list.textContent = "";
    var files = Array.prototype.slice.call(input.files);
    var chain = Promise.resolve();
    files.forEach(function (file) {
      var ui = row(file.name);
      chain = chain.then(function () { return send(file, ui); });
    });
    chain.then(function () {
      refreshDocuments();
      var done = document.createElement("li");
      var link = document.createElement("a");
      link.href = window.location.pathname;
      link.textContent = "Refresh the document list";
      done.append(link);
      list.append(done);
    });
  });
})();
