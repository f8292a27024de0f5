(function () {
  "use strict";
  document.documentElement.classList.add("js");   // filters are shown only when this runs
  var buttons = document.querySelectorAll("button.filter[data-sev]");
  function apply() {
    var hidden = {};
    buttons.forEach(function (b) { if (b.getAttribute("aria-pressed") === "false") { hidden[b.dataset.sev] = true; } });
    document.querySelectorAll("article.finding[data-sev]").forEach(function (el) {
      el.hidden = !!hidden[el.dataset.sev];
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function (ev) {
      if (ev.altKey || ev.metaKey || ev.ctrlKey) {
        buttons.forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      } else {
        b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "false" ? "true" : "false");
      }
      apply();
    });
  });
})();
