/**
 * The web view's page: plain HTML, CSS and browser JavaScript, served as they are (no
 * build step, no dependency). The script reads the JSON model (model.ts) from
 * Server-Sent Events and builds the DOM with createElement/textContent only: every name
 * from the network is text, never markup. The server's Content-Security-Policy allows no
 * inline script or style, so the page keeps to /app.js and /app.css.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>udpswarm tracker</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header class="top">
  <h1>udpswarm <span class="sub">tracker</span></h1>
  <div id="summary" class="summary"></div>
  <div id="status" class="status connecting" role="status" aria-live="polite">connecting</div>
</header>
<main>
  <section aria-labelledby="peers-title">
    <h2 id="peers-title">Live peers</h2>
    <div class="table-wrap">
      <table id="peers">
        <thead>
          <tr>
            <th scope="col">Peer</th>
            <th scope="col">Address (UDP)</th>
            <th scope="col" title="downloading: lacks a file; seeding: holds every file; ready to leave: holds every file, its MIN_ALIVE passed, waits until every live peer has every file; leaving: the tracker let it go">State</th>
            <th scope="col" class="num">Files complete</th>
            <th scope="col" class="num">Chunks held</th>
            <th scope="col" class="num" title="Chunks the peer reported acquired per second (its ACQUIRED reports to the tracker), averaged over 3 s">Download</th>
            <th scope="col" class="num" title="Bytes per second the peer reports sending (its counters, once a second)">Upload</th>
            <th scope="col" class="num" title="Chunks the peer asked for again after a loss (its counters)">Retransmissions</th>
          </tr>
        </thead>
        <tbody id="peer-rows"></tbody>
      </table>
    </div>
    <p id="no-peers" class="empty">No peer is connected.</p>
  </section>
  <section aria-labelledby="files-title">
    <h2 id="files-title">Files</h2>
    <div class="legend" aria-hidden="true">
      <span><i class="swatch none"></i>missing</span>
      <span><i class="swatch part"></i>partly held</span>
      <span><i class="swatch held"></i>held</span>
      <span><i class="swatch done"></i>complete</span>
    </div>
    <div id="files"></div>
    <p id="no-files" class="empty">No file is offered.</p>
  </section>
  <section id="departed-section" aria-labelledby="departed-title" hidden>
    <h2 id="departed-title">Recently departed</h2>
    <div class="table-wrap">
      <table id="departed">
        <thead>
          <tr>
            <th scope="col">Peer</th>
            <th scope="col">Address (UDP)</th>
            <th scope="col">Left at</th>
            <th scope="col" title="The files its DISCONNECT block listed: received whole from other peers">Received (DISCONNECT)</th>
          </tr>
        </thead>
        <tbody id="departed-rows"></tbody>
      </table>
    </div>
  </section>
</main>
<footer>
  Read-only view of what the tracker knows, updated live. Download is counted from the
  chunks each peer reports to the tracker (&times; 512 bytes); upload rates and
  retransmissions come from the counters each peer reports once a second (n/a until the
  first report). For scripts: the same data as one JSON document at
  <a href="/api/state.json">/api/state.json</a>, and live as Server-Sent Events at
  <code>/events</code> (docs/web-view.md).
</footer>
</body>
</html>
`;

export const PAGE_CSS = `:root {
  --bg: #f6f7f9; --card: #fff; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb;
  --none: #e5e7eb; --held: #2563eb; --done: #16a34a; --bad: #dc2626;
  color-scheme: light;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
.top {
  display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 24px;
  padding: 14px 24px; background: #111827; color: #f9fafb;
}
h1 { margin: 0; font-size: 20px; font-weight: 650; letter-spacing: .2px; }
h1 .sub { color: #9ca3af; font-weight: 400; }
.summary { color: #d1d5db; flex: 1; }
.status { font-size: 13px; padding: 2px 10px; border-radius: 999px; background: #374151; }
.status::before { content: "\\25CF  "; }
.status.live { color: #86efac; }
.status.connecting { color: #fde68a; }
.status.down { color: #fca5a5; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 24px 24px; }
h2 { font-size: 16px; margin: 22px 0 10px; }
.table-wrap { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 7px 12px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
th[title] { text-decoration: underline dotted; text-underline-offset: 3px; cursor: help; }
tbody tr:last-child td { border-bottom: 0; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.na { color: var(--muted); }
td.received { max-width: 480px; overflow: hidden; text-overflow: ellipsis; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
.state { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; background: #dbeafe; color: #1e40af; }
.state.downloading { background: #dbeafe; color: #1e40af; }
.state.ready { background: #fef3c7; color: #92400e; }
.state.leaving { background: #fee2e2; color: #991b1b; }
.state.seeding { background: #dcfce7; color: #166534; }
.empty { color: var(--muted); font-style: italic; margin: 8px 2px; }
.legend { display: flex; gap: 16px; color: var(--muted); font-size: 12px; margin: -4px 0 10px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.swatch.none { background: var(--none); } .swatch.part { background: #93b4f5; }
.swatch.held { background: var(--held); } .swatch.done { background: var(--done); }
.file { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 12px; }
.file-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; margin-bottom: 8px; }
.file-name { font-weight: 600; overflow-wrap: anywhere; white-space: pre-wrap; }
.file-meta { color: var(--muted); font-size: 13px; }
.bar-row { display: grid; grid-template-columns: 72px 1fr 48px; align-items: center; gap: 12px; margin: 5px 0; }
.bar-label { color: var(--muted); font-size: 13px; }
.bar { display: block; width: 100%; height: 14px; border-radius: 3px; background: var(--none); }
.bar-pct { text-align: right; font-variant-numeric: tabular-nums; font-size: 13px; }
.bar-pct.done { color: var(--done); font-weight: 600; }
.no-bars { color: var(--muted); font-size: 13px; }
footer { max-width: 1200px; margin: 0 auto; padding: 0 24px 32px; color: var(--muted); font-size: 12px; }
`;

/** Browser script (ES2020, no template literals so that it can live in this string). */
export const PAGE_JS = `"use strict";
(function () {
  var COLORS = { none: "#e5e7eb", held: "#2563eb", done: "#16a34a" };
  var ACTIVITY_TEXT = { downloading: "downloading", seeding: "seeding", ready: "ready to leave", leaving: "leaving" };
  var bars = new WeakMap();
  var byId = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function setText(node, text) {
    text = String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  /** Keeps the children of container in the order of items, reusing nodes by key. */
  function reconcile(container, items, keyOf, create, update) {
    var existing = new Map();
    Array.prototype.forEach.call(container.children, function (child) { existing.set(child.dataset.key, child); });
    var before = container.firstChild;
    items.forEach(function (item) {
      var key = String(keyOf(item));
      var node = existing.get(key);
      if (node) existing.delete(key);
      else { node = create(item); node.dataset.key = key; }
      update(node, item);
      if (node !== before) container.insertBefore(node, before);
      else before = before.nextSibling;
    });
    existing.forEach(function (node) { node.remove(); });
  }

  function cell(text, className) { return el("td", className, text); }

  function renderPeers(model) {
    var rows = byId("peer-rows");
    reconcile(rows, model.peers, function (p) { return p.id; }, function () {
      var tr = el("tr");
      tr.append(cell("", "mono"), cell("", "mono"), cell(""), cell("", "num"), cell("", "num"), cell("", "num"),
        cell("n/a", "num na"), cell("n/a", "num na"));
      var badge = el("span", "state");
      tr.children[2].append(badge);
      return tr;
    }, function (tr, p) {
      tr.dataset.peerId = String(p.id);
      var c = tr.children;
      setText(c[0], p.id);
      setText(c[1], p.address);
      var badge = c[2].firstChild;
      setText(badge, ACTIVITY_TEXT[p.activity] || p.activity);
      badge.className = "state " + p.activity;
      setText(c[3], p.filesComplete + " / " + p.filesTotal);
      var part = p.chunksHeld < p.chunksTotal ? " (" + Math.floor((p.chunksHeld * 100) / p.chunksTotal) + "%)" : "";
      setText(c[4], p.chunksHeld + " / " + p.chunksTotal + part);
      var rate = p.downloadChunksPerSec;
      setText(c[5], rate > 0 ? rate.toFixed(1) + " chunks/s (\\u2248 " + bytes(Math.round(rate * model.chunkSize)) + "/s)" : "0 chunks/s");
      setText(c[6], p.uploadBytesPerSec === null ? "n/a" : bytes(p.uploadBytesPerSec) + "/s");
      c[6].className = p.uploadBytesPerSec === null ? "num na" : "num";
      setText(c[7], p.retransmissions === null ? "n/a" : String(p.retransmissions));
      c[7].className = p.retransmissions === null ? "num na" : "num";
    });
    byId("no-peers").hidden = model.peers.length > 0;
    byId("peers").hidden = model.peers.length === 0;
  }

  function renderFiles(model) {
    reconcile(byId("files"), model.files, function (f) { return f.id; }, function () {
      var card = el("article", "file");
      var head = el("div", "file-head");
      head.append(el("span", "file-name"), el("span", "file-meta"));
      card.append(head, el("div", "bars"));
      return card;
    }, function (card, f) {
      card.dataset.fileId = String(f.id);
      var name = card.querySelector(".file-name");
      setText(name, f.name);
      name.title = f.name;
      setText(card.querySelector(".file-meta"),
        bytes(f.size) + " \\u00b7 " + plural(f.chunks, "chunk") + " \\u00b7 complete at " +
        f.completeHolders + " of " + plural(model.peers.length, "live peer"));
      renderBars(card.querySelector(".bars"), f);
    });
    byId("no-files").hidden = model.files.length > 0;
  }

  function renderBars(container, f) {
    reconcile(container, f.bars, function (b) { return b.peerId; }, function () {
      var row = el("div", "bar-row");
      var canvas = el("canvas", "bar");
      canvas.setAttribute("role", "progressbar");
      canvas.setAttribute("aria-valuemin", "0");
      canvas.setAttribute("aria-valuemax", "100");
      row.append(el("span", "bar-label"), canvas, el("span", "bar-pct"));
      return row;
    }, function (row, b) {
      var canvas = row.children[1];
      setText(row.children[0], "Peer " + b.peerId);
      row.dataset.peerId = String(b.peerId);
      canvas.dataset.fileId = String(f.id);
      canvas.dataset.peerId = String(b.peerId);
      canvas.dataset.percent = String(b.percent);
      canvas.setAttribute("aria-valuenow", String(b.percent));
      canvas.setAttribute("aria-label", "Peer " + b.peerId + ": " + b.held + " of " + f.chunks + " chunks of " + f.name);
      canvas.title = b.held + " / " + f.chunks + " chunks";
      var pct = row.children[2];
      setText(pct, b.percent + "%");
      pct.className = "bar-pct" + (b.percent === 100 ? " done" : "");
      var data = { cells: b.cells, held: b.held, chunks: f.chunks, percent: b.percent };
      var old = bars.get(canvas);
      if (!old || old.cells !== data.cells || old.held !== data.held || old.percent !== data.percent) {
        bars.set(canvas, data);
        draw(canvas, data);
      }
    });
  }

  function draw(canvas, data) {
    var ratio = window.devicePixelRatio || 1;
    var width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    var height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    var ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.fillStyle = COLORS.none;
    ctx.fillRect(0, 0, width, height);
    if (data.percent === 100) {
      ctx.fillStyle = COLORS.done;
      ctx.fillRect(0, 0, width, height);
      return;
    }
    var cells = data.cells;
    var n = cells.length;
    for (var i = 0; i < n; i++) {
      var level = cells.charCodeAt(i) - 48;
      if (level <= 0) continue;
      var x0 = Math.floor((i * width) / n);
      var x1 = Math.floor(((i + 1) * width) / n);
      ctx.globalAlpha = level >= 9 ? 1 : 0.25 + (0.6 * level) / 9;
      ctx.fillStyle = COLORS.held;
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), height);
    }
    ctx.globalAlpha = 1;
  }

  function renderDeparted(model) {
    var rows = byId("departed-rows");
    reconcile(rows, model.departed, function (d) { return d.id; }, function () {
      var tr = el("tr");
      tr.append(cell("", "mono"), cell("", "mono"), cell(""), cell("", "received"));
      return tr;
    }, function (tr, d) {
      tr.dataset.peerId = String(d.id);
      setText(tr.children[0], d.id);
      setText(tr.children[1], d.address || "\u2014");
      setText(tr.children[2], new Date(d.leftAt).toLocaleTimeString());
      var received = tr.children[3];
      if (d.received === null) {
        setText(received, "n/a");
        received.title = "";
      } else {
        var names = d.received.join(", ");
        setText(received, plural(d.received.length, "file") + (names ? ": " + names : ""));
        received.title = d.received.join("\\n");
      }
      received.dataset.count = d.received === null ? "" : String(d.received.length);
    });
    byId("departed-section").hidden = model.departed.length === 0;
  }

  function renderSummary(model) {
    var held = 0;
    var total = 0;
    var size = 0;
    model.files.forEach(function (f) {
      size += f.size;
      f.bars.forEach(function (b) { held += b.held; total += f.chunks; });
    });
    var text = plural(model.peers.length, "live peer") + " \\u00b7 " + plural(model.files.length, "file") +
      " \\u00b7 " + bytes(size);
    if (total > 0) text += " \\u00b7 swarm " + Math.floor((held * 100) / total) + "% complete";
    setText(byId("summary"), text);
  }

  function render(model) {
    renderSummary(model);
    renderPeers(model);
    renderFiles(model);
    renderDeparted(model);
    document.body.dataset.ready = "true";
  }

  function setStatus(kind, text) {
    var status = byId("status");
    status.className = "status " + kind;
    setText(status, text);
  }

  window.addEventListener("resize", function () {
    document.querySelectorAll("canvas.bar").forEach(function (canvas) {
      var data = bars.get(canvas);
      if (data) draw(canvas, data);
    });
  });

  var source = new EventSource("/events");
  source.onopen = function () { setStatus("live", "live"); };
  source.onerror = function () { setStatus("down", "tracker unreachable, retrying"); };
  source.onmessage = function (event) {
    var model;
    try { model = JSON.parse(event.data); } catch (e) { return; }
    if (!model || model.version !== 1) return;
    render(model);
    setStatus("live", "live \\u00b7 updated " + new Date().toLocaleTimeString());
  };
})();
`;
