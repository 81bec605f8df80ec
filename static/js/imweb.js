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

  // Signing out drops the drafts this browser kept for the person (static/js/chat.js): the next person to use
  // it sees none of them.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.getAttribute || !/\/accounts\/logout\/?$/.test(form.getAttribute("action") || "")) {
      return;
    }
    try {
      Object.keys(window.localStorage).forEach(function (key) {
        if (key.indexOf("imweb.draft.") === 0) {
          window.localStorage.removeItem(key);
        }
      });
    } catch (error) {
      // No storage: nothing was kept.
    }
  });

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

// The contact list (templates/accounts/_contacts.html and friends). Every change re-renders whole regions
// (#roster, #requests, #my-presence-state) and htmx swaps them by id, over HTTP or the WebSocket. What the server
// does not know is kept across those swaps here: which groups the user folded (remembered in localStorage),
// an open options menu, text typed and not yet saved, and keyboard focus.
(function () {
  "use strict";

  var STORE_KEY = "imweb:roster-groups";
  var KEPT_REGIONS = ["roster", "requests"];

  // -- Folded groups: { "<data-group>": true (open) | false (folded) }, only for groups the user toggled.
  function readGroups() {
    try {
      var value = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
      return value && typeof value === "object" ? value : {};
    } catch (error) {
      return {};
    }
  }

  function writeGroup(name, open) {
    try {
      var groups = readGroups();
      groups[name] = open;
      window.localStorage.setItem(STORE_KEY, JSON.stringify(groups));
    } catch (error) {
      // Storage full or disabled: the list still works, it just forgets.
    }
  }

  function applyGroups(root) {
    var groups = readGroups();
    root.querySelectorAll("details[data-group]").forEach(function (details) {
      var name = details.getAttribute("data-group");
      if (Object.prototype.hasOwnProperty.call(groups, name)) {
        details.open = groups[name] === true;
      }
    });
  }

  // A click on a group's summary (mouse, Enter or Space) is the user's choice; its default action toggles next.
  document.addEventListener("click", function (event) {
    var summary = event.target.closest ? event.target.closest("summary") : null;
    var details = summary ? summary.parentElement : null;
    if (details && details.matches("details[data-group]") && details.querySelector("summary") === summary) {
      writeGroup(details.getAttribute("data-group"), !details.open);
    }
  });

  // -- Carrying state over a swap. Elements are matched by where they sit: group, contact (or request) and
  // their rank among the same kind of control there, or by id.
  function keyOf(element, root) {
    if (element.id) {
      return "#" + element.id;
    }
    var parts = [];
    var group = element.closest("[data-group]");
    if (group && root.contains(group)) {
      parts.push("g:" + group.getAttribute("data-group"));
    }
    var row = element.closest("[data-jid], li[id]");
    if (row && root.contains(row) && row !== element) {
      parts.push("r:" + (row.getAttribute("data-jid") || row.id));
    }
    var scope = (row && root.contains(row) && row !== element ? row : null) || group || root;
    var tag = element.tagName.toLowerCase();
    var same = Array.prototype.filter.call(scope.querySelectorAll(tag), function (candidate) {
      return (candidate.getAttribute("name") || "") === (element.getAttribute("name") || "");
    });
    parts.push(tag + ":" + (element.getAttribute("name") || "") + ":" + same.indexOf(element));
    return parts.join("|");
  }

  function findByKey(root, key, tag) {
    if (key.charAt(0) === "#") {
      return root.id === key.slice(1) ? root : root.querySelector(key.replace(/^#(.*)$/, '[id="$1"]'));
    }
    var candidates = root.querySelectorAll(tag);
    for (var i = 0; i < candidates.length; i++) {
      if (keyOf(candidates[i], root) === key) {
        return candidates[i];
      }
    }
    return null;
  }

  function isTextInput(element) {
    return element.tagName === "INPUT" && /^(|text|search|email|url|tel)$/i.test(element.getAttribute("type") || "");
  }

  function carryOver(oldRoot, newRoot) {
    applyGroups(newRoot);

    oldRoot.querySelectorAll("details:not([data-group])[open]").forEach(function (details) {
      var twin = findByKey(newRoot, keyOf(details, oldRoot), "details");
      if (twin) {
        twin.open = true;
      }
    });

    // Typed and not saved: keep the typing, unless the saved value itself changed meanwhile.
    oldRoot.querySelectorAll("input").forEach(function (input) {
      if (!isTextInput(input) || input.value === input.defaultValue) {
        return;
      }
      var twin = findByKey(newRoot, keyOf(input, oldRoot), "input");
      if (twin && twin.defaultValue === input.defaultValue) {
        twin.value = input.value;
      }
    });

    var active = document.activeElement;
    if (active && active !== oldRoot && oldRoot.contains(active)) {
      var tag = active.tagName.toLowerCase();
      var twin = findByKey(newRoot, keyOf(active, oldRoot), tag);
      var selection = isTextInput(active) ? [active.selectionStart, active.selectionEnd] : null;
      if (twin) {
        window.setTimeout(function () {
          if (!twin.isConnected || (document.activeElement && document.activeElement !== document.body)) {
            return;
          }
          twin.focus({ preventScroll: true });
          if (selection && isTextInput(twin)) {
            try {
              twin.setSelectionRange(selection[0], selection[1]);
            } catch (error) {
              // Not every input type supports a selection.
            }
          }
        }, 0);
      }
    }
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var detail = event.detail || {};
    var oldRoot = detail.target;
    var fragment = detail.fragment;
    if (!oldRoot || !fragment || KEPT_REGIONS.indexOf(oldRoot.id) < 0) {
      return;
    }
    var newRoot = fragment.id === oldRoot.id ? fragment : fragment.firstElementChild;
    if (newRoot && newRoot.id === oldRoot.id) {
      carryOver(oldRoot, newRoot);
    }
  });

  // A menu whose form just worked has done its job: close it (focus goes back to its button), so the swap
  // that follows does not reopen it. After an error (422) it stays open to be corrected.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail || {};
    var status = detail.xhr ? detail.xhr.status : 0;
    var source = detail.requestConfig ? detail.requestConfig.elt : null; // the form (the event is on the target)
    var menu = source && source.closest ? source.closest("details.contact__menu") : null;
    if (!menu || status < 200 || status >= 300) {
      return;
    }
    // A push over the socket may have re-rendered the list while the request was out: close the live twin.
    var oldRoot = menu.closest("[id]");
    if (!menu.isConnected && oldRoot) {
      var liveRoot = document.getElementById(oldRoot.id);
      menu = liveRoot ? findByKey(liveRoot, keyOf(menu, oldRoot), "details") : null;
      if (!menu) {
        return;
      }
    }
    var active = document.activeElement;
    if (!active || active === document.body || menu.contains(active)) {
      menu.querySelector("summary").focus({ preventScroll: true });
    }
    menu.open = false;
  });

  // -- Options menus: one at a time; a click elsewhere or Escape closes them.
  document.addEventListener(
    "toggle",
    function (event) {
      var menu = event.target;
      if (!menu.matches || !menu.matches("details.contact__menu") || !menu.open) {
        return;
      }
      document.querySelectorAll("details.contact__menu[open]").forEach(function (other) {
        if (other !== menu) {
          other.open = false;
        }
      });
      // Near the bottom of the list, bring the whole card into view.
      var card = menu.querySelector(".contact__menu-body");
      if (card && card.scrollIntoView) {
        card.scrollIntoView({ block: "nearest" });
      }
    },
    true
  );

  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.contact__menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.open = false;
      }
    });
    var finder = document.querySelector("[data-finder]");
    if (finder && !finder.contains(event.target)) {
      finder.classList.add("finder--closed");
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !event.target.closest) {
      return;
    }
    var menu = event.target.closest("details.contact__menu[open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
      return;
    }
    var finder = event.target.closest("[data-finder]");
    if (finder && !finder.classList.contains("finder--closed")) {
      var field = document.getElementById("add-contact-jid");
      if (field) {
        field.focus(); // before closing: focusing the field opens the drop-down
      }
      finder.classList.add("finder--closed");
    }
  });

  // -- Add a contact: typing opens the drop-down; an answer to an add closes it, and a success clears the field.
  function openFinder(event) {
    if (event.target.id === "add-contact-jid") {
      var finder = event.target.closest("[data-finder]");
      if (finder) {
        finder.classList.remove("finder--closed");
      }
    }
  }

  document.addEventListener("input", openFinder);
  document.addEventListener("focusin", openFinder);

  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail || {};
    // The form that asked; it may be gone already (the answer replaces the search results it sat in).
    var form = detail.requestConfig ? detail.requestConfig.elt : null;
    var finder = document.querySelector("[data-finder]");
    if (!finder || !form || !form.matches || !form.matches("form[hx-post]") || !form.closest("[data-finder], .search-results")) {
      return;
    }
    var status = detail.xhr ? detail.xhr.status : 0;
    finder.classList.add("finder--closed");
    if (status >= 200 && status < 300) {
      var field = document.getElementById("add-contact-jid");
      if (field) {
        field.value = "";
      }
      var results = document.getElementById("search-results");
      if (results) {
        results.replaceChildren();
      }
    }
  });

  // -- Success notes fade after a while (not while pointed at or focused); errors stay until dismissed.
  function fadeLater(alert, delay) {
    window.setTimeout(function () {
      if (!alert.isConnected) {
        return;
      }
      if (alert.matches(":hover, :focus-within")) {
        fadeLater(alert, 3000);
        return;
      }
      alert.classList.add("is-leaving");
      window.setTimeout(function () {
        alert.remove();
      }, 350);
    }, delay);
  }

  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    if (!root || !root.querySelectorAll) {
      return;
    }
    var alerts = root.matches("[data-autodismiss]") ? [root] : root.querySelectorAll("[data-autodismiss]");
    Array.prototype.forEach.call(alerts, function (alert) {
      fadeLater(alert, 8000);
    });
  });

  applyGroups(document);
})();

