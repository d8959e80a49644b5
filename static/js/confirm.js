/* Plain forms that ask before they act: <form data-confirm="Remove …?"> submits only once the
   question is answered yes. In place of onsubmit="return confirm(…)", which the
   Content-Security-Policy forbids (no inline handlers); htmx requests ask through hx-confirm. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.dataset && form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
