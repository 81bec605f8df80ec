// Files in the browser: the composer's tray (pick with the paper-clip, drop anywhere on the conversation, or
// paste into the text), each file uploaded at once to POST /files/ with a progress bar and a cancel, a size over
// the server's limit refused before any byte is sent, a refusal from the server shown on its chip; and the image
// viewer for the thumbnails in messages. chat.js asks window.imwebAttachments which uploads are ready when a
// message is sent (the text is never touched here: a refused file keeps what was written).
(function () {
  "use strict";

  var MAX_FILES = 10; // per message (chat.actions.send_messages refuses more)
  var tray = document.getElementById("attach-tray");
  var status = document.getElementById("attach-status");
  var picker = document.getElementById("attach-input");
  var chipTemplate = document.getElementById("attach-chip");
  var composer = document.getElementById("composer");
  var input = document.getElementById("composer-body");
  var pane = document.getElementById("pane");

  // -- Sizes, in the words the server uses ("31 MB", "1.2 GB") -------------------------------------------
  function sizeLabel(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    if (unit === 0) {
      return bytes === 1 ? "1 byte" : bytes + " bytes";
    }
    var shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
    return shown + " " + units[unit];
  }

  // The size of a file over the limit, never reading the same as the limit ("25.3 MB", not "25 MB").
  function sizeAgainst(bytes, limit) {
    var label = sizeLabel(bytes);
    if (label !== sizeLabel(limit)) {
      return label;
    }
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : bytes.toLocaleString("en") + " bytes";
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      return decodeURIComponent(match[1]);
    }
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  // -- The tray ---------------------------------------------------------------------------------------------
  var entries = []; // {file, chip, state: "uploading" | "done" | "refused", xhr, token, preview}
  var idleCallback = null;

  function maxBytes() {
    return composer ? parseInt(composer.getAttribute("data-file-max") || "", 10) || 0 : 0;
  }

  function conversationId() {
    return composer ? composer.getAttribute("data-conversation") || "" : "";
  }

  function busy() {
    return entries.some(function (entry) { return entry.state === "uploading"; });
  }

  function counted() {
    return entries.filter(function (entry) { return entry.state !== "refused"; }).length;
  }

  function showTray() {
    if (tray) {
      tray.hidden = entries.length === 0;
    }
    if (composer) {
      composer.classList.toggle("composer--files", entries.length > 0);
    }
  }

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function revoke(entry) {
    if (entry.preview) {
      URL.revokeObjectURL(entry.preview);
      entry.preview = null;
    }
  }

  function setState(entry, state, meta) {
    entry.state = state;
    var chip = entry.chip;
    ["uploading", "done", "refused"].forEach(function (name) {
      chip.classList.toggle("attach-chip--" + name, name === state);
    });
    chip.querySelector(".attach-chip__progress").hidden = state !== "uploading";
    var name = entry.file.name;
    chip.querySelector(".attach-chip__remove").setAttribute(
      "aria-label",
      state === "uploading" ? "Cancel the upload of " + name : state === "refused" ? "Remove " + name + " (refused)" : "Remove " + name
    );
    if (meta !== undefined) {
      chip.querySelector(".attach-chip__meta").textContent = meta;
    }
  }

  function refuse(entry, reason) {
    setState(entry, "refused", sizeLabel(entry.file.size) + " · not sent");
    entry.chip.querySelector(".attach-chip__error").textContent = reason;
  }

  function makeChip(file) {
    var chip = chipTemplate.content.firstElementChild.cloneNode(true);
    chip.querySelector(".attach-chip__name").textContent = file.name;
    chip.querySelector(".attach-chip__name").title = file.name;
    chip.querySelector(".attach-chip__progress").setAttribute("aria-label", "Uploading " + file.name);
    return chip;
  }

  function add(files) {
    if (!tray || !chipTemplate) {
      return;
    }
    Array.prototype.forEach.call(files, function (file) {
      var entry = { file: file, chip: makeChip(file), state: "uploading", xhr: null, token: null, preview: null };
      if (/^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(file.type)) {
        // A local preview at once; the object URL goes as soon as the picture is drawn (or the chip goes).
        var img = entry.chip.querySelector(".attach-chip__preview");
        entry.preview = URL.createObjectURL(file);
        img.addEventListener("load", function () { revoke(entry); }, { once: true });
        img.addEventListener("error", function () { revoke(entry); img.hidden = true; }, { once: true });
        img.src = entry.preview;
        img.hidden = false;
        entry.chip.classList.add("attach-chip--image");
      }
      entries.push(entry);
      tray.appendChild(entry.chip);
      var limit = maxBytes();
      if (limit && file.size > limit) {
        refuse(entry, file.name + " is " + sizeAgainst(file.size, limit) + "; files can be up to " + sizeLabel(limit) + ".");
      } else if (counted() > MAX_FILES) {
        refuse(entry, "A message can carry up to " + MAX_FILES + " files; send these, then the rest.");
      } else {
        upload(entry);
      }
    });
    showTray();
    waitingNote();
  }

  function upload(entry) {
    setState(entry, "uploading", sizeLabel(entry.file.size) + " · uploading");
    var progress = entry.chip.querySelector(".attach-chip__progress");
    var form = new FormData();
    form.append("file", entry.file, entry.file.name);
    if (conversationId()) {
      form.append("conversation", conversationId());
    }
    var xhr = new XMLHttpRequest();
    entry.xhr = xhr;
    xhr.open("POST", "/files/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable && event.total) {
        var percent = Math.floor((event.loaded / event.total) * 100);
        progress.value = percent;
        entry.chip.querySelector(".attach-chip__meta").textContent = sizeLabel(entry.file.size) + " · " + percent + "%";
      }
    };
    xhr.onload = function () {
      entry.xhr = null;
      var answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (error) {
        answer = null;
      }
      if (xhr.status === 201 && answer && answer.token) {
        entry.token = answer.token;
        setState(entry, "done", answer.size_label || sizeLabel(entry.file.size));
      } else if (answer && answer.error) {
        refuse(entry, answer.error);
      } else if (xhr.status === 429) {
        refuse(entry, "Too many files at once; wait a minute, then remove this one and add it again.");
      } else if (xhr.status === 403 || xhr.status === 401) {
        refuse(entry, "You are signed out; sign in again to share files.");
      } else {
        refuse(entry, "The upload of " + entry.file.name + " failed (the server answered " + xhr.status + ").");
      }
      settled();
    };
    xhr.onerror = function () {
      entry.xhr = null;
      refuse(entry, "The upload of " + entry.file.name + " stopped: the connection was lost.");
      settled();
    };
    xhr.send(form);
  }

  function discard(entry) {
    revoke(entry);
    if (entry.xhr) {
      entry.xhr.onload = entry.xhr.onerror = null;
      entry.xhr.abort();
      entry.xhr = null;
    } else if (entry.state === "done" && entry.token) {
      // Uploaded but not sent: the server forgets it (and its room in the person's quota).
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/files/" + encodeURIComponent(entry.token) + "/remove");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.send();
    }
    entry.chip.remove();
    entries = entries.filter(function (other) { return other !== entry; });
  }

  function remove(entry) {
    var index = entries.indexOf(entry);
    discard(entry);
    showTray();
    // The focus goes to the next chip's ×, or back to the text.
    var next = entries[Math.min(index, entries.length - 1)];
    if (next) {
      next.chip.querySelector(".attach-chip__remove").focus();
    } else if (input) {
      input.focus();
    }
    settled();
  }

  // A send waiting for uploads goes once none is running (cancelled or refused ones included: a refused file
  // stays in the tray with its reason, and the message goes with the rest).
  function settled() {
    waitingNote();
    if (!idleCallback || busy()) {
      return;
    }
    var callback = idleCallback;
    idleCallback = null;
    say("");
    callback();
  }

  function waitingNote() {
    if (!idleCallback) {
      return;
    }
    var running = entries.filter(function (entry) { return entry.state === "uploading"; }).length;
    if (running) {
      say(running > 1 ? "Sending when the uploads finish…" : "Sending when the upload finishes…");
    }
  }

  if (tray) {
    tray.addEventListener("click", function (event) {
      var button = event.target.closest("[data-attach-remove]");
      if (!button) {
        return;
      }
      var chip = button.closest(".attach-chip");
      var entry = entries.filter(function (one) { return one.chip === chip; })[0];
      if (entry) {
        remove(entry);
      }
    });
  }

  // -- Three ways in: the picker, a drop on the conversation, a paste into the text --------------------------
  document.addEventListener("click", function (event) {
    if (picker && event.target.closest && event.target.closest("[data-attach-open]")) {
      picker.click();
    }
  });

  if (picker && tray) {
    document.querySelectorAll("[data-attach-open]").forEach(function (button) {
      button.hidden = false;
    });
  }

  if (picker) {
    picker.addEventListener("change", function () {
      if (picker.files && picker.files.length) {
        add(picker.files);
      }
      picker.value = ""; // the same file can be picked again
    });
  }

  if (input) {
    input.addEventListener("paste", function (event) {
      var data = event.clipboardData;
      var files = data && data.files && data.files.length ? Array.prototype.slice.call(data.files) : [];
      if (!files.length || (data.getData("text/plain") || "").trim()) {
        // Text (a word processor adds a picture of what was copied): pasted as usual.
        return;
      }
      event.preventDefault();
      add(files.map(function (file) {
        // A screenshot arrives as "image.png" or nameless: the name says where it came from.
        if (file.name && file.name !== "image.png") {
          return file;
        }
        var type = file.type || "image/png";
        var extension = (type.split("/")[1] || "png").replace("jpeg", "jpg");
        return new File([file], "Pasted image." + extension, { type: type });
      }));
    });
  }

  var zone = null;
  var depth = 0;

  function carriesFiles(event) {
    var types = event.dataTransfer ? event.dataTransfer.types : null;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }

  function showZone(shown) {
    if (!zone) {
      return;
    }
    zone.hidden = !shown;
    pane.classList.toggle("attach-dropping", shown);
  }

  if (pane && tray) {
    zone = document.createElement("div");
    zone.className = "attach-drop";
    zone.hidden = true;
    zone.setAttribute("aria-hidden", "true");
    var zoneText = document.createElement("p");
    zoneText.className = "attach-drop__text";
    zoneText.textContent = "Drop files to share them";
    zone.appendChild(zoneText);
    var summary = composer ? composer.getAttribute("data-file-summary") : "";
    if (summary) {
      var zoneHint = document.createElement("p");
      zoneHint.className = "attach-drop__hint";
      zoneHint.textContent = summary;
      zone.appendChild(zoneHint);
    }
    pane.classList.add("attach-target");
    pane.appendChild(zone);

    pane.addEventListener("dragenter", function (event) {
      if (!carriesFiles(event)) {
        return;
      }
      event.preventDefault();
      depth += 1;
      showZone(true);
    });
    pane.addEventListener("dragover", function (event) {
      if (carriesFiles(event)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
      }
    });
    pane.addEventListener("dragleave", function (event) {
      if (!carriesFiles(event)) {
        return;
      }
      depth = Math.max(0, depth - 1);
      if (!depth) {
        showZone(false);
      }
    });
    pane.addEventListener("drop", function (event) {
      depth = 0;
      showZone(false);
      if (!carriesFiles(event) || !event.dataTransfer.files.length) {
        return;
      }
      event.preventDefault();
      add(event.dataTransfer.files);
      if (input) {
        input.focus();
      }
    });
    // A file let go beside the conversation does not replace the page with itself.
    document.addEventListener("dragover", function (event) {
      if (carriesFiles(event) && !pane.contains(event.target)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "none";
      }
    });
    document.addEventListener("drop", function (event) {
      if (carriesFiles(event) && !pane.contains(event.target)) {
        event.preventDefault();
      }
      depth = 0;
      showZone(false);
    });
    window.addEventListener("dragend", function () {
      depth = 0;
      showZone(false);
    });
  }

  // -- What chat.js asks when a message is sent ------------------------------------------------------------
  window.imwebAttachments = {
    // The tokens of the finished uploads, in the tray's order.
    ready: function () {
      return entries.filter(function (entry) { return entry.state === "done"; }).map(function (entry) { return entry.token; });
    },
    busy: busy,
    // Calls back once no upload runs (at once if none does). One send waits at a time: a later call replaces
    // the earlier one, so pressing Enter twice sends once.
    whenIdle: function (callback) {
      if (!busy()) {
        callback();
        return;
      }
      idleCallback = callback;
      waitingNote();
    },
    // After a send: the files it carried leave the tray. A refused one stays, with its reason, until removed;
    // an upload still running stays for the next message.
    clear: function () {
      entries.slice().forEach(function (entry) {
        if (entry.state === "done") {
          revoke(entry);
          entry.chip.remove();
          entries.splice(entries.indexOf(entry), 1);
        }
      });
      idleCallback = null;
      say("");
      showTray();
    },
  };

  // -- The image viewer ---------------------------------------------------------------------------------
  var viewer = document.getElementById("viewer");
  if (!viewer || typeof viewer.showModal !== "function") {
    return; // without it the thumbnail is a link to the image
  }
  var image = viewer.querySelector(".viewer__image");
  var failed = viewer.querySelector(".viewer__failed");
  var opener = null; // the thumbnail shown (the focus goes back to it)

  function images() {
    var scope = pane || document;
    return Array.prototype.slice.call(scope.querySelectorAll(".message .attachment--image[data-viewer]"));
  }

  function show(link) {
    var all = images();
    var index = all.indexOf(link);
    opener = link;
    var name = link.getAttribute("data-name") || "";
    viewer.querySelector(".viewer__name").textContent = name;
    var meta = [link.getAttribute("data-size") || ""];
    if (all.length > 1) {
      meta.push(index + 1 + " of " + all.length);
    }
    viewer.querySelector(".viewer__meta").textContent = meta.filter(Boolean).join(" · ");
    var download = viewer.querySelector(".viewer__download");
    download.href = link.getAttribute("href");
    download.setAttribute("download", name);
    download.setAttribute("aria-label", "Download " + name);
    viewer.querySelectorAll("[data-viewer-step]").forEach(function (button) {
      button.hidden = all.length < 2;
    });
    var width = parseInt(link.getAttribute("data-width") || "", 10);
    var height = parseInt(link.getAttribute("data-height") || "", 10);
    if (width && height) {
      image.width = width;
      image.height = height;
    } else {
      image.removeAttribute("width");
      image.removeAttribute("height");
    }
    failed.hidden = true;
    image.hidden = false;
    viewer.classList.add("viewer--loading");
    image.alt = name;
    image.src = link.getAttribute("href");
  }

  function step(by) {
    var all = images();
    if (all.length < 2) {
      return;
    }
    // By address: the thumbnail shown may have been re-rendered meanwhile (its thumbnail was made).
    var href = opener ? opener.getAttribute("href") : "";
    var index = all.map(function (link) { return link.getAttribute("href"); }).indexOf(href);
    show(all[(Math.max(index, 0) + by + all.length) % all.length]);
  }

  image.addEventListener("load", function () {
    viewer.classList.remove("viewer--loading");
  });
  image.addEventListener("error", function () {
    if (!image.getAttribute("src")) {
      return;
    }
    viewer.classList.remove("viewer--loading");
    image.hidden = true;
    failed.hidden = false;
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(".attachment--image[data-viewer]") : null;
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
      return; // a new tab or a download, as with any link
    }
    event.preventDefault();
    show(link);
    if (!viewer.open) {
      viewer.showModal();
    }
    viewer.querySelector("[data-viewer-close]").focus();
  });

  viewer.addEventListener("click", function (event) {
    var button = event.target.closest("[data-viewer-step]");
    if (button) {
      step(parseInt(button.getAttribute("data-viewer-step"), 10));
    } else if (event.target.closest("[data-viewer-close]")) {
      viewer.close();
    } else if (event.target === viewer || event.target.classList.contains("viewer__stage")) {
      viewer.close(); // outside the image and its bar
    }
  });

  viewer.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      step(event.key === "ArrowLeft" ? -1 : 1);
    }
  });

  viewer.addEventListener("close", function () {
    image.removeAttribute("src");
    if (opener && document.contains(opener)) {
      opener.focus();
    }
    opener = null;
  });
})();
