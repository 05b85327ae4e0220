// Audit queue: A agrees, D moves to the note, Ctrl+Enter in the note disagrees.
(function () {
  "use strict";
  function click(id) { var b = document.getElementById(id); if (b) b.click(); }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      if (target.id === "id_note" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); click("btn-disagree"); }
      else if (event.key === "Escape") { target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var k = event.key.toLowerCase();
    if (k === "a") { event.preventDefault(); click("btn-agree"); }
    else if (k === "d") { var note = document.getElementById("id_note"); if (note) { event.preventDefault(); note.focus(); } }
  });
})();
