/**
 * The dashboard page: plain HTML, CSS and browser JavaScript, shipped as strings in the build (no
 * framework, no build step at run time, nothing fetched from a CDN: it works offline). The script
 * reads `GET /dashboard/events` (registry changes, SSE), the backends' log streams, and posts to
 * the terminate route; every text from a backend or a client goes in with `textContent`.
 */

export const PAGE_STYLE = String.raw`
:root { color-scheme: light dark; --bg: #f7f7f8; --fg: #1d1d22; --muted: #6b6b76; --line: #dcdce2; --card: #fff;
  --scheduled: #9aa3b5; --loading: #7aa6d8; --starting: #4f86c6; --waiting: #e0a43a; --ready: #34a269;
  --terminating: #d9822b; --hard-terminating: #cf3f3f; --terminated: #8a8a94; }
@media (prefers-color-scheme: dark) { :root { --bg: #16161a; --fg: #e7e7ea; --muted: #9a9aa6; --line: #2c2c33; --card: #1e1e23; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: baseline; gap: 12px; padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 17px; margin: 0; font-weight: 650; }
header h1 span { color: var(--muted); font-weight: 400; }
#conn { margin-left: auto; font-size: 12px; color: var(--muted); }
#conn.live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--ready); margin-right: 6px; }
main { padding: 18px 24px; display: grid; gap: 18px; max-width: 1280px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px 16px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 10px; font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-weight: 500; color: var(--muted); font-size: 12px; padding: 6px 8px; border-bottom: 1px solid var(--line); }
td { padding: 7px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: rgba(127,127,127,.07); }
tbody tr.selected { background: rgba(79,134,198,.12); }
tbody tr.gone td { color: var(--muted); }
td.id, td.key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
td.num { font-variant-numeric: tabular-nums; }
td.slow { color: var(--hard-terminating); font-weight: 650; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #fff; background: var(--scheduled); }
button { font: inherit; font-size: 12px; padding: 3px 10px; border-radius: 5px; border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--hard-terminating); color: var(--hard-terminating); }
button:disabled { opacity: .45; cursor: default; }
#empty { color: var(--muted); margin: 10px 0 0; }
.lane { display: grid; grid-template-columns: 130px 1fr; align-items: center; height: 24px; }
.lane .label { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.track { position: relative; height: 14px; border-radius: 3px; background: rgba(127,127,127,.08); }
.bar { position: absolute; top: 0; bottom: 0; min-width: 2px; border-radius: 2px; background: var(--scheduled); }
.bar.ongoing { opacity: .6; }
#axis { position: relative; height: 18px; margin-left: 130px; font-size: 11px; color: var(--muted); border-bottom: 1px solid var(--line); margin-bottom: 4px; }
#axis span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
#legend { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 10px; font-size: 12px; color: var(--muted); }
#legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
#detail-head { display: flex; align-items: center; gap: 12px; margin-bottom: 8px; }
#detail-head h2 { margin: 0; }
#detail-id { text-transform: none; letter-spacing: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--fg); }
#log { margin: 0; max-height: 300px; overflow: auto; background: rgba(127,127,127,.07); border-radius: 6px; padding: 10px 12px;
  font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; }
#message { color: var(--hard-terminating); font-size: 12px; }
[data-status="scheduled"] { --c: var(--scheduled); } [data-status="loading"] { --c: var(--loading); }
[data-status="starting"] { --c: var(--starting); } [data-status="waiting"] { --c: var(--waiting); }
[data-status="ready"] { --c: var(--ready); } [data-status="terminating"] { --c: var(--terminating); }
[data-status="hard-terminating"] { --c: var(--hard-terminating); } [data-status="terminated"] { --c: var(--terminated); }
.pill[data-status], .bar[data-status], #legend i[data-status] { background: var(--c); }
`

