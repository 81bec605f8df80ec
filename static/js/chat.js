// The messenger in the browser: the composer (send over the WebSocket, retry with the same client_id until the
// stored copy comes back), placing pushed messages by seq (de-duplicated by id), read and delivery markers,
// typing notifications, unread counts in the title, notifications and the optional sound, and the one-pane
// navigation on narrow screens. Every piece of HTML comes from the server; this only moves it into place.
(function () {
  "use strict";

  var app = document.querySelector(".app--chat");
  if (!app) {
    return;
  }
  var RETRY_MS = 4000;
  var MAX_TRIES = 5;
  var TYPING_EVERY_MS = 3000;
  var TYPING_PAUSE_MS = 5000;
  var TYPING_EXPIRES_MS = 6000;
  var READ_EVERY_MS = 1000;

  var pane = document.getElementById("pane");
  var openId = pane ? parseInt(pane.getAttribute("data-conversation") || "", 10) || null : null;
  var list = openId ? document.getElementById("messages-" + openId) : document.getElementById("messages-new");
  var scroller = document.getElementById("message-scroll");
  var composer = document.getElementById("composer");
  var input = document.getElementById("composer-body");
  var inbox = document.getElementById("chat-inbox");
  var socket = null; // the htmx ws extension's socket (its public interface), once open
  var waiting = []; // frames written before the socket first opened
  var pending = {}; // client_id → {frame, element, text, tries, timer}
  var replyTo = null;
  var lastRead = 0;
  var lastDelivered = {};
  var knownSeqs = {}; // conversation id → last seq seen in the list (for notifications)

  // -- Sending frames ---------------------------------------------------------------------------------------
  function send(frame) {
    var text = JSON.stringify(frame);
    if (socket) {
      socket.send(text);
    } else {
      waiting.push(text);
    }
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function atNewest() {
    return pane && pane.getAttribute("data-at-newest") === "1";
  }

  function maxSeq() {
    var highest = 0;
    if (list) {
      list.querySelectorAll(".message[data-seq]").forEach(function (message) {
        highest = Math.max(highest, parseInt(message.getAttribute("data-seq"), 10) || 0);
      });
    }
    return highest;
  }

  function openConversation() {
    if (openId && atNewest()) {
      send({ type: "conversation.open", conversation: openId, after: maxSeq() });
    }
  }

  app.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    // (Re)connected: say what this tab holds, so the socket pushes exactly what is missing.
    openConversation();
    while (waiting.length) {
      socket.send(waiting.shift());
    }
  });

  // -- Scrolling ------------------------------------------------------------------------------------------
  function nearBottom() {
    return !scroller || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  function toBottom() {
    if (scroller) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function highlight(element) {
    element.classList.add("message--highlight");
    element.scrollIntoView({ block: "center" });
  }

  // -- Markers --------------------------------------------------------------------------------------------
  function focused() {
    return document.visibilityState === "visible" && document.hasFocus();
  }

  // Read markers go out at most once per READ_EVERY_MS: a burst of messages costs one marker, not one each.
  var readTimer = null;

  function markRead() {
    if (readTimer || !openId || !atNewest() || !focused() || maxSeq() <= lastRead) {
      return;
    }
    readTimer = window.setTimeout(function () {
      readTimer = null;
      var seq = maxSeq();
      if (focused() && seq > lastRead) {
        lastRead = seq;
        send({ type: "mark.read", conversation: openId, seq: seq });
      }
    }, lastRead ? READ_EVERY_MS : 0);
  }

  // Leaving the page (another conversation, Profile, a reload) with a marker still waiting: send it now, or
  // what was read here would count as unread on the next page.
  window.addEventListener("pagehide", function () {
    if (!readTimer) {
      return;
    }
    window.clearTimeout(readTimer);
    readTimer = null;
    var seq = maxSeq();
    if (openId && atNewest() && seq > lastRead) {
      lastRead = seq;
      send({ type: "mark.read", conversation: openId, seq: seq });
    }
  });

  function markDelivered(conversation, seq) {
    if (seq > (lastDelivered[conversation] || 0)) {
      lastDelivered[conversation] = seq;
      send({ type: "mark.delivered", conversation: conversation, seq: seq });
    }
  }

  window.addEventListener("focus", markRead);
  document.addEventListener("visibilitychange", markRead);

  // -- Placing pushed messages ----------------------------------------------------------------------------
  function removePending(clientId) {
    var entry = pending[clientId];
    if (entry) {
      window.clearTimeout(entry.timer);
      entry.element.remove();
      delete pending[clientId];
      // Stored after all (it had been held back for sending too fast): the notice about it is over.
      var box = document.getElementById("composer-error");
      var notice = box ? box.querySelector(".composer-error") : null;
      if (notice && notice.getAttribute("data-client-id") === clientId) {
        clearComposerError();
      }
    }
  }

  function insertBySeq(message) {
    var seq = parseInt(message.getAttribute("data-seq"), 10);
    var before = null;
    Array.prototype.some.call(list.children, function (child) {
      var other = parseInt(child.getAttribute("data-seq") || "", 10);
      if ((other && other > seq) || child.classList.contains("message--pending") || child.classList.contains("history__newer")) {
        before = child;
        return true;
      }
      return false;
    });
    list.insertBefore(message, before);
    var empty = list.querySelector("[data-empty]");
    if (empty) {
      empty.remove();
    }
  }

  function showComposerError(node) {
    var clientId = node.getAttribute("data-client-id");
    var entry = pending[clientId];
    var retryAfter = parseInt(node.getAttribute("data-retry-after") || "", 10);
    if (entry && retryAfter > 0) {
      // Sending too fast: nothing was stored. The message stays queued on screen and goes again by itself,
      // with the same client id (stored once), when the server says it may; nothing the person wrote is lost.
      hold(retryAfter);
    } else if (entry) {
      // Refused for good: nothing was stored, so the text goes back into the composer to be fixed, after what
      // is already there (a message written meanwhile is kept too).
      window.clearTimeout(entry.timer);
      entry.element.remove();
      delete pending[clientId];
      var words = entry.frame.body || ""; // a message of files only puts no words back
      if (input && words) {
        input.value = input.value ? input.value + "\n" + words : words;
        updateCounter();
      }
    }
    var box = document.getElementById("composer-error");
    if (box) {
      node.classList.add("alert", "alert--error", "alert--compact");
      box.replaceChildren(node);
      // A refusal is about the text put back: it goes once that text changes (a length one only once the text
      // fits). A notice about a message held back stays until that message is stored or another is sent.
      refusal = entry && !(retryAfter > 0) ? { tooLong: !!input && input.value.length > maxChars } : null;
    }
  }

  var refusal = null; // the refusal shown under the composer, if any: {tooLong}

  function clearComposerError() {
    var box = document.getElementById("composer-error");
    if (box) {
      box.replaceChildren();
    }
    refusal = null;
  }

  function composerEdited() {
    if (refusal && (!input.value.trim() || !refusal.tooLong || input.value.length <= maxChars)) {
      clearComposerError();
    }
  }

  // Pushes are rendered once for everyone (chat/delivery.py): the viewer's own messages and reactions are
  // marked here, from the page's own address.
  var me = app.getAttribute("data-me");

  function markMine(root) {
    var messages = root.matches && root.matches(".message") ? [root] : root.querySelectorAll(".message");
    Array.prototype.forEach.call(messages, function (message) {
      message.classList.toggle("message--mine", message.getAttribute("data-sender") === me);
    });
    Array.prototype.forEach.call(root.querySelectorAll(".chip[data-jids]"), function (chip) {
      var mine = chip.getAttribute("data-jids").split(" ").indexOf(me) !== -1;
      chip.classList.toggle("chip--mine", mine);
      chip.setAttribute("aria-pressed", mine ? "true" : "false");
    });
  }

  // The person's own settings for a conversation (muted, pinned, marked unread) are not on a pushed row, which is
  // rendered once for everyone (chat/delivery.py): it keeps them from the row it replaces.
  var OWN_SETTINGS = ["muted", "pinned", "marked"];

  function keepSettings(row, existing) {
    if (!existing || row.hasAttribute("data-muted")) {
      return;
    }
    OWN_SETTINGS.forEach(function (name) {
      var on = existing.getAttribute("data-" + name) === "1";
      row.setAttribute("data-" + name, on ? "1" : "0");
      row.classList.toggle("convrow--" + name, on);
    });
  }

  function placeRow(row, existing) {
    keepSettings(row, existing);
    var section = row.getAttribute("data-request") === "1" ? "convlist-requests" : "convlist-chats";
    if (section === "convlist-chats" && row.getAttribute("data-pinned") === "1") {
      section = "convlist-pinned";
    }
    var target = document.getElementById(section);
    if (!target) {
      row.remove();
      return;
    }
    if (existing) {
      existing.replaceWith(row);
    }
    if (!existing || row.parentNode !== target || row.hasAttribute("data-bump")) {
      target.insertBefore(row, target.firstElementChild);
    }
    row.removeAttribute("data-bump");
    var empty = target.querySelector(".convlist__empty");
    if (empty) {
      empty.remove();
    }
    var requests = document.getElementById("convlist-requests");
    var folder = document.getElementById("convlist-requests-section");
    var count = document.getElementById("convlist-requests-count");
    if (requests && folder) {
      var waiting = requests.querySelectorAll(".convrow").length;
      folder.hidden = waiting === 0;
      if (count) {
        count.textContent = String(waiting);
      }
    }
  }

  function processInbox() {
    if (!inbox || !inbox.firstElementChild) {
      return;
    }
    var wasNearBottom = nearBottom();
    var fromOthers = 0;
    var mineArrived = false;
    Array.prototype.slice.call(inbox.children).forEach(function (node) {
      var existing = node.id ? document.getElementById(node.id) : null;
      if (existing === node) {
        existing = null;
      }
      if (node.classList.contains("convrow")) {
        placeRow(node, existing);
      } else if (existing) {
        if (existing.querySelector("#react-picker")) {
          pickerHome(); // the picker was open on this message: keep it for the next one
        }
        markMine(node);
        existing.replaceWith(node); // an edit, a deletion, reactions, a status or a count: same id, new content
      } else if (node.classList.contains("message")) {
        // New messages only: a change to a message this tab never loaded has nowhere to go.
        var isNew = parseInt(node.getAttribute("data-seq"), 10) > maxSeq();
        if (list && String(openId) === node.getAttribute("data-conversation") && atNewest() && isNew) {
          removePending(node.getAttribute("data-client-id"));
          markMine(node);
          insertBySeq(node);
          if (node.getAttribute("data-sender") === me) {
            mineArrived = true;
          } else {
            fromOthers = Math.max(fromOthers, parseInt(node.getAttribute("data-seq"), 10));
          }
        } else {
          node.remove();
        }
      } else if (node.classList.contains("composer-error")) {
        showComposerError(node);
      } else if (node.classList.contains("chat-opened")) {
        leavingTo = parseInt(node.getAttribute("data-conversation"), 10) || null;
        keepPending();
        window.location.assign(node.getAttribute("href"));
      } else {
        node.remove();
      }
    });
    if (fromOthers && !focused()) {
      markDelivered(openId, fromOthers); // in view, the read marker (which moves delivery too) follows
    }
    if (wasNearBottom || mineArrived) {
      toBottom();
    }
    markRead();
  }

  // -- The conversation list: unread counts, the title, notifications -------------------------------------
  function soundOn() {
    try {
      return window.localStorage.getItem("imweb.sound") === "1";
    } catch (error) {
      return false;
    }
  }

  function notify(row) {
    var title = row.querySelector(".convrow__title");
    var preview = row.querySelector(".convrow__preview");
    if ("Notification" in window && Notification.permission === "granted") {
      var note = new Notification(title ? title.textContent.trim() : "imweb", {
        body: preview ? preview.textContent.trim() : "",
        tag: "imweb-" + row.getAttribute("data-conversation"),
      });
      note.onclick = function () {
        window.focus();
        window.location.assign(row.querySelector("a").getAttribute("href"));
      };
    }
    // The switch is on the profile page (static/js/settings.js); the sound's address is on the chat page.
    if (app.getAttribute("data-sound") && soundOn()) {
      var audio = new Audio(app.getAttribute("data-sound"));
      audio.play().catch(function () {});
    }
  }

  function refreshList(first) {
    var conversations = document.getElementById("conversations");
    if (!conversations) {
      return;
    }
    // Each row carries its own unread badge (pushed with the row, or alone when a read elsewhere moved it).
    var total = 0;
    conversations.querySelectorAll(".convrow").forEach(function (row) {
      var badge = row.querySelector(".convrow__unread");
      var unread = badge ? parseInt(badge.getAttribute("data-unread"), 10) || 0 : 0;
      row.classList.toggle("convrow--unread", unread > 0);
      if (row.getAttribute("data-request") === "0" && row.getAttribute("data-muted") !== "1") {
        total += unread; // a muted conversation keeps its count on its row only
      }
    });
    document.title = (total ? "(" + total + ") " : "") + "imweb";
    ["tab-unread", "topbar-unread"].forEach(function (id) {
      var badge = document.getElementById(id);
      if (badge) {
        badge.textContent = String(total);
        badge.hidden = total === 0;
      }
    });
    conversations.querySelectorAll(".convrow").forEach(function (row) {
      var id = parseInt(row.getAttribute("data-conversation"), 10);
      var seq = parseInt(row.getAttribute("data-last-seq"), 10) || 0;
      var known = knownSeqs[id];
      knownSeqs[id] = seq;
      if (id === openId) {
        row.classList.add("convrow--open");
      }
      if (first || seq <= (known || 0) || row.getAttribute("data-mine") === "1") {
        return;
      }
      if (id !== openId) {
        markDelivered(id, seq); // a conversation this tab did not know yet too: its first message is here
      }
      // Requests stay quiet until accepted, and so do room events (someone joined, the topic changed); the open
      // conversation only notifies when the tab is not in view.
      // Muted conversations too: no notification, no sound.
      var quiet = row.getAttribute("data-request") === "1" || row.getAttribute("data-event") === "1" ||
        row.getAttribute("data-muted") === "1";
      if (known !== undefined && !quiet && (id !== openId || !focused())) {
        notify(row);
      }
    });
  }

  // -- Typing indicators ----------------------------------------------------------------------------------
  var typingTimer = null;

  function expireTyping(element) {
    window.clearTimeout(typingTimer);
    if (element.textContent.trim()) {
      typingTimer = window.setTimeout(function () {
        element.textContent = "";
      }, TYPING_EXPIRES_MS);
    }
  }

  app.addEventListener("htmx:wsAfterMessage", function () {
    processInbox();
    refreshList(false);
    var typing = openId ? document.getElementById("typing-" + openId) : null;
    if (typing) {
      expireTyping(typing);
    }
  });

  // -- The composer ---------------------------------------------------------------------------------------
  var typingSentAt = 0;
  var pauseTimer = null;
  var maxChars = composer ? parseInt(composer.getAttribute("data-max"), 10) || 10000 : 10000;

  function stopTyping() {
    window.clearTimeout(pauseTimer);
    if (typingSentAt) {
      typingSentAt = 0;
      send({ type: "typing.paused", conversation: openId });
    }
  }

  function typed() {
    if (!openId || !composer || composer.getAttribute("data-typing") !== "1") {
      return;
    }
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    if (Date.now() - typingSentAt > TYPING_EVERY_MS) {
      typingSentAt = Date.now();
      send({ type: "typing.started", conversation: openId });
    }
    window.clearTimeout(pauseTimer);
    pauseTimer = window.setTimeout(stopTyping, TYPING_PAUSE_MS);
  }

  function updateCounter() {
    var counter = document.getElementById("composer-counter");
    if (!counter) {
      return;
    }
    var length = input.value.length;
    counter.hidden = length < maxChars * 0.9;
    counter.textContent = length.toLocaleString() + " / " + maxChars.toLocaleString();
    counter.classList.toggle("composer__counter--over", length > maxChars);
  }

  function setReply(seq, text) {
    var box = document.getElementById("composer-reply");
    replyTo = seq;
    if (box) {
      box.hidden = seq === null;
      box.querySelector(".composer__reply-text").textContent = text || "";
    }
  }

  // While the server holds this person back (sending too fast), every queued message waits, those written
  // meanwhile too, and then all go again in the order they were written: a later message never overtakes an
  // earlier one because its own wait happened to be rounded down.
  var holdUntil = 0;
  var holdTimer = null;

  function held() {
    return Date.now() < holdUntil;
  }

  function waitingText() {
    return "Waiting " + Math.max(1, Math.ceil((holdUntil - Date.now()) / 1000)) + " s: sending too fast";
  }

  function hold(seconds) {
    holdUntil = Math.max(holdUntil, Date.now() + seconds * 1000);
    Object.keys(pending).forEach(function (clientId) {
      var entry = pending[clientId];
      window.clearTimeout(entry.timer);
      entry.timer = null;
      entry.tries = 0;
      var status = entry.element.querySelector(".message__status");
      if (status) {
        status.textContent = waitingText();
      }
    });
    window.clearTimeout(holdTimer);
    holdTimer = window.setTimeout(release, holdUntil - Date.now());
  }

  function release() {
    holdTimer = null;
    Object.keys(pending).forEach(function (clientId) {  // insertion order: the order they were written
      var status = pending[clientId].element.querySelector(".message__status");
      if (status) {
        status.textContent = "Sending…";
      }
      attempt(clientId);
    });
  }

  function attempt(clientId) {
    var entry = pending[clientId];
    if (!entry) {
      return;
    }
    if (entry.tries >= MAX_TRIES) {
      var status = entry.element.querySelector(".message__status");
      status.textContent = "Not sent yet: the server did not answer. Retrying when the connection is back.";
      entry.element.classList.add("message--failed");
      entry.tries = 0;
    }
    entry.tries += 1;
    send(entry.frame);
    entry.timer = window.setTimeout(function () {
      attempt(clientId);
    }, RETRY_MS * Math.min(entry.tries, 4));
  }

  // Files being shared (static/js/attachments.js): a message goes with the finished uploads of the tray, and
  // waits while one is still running (it is sent as soon as they are done, with what the composer holds then).
  var waitingForUploads = false;

  function submit() {
    var text = input.value;
    var files = window.imwebAttachments;
    if (files && files.busy()) {
      if (!waitingForUploads) {
        waitingForUploads = true;
        files.whenIdle(function () {
          waitingForUploads = false;
          submit();
        });
      }
      return;
    }
    var tokens = files ? files.ready() : [];
    if (!text.trim() && !tokens.length) {
      return;
    }
    var clientId = newClientId();
    var frame = { type: "message.send", body: text, client_id: clientId };
    if (tokens.length) {
      frame.attachments = tokens;
    }
    if (openId) {
      frame.conversation = openId;
    } else {
      frame.to = composer.getAttribute("data-to");
    }
    if (replyTo !== null) {
      frame.reply_to = replyTo;
    }
    queue(clientId, frame, text || (tokens.length === 1 ? "📎 1 file" : "📎 " + tokens.length + " files"));
    if (files && tokens.length) {
      files.clear();
    }
    clearComposerError();
    input.value = "";
    saveDraft();
    setReply(null);
    updateCounter();
    stopTyping();
  }

  // A message on its way: shown as pending at the end of the list, sent, and sent again until stored.
  function queue(clientId, frame, text) {
    var template = document.getElementById("pending-message");
    var element = template.content.firstElementChild.cloneNode(true);
    element.setAttribute("data-client-id", clientId);
    element.querySelector(".message__body").textContent = text;
    if (list) {
      list.appendChild(element);
      var empty = list.querySelector("[data-empty]");
      if (empty) {
        empty.remove();
      }
    }
    toBottom();
    pending[clientId] = { frame: frame, element: element, text: text, tries: 0, timer: null };
    if (leavingTo) {
      keepPending(); // written while the page is going: the next page sends it
    }
    if (held()) {
      element.querySelector(".message__status").textContent = waitingText();
    } else {
      attempt(clientId);
    }
  }

  // -- Messages on their way outlive the page ------------------------------------------------------------
  // A message not stored yet when the page goes (a first message opens its new conversation's own page, a
  // reload, a click elsewhere) is kept in this tab's sessionStorage, and the next page that shows its
  // conversation sends it again with the same client id, so it is stored once and nothing written is lost.
  var PENDING_KEY = "imweb.pending";
  var leavingTo = null; // the conversation a first message opened: this page is about to go there
  var keptElsewhere = []; // kept entries of other conversations' pages, left for them

  function readKept() {
    try {
      return JSON.parse(window.sessionStorage.getItem(PENDING_KEY) || "[]");
    } catch (error) {
      return [];
    }
  }

  function writeKept(entries) {
    try {
      if (entries.length) {
        window.sessionStorage.setItem(PENDING_KEY, JSON.stringify(entries));
      } else {
        window.sessionStorage.removeItem(PENDING_KEY);
      }
    } catch (error) {
      // No storage (a full quota): what the socket already carried is stored all the same.
    }
  }

  // What is on its way now, written again whole each time (when the page is about to go, and for every
  // message written after that, up to the last moment).
  function keepPending() {
    var entries = keptElsewhere.slice();
    Object.keys(pending).forEach(function (clientId) {
      var frame = pending[clientId].frame;
      if (leavingTo && frame.to) {
        // Written on a new chat's page: they belong to the conversation its first message opened.
        frame = { type: frame.type, body: frame.body, client_id: frame.client_id, conversation: leavingTo };
      }
      entries.push({ frame: frame, text: pending[clientId].text });
    });
    writeKept(entries);
  }

  function restorePending() {
    var entries = readKept();
    if (!entries.length || !list) {
      return;
    }
    entries.forEach(function (entry) {
      var frame = entry.frame || {};
      var here = frame.conversation ? frame.conversation === openId : !openId && composer && composer.getAttribute("data-to") === frame.to;
      if (!here || pending[frame.client_id]) {
        keptElsewhere.push(entry);
      } else if (!list.querySelector('.message[data-client-id="' + frame.client_id + '"]')) {
        queue(frame.client_id, frame, entry.text); // not on screen yet: not stored, or stored just now
      }
    });
    writeKept(keptElsewhere);
  }

  window.addEventListener("pagehide", keepPending);

  restorePending();

  // -- Drafts ---------------------------------------------------------------------------------------------
  // What is written in the composer and not sent yet outlives the page (a reload, a visit to another
  // conversation, the page a first message opens while the next one is being typed): kept per conversation in
  // this browser's localStorage, put back when that conversation's page shows again, dropped once sent, and
  // all of them dropped on signing out (static/js/imweb.js).
  var DRAFT_PREFIX = "imweb.draft.";
  var draftTimer = null;

  function draftKey() {
    var conversation = leavingTo || openId;
    return DRAFT_PREFIX + (conversation ? "c" + conversation : "to:" + (composer ? composer.getAttribute("data-to") : ""));
  }

  var signingOut = false; // static/js/imweb.js drops every draft then: none is written again on the way out

  document.addEventListener("submit", function (event) {
    if (/\/accounts\/logout\/?$/.test((event.target.getAttribute && event.target.getAttribute("action")) || "")) {
      signingOut = true;
      window.clearTimeout(draftTimer);
    }
  });

  function saveDraft() {
    window.clearTimeout(draftTimer);
    draftTimer = null;
    if (!input || signingOut) {
      return;
    }
    try {
      if (leavingTo && !openId) {
        window.localStorage.removeItem(DRAFT_PREFIX + "to:" + composer.getAttribute("data-to"));
      }
      if (input.value.trim()) {
        window.localStorage.setItem(draftKey(), input.value);
      } else {
        window.localStorage.removeItem(draftKey());
      }
    } catch (error) {
      // No storage (private mode, a full quota): the draft lives as long as the page, as it always did.
    }
  }

  function restoreDraft() {
    if (!input || input.value) {
      return;
    }
    try {
      var draft = window.localStorage.getItem(draftKey());
      if (draft) {
        input.value = draft;
        updateCounter();
      }
    } catch (error) {
      // As above: nothing kept, nothing to put back.
    }
  }

  window.addEventListener("pagehide", saveDraft);

  if (composer && input) {
    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    input.addEventListener("input", function () {
      updateCounter();
      composerEdited();
      typed();
      window.clearTimeout(draftTimer);
      draftTimer = window.setTimeout(saveDraft, 400);
    });
    restoreDraft();
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) {
      return;
    }
    var reply = target.closest("[data-reply]");
    if (reply) {
      setReply(parseInt(reply.getAttribute("data-reply"), 10), reply.getAttribute("data-reply-text"));
      input.focus();
      return;
    }
    if (target.closest("[data-reply-cancel]")) {
      setReply(null);
      return;
    }
    var jump = target.closest("[data-jump]");
    if (jump) {
      var message = document.getElementById(jump.getAttribute("data-jump"));
      if (message) {
        event.preventDefault();
        highlight(message);
      }
      return;
    }
    var show = target.closest("[data-show-pane]");
    if (show) {
      app.setAttribute("data-pane", show.getAttribute("data-show-pane"));
    }
  });

  // -- The emoji picker: one per page, moved into the React menu that opens ----------------------------------
  function pickerHome() {
    var picker = document.getElementById("react-picker");
    var home = document.getElementById("react-picker-home");
    if (picker && home && picker.parentNode !== home) {
      home.appendChild(picker);
    }
  }

  // Where the open picker goes, best first: above the tools (the message stays in view), then below them; lined
  // up with the tools' end, then their start. The first that fits inside the visible part of the conversation
  // wins; without one, the one that sticks out least (covering the message only when nothing else fits).
  var PICKER_PLACES = [
    ["picker--above", "picker--end"],
    ["picker--above", "picker--start"],
    ["picker--below", "picker--end"],
    ["picker--below", "picker--start"],
  ];
  var PICKER_CLASSES = ["picker--above", "picker--below", "picker--start", "picker--end"];

  function visibleBox() {
    var box = (scroller || pane).getBoundingClientRect();
    var outer = pane ? pane.getBoundingClientRect() : box;
    return {
      left: Math.max(box.left, outer.left),
      right: Math.min(box.right, outer.right),
      top: Math.max(box.top, outer.top),
      bottom: Math.min(box.bottom, outer.bottom),
    };
  }

  function placePicker(picker, message) {
    var box = visibleBox();
    var best = null;
    PICKER_PLACES.forEach(function (place, index) {
      picker.classList.remove.apply(picker.classList, PICKER_CLASSES);
      picker.classList.add.apply(picker.classList, place);
      var rect = picker.getBoundingClientRect();
      var outside =
        Math.max(0, box.left - rect.left) +
        Math.max(0, rect.right - box.right) +
        Math.max(0, box.top - rect.top) +
        Math.max(0, rect.bottom - box.bottom);
      var covers = 0;
      if (message) {
        var own = message.getBoundingClientRect();
        covers = rect.left < own.right && rect.right > own.left && rect.top < own.bottom && rect.bottom > own.top ? 1 : 0;
      }
      var score = [outside > 0.5 ? 1 : 0, covers, outside, index];
      if (!best || lessThan(score, best.score)) {
        best = { place: place, score: score };
      }
    });
    picker.classList.remove.apply(picker.classList, PICKER_CLASSES);
    picker.classList.add.apply(picker.classList, best.place);
    if (best.score[0]) {
      picker.scrollIntoView({ block: "nearest", inline: "nearest" }); // nowhere fits: bring it into view
    }
  }

  function lessThan(one, other) {
    for (var i = 0; i < one.length; i += 1) {
      if (one[i] !== other[i]) {
        return one[i] < other[i];
      }
    }
    return false;
  }

  // "toggle" does not bubble: listen in the capture phase for every React menu, present and pushed later.
  document.addEventListener(
    "toggle",
    function (event) {
      var menu = event.target;
      if (!menu.classList || !menu.classList.contains("message__menu--react") || !menu.open) {
        return;
      }
      var picker = document.getElementById("react-picker");
      var slot = menu.querySelector(".picker-slot");
      if (!picker || !slot) {
        return;
      }
      document.querySelectorAll(".message__menu--react[open]").forEach(function (other) {
        if (other !== menu) {
          other.open = false;
        }
      });
      picker.setAttribute("data-react-url", slot.getAttribute("data-react-url"));
      picker.querySelectorAll("form").forEach(function (form) {
        form.setAttribute("action", slot.getAttribute("data-react-url"));
      });
      slot.appendChild(picker);
      placePicker(picker, menu.closest(".message"));
    },
    true
  );

  // The picker's forms post to the message they were opened on.
  document.addEventListener("htmx:configRequest", function (event) {
    var picker = document.getElementById("react-picker");
    if (picker && picker.contains(event.detail.elt)) {
      event.detail.path = picker.getAttribute("data-react-url");
    }
  });

  // Once the request is on its way (its target, the message, is known), the picker goes home: the answer
  // replaces the message, and the picker must not go with it.
  document.addEventListener("htmx:beforeSend", function (event) {
    var picker = document.getElementById("react-picker");
    if (picker && picker.contains(event.detail.elt)) {
      pickerHome();
    }
  });

  // -- History pages: keep the view still while older messages load above it -----------------------------
  var keepFromBottom = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var source = event.detail.requestConfig ? event.detail.requestConfig.elt : null;
    if (source && source.getAttribute && source.getAttribute("data-history") === "before" && scroller) {
      keepFromBottom = scroller.scrollHeight - scroller.scrollTop;
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (keepFromBottom !== null && scroller) {
      scroller.scrollTop = scroller.scrollHeight - keepFromBottom;
      keepFromBottom = null;
    }
    var end = list ? list.querySelector(".history__end[data-at-newest]") : null;
    if (end) {
      // Scrolled down from a jump target to the newest message: live pushes can follow from here.
      end.remove();
      pane.setAttribute("data-at-newest", "1");
      openConversation();
      markRead();
    }
  });

  // -- New room: the contacts it can start with are re-read when the form opens ------------------------------
  // Ticks made while that list loads must survive it: the room gets exactly the people ticked. One ticked but
  // missing from the new list keeps its box (still ticked), so what is sent is what the form shows.
  var roomTicks = null;

  function roomSlot(event) {
    var target = event.detail && event.detail.target;
    return target && target.classList && target.classList.contains("room-create__slot") ? target : null;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var slot = roomSlot(event);
    if (slot) {
      roomTicks = Array.prototype.slice.call(slot.querySelectorAll("input[name=members]:checked"));
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var slot = roomSlot(event);
    if (!slot || !roomTicks) {
      return;
    }
    var boxes = Array.prototype.slice.call(slot.querySelectorAll("input[name=members]"));
    roomTicks.forEach(function (ticked) {
      var same = boxes.filter(function (box) { return box.value === ticked.value; })[0];
      if (same) {
        same.checked = true;
      } else {
        var people = slot.querySelector(".room-create__people") || slot;
        people.appendChild(ticked.closest("label") || ticked);
      }
    });
    roomTicks = null;
  });

  // -- Notifications and sound: switched on in the profile's settings (static/js/settings.js) ---------------

  // -- First paint ------------------------------------------------------------------------------------------
  markMine(document);
  refreshList(true);
  var target = pane && pane.getAttribute("data-highlight");
  if (target && document.getElementById(target)) {
    highlight(document.getElementById(target));
  } else {
    toBottom();
  }
  if (openId) {
    if (!focused() && maxSeq()) {
      markDelivered(openId, maxSeq());
    }
    markRead();
  }
})();

