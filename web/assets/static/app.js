// assertd live updates: follow /api/v1/events and, when an instance's state
// changes, fetch this page again and swap in its [data-live] sections (never
// the forms being typed into). The title shows the number of problems.
(function () {
  "use strict";
  var body = document.body;
  if (!window.EventSource || body.dataset.liveUpdates !== "on") { return; }
  var base = body.dataset.title || document.title;
  var version = body.dataset.version;
  var status = document.getElementById("live-status");
  var busy = false, again = false;

  function setTitle(n) { document.title = (n > 0 ? "(" + n + ") " : "") + base; }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-live][id]").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (old) { old.replaceWith(document.importNode(fresh, true)); }
        });
        if (doc.body && doc.body.dataset.version) { body.dataset.version = doc.body.dataset.version; }
        if (status) { status.textContent = "updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function (e) { if (status) { status.textContent = "live update failed: " + e.message; } })
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  var es = new EventSource("/api/v1/events");
  es.addEventListener("state", function (ev) {
    var st;
    try { st = JSON.parse(ev.data); } catch (e) { return; }
    setTitle(st.problems);
    if (st.version !== version) { version = st.version; refresh(); }
  });
  es.onerror = function () { if (status) { status.textContent = "live updates reconnecting…"; } };
  es.onopen = function () { if (status) { status.textContent = "live"; } };
})();

// Forms marked data-confirm ask once more before they are sent.
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { ev.preventDefault(); }
});
