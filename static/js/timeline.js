// The history as a messenger shows it: a person's consecutive messages form one group (their name and avatar
// once, the time of the follow-ups on hover) and each day starts with a separator ("Today", "Yesterday",
// "Monday 30 November", with the year when it is not this year), in the browser's local time, as are the
// times on the messages.
// A message is rendered once for everyone (chat/delivery.py), so its HTML cannot know its neighbours or the
// viewer: this draws the groups and separators of every .convo__messages on load and again whenever its
// messages are added, removed or replaced. It only sets classes and inserts its own separators, and touches the
// page only where something changed, so a second pass changes nothing. Without JavaScript every message keeps
// its own header and there are no separators.
(function () {
  "use strict";

  var GROUP_GAP_MS = 5 * 60 * 1000; // a longer pause starts a new group
  var DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December"];
  var SEPARATOR = "timeline__day";

  var app = document.querySelector(".app--chat");
  var me = app ? app.getAttribute("data-me") || "" : "";
  var times = new WeakMap(); // message element → its time in ms (a replaced message is a new element)
  var watched = []; // [{list, observer}]

  // When a message was written: its <time datetime> (ISO 8601), or, for one still on its way (no seq, no time
  // yet), the moment this page first saw it.
  function timeOf(message) {
    var known = times.get(message);
    if (known !== undefined) {
      return known;
    }
    var stamp = message.querySelector("time[datetime]");
    var value = NaN;
    if (stamp) {
      // Microseconds (Django's "c" format) are cut to milliseconds, which every browser parses.
      value = Date.parse(stamp.getAttribute("datetime").replace(/(\.\d{3})\d+/, "$1"));
    } else if (message.classList.contains("message--pending")) {
      value = Date.now();
    }
    times.set(message, value);
    return value;
  }

  // Whose message it is: data-sender, or the viewer for one still on its way.
  function senderOf(message) {
    if (message.classList.contains("message--pending") && !message.getAttribute("data-sender")) {
      return me;
    }
    return message.getAttribute("data-sender") || "";
  }

  function dayKey(date) {
    return date.getFullYear() + "-" + (date.getMonth() + 1) + "-" + date.getDate();
  }

  function dayLabel(date, now) {
    if (dayKey(date) === dayKey(now)) {
      return "Today";
    }
    var yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (dayKey(date) === dayKey(yesterday)) {
      return "Yesterday";
    }
    var label = DAYS[date.getDay()] + " " + date.getDate() + " " + MONTHS[date.getMonth()];
    return date.getFullYear() === now.getFullYear() ? label : label + " " + date.getFullYear();
  }

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  // The time on a message, in the browser's local time like the day it is filed under (the server writes it
  // in its own time zone).
  function localTime(message, time) {
    var stamp = message.querySelector("time[datetime]");
    var date = new Date(time);
    var text = pad(date.getHours()) + ":" + pad(date.getMinutes());
    if (stamp && stamp.textContent !== text) {
      stamp.textContent = text;
    }
  }

  function isSeparator(node) {
    return node && node.classList && node.classList.contains(SEPARATOR);
  }

  function setClass(element, name, on) {
    if (element.classList.contains(name) !== on) {
      element.classList.toggle(name, on);
    }
  }

  // The separator just above `message`, reused when one is already there, with the day's label.
  function separatorBefore(list, message, key, label) {
    var above = message.previousElementSibling;
    var separator = isSeparator(above) ? above : null;
    if (!separator) {
      separator = document.createElement("div");
      separator.className = SEPARATOR;
      separator.setAttribute("role", "separator");
      var text = document.createElement("span");
      text.className = "timeline__day-label";
      separator.appendChild(text);
      list.insertBefore(separator, message);
    }
    if (separator.getAttribute("data-day") !== key) {
      separator.setAttribute("data-day", key);
    }
    if (separator.getAttribute("aria-label") !== label) {
      separator.setAttribute("aria-label", label);
      separator.firstElementChild.textContent = label;
    }
    return separator;
  }

  // One pass over a list: who starts a group, who follows, and a separator before the first message of a day.
  function draw(list) {
    var now = new Date();
    var kept = [];
    var previous = null; // the message above, with its time, sender and day
    Array.prototype.slice.call(list.children).forEach(function (node) {
      if (!node.classList.contains("message")) {
        return; // separators, "Loading older messages…", the empty note
      }
      var time = timeOf(node);
      var event = node.classList.contains("message--event");
      var sender = event ? "" : senderOf(node);
      var day = isNaN(time) ? "" : dayKey(new Date(time));
      if (day) {
        localTime(node, time);
      }
      if (day && (!previous || previous.day !== day)) {
        kept.push(separatorBefore(list, node, day, dayLabel(new Date(time), now)));
      }
      var follows = !!(previous && !event && sender && !previous.event && previous.sender === sender &&
        day && previous.day === day && time - previous.time < GROUP_GAP_MS);
      setClass(node, "message--follow", follows);
      setClass(node, "message--group-start", !follows && !event);
      if (previous) {
        setClass(previous.node, "message--continued", follows);
      }
      previous = { node: node, time: time, sender: sender, event: event, day: day || (previous && previous.day) };
    });
    if (previous) {
      setClass(previous.node, "message--continued", false);
    }
    Array.prototype.forEach.call(list.querySelectorAll(":scope > ." + SEPARATOR), function (separator) {
      if (kept.indexOf(separator) === -1) {
        separator.remove();
      }
    });
  }

  // Draws a list and keeps a view that was at the newest message there (a separator or a wider gap above the
  // newest message must not leave it half hidden).
  function redraw(entry) {
    var scroller = entry.list.closest(".convo__scroll");
    var atBottom = scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 4;
    draw(entry.list);
    entry.observer.takeRecords(); // what this pass changed itself needs no second pass
    if (atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function watch(list) {
    if (list.classList.contains("convo__messages--timeline")) {
      return;
    }
    list.classList.add("convo__messages--timeline"); // the grouped look applies from here (timeline.css)
    var entry = { list: list, observer: null };
    entry.observer = new MutationObserver(function () {
      redraw(entry);
    });
    entry.observer.observe(list, { childList: true });
    watched.push(entry);
    redraw(entry);
  }

  function watchAll(root) {
    if (root.matches && root.matches(".convo__messages")) {
      watch(root);
    }
    if (root.querySelectorAll) {
      Array.prototype.forEach.call(root.querySelectorAll(".convo__messages"), watch);
    }
  }

  function redrawAll() {
    watched = watched.filter(function (entry) {
      if (!entry.list.isConnected) {
        entry.observer.disconnect();
        return false;
      }
      redraw(entry);
      return true;
    });
  }

  // "Today" becomes "Yesterday" at midnight: redrawn then, and when the tab comes back (timers sleep meanwhile).
  function atMidnight() {
    var now = new Date();
    var next = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 1);
    window.setTimeout(function () {
      redrawAll();
      rowTimes(document);
      atMidnight();
    }, next.getTime() - now.getTime());
  }

  // The conversation list's times, in local time too, and as a messenger shows them: the time today,
  // "Yesterday", the weekday within a week, else the date.
  function rowTimes(root) {
    var now = new Date();
    var weekAgo = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 6);
    var stamps = root.matches && root.matches(".convrow__time[datetime]") ? [root] : [];
    if (root.querySelectorAll) {
      stamps = stamps.concat(Array.prototype.slice.call(root.querySelectorAll(".convrow__time[datetime]")));
    }
    stamps.forEach(function (stamp) {
      var date = new Date(stamp.getAttribute("datetime"));
      if (isNaN(date.getTime())) {
        return;
      }
      var label = dayLabel(date, now);
      var text;
      if (label === "Today") {
        text = pad(date.getHours()) + ":" + pad(date.getMinutes());
      } else if (label === "Yesterday") {
        text = label;
      } else if (date >= weekAgo) {
        text = DAYS[date.getDay()].slice(0, 3);
      } else {
        text = date.getDate() + " " + MONTHS[date.getMonth()].slice(0, 3) +
          (date.getFullYear() === now.getFullYear() ? "" : " " + date.getFullYear());
      }
      if (stamp.textContent !== text) {
        stamp.textContent = text;
      }
      stamp.title = date.toLocaleString();
    });
  }

  watchAll(document);
  rowTimes(document);
  document.addEventListener("htmx:load", function (event) {
    watchAll(event.target); // a pane swapped in by htmx
    rowTimes(event.target); // a pushed row, or the whole list drawn again
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      redrawAll();
      rowTimes(document);
    }
  });
  atMidnight();
})();
