// finalesync dashboard: refresh the live part in place, and ask before destructive buttons. No libraries.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var stamp = document.getElementById("refreshed");

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  if (!live) return;
  var every = (parseInt(live.dataset.refreshSeconds, 10) || 15) * 1000;

  function busy() {
    // Never swap the markup under someone's hand: a focused control or an open confirm dialog wins.
    var active = document.activeElement;
    return document.hidden || (active && active !== document.body && live.contains(active));
  }

  function refresh() {
    if (busy()) return schedule();
    fetch(live.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error(response.redirected ? "signed out: reload the page" : "HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        // The server's own clock text ("14:35:07 CET", TIME_ZONE with its name), so the stamp reads the same
        // before and after a refresh, whatever the browser's locale or zone.
        var checked = live.querySelector("[data-checked-at]");
        if (stamp && checked) stamp.innerHTML = "updated " + checked.innerHTML;
      })
      .catch(function (error) {
        if (stamp) stamp.textContent = "refresh failed (" + error.message + ")";
      })
      .then(schedule);
  }

  function schedule() {
    window.setTimeout(refresh, every);
  }

  schedule();
})();
