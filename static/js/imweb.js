// imweb's own JavaScript: small progressive enhancements, no framework, no inline handlers (strict CSP).
//
// Dismissible alerts: an element with [data-dismissible] holding a button with [data-dismiss]. The button
// ships with the `hidden` attribute (it would do nothing without JavaScript) and is revealed here, both on
// page load and in content htmx swaps in later.
(function () {
  "use strict";

  function revealDismissButtons(root) {
    if (!root || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("[data-dismiss][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-dismiss]") : null;
    if (!button) {
      return;
    }
    var alert = button.closest("[data-dismissible]");
    if (!alert) {
      return;
    }
    var container = alert.parentElement;
    var hadFocus = alert.contains(document.activeElement);
    alert.remove();
    // Drop an emptied message list, and keep keyboard users in the page rather than on <body>.
    if (container && container.classList.contains("messages") && !container.querySelector("[data-dismissible]")) {
      container.remove();
    }
    if (hadFocus) {
      var main = document.getElementById("main");
      if (main) {
        main.focus({ preventScroll: true });
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    revealDismissButtons(document);
  });
  document.addEventListener("htmx:load", function (event) {
    revealDismissButtons(event.target);
  });
})();
