// Presence on every signed-in page. The chat page's own socket (htmx's ws extension, [ws-connect]) carries it
// there; every other page (Profile, search results, settings) opens a small presence socket of its own
// (`data-presence-socket` on <body>: chat/consumers.py with ?presence=1), so the person stays online to their
// contacts wherever they are in the app.
//
// Automatic away: after the user's chosen idle minutes without input, this tab tells the server it is idle;
// the next input makes it active again. The server derives presence from all tabs (the most available wins).
(function () {
  "use strict";

  var app = document.querySelector("[data-idle-minutes]");
  if (!app) {
    return;
  }
  var idleMs = Math.max(0.05, parseFloat(app.getAttribute("data-idle-minutes")) || 5) * 60000;
  var lastInput = Date.now();
  var idle = false;
  var chatSocket = document.querySelector("[ws-connect]");
  var presenceUrl = document.body.getAttribute("data-presence-socket");
  var socket = null; // the presence socket, on pages without the chat's

  function tell(state) {
    if (!chatSocket) {
      if (socket && socket.readyState === window.WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "presence." + state }));
      }
      return; // not open yet: it restates idleness when it opens
    }
    var form = document.getElementById(state === "idle" ? "presence-idle" : "presence-active");
    if (form && window.htmx) {
      window.htmx.trigger(form, "imweb:" + state);
    }
  }

  function onInput() {
    lastInput = Date.now();
    if (idle) {
      idle = false;
      tell("active");
    }
  }

  ["pointerdown", "pointermove", "keydown", "wheel", "touchstart"].forEach(function (name) {
    window.addEventListener(name, onInput, { passive: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      onInput();
    }
  });
  window.setInterval(function () {
    if (!idle && Date.now() - lastInput >= idleMs) {
      idle = true;
      tell("idle");
    }
  }, Math.min(15000, idleMs / 4));

  // A reconnected socket is a new, active session on the server: restate idleness if it still holds.
  document.body.addEventListener("htmx:wsOpen", function () {
    if (idle) {
      tell("idle");
    }
  });

  if (chatSocket || !presenceUrl || !window.WebSocket) {
    return;
  }

  // -- The presence socket: reconnects with a growing pause, except after a close the server chose (signed
  // out 4401, suspended 4403, too many tabs 4429), which a retry would only meet again.
  var FINAL = [4401, 4403, 4429];
  var retries = 0;
  var leaving = false;

  window.addEventListener("pagehide", function () {
    leaving = true;
    if (socket) {
      socket.close(1000);
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !socket) { // back from the browser's page cache: online again
      leaving = false;
      connect();
    }
  });

  function received(event) {
    var frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    // The person's own name or picture changed in another tab: the top bar fetches itself again.
    if (frame && frame.type === "profile" && window.htmx) {
      window.htmx.trigger(document.body, "profile-changed");
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new window.WebSocket(scheme + window.location.host + presenceUrl);
    socket.addEventListener("open", function () {
      retries = 0;
      if (idle) {
        tell("idle");
      }
    });
    socket.addEventListener("message", received);
    socket.addEventListener("close", function (event) {
      socket = null;
      if (leaving || FINAL.indexOf(event.code) >= 0) {
        return;
      }
      var delay = Math.min(1000 * Math.pow(2, retries), 30000) * (0.5 + Math.random() / 2);
      retries += 1;
      window.setTimeout(connect, delay);
    });
  }

  connect();
})();

// Another tab (or device) changed the chosen state or status: the pushed #my-presence-state carries the new
// values; bring this tab's chooser up to date unless the user is editing it. A status typed here and not yet
// saved stays, even once the field has lost focus (clicking "Set" blurs it, and the push caused by an earlier
// change of the select may land just then): it is dropped only when the server has it, or when a request
// carrying it has been answered.
(function () {
  "use strict";

  var form = document.getElementById("my-presence");
  var status = document.getElementById("my-presence-status");
  var dirty = false;
  if (status) {
    status.addEventListener("input", function () {
      dirty = true;
    });
  }
  if (form && status) {
    form.addEventListener("htmx:afterRequest", function (event) {
      var sent = event.detail.requestConfig && event.detail.requestConfig.parameters;
      var value = sent && typeof sent.get === "function" ? sent.get("status") : sent && sent.status;
      if (event.detail.successful && value === status.value) {
        dirty = false;
      }
    });
  }

  document.body.addEventListener("htmx:oobAfterSwap", function () {
    var state = document.getElementById("my-presence-state");
    if (!state) {
      return;
    }
    var show = document.getElementById("my-presence-show");
    if (show && document.activeElement !== show) {
      show.value = state.getAttribute("data-chosen");
    }
    if (!status || document.activeElement === status) {
      return;
    }
    if (state.getAttribute("data-status") === status.value) {
      dirty = false;
    } else if (!dirty) {
      status.value = state.getAttribute("data-status");
    }
  });
})();
