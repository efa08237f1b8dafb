// Reload the page every few seconds (the body's data-refresh-seconds), but never while
// someone is using a form: not while a field has focus, and not once a field was changed.
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refreshSeconds || 0);
  if (!(seconds > 0)) return;
  var edited = false;
  document.addEventListener("input", function () { edited = true; });
  document.addEventListener("submit", function () { edited = true; });
  function busy() {
    var active = document.activeElement;
    var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    return edited || typing || document.hidden;
  }
  window.setInterval(function () {
    if (!busy()) window.location.reload();
  }, seconds * 1000);
})();
