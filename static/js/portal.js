// Small enhancements; every page works without them.
(function () {
  "use strict";

  // Panels with data-poll-url refresh themselves while the worker is busy. The server says when to
  // stop with the X-Pending header; polling slows down, then gives up after ten minutes.
  function words(node) { return node.textContent.replace(/\s+/g, " ").trim(); }

  function poll(panel) {
    var started = Date.now();
    function tick() {
      var elapsed = Date.now() - started;
      if (elapsed > 600000) return;
      fetch(panel.dataset.pollUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          var pending = response.headers.get("X-Pending") !== "0";
          return response.text().then(function (html) {
            // Only a change is written: rewriting the same words would make screen readers read the
            // live region again every few seconds, and would take the focus from a link inside it.
            var next = document.createElement("template");
            next.innerHTML = html;
            if (words(next.content) !== words(panel)) panel.innerHTML = html;
            if (pending) setTimeout(tick, elapsed < 30000 ? 2000 : 5000);
          });
        })
        .catch(function () { setTimeout(tick, 10000); });
    }
    setTimeout(tick, 1500);
  }
  document.querySelectorAll("[data-poll-url]").forEach(function (panel) {
    if (!panel.hasAttribute("data-poll-idle")) poll(panel);
  });

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var label = copy.textContent;
      navigator.clipboard.writeText(copy.dataset.copy).then(function () {
        copy.textContent = copy.dataset.copied || "Copied";
        setTimeout(function () { copy.textContent = label; }, 2000);
      });
    }
    if (event.target.closest("[data-print]")) window.print();
  });

  // Canvas codes use I, l, 1, O and 0 alike: say so while the parent types.
  // The hint joins the field's description while it shows, so a screen reader reads it with the field.
  var input = document.querySelector("input.code-input");
  var hint = document.querySelector(".look-alike-hint");
  if (input && hint) {
    var check = function () {
      var show = /[Il1O0o]/.test(input.value);
      var ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (id) {
        return id && id !== hint.id;
      });
      if (show) ids.push(hint.id);
      hint.hidden = !show;
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    };
    input.addEventListener("input", check);
    check();
  }

  // A form sent back with errors: its first invalid field takes the focus, so a screen reader reads its
  // label and error at once; an error about the whole form (a wrong password) is focused instead.
  var invalid = document.querySelector("main [aria-invalid='true']");
  if (!invalid) {
    invalid = document.querySelector("main .errorlist.nonfield");
    if (invalid) invalid.tabIndex = -1;
  }
  if (invalid) invalid.focus();
})();