// The live connection (htmx's WebSocket extension on the chat page): say when it is lost and why. The extension
// reconnects by itself after an abnormal close (1006, 1011, 1012, 1013); a server going away (1001, a web process
// restarting) is reconnected here, with the same growing pause. A close the server chose (too many tabs, signed
// out, suspended) is explained and not retried: retrying would only be refused again.
(function () {
  "use strict";

  var TOO_MANY_SOCKETS = 4429;
  var UNAUTHENTICATED = 4401;
  var SUSPENDED = 4403;
  var EXTENSION_RETRIES = [1006, 1011, 1012, 1013];
  var leaving = false;
  var retries = 0;
  var lostTimer = null;

  window.addEventListener("pagehide", function () {
    leaving = true;
  });

  function show(text) {
    var status = document.getElementById("connection-status");
    if (!status) {
      return;
    }
    status.textContent = text;
    status.hidden = !text;
  }

  document.addEventListener("htmx:wsOpen", function () {
    retries = 0;
    clearTimeout(lostTimer);
    lostTimer = null;
    show("");
  });

  document.addEventListener("htmx:wsClose", function (event) {
    if (leaving) {
      return;
    }
    var close = event.detail && event.detail.event;
    var code = close ? close.code : 1006;
    if (code === TOO_MANY_SOCKETS) {
      show("Too many imweb tabs are open for your account: close some of them, then reload this one.");
      return;
    }
    if (code === SUSPENDED) {
      show("Your account has been suspended by this service's operators. Reload the page to see why.");
      return;
    }
    if (code === UNAUTHENTICATED) {
      show("You are signed out. Reload the page to sign in again.");
      return;
    }
    // A short blip (a reconnect within a second or two) is not worth a banner.
    if (!lostTimer) {
      lostTimer = setTimeout(function () {
        show("Connection lost. Reconnecting\u2026 Messages you send meanwhile go out when it is back.");
      }, 1500);
    }
    if (EXTENSION_RETRIES.indexOf(code) < 0 && event.detail && event.detail.socketWrapper) {
      var wrapper = event.detail.socketWrapper;
      var delay = Math.min(1000 * Math.pow(2, retries), 30000) * (0.5 + Math.random() / 2);
      retries += 1;
      setTimeout(function () {
        wrapper.reconnect();
      }, delay);
    }
  });
})();
