// Progressive enhancement only: every page works without this file.
// A page showing a running experiment carries data-refresh="SECONDS" on <body>; reload it
// then, unless the reader unticked "Refresh" or is typing in a form field.
(function () {
  "use strict";
  var body = document.body;
  var seconds = parseInt(body.getAttribute("data-refresh") || "", 10);
  var box = document.getElementById("auto-refresh");
  var key = "otel-experiments-ui:auto-refresh";
  if (box) {
    box.checked = sessionStorage.getItem(key) !== "off";
    box.addEventListener("change", function () {
      sessionStorage.setItem(key, box.checked ? "on" : "off");
    });
  }
  if (!(seconds > 0)) { return; }
  window.setInterval(function () {
    if (box && !box.checked) { return; }
    var active = document.activeElement;
    if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName) && active !== box) { return; }
    window.location.reload();
  }, seconds * 1000);
})();
