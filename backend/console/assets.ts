// The console's stylesheet and its one script, served from /admin/assets/*. They are strings in
// the code, so the single binary carries them with nothing to embed and no build step. The
// script only enhances: every page and every action works without it (plain links and forms).

export const CONSOLE_CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --accent: #0b5cad; --bad: #b3261e; --ok: #1a7f37; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
header { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); background: #f6f8fa; }
header .brand { font-weight: 700; margin-right: .5rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem .9rem; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
header form { margin-left: auto; }
main { padding: 1rem; max-width: 1200px; margin: 0 auto; overflow-wrap: break-word; }
h1 { font-size: 1.4rem; margin: .2rem 0 .8rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card .n { font-size: 1.6rem; font-weight: 700; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.name, .wrap { overflow-wrap: anywhere; word-break: break-word; max-width: 28rem; }
form.inline { display: inline; }
.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin: .5rem 0; }
label { display: flex; flex-direction: column; gap: .15rem; font-size: .9rem; color: var(--muted); }
label.check { flex-direction: row; align-items: center; gap: .35rem; }
input, select, button { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; max-width: 100%; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .75rem 0; min-width: 0; }
.status-active, .up, .online { color: var(--ok); font-weight: 600; }
.status-revoked, .status-disabled, .status-expired, .status-over_quota, .down { color: var(--bad); font-weight: 600; }
.status-on_hold, .unknown { color: var(--warn); font-weight: 600; }
.error { border: 1px solid var(--bad); color: var(--bad); padding: .5rem .75rem; border-radius: 6px; }
.notice { border: 1px solid var(--ok); padding: .5rem .75rem; border-radius: 6px; }
.secret { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; word-break: break-all; background: #f6f8fa; padding: .4rem; border-radius: 4px; }
.qr svg, .qr img { width: 220px; height: 220px; max-width: 100%; background: #fff; }
.links { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 1rem; }
svg.chart { width: 100%; height: auto; max-height: 220px; }
svg.chart .up { fill: #0b5cad; } svg.chart .down { fill: #6fa8dc; }
svg.chart text { font-size: 11px; fill: var(--muted); }
svg.chart .axis { stroke: var(--line); }
figure { margin: .5rem 0; }
.muted { color: var(--muted); }
.pager { display: flex; gap: 1rem; margin: .75rem 0; }
.signin { max-width: 24rem; margin: 3rem auto; }
.signin form { display: flex; flex-direction: column; gap: .6rem; }
@media (max-width: 640px) {
  table.responsive thead { display: none; }
  table.responsive tr { display: block; border-bottom: 1px solid var(--line); padding: .3rem 0; }
  table.responsive td { display: block; border: 0; padding: .1rem .25rem; max-width: none; }
  table.responsive td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); }
}
`;

export const CONSOLE_JS = `
"use strict";
// Progressive enhancement only: the pages work without this file.
(function () {
  // "select all" for the bulk actions' checkboxes.
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.matches && t.matches("input[data-select-all]")) {
      var boxes = document.querySelectorAll("input[name=ids]");
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = t.checked;
    }
  });
  // A confirmation before what cannot be undone.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var b = e.submitter || f.querySelector("button");
    var msg = (b && b.getAttribute("data-confirm")) || f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
  // Pages marked data-refresh (the overview, a device) redraw their live part every N seconds.
  var live = document.querySelector("[data-refresh]");
  if (!live) return;
  var every = Number(live.getAttribute("data-refresh")) * 1000 || 10000;
  function tick() {
    if (document.hidden) return setTimeout(tick, every);
    fetch(location.href, { credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("stop");
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var next = doc.querySelector("[data-refresh]");
        if (next) live.innerHTML = next.innerHTML;
        setTimeout(tick, every);
      })
      .catch(function () { setTimeout(tick, every * 3); });
  }
  setTimeout(tick, every);
})();
`;
