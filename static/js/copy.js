/* Copy buttons: <button data-copy="#field" data-copied="Copied"> copies the field's value (or
   text) to the clipboard and says so for a moment. Without the clipboard API (plain http on
   another host), the field's text is selected so it can be copied by hand. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var field = document.querySelector(button.dataset.copy);
    if (!field) {
      return;
    }
    var text = "value" in field ? field.value : field.textContent;
    var label = button.textContent;
    var said = function () {
      button.textContent = button.dataset.copied || "Copied";
      window.setTimeout(function () { button.textContent = label; }, 2000);
    };
    var selectIt = function () {
      if (field.select) {
        field.focus();
        field.select();
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(said, selectIt);
    } else {
      selectIt();
    }
  });
})();
