// Refresh the status page in place: every few seconds fetch this page's fragment (?fragment=1)
// and swap it into <main>, so the scroll position stays and nothing reloads. Read-only: it
// only ever GETs this origin. No library, no build step.
(function () {
  "use strict";
  var main = document.getElementById("live");
  var stamp = document.getElementById("updated");
  if (!main || !stamp) { return; }
  var every = Math.max(2, parseInt(stamp.getAttribute("data-refresh"), 10) || 5) * 1000;
  var busy = false;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    if (busy || document.hidden) { return; }
    busy = true;
    var url = window.location.pathname + "?fragment=1";
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var x = window.scrollX, y = window.scrollY;
        main.innerHTML = html;
        window.scrollTo(x, y);
        var d = new Date();
        stamp.textContent = "as of " + d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" +
          pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" +
          pad(d.getSeconds());
        stamp.classList.remove("stale");
      })
      .catch(function (err) {
        stamp.textContent = "not updated: " + err.message + " (the last figures stay)";
        stamp.classList.add("stale");
      })
      .then(function () { busy = false; });
  }

  window.setInterval(tick, every);
  document.addEventListener("visibilitychange", tick);
}());