// --- live profile (issue 13) ---
// Someone's display name or avatar changed (chat/consumers.py profile_changed): the conversation list and the
// open header arrive re-rendered; the messages already on screen carry their sender's address (data-sender),
// so their name and picture are updated here, as are the person's own name and picture when it is them.
(function () {
  "use strict";

  var app = document.querySelector(".app--chat");
  if (!app) {
    return;
  }
  var me = app.getAttribute("data-me");
  var SIZES = { "avatar--sm": 32, "avatar--md": 44, "avatar--lg": 96 };

  function sizeOf(element) {
    var size = Object.keys(SIZES).filter(function (name) {
      return element.classList.contains(name);
    })[0];
    return size || "avatar--md";
  }

  // A picture, or the initial of the name when there is none, at the size the element already has.
  function setAvatar(element, url, name) {
    var size = sizeOf(element);
    if (url && element.tagName === "IMG") {
      element.setAttribute("src", url);
      return;
    }
    var next;
    if (url) {
      next = document.createElement("img");
      next.setAttribute("src", url);
      next.setAttribute("alt", "");
      next.setAttribute("width", String(SIZES[size]));
      next.setAttribute("height", String(SIZES[size]));
      next.className = "avatar " + size;
    } else {
      next = document.createElement("span");
      next.className = "avatar avatar--initials " + size;
      next.setAttribute("aria-hidden", "true");
      next.textContent = (Array.from(name)[0] || "?").toUpperCase();
    }
    element.replaceWith(next);
  }

  function apply(jid, name, url) {
    var selector = '.message[data-sender="' + window.CSS.escape(jid) + '"]';
    document.querySelectorAll(selector).forEach(function (message) {
      message.querySelectorAll(".message__sender").forEach(function (sender) {
        sender.textContent = name;
      });
      message.querySelectorAll(".avatar").forEach(function (avatar) {
        setAvatar(avatar, url, name);
      });
    });
    if (jid !== me) {
      return;
    }
    document.querySelectorAll(".sidebar__me .sidebar__name").forEach(function (element) {
      element.textContent = name;
    });
    document.querySelectorAll(".sidebar__me .avatar").forEach(function (avatar) {
      setAvatar(avatar, url, name);
    });
    if (window.htmx) {
      window.htmx.trigger(document.body, "profile-changed"); // the top bar fetches itself again
    }
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    document.querySelectorAll("body > .live-profile").forEach(function (note) {
      note.remove();
      apply(note.getAttribute("data-jid"), note.getAttribute("data-name") || "", note.getAttribute("data-avatar") || "");
    });
  });
})();
