// Keyboard shortcuts of the chat page. In the composer: Up (while it is empty) edits your last message, Esc
// cancels the reply being written. In a message's edit box: Enter saves, Shift+Enter starts a new line, Esc
// puts the text back and closes it. Anywhere: Ctrl+K (Cmd+K) opens a quick switcher that filters the
// conversation list by title; "?" (outside a text field) lists the shortcuts. The search panel's own keys
// ("/", Ctrl+Shift+F) are static/js/search-panel.js. The dialogs are built here: they exist only with JavaScript.
(function () {
  "use strict";

  var app = document.querySelector(".app--chat");
  if (!app) {
    return;
  }
  var composer = document.getElementById("composer-body");
  var SHORTCUTS = [
    ["Ctrl+K", "Go to a conversation"],
    ["/", "Search messages (also Ctrl+Shift+F)"],
    ["↑", "Edit your last message (in an empty message box)"],
    ["Enter", "Send, or save an edit (Shift+Enter: a new line)"],
    ["Esc", "Cancel a reply or an edit; close a panel"],
    ["?", "This list"],
  ];

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

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text) {
      element.textContent = text;
    }
    return element;
  }

  // -- Editing your last message ------------------------------------------------------------------------------
  function lastOwnEdit() {
    var menus = document.querySelectorAll(".convo__messages .message--mine .message__menu--edit");
    return menus.length ? menus[menus.length - 1] : null;
  }

  function startEdit(menu) {
    menu.open = true;
    var area = menu.querySelector("textarea");
    if (!area) {
      return;
    }
    menu.closest(".message").scrollIntoView({ block: "nearest" });
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  // Esc: the text goes back to what the message says, the edit box closes, the composer has the focus again.
  function cancelEdit(area) {
    area.value = area.defaultValue;
    var menu = area.closest(".message__menu--edit");
    if (menu) {
      menu.open = false;
    }
    if (composer) {
      composer.focus();
    }
  }

  function editArea(element) {
    return element && element.tagName === "TEXTAREA" && element.closest(".message__edit") ? element : null;
  }

  // -- The quick switcher (Ctrl+K) ------------------------------------------------------------------------
  var openers = {}; // dialog id → what had the focus when it opened: it gets it back when it closes
  var switcher = null;
  var search = null;
  var choices = null;
  var active = -1;

  function buildSwitcher() {
    switcher = make("dialog", "switcher");
    switcher.id = "quick-switcher";
    switcher.setAttribute("aria-labelledby", "switcher-title");
    switcher.setAttribute("aria-modal", "true");
    var title = make("h2", "switcher__title", "Go to a conversation");
    title.id = "switcher-title";
    var label = make("label", "visually-hidden", "Conversation name");
    label.setAttribute("for", "switcher-q");
    search = make("input", "switcher__input");
    search.id = "switcher-q";
    search.type = "text";
    search.autocomplete = "off";
    search.spellcheck = false;
    search.placeholder = "Type a name";
    search.setAttribute("role", "combobox");
    search.setAttribute("aria-autocomplete", "list");
    search.setAttribute("aria-expanded", "true");
    search.setAttribute("aria-controls", "switcher-list");
    choices = make("ul", "switcher__list");
    choices.id = "switcher-list";
    choices.setAttribute("role", "listbox");
    choices.setAttribute("aria-label", "Conversations");
    var hint = make("p", "switcher__hint", "↑ ↓ to choose, Enter to open, Esc to close");
    switcher.append(title, label, search, choices, hint);
    document.body.appendChild(switcher);

    search.addEventListener("input", function () {
      fill(search.value);
    });
    search.addEventListener("keydown", function (event) {
      var options = choices.querySelectorAll("[role=option]");
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (options.length) {
          var step = event.key === "ArrowDown" ? 1 : -1;
          choose((active + step + options.length) % options.length);
        }
      } else if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        if (options[active]) {
          go(options[active]);
        }
      } else if (event.key === "Tab") {
        event.preventDefault(); // the field is the dialog's one stop: the list is chosen from with the arrows
      }
    });
    choices.addEventListener("click", function (event) {
      var option = event.target.closest("[role=option]");
      if (option) {
        go(option);
      }
    });
    switcher.addEventListener("click", function (event) {
      if (event.target === switcher) {
        switcher.close(); // a click on the backdrop
      }
    });
    switcher.addEventListener("close", function () {
      giveFocusBack(switcher.id);
    });
  }

  function conversations() {
    return Array.prototype.map.call(document.querySelectorAll("#conversations .convrow"), function (row) {
      var title = row.querySelector(".convrow__title");
      var link = row.querySelector(".convrow__link");
      return { title: title ? title.textContent.trim() : "", href: link ? link.getAttribute("href") : "", room: !!row.querySelector(".convrow__hash") };
    }).filter(function (item) {
      return item.title && item.href;
    });
  }

  function fill(text) {
    var wanted = text.trim().toLowerCase().replace(/^#/, "");
    choices.replaceChildren();
    conversations()
      .filter(function (item) {
        return item.title.toLowerCase().replace(/^#/, "").indexOf(wanted) !== -1;
      })
      .forEach(function (item, index) {
        var option = make("li", "switcher__option" + (item.room ? " switcher__option--room" : ""), item.title);
        option.id = "switcher-option-" + index;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.setAttribute("data-href", item.href);
        choices.appendChild(option);
      });
    if (!choices.firstElementChild) {
      choices.appendChild(make("li", "switcher__empty", "No conversation has that name."));
    }
    choose(choices.querySelector("[role=option]") ? 0 : -1);
  }

  function choose(index) {
    var options = choices.querySelectorAll("[role=option]");
    active = index;
    options.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
      option.classList.toggle("switcher__option--active", i === index);
    });
    if (options[index]) {
      search.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      search.removeAttribute("aria-activedescendant");
    }
  }

  function go(option) {
    var href = option.getAttribute("data-href");
    openers[switcher.id] = null; // leaving the page: nothing to give the focus back to
    switcher.close();
    window.location.assign(href);
  }

  function openSwitcher() {
    if (!switcher) {
      buildSwitcher();
    }
    if (switcher.open) {
      return;
    }
    closeHelp();
    openers[switcher.id] = document.activeElement;
    search.value = "";
    fill("");
    switcher.showModal();
    search.focus();
  }

  function giveFocusBack(id) {
    var opener = openers[id];
    var back = opener && opener !== document.body && document.contains(opener) ? opener : composer;
    openers[id] = null;
    if (back && !document.querySelector("dialog[open]")) {
      back.focus();
    }
  }

  // -- The list of shortcuts ("?") ------------------------------------------------------------------------
  var help = null;

  function buildHelp() {
    help = make("dialog", "shortcut-help");
    help.id = "shortcut-help";
    help.setAttribute("aria-labelledby", "shortcut-help-title");
    help.setAttribute("aria-modal", "true");
    var title = make("h2", "shortcut-help__title", "Keyboard shortcuts");
    title.id = "shortcut-help-title";
    var table = make("dl", "shortcut-help__list");
    SHORTCUTS.forEach(function (pair) {
      var key = make("dt", "shortcut-help__keys");
      key.appendChild(make("kbd", "", pair[0]));
      table.append(key, make("dd", "shortcut-help__what", pair[1]));
    });
    var done = make("button", "btn btn--sm btn--primary shortcut-help__close", "Close");
    done.type = "button";
    done.addEventListener("click", function () {
      help.close();
    });
    help.append(title, table, done);
    document.body.appendChild(help);
    help.addEventListener("close", function () {
      giveFocusBack(help.id);
    });
  }

  function openHelp() {
    if (!help) {
      buildHelp();
    }
    if (!help.open) {
      openers[help.id] = document.activeElement;
      help.showModal();
      help.querySelector(".shortcut-help__close").focus();
    }
  }

  function closeHelp() {
    if (help && help.open) {
      help.close();
    }
  }

  // A button for the list, beside the conversation list's title (it is of no use without JavaScript).
  var head = document.querySelector(".chats__head");
  if (head) {
    var helpButton = make("button", "btn btn--sm btn--secondary chats__shortcuts", "?");
    helpButton.type = "button";
    helpButton.title = "Keyboard shortcuts: " + SHORTCUTS.map(function (pair) { return pair[0] + " " + pair[1].toLowerCase(); }).join("; ");
    helpButton.setAttribute("aria-label", "Keyboard shortcuts");
    helpButton.setAttribute("aria-keyshortcuts", "?");
    helpButton.addEventListener("click", openHelp);
    head.appendChild(helpButton);
  }

  // -- The keys ---------------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) {
      return;
    }
    var key = event.key;
    var target = event.target;
    var plain = !event.ctrlKey && !event.metaKey && !event.altKey;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && (key === "k" || key === "K")) {
      event.preventDefault();
      if (switcher && switcher.open) {
        switcher.close();
      } else {
        openSwitcher();
      }
      return;
    }
    var area = editArea(target);
    if (area && plain && key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (area.value.trim()) {
        // htmx reads the form as it submits; the message (this box with it) is then replaced by its new version,
        // and writing goes on in the composer. A refusal shows beside the box, which stays open.
        area.form.requestSubmit();
        if (composer) {
          composer.focus();
        }
      }
      return;
    }
    if (area && key === "Escape") {
      event.preventDefault();
      cancelEdit(area);
      return;
    }
    if (target === composer && plain && !event.shiftKey) {
      if (key === "ArrowUp" && composer.value === "") {
        var menu = lastOwnEdit();
        if (menu) {
          event.preventDefault();
          startEdit(menu);
        }
      } else if (key === "Escape") {
        var cancel = document.querySelector("#composer-reply:not([hidden]) [data-reply-cancel]");
        if (cancel) {
          event.preventDefault();
          cancel.click(); // static/js/chat.js forgets the reply
        }
      }
      return;
    }
    if (key === "?" && !event.ctrlKey && !event.metaKey && !typingIn(target) && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      openHelp();
    }
  });
})();
