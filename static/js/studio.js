// Memory Studio's small behaviours: toasts, inline-edit keys, bulk-delete confirmation.
// No inline scripts anywhere (a strict Content-Security-Policy stays possible).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The CSRF token the body hands htmx, for the plain forms built here.
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function hiddenInput(form, name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }

  // Undo: a plain POST of the trash entries just made; the server restores and comes back here.
  function undoForm(undo) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = undo.url;
    form.className = "toast-undo";
    hiddenInput(form, "csrfmiddlewaretoken", csrfToken());
    hiddenInput(form, "next", window.location.pathname + window.location.search);
    undo.trashed.forEach(function (id) { hiddenInput(form, "trashed", String(id)); });
    var button = document.createElement("button");
    button.type = "submit";
    button.className = "button small";
    button.textContent = "Undo";
    form.appendChild(button);
    return form;
  }

  function showToast(message, level, undo) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var toast = document.createElement("div");
    toast.className = "toast " + (level || "success");
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.textContent = message; // text, never HTML: messages can quote user data
    toast.appendChild(text);
    if (undo && undo.url && undo.trashed && undo.trashed.length) toast.appendChild(undoForm(undo));
    box.appendChild(toast);
    var stay = undo ? 10000 : 4500; // time enough to reach the Undo button
    setTimeout(function () { toast.classList.add("leaving"); }, stay);
    setTimeout(function () { toast.remove(); }, stay + 400);
  }
  window.memoryStudioToast = showToast;

  // Polling ([data-poll-visible]) pauses while the tab is hidden: no requests nobody sees.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.target.closest && event.target.closest("[data-poll-visible]")) {
      event.preventDefault();
    }
  });

  // Server feedback rides on HX-Trigger: {"toast": {"message": ..., "level": ...}}
  document.body.addEventListener("toast", function (event) {
    showToast(event.detail.message, event.detail.level, event.detail.undo);
  });

  // Plain-text error answers (404, 400) carry their message in the toast header already;
  // network failures and 5xx need one of their own.
  document.body.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Trigger")) return;
    showToast("The server could not do that (" + (xhr ? xhr.status : "?") + "). Nothing was changed; try again.", "error");
  });
  document.body.addEventListener("htmx:sendError", function () {
    showToast("The dashboard cannot be reached. Check your connection; nothing was changed.", "error");
  });

  // Inline edit: Enter saves, Shift+Enter adds a line, Esc cancels.
  document.body.addEventListener("keydown", function (event) {
    var form = event.target.closest && event.target.closest("form.edit-form");
    if (!form) return;
    if (event.key === "Escape") {
      event.preventDefault();
      var cancel = form.querySelector("[data-cancel-edit]");
      if (cancel) cancel.click();
    } else if (event.key === "Enter" && !event.shiftKey && event.target.tagName === "TEXTAREA") {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Focus the textarea of a row that just turned into an edit form.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    // Only out-of-band parts came (a memory put on top of the rows): an edit open below keeps
    // its text and place, and the focus stays where the operator left it.
    var xhr = event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Reswap") === "none") return;
    var area = event.detail.target && event.detail.target.querySelector
      ? event.detail.target.querySelector("form.edit-form textarea") : null;
    if (!area) {
      var rows = document.querySelectorAll("tr.editing textarea");
      area = rows.length ? rows[rows.length - 1] : null;
    }
    if (area && document.activeElement !== area) {
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    }
  });

  // Topic chips: "Add topic" adds an empty box, × removes one (blank boxes are ignored by
  // the server, so the form works the same without JavaScript).
  document.body.addEventListener("click", function (event) {
    var remove = event.target.closest && event.target.closest("[data-remove-topic]");
    if (remove) {
      event.preventDefault();
      var chip = remove.closest(".topic-chip");
      if (chip) chip.remove();
      return;
    }
    var add = event.target.closest && event.target.closest("[data-add-topic]");
    if (!add) return;
    event.preventDefault();
    var box = add.closest("[data-topics]");
    var boxes = box ? box.querySelectorAll(".new-topic") : [];
    if (!boxes.length) return;
    var newest = boxes[boxes.length - 1];
    var input = newest.querySelector("input");
    if (input.value !== "") {
      // The typed topic becomes a chip of its own; a fresh empty box follows it.
      var fresh = newest.cloneNode(true);
      newest.classList.remove("new-topic");
      var remover = document.createElement("button");
      remover.type = "button";
      remover.className = "chip-remove js-only";
      remover.setAttribute("data-remove-topic", "");
      remover.setAttribute("aria-label", "Remove this topic");
      remover.textContent = "\u00d7";
      newest.appendChild(remover);
      input = fresh.querySelector("input");
      input.value = "";
      add.parentNode.insertBefore(fresh, add);
    }
    input.focus();
  });

  function selectedBoxes() {
    return Array.prototype.slice.call(document.querySelectorAll('input[name="memory_ids"][form="bulk-form"]:checked'));
  }
  function updateSelectedCount() {
    var label = document.querySelector("[data-selected-count]");
    if (label) {
      var n = selectedBoxes().length;
      label.textContent = n ? n + " selected" : "";
    }
  }
  document.body.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="memory_ids"][form="bulk-form"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    if (event.target.matches('[data-select-all], input[name="memory_ids"]')) updateSelectedCount();
  });

  // Bulk delete: confirm with the count, then send confirmed=1.
  document.body.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form[data-confirm-bulk]")) return;
    event.preventDefault();
    var n = selectedBoxes().length;
    if (!n) {
      showToast("Select the memories to delete first.", "warning");
      return;
    }
    // The form says what becomes of them: the trash and for how long, or gone for good.
    var outcome = form.getAttribute("data-confirm-bulk");
    var question = "Delete " + n + " selected memor" + (n === 1 ? "y" : "ies") + "?";
    if (window.confirm(outcome ? question + " " + outcome : question)) {
      form.querySelector('input[name="confirmed"]').value = "1";
      event.detail.issueRequest(true);
    }
  });
})();
