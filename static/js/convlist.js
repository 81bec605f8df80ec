// The conversation list's own menus (Mute, Pin, Mark as unread on each row, and the same in the open
// conversation's header): Escape or a click elsewhere closes an open menu. Reading on past a mark as unread
// takes it off on the server, which draws the person's lists again in every tab. Everything else (the forms, the list itself, keeping each
// row's settings when a push replaces it) works without this file: templates/chat/_conversation_list.html and
// static/js/chat.js.
(function () {
  "use strict";

  var MENUS = ".convrow__menu[open], .convo__settings[open]";

  function closeMenus(except) {
    document.querySelectorAll(MENUS).forEach(function (menu) {
      if (menu !== except) {
        menu.open = false;
      }
    });
  }

  document.addEventListener("click", function (event) {
    var inside = event.target.closest ? event.target.closest(".convrow__menu, .convo__settings") : null;
    closeMenus(inside);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var open = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(MENUS)
      : null;
    closeMenus(null);
    if (open) {
      var summary = open.querySelector("summary");
      if (summary) {
        summary.focus();
      }
    }
  });
})();
