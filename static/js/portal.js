// Small enhancements; every page works without them.
(function () {
  "use strict";

  // Panels with data-poll-url refresh themselves while the worker is busy. The server says when to
  // stop with the X-Pending header; polling slows down, then gives up after ten minutes.
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
            panel.innerHTML = html;
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
  var input = document.querySelector("input.code-input");
  var hint = document.querySelector(".look-alike-hint");
  if (input && hint) {
    var check = function () { hint.hidden = !/[Il1O0o]/.test(input.value); };
    input.addEventListener("input", check);
    check();
  }
})();
