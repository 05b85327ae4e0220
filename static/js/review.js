// Review page: keyboard shortcuts, drafts of edits that survive a reload and a refused decision, the confirmation
// before approving a pair with a reject-level flag, and the next pair preloaded while the reviewer reads the current
// one, so a decision shows the next pair at once.
(function () {
  "use strict";
  var nextHtml = null; // the preloaded fragment; "" when the queue has nothing after the current pair
  var loggedOut = false; // the server said the session has ended (401): nothing is sent until the page is reloaded
  var SENT = "workbench-draft-sent"; // sessionStorage: the draft of a decision sent by a page load

  function el(id) { return document.getElementById(id); }
  function draftKey() {
    var review = el("review");
    return review ? "workbench-draft:" + review.getAttribute("data-pair") + ":" + review.getAttribute("data-version") : null;
  }
  // A decision the server took ends every draft of that pair (a re-applied one lives under the pair's newer version).
  function removeDrafts(key) {
    if (!key) return;
    var prefix = key.slice(0, key.lastIndexOf(":") + 1);
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && k.indexOf(prefix) === 0) localStorage.removeItem(k);
      }
    } catch (e) { /* storage off */ }
  }
  function saveDraft() {
    var key = draftKey(), question = el("id_question"), answer = el("id_answer");
    if (!key || !question || !answer) return;
    try { localStorage.setItem(key, JSON.stringify({ q: question.value, a: answer.value })); } catch (e) { /* full */ }
  }

  // A draft is dropped only once the server has taken the decision: a refused one (a conflict, a field error, a lapsed
  // lease) comes back as a page with #conflict or #form-errors, and the draft stays.
  function settleSentDraft() {
    var sent = null;
    try { sent = sessionStorage.getItem(SENT); sessionStorage.removeItem(SENT); } catch (e) { /* storage off */ }
    if (sent && !el("conflict") && !el("form-errors")) removeDrafts(sent);
  }

  function bindDrafts() {
    var key = draftKey(), question = el("id_question"), answer = el("id_answer");
    if (!key || !question || !answer) return;
    try {
      var draft = JSON.parse(localStorage.getItem(key) || "null");
      if (draft) {
        question.value = draft.q; answer.value = draft.a;
        question.classList.add("draft"); answer.classList.add("draft");
      }
    } catch (e) { /* ignore a broken draft */ }
    question.addEventListener("input", saveDraft);
    answer.addEventListener("input", saveDraft);
  }

  // After a conflict: the reviewer's own text is shown beside the current one; "Re-apply" puts it into the fields (and
  // into the draft of the pair's current version) to decide again.
  function bindConflict() {
    var button = el("btn-reapply"), question = el("id_question"), answer = el("id_answer");
    if (!button || !question || !answer) return;
    button.addEventListener("click", function () {
      question.value = el("your-question").textContent;
      answer.value = el("your-answer").textContent;
      question.classList.add("draft"); answer.classList.add("draft");
      saveDraft();
      question.focus();
    });
  }

  function preload() {
    var review = el("review");
    nextHtml = null;
    if (!review || !window.fetch) return;
    fetch(review.getAttribute("data-next-url"), { credentials: "same-origin", headers: { "X-Review-Fetch": "1" } })
      .then(function (r) {
        if (r.status === 401) { loggedOut = true; showLoggedOut(); throw new Error(r.status); }
        if (r.status === 204) return "";
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) { nextHtml = html; })
      .catch(function () { nextHtml = null; });
  }

  function init() {
    bindDrafts();
    bindConflict();
    preload();
  }

  function showNext() {
    var holder = document.createElement("div");
    holder.innerHTML = nextHtml; // server-rendered, autoescaped fragment of this page
    var fresh = holder.querySelector("#review");
    if (!fresh) { window.location.reload(); return; } // not a pair (a page of another kind): let the server say
    el("review").replaceWith(fresh);
    ["conflict", "form-errors"].forEach(function (id) { var node = el(id); if (node) node.remove(); });
    window.scrollTo(0, 0);
    init();
  }

  // A refused decision: the server's page (conflict or field errors) replaces this one's content, without sending the
  // decision a second time.
  function showRefusal(html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var main = page.querySelector("main"), here = document.querySelector("main");
    if (!main || !here) { window.location.reload(); return; }
    main.querySelectorAll("script").forEach(function (s) { s.remove(); });
    here.replaceChildren.apply(here, Array.prototype.slice.call(main.childNodes).map(function (n) { return document.adoptNode(n); }));
    window.scrollTo(0, 0);
    init();
  }

  // The session ended (a logout in another tab, an expiry): nothing was recorded; say so and keep the draft, which the
  // page shows again once the reviewer has logged in and reloaded it.
  function showLoggedOut() {
    if (fieldsChanged()) saveDraft();
    showMessage("Your session has ended, so this decision was not recorded. Log in again (in another tab), then reload " +
      "this page: your text is kept as a draft.");
  }

  // A server error (a 500, a proxy's 502) is no refusal page of ours: say so in a line of text, keep the draft, and
  // leave the pair on screen to try again, never the error page's markup.
  function showServerError(status) {
    showMessage("The server could not record this (HTTP " + status + "). Nothing was changed and your text is kept; try again.");
  }

  function showMessage(text) {
    var here = document.querySelector("main");
    if (!here) return;
    var box = el("review-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "review-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      here.prepend(box);
    }
    box.textContent = text;
    window.scrollTo(0, 0);
  }

  function rejectReasonMissing(form) {
    return !form.elements.reason_preset.value && !form.elements.reason.value.trim();
  }

  // Approving a pair with a reject-level flag asks first: the first A shows the question, a second A confirms.
  function approveNeedsAsking() {
    var review = el("review"), box = el("confirm-approve"), confirm = el("id_confirm");
    if (!review || !review.getAttribute("data-reject-flags") || !box || !confirm || confirm.checked) return false;
    if (box.hidden) { box.hidden = false; return true; }
    confirm.checked = true;
    return false;
  }

  // The fields differ from the pair as the server sent it (an edit not yet saved).
  function fieldsChanged() {
    var question = el("id_question"), answer = el("id_answer");
    return !!(question && answer && (question.value !== question.defaultValue || answer.value !== answer.defaultValue));
  }

  function submit(decision) {
    var form = el("decision-form");
    if (!form) return;
    // A approves what the fields show: with changed text that is the edit (never the model's text with the edit dropped).
    if (decision === "approve" && fieldsChanged()) decision = "edit";
    if (decision === "reject" && rejectReasonMissing(form)) { form.elements.reason_preset.focus(); return; }
    if (decision === "approve" && approveNeedsAsking()) return;
    var data = new FormData(form);
    data.set("decision", decision);
    var key = draftKey();
    if (loggedOut) { showLoggedOut(); return; }
    if (nextHtml === null || !window.fetch) { return nativeSubmit(form, decision, key); }
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin", redirect: "manual", headers: { "X-Review-Fetch": "1" },
    })
      .then(function (r) {
        if (r.status === 401) {
          loggedOut = true;
          showLoggedOut();
        } else if (r.type === "opaqueredirect" || (r.status >= 300 && r.status < 400)) {
          removeDrafts(key); // taken: the draft has done its work
          if (nextHtml) showNext(); else window.location.reload();
        } else if (r.status >= 500) {
          showServerError(r.status); // nothing changed: the draft stays
        } else {
          return r.text().then(showRefusal); // nothing changed: the draft stays
        }
      })
      .catch(function () { nativeSubmit(form, decision, key); });
  }

  function nativeSubmit(form, decision, key) {
    try { if (key) sessionStorage.setItem(SENT, key); } catch (e) { /* storage off */ }
    var input = document.createElement("input");
    input.type = "hidden"; input.name = "decision"; input.value = decision;
    form.append(input);
    form.submit();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "decision-form") return;
    event.preventDefault();
    var button = event.submitter;
    if (button && button.id === "btn-approve-anyway" && el("id_confirm")) el("id_confirm").checked = true;
    submit(button ? button.value : "approve");
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var form = el("decision-form");
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
        event.preventDefault();
        submit(target.id === "id_reason" || target.id === "id_reason_preset" ? "reject" : "edit");
      } else if (event.key === "Escape") { target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var k = event.key.toLowerCase();
    var undo = el("undo-form") || document.querySelector("form[action$='/review/undo']");
    if (k === "a" && form) { event.preventDefault(); submit("approve"); }
    else if (k === "e" && el("id_question")) { event.preventDefault(); el("id_question").focus(); }
    else if (k === "r" && form) { event.preventDefault(); submit("reject"); }
    else if (k === "s" && form) { event.preventDefault(); submit("skip"); }
    else if (k === "u" && undo) { event.preventDefault(); undo.submit(); }
  });

  settleSentDraft();
  init();
})();
