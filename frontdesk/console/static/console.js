// Keyboard shortcuts for the review queue; the console works without this file.
document.addEventListener("keydown", function (ev) {
  var t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) { return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
  if (ev.key === "n" || ev.key === "N") {
    ev.preventDefault();
    window.location.href = "/review/next";
  }
});
// The worklist's Print button (no inline handlers: the page's CSP allows no inline script).
document.addEventListener("click", function (ev) {
  var t = ev.target;
  if (t && t.getAttribute && t.getAttribute("data-print")) { window.print(); }
});
