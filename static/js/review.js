// Review page: keyboard shortcuts and drafts of edits that survive a reload.
(function () {
  "use strict";
  var form = document.getElementById("decision-form");
  var review = document.getElementById("review");
  var undo = document.getElementById("undo-form") || document.querySelector("form[action$='/review/undo']");
  var question = document.getElementById("id_question");
  var answer = document.getElementById("id_answer");
  var reason = document.getElementById("id_reason");
  var preset = document.getElementById("id_reason_preset");

  var key = review ? "workbench-draft:" + review.getAttribute("data-pair") + ":" + review.getAttribute("data-version") : null;
  function saveDraft() {
    if (!key) return;
    try { localStorage.setItem(key, JSON.stringify({ q: question.value, a: answer.value })); } catch (e) { /* storage full or off */ }
  }
  if (key && question && answer) {
    try {
      var draft = JSON.parse(localStorage.getItem(key) || "null");
      if (draft && !document.getElementById("conflict")) {
        question.value = draft.q; answer.value = draft.a;
        question.classList.add("draft"); answer.classList.add("draft");
      }
    } catch (e) { /* ignore a broken draft */ }
    question.addEventListener("input", saveDraft);
    answer.addEventListener("input", saveDraft);
  }

  function submit(decision) {
    if (!form) return;
    if (decision === "reject" && !preset.value && !reason.value.trim()) {
      preset.focus();
      return;
    }
    var input = document.createElement("input");
    input.type = "hidden"; input.name = "decision"; input.value = decision;
    form.append(input);
    if (key) { try { localStorage.removeItem(key); } catch (e) { /* ignore */ } }
    form.submit();
  }
  if (form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (button && button.value === "reject" && !preset.value && !reason.value.trim()) {
        event.preventDefault();
        preset.focus();
        return;
      }
      if (key) { try { localStorage.removeItem(key); } catch (e) { /* ignore */ } }
    });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) { event.preventDefault(); submit(target === reason || target === preset ? "reject" : "edit"); }
      else if (event.key === "Escape") { target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var k = event.key.toLowerCase();
    if (k === "a" && form) { event.preventDefault(); submit("approve"); }
    else if (k === "e" && question) { event.preventDefault(); question.focus(); }
    else if (k === "r" && form) { event.preventDefault(); if (preset.value || reason.value.trim()) submit("reject"); else preset.focus(); }
    else if (k === "s" && form) { event.preventDefault(); submit("skip"); }
    else if (k === "u" && undo) { event.preventDefault(); undo.submit(); }
  });
})();
