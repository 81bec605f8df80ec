// The profile page's "Notifications" settings (templates/accounts/profile.html), kept in this browser:
// "Sound for new messages" is localStorage "imweb.sound" = "1" (static/js/chat.js plays the sound when it is),
// and desktop notifications are the browser's permission, asked for only when the button is clicked. The state
// line says which it is: allowed, blocked (and how to undo that: only the browser can), or not asked yet.
(function () {
  "use strict";

  var section = document.querySelector("[data-settings]");
  if (!section) {
    return;
  }
  var KEY = "imweb.sound";
  var sound = document.getElementById("setting-sound");
  var state = document.getElementById("notify-state");
  var ask = document.getElementById("notify-ask");

  // -- Sound ------------------------------------------------------------------------------------------------
  if (sound) {
    try {
      sound.checked = window.localStorage.getItem(KEY) === "1";
      sound.disabled = false;
    } catch (error) {
      sound.disabled = true; // storage is off in this browser: the switch could not be kept
    }
    sound.addEventListener("change", function () {
      try {
        window.localStorage.setItem(KEY, sound.checked ? "1" : "0");
      } catch (error) {
        sound.checked = false;
      }
    });
  }

  // -- Desktop notifications --------------------------------------------------------------------------------
  function show() {
    if (!state || !ask) {
      return;
    }
    ask.hidden = true;
    if (!("Notification" in window)) {
      state.textContent = "Not available in this browser.";
      return;
    }
    var permission = Notification.permission;
    section.setAttribute("data-notify", permission);
    if (permission === "granted") {
      state.textContent = "Allowed: imweb tells you of new messages while its tab is in the background.";
    } else if (permission === "denied") {
      state.textContent =
        "Blocked in this browser. To allow them, open the site settings (the icon left of the address bar), " +
        "set Notifications to Allow, then reload this page.";
    } else {
      state.textContent = "Not asked yet.";
      ask.hidden = false;
    }
  }

  if (ask) {
    ask.addEventListener("click", function () {
      var asked = Notification.requestPermission(show);
      if (asked && asked.then) {
        asked.then(show);
      }
    });
  }
  show();
  // A change made in the browser's own settings shows here too, where the browser reports it.
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: "notifications" }).then(function (status) {
      status.addEventListener("change", show);
    }).catch(function () {});
  }
})();
