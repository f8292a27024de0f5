/* The page behind an evidence reference: bring the referenced row (line, packet, frame) into view
   and give it the focus, so keyboard and screen-reader users start there too.  Without this
   script the links carry #target and the browser scrolls there itself. */
(function () {
  "use strict";
  function land() {
    var row = document.getElementById("target");
    if (!row) { return; }
    row.scrollIntoView({ block: "center" });
    row.focus({ preventScroll: true });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", land); }
  else { land(); }
}());
