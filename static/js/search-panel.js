// The chat page's search panel (templates/chat/_search_panel.html): a search button (a link to the search page
// without JavaScript), "/" outside a text field or Ctrl+Shift+F open it over the conversation pane; hits load
// as you type (htmx); a hit already on screen is jumped to in place (data-jump, static/js/chat.js highlights
// it), any other opens its conversation around it; Esc or × closes it and focus goes back where it was.
(function () {
  "use strict";

  var app = document.querySelector(".app--chat");
  var panel = document.getElementById("search-panel");
  if (!app || !panel) {
    return;
  }
  var field = document.getElementById("search-panel-q");
  var opener = null; // what had the focus when the panel opened: it gets it back

  function isOpen() {
    return !panel.hidden;
  }

  function typingIn(element) {
    if (!element || !element.tagName) {
      return false;
    }
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable) {
      return true;
    }
    return tag === "INPUT" && ["checkbox", "radio", "button", "submit", "reset"].indexOf(element.type) === -1;
  }

  function open(from) {
    // Over the conversation pane: the panel moves into it (the pane is its positioning box).
    var pane = document.getElementById("pane");
    if (pane && panel.parentNode !== pane) {
      pane.classList.add("search-panel-host");
      pane.appendChild(panel);
    }
    if (!isOpen()) {
      opener = from || document.activeElement;
    }
    panel.hidden = false;
    app.setAttribute("data-pane", "pane"); // on a phone, the pane that holds the panel is the one shown
    document.querySelectorAll("[data-search-open]").forEach(function (button) {
      button.setAttribute("aria-expanded", "true");
    });
    field.focus();
    field.select();
  }

  function close(giveFocusBack) {
    if (!isOpen()) {
      return;
    }
    panel.hidden = true;
    document.querySelectorAll("[data-search-open]").forEach(function (button) {
      button.setAttribute("aria-expanded", "false");
    });
    var back = opener && opener !== document.body && document.contains(opener) ? opener : document.getElementById("composer-body");
    opener = null;
    if (giveFocusBack && back) {
      back.focus();
    }
  }

  // A search button: on the page it opens the panel (it is a link to the search page for everyone else).
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-search-open]") : null;
    if (button) {
      event.preventDefault();
      if (isOpen()) {
        close(true);
      } else {
        open(button);
      }
    }
  });

  panel.addEventListener("click", function (event) {
    if (event.target.closest("[data-search-close]")) {
      close(true);
      return;
    }
    var hit = event.target.closest(".msgsearch-hit__link[data-jump]");
    if (!hit) {
      return;
    }
    var message = document.getElementById(hit.getAttribute("data-jump"));
    if (!message) {
      return; // not on screen: the link opens the conversation around it
    }
    // In place: the panel gets out of the way, chat.js (listening on the document, after this) scrolls to the
    // message and highlights it, and the focus goes to it so the keyboard carries on from there.
    close(false);
    document.querySelectorAll(".message--highlight").forEach(function (other) {
      if (other !== message) {
        other.classList.remove("message--highlight");
      }
    });
    message.setAttribute("tabindex", "-1");
    message.focus({ preventScroll: true });
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) {
      return;
    }
    var key = event.key;
    if (key === "Escape" && isOpen() && (panel.contains(event.target) || !typingIn(event.target))) {
      event.preventDefault(); // also keeps the words in the field for the next time
      close(true);
      return;
    }
    var shortcut = (event.ctrlKey || event.metaKey) && event.shiftKey && !event.altKey && (key === "F" || key === "f");
    var slash = key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !typingIn(event.target);
    if ((shortcut || slash) && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      open(null);
    }
  });
})();
