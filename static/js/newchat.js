// "New chat" (templates/chat/_new_chat.html). On the chat page the "New chat" link opens the form in a panel
// under the chat list's head instead of going to the plain page, and opening it or "New room" closes the other.
// On both pages: typing clears an error shown under the field, and the arrow keys move between the field and
// the people suggested under it. The suggestions and the address check come from the server (htmx).
(function () {
  "use strict";

  var opener = document.querySelector("[data-new-chat-open]");
  var panel = document.getElementById("new-chat-panel");
  var roomCreate = document.querySelector(".chats__new .room-create");

  function field() {
    return document.getElementById("new-chat-to");
  }

  function setOpen(open) {
    if (!opener || !panel) {
      return;
    }
    panel.hidden = !open;
    opener.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      if (roomCreate) {
        roomCreate.open = false;
      }
      if (field()) {
        field().focus();
      }
    }
  }

  if (opener && panel) {
    // With JavaScript the link works as a button for the panel; without, it leads to the plain page.
    opener.setAttribute("role", "button");
    opener.setAttribute("aria-controls", "new-chat-panel");
    opener.setAttribute("aria-expanded", "false");
    opener.addEventListener("click", function (event) {
      event.preventDefault();
      setOpen(panel.hidden);
    });
    opener.addEventListener("keydown", function (event) {
      if (event.key === " ") {
        event.preventDefault();
        setOpen(panel.hidden);
      }
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        setOpen(false);
        opener.focus();
      }
    });
  }
  if (roomCreate) {
    roomCreate.addEventListener("toggle", function () {
      if (roomCreate.open && panel && !panel.hidden) {
        setOpen(false);
      }
    });
  }

  // A new keystroke makes an error about the old text stale: it goes at once.
  document.addEventListener("input", function (event) {
    if (event.target.id !== "new-chat-to") {
      return;
    }
    var error = document.getElementById("new-chat-error");
    if (error) {
      error.remove();
    }
    event.target.removeAttribute("aria-invalid");
    event.target.setAttribute("aria-describedby", "new-chat-hint");
  });

  // Down from the field goes to the first suggestion, up and down move between them, up from the first returns.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
      return;
    }
    var list = document.getElementById("new-chat-people");
    if (!list || list.hidden || !event.target.closest || !event.target.closest("[data-new-chat]")) {
      return;
    }
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    var at = links.indexOf(event.target);
    if (event.target === field()) {
      at = -1;
    } else if (at < 0) {
      return;
    }
    var next = event.key === "ArrowDown" ? at + 1 : at - 1;
    event.preventDefault();
    if (next < 0) {
      field().focus();
    } else if (next < links.length) {
      links[next].focus();
    }
  });
})();