export const PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var STATUSES = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'hard-terminating', 'terminated'];
  var ENDED_SHOWN = 20;
  var ENDED_KEPT = 100;
  var backends = new Map();
  var rows = new Map();
  var lanes = new Map();
  var selected = null;
  var logSource = null;
  var clockOffset = 0;
  var byId = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function t(state) { return Date.parse(state.time); }
  function serverNow() { return Date.now() + clockOffset; }
  function latest(b) { return b.statuses[b.statuses.length - 1]; }
  function isEnding(status) { return STATUSES.indexOf(status) >= STATUSES.indexOf('terminating'); }
  function readyMs(b) {
    for (var i = 0; i < b.statuses.length; i++) if (b.statuses[i].status === 'ready') return t(b.statuses[i]) - t(b.statuses[0]);
    return undefined;
  }
  function endMs(b) { return latest(b).status === 'terminated' ? t(latest(b)) : serverNow(); }
  function ms(value) {
    if (value < 1000) return Math.round(value) + ' ms';
    if (value < 60000) return (value / 1000).toFixed(value < 10000 ? 2 : 1) + ' s';
    var s = Math.round(value / 1000);
    return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  }
  function age(value) {
    var s = Math.max(0, Math.round(value / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + Math.floor((s % 3600) / 60) + 'm';
  }

  /** Live backends, then the latest that ended; newest first. */
  function shown() {
    var all = Array.from(backends.values()).sort(function (a, b) { return t(b.statuses[0]) - t(a.statuses[0]); });
    var live = all.filter(function (b) { return latest(b).status !== 'terminated'; });
    var ended = all.filter(function (b) { return latest(b).status === 'terminated'; });
    // What ended long ago is forgotten, so that a page left open for days stays small.
    ended.slice(ENDED_KEPT).forEach(function (b) { backends.delete(b.id); });
    var gone = ended.slice(0, ENDED_SHOWN);
    return live.concat(gone).sort(function (a, b) { return t(b.statuses[0]) - t(a.statuses[0]); });
  }

  function rowFor(b) {
    var tr = rows.get(b.id);
    if (tr) return tr;
    tr = el('tr');
    tr.dataset.id = b.id;
    ['id', 'key', 'user', 'status', 'age num', 'ready num', 'actions'].forEach(function (name) { tr.appendChild(el('td', name)); });
    tr.children[3].appendChild(el('span', 'pill'));
    var button = el('button', 'terminate', 'Terminate');
    button.type = 'button';
    button.title = 'Terminate this backend (SIGTERM, then SIGKILL after the grace period)';
    button.addEventListener('click', function (event) { event.stopPropagation(); terminate(b.id, button); });
    tr.children[6].appendChild(button);
    tr.addEventListener('click', function () { select(b.id); });
    rows.set(b.id, tr);
    return tr;
  }

  function render() {
    var list = shown();
    var body = document.querySelector('#backends tbody');
    var readies = list.map(readyMs).filter(function (v) { return v !== undefined; }).sort(function (a, b) { return a - b; });
    var median = readies.length ? readies[Math.floor((readies.length - 1) / 2)] : undefined;
    var keep = new Set(list.map(function (b) { return b.id; }));
    rows.forEach(function (tr, id) { if (!keep.has(id)) { tr.remove(); rows.delete(id); } });
    list.forEach(function (b, index) {
      var tr = rowFor(b);
      var status = latest(b).status;
      var cells = tr.children;
      tr.dataset.status = status;
      tr.classList.toggle('gone', status === 'terminated');
      tr.classList.toggle('selected', b.id === selected);
      cells[0].textContent = b.id;
      cells[1].textContent = b.key;
      cells[1].title = b.image ? b.key + ' (' + b.image + ')' : b.key;
      cells[2].textContent = b.user == null ? '–' : b.user;
      var pill = cells[3].firstChild;
      pill.dataset.status = status;
      var reason = latest(b).termination_reason;
      pill.textContent = status + (reason ? ' (' + reason + ')' : '') + (latest(b).exit_error ? ' · exit error' : '');
      cells[4].textContent = age(serverNow() - t(b.statuses[0]));
      var ready = readyMs(b);
      cells[5].textContent = ready === undefined ? '–' : ms(ready);
      // A backend much slower than the others stands out.
      cells[5].classList.toggle('slow', ready !== undefined && readies.length >= 3 && ready > 2 * median && ready - median > 200);
      cells[6].firstChild.disabled = isEnding(status);
      if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
    });
    byId('empty').hidden = list.length > 0;
    renderTimeline(list);
    renderDetail();
  }

  function renderTimeline(list) {
    var timeline = byId('timeline');
    var axis = byId('axis');
    if (list.length === 0) { timeline.textContent = ''; axis.textContent = ''; return; }
    var t0 = Math.min.apply(null, list.map(function (b) { return t(b.statuses[0]); }));
    var t1 = Math.max.apply(null, list.map(endMs));
    var span = Math.max(t1 - t0, 1);
    var keep = new Set(list.map(function (b) { return b.id; }));
    lanes.forEach(function (lane, id) { if (!keep.has(id)) { lane.remove(); lanes.delete(id); } });
    list.forEach(function (b, index) {
      var lane = lanes.get(b.id);
      if (!lane) {
        lane = el('div', 'lane');
        lane.dataset.timeline = b.id;
        lane.appendChild(el('span', 'label', b.id));
        lane.appendChild(el('div', 'track'));
        lanes.set(b.id, lane);
      }
      var track = lane.children[1];
      // One bar per phase reached: each status until the next (the current one until now).
      var phases = b.statuses.filter(function (s) { return s.status !== 'terminated'; });
      while (track.children.length > phases.length) track.lastChild.remove();
      phases.forEach(function (state, i) {
        var bar = track.children[i] || track.appendChild(el('div', 'bar'));
        var next = b.statuses[i + 1];
        var start = t(state);
        var end = next ? t(next) : endMs(b);
        bar.dataset.status = state.status;
        bar.classList.toggle('ongoing', !next);
        bar.style.left = ((start - t0) / span) * 100 + '%';
        bar.style.width = (Math.max(end - start, 0) / span) * 100 + '%';
        bar.title = state.status + ': ' + ms(Math.max(end - start, 0)) + (next ? '' : ' so far');
      });
      if (timeline.children[index] !== lane) timeline.insertBefore(lane, timeline.children[index] || null);
    });
    var steps = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000];
    var step = steps.find(function (s) { return span / s <= 8; }) || 7200000;
    axis.textContent = '';
    for (var x = 0; x <= span; x += step) {
      var tick = el('span', '', x === 0 ? '0' : '+' + ms(x));
      tick.style.left = (x / span) * 100 + '%';
      axis.appendChild(tick);
    }
  }

  function renderDetail() {
    var detail = byId('detail');
    var b = selected && backends.get(selected);
    detail.hidden = !b;
    if (!b) return;
    byId('detail-id').textContent = b.id + ' · ' + b.key + (b.image ? ' · ' + b.image : '');
    byId('detail-terminate').disabled = isEnding(latest(b).status);
  }

  function select(id) {
    if (selected === id) return;
    selected = id;
    if (logSource) logSource.close();
    var log = byId('log');
    log.textContent = '';
    logSource = new EventSource('/v2/backend/' + encodeURIComponent(id) + '/logs/stream');
    var source = logSource;
    // Every (re)connect replays the buffered lines.
    source.onopen = function () { log.textContent = ''; };
    source.onmessage = function (event) {
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(document.createTextNode(event.data + '\n'));
      while (log.childNodes.length > 2000) log.firstChild.remove();
      if (atEnd) log.scrollTop = log.scrollHeight;
    };
    source.onerror = function () {
      var b = backends.get(id);
      // The log stream ends with its backend: nothing more will come.
      if (!b || latest(b).status === 'terminated') source.close();
    };
    render();
  }

  function terminate(id, button) {
    button.disabled = true;
    fetch('/v2/backend/' + encodeURIComponent(id) + '/terminate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hard: false }),
    }).then(function (response) {
      if (!response.ok && response.status !== 409) return response.json().then(function (body) { throw new Error(body.error && body.error.message || response.status); });
    }).catch(function (error) {
      byId('message').textContent = 'terminate ' + id + ': ' + error.message;
      button.disabled = false;
    });
  }

  byId('detail-terminate').addEventListener('click', function () { if (selected) terminate(selected, byId('detail-terminate')); });
  var legend = byId('legend');
  STATUSES.slice(0, 7).forEach(function (status) {
    var item = el('span');
    var swatch = el('i');
    swatch.dataset.status = status;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(status));
    legend.appendChild(item);
  });

  var events = new EventSource('/dashboard/events');
  var conn = byId('conn');
  events.onopen = function () { conn.textContent = 'live'; conn.className = 'live'; };
  events.onerror = function () { conn.textContent = 'reconnecting…'; conn.className = ''; };
  events.onmessage = function (event) {
    var message = JSON.parse(event.data);
    if (message.type === 'snapshot') {
      clockOffset = Date.parse(message.now) - Date.now();
      backends.clear();
      message.backends.forEach(function (b) { backends.set(b.id, b); });
    } else if (message.type === 'backend') {
      backends.set(message.backend.id, message.backend);
    }
    render();
  };
  // Ages and the current phases grow with time: redrawn each second from what is known (no request).
  setInterval(render, 1000);
})();
`

/** The page, with the style and script inline (the CSP allows exactly these two by hash). */
export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>session-backends dev</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1>session-backends <span>dev</span></h1><span id="message"></span><span id="conn">connecting…</span></header>
<main>
<section>
<h2>Backends</h2>
<table id="backends">
<thead><tr><th>id</th><th>key</th><th>user</th><th>status</th><th>age</th><th>ready in</th><th></th></tr></thead>
<tbody></tbody>
</table>
<p id="empty">No backends yet: connect to one with <code>new Jamsocket({ dev: true, port })</code>.</p>
</section>
<section>
<h2>Timeline</h2>
<div id="axis"></div>
<div id="timeline"></div>
<div id="legend"></div>
</section>
<section id="detail" hidden>
<div id="detail-head"><h2>Log of <span id="detail-id"></span></h2><button id="detail-terminate" type="button">Terminate</button></div>
<pre id="log"></pre>
</section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`
}
