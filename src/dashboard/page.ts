/**
 * The dashboard's single page: HTML, CSS and script inline, nothing fetched from elsewhere (no
 * build step, no CDN: daemons often run where there is no internet). The script reads
 * `api/events` (server-sent events: a `state` message with everything on each change and once a
 * second) and draws the cards, diagrams and timeline with plain DOM calls.
 */

export interface PageParts {
  /** CSP nonce for the inline <style> and <script>. */
  nonce: string;
  title: string;
  /** The connection machine, labelled. */
  connectionSvg: string;
  /** The connection machine without labels, cloned into every card. */
  miniSvg: string;
  /** The supervisor machine. */
  supervisorSvg: string;
}

const STYLE = /* css */ `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #667085; --line: #d0d5dd;
  --node: #f2f4f7; --node-line: #98a2b3; --accent: #2563eb; --accent-soft: #dbe7ff;
  --ok: #16a34a; --warn: #d97706; --bad: #dc2626; --closed: #98a2b3;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1115; --panel: #171a21; --text: #e6e8ee; --muted: #98a2b3; --line: #2b303b;
    --node: #222734; --node-line: #4b5567; --accent: #60a5fa; --accent-soft: #1e3a5f; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 18px; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 17px; margin: 0; }
header .meta { color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 14px; }
header .meta b { color: var(--text); font-weight: 600; }
#stream { margin-left: auto; font-weight: 600; }
#stream::before { content: "\\25CF  "; }
#stream.live { color: var(--ok); } #stream.down { color: var(--bad); } #stream.wait { color: var(--warn); }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 16px; padding: 16px 20px; align-items: start; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }
.col { display: flex; flex-direction: column; gap: 16px; min-width: 0; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.panel h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 10px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
.row > .panel { flex: 1 1 300px; }
.row > #machine { flex: 2 1 560px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 22px; margin: 8px 0 0; }
.counts div { display: flex; flex-direction: column; }
.counts dt { color: var(--muted); font-size: 12px; }
.counts dd { margin: 0; font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.legend { color: var(--muted); margin-top: 6px; display: flex; gap: 14px; flex-wrap: wrap; }
.legend b { color: var(--text); }
svg.machine { max-width: 100%; height: auto; overflow: visible; }
svg.machine .node rect { fill: var(--node); stroke: var(--node-line); stroke-width: 1.2; }
svg.machine .node rect.inner { fill: none; }
svg.machine .node text { fill: var(--text); font-size: 13px; }
svg.machine .node.occupied rect:not(.inner) { stroke: var(--accent); stroke-width: 2; }
svg.machine .node.current rect:not(.inner) { fill: var(--accent); stroke: var(--accent); }
svg.machine .node.current text { fill: #fff; font-weight: 650; }
svg.machine .edge path { fill: none; stroke: var(--node-line); stroke-width: 1.2; }
svg.machine .edge text { fill: var(--muted); font-size: 10.5px; }
svg.machine .arrowhead, svg.machine .start circle { fill: var(--node-line); }
svg.machine .start path { stroke: var(--node-line); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 10px; padding: 10px 12px; transition: box-shadow .4s; }
.card.state-handshake { border-left-color: var(--warn); }
.card.state-closing { border-left-color: var(--warn); }
.card.state-closed { border-left-color: var(--closed); opacity: .72; }
.card.flash { box-shadow: 0 0 0 3px var(--accent-soft); }
.card header { all: unset; display: flex; align-items: center; gap: 8px; }
.card code { font-size: 12.5px; }
.badge { font-size: 11px; padding: 1px 7px; border-radius: 99px; background: var(--accent-soft); color: var(--text); font-weight: 600; }
.badge.self { background: var(--node); color: var(--muted); }
.card svg.machine { display: block; margin: 6px 0 4px; width: 100%; }
.card svg.machine.mini { width: auto; max-width: 100%; height: 52px; }
.card svg.machine .node text { font-size: 12px; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 4px 0 0; font-size: 12.5px; }
.card dt { color: var(--muted); }
.card dd { margin: 0; font-variant-numeric: tabular-nums; }
.card .error { color: var(--bad); overflow-wrap: anywhere; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
.empty { color: var(--muted); margin: 4px 0; }
.card.has-session { grid-column: span 2; }
@media (max-width: 700px) { .card.has-session { grid-column: auto; } }
.card .session { margin-top: 8px; border-top: 1px solid var(--line); padding-top: 6px; }
.card .session h3, .card .work h3 { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 4px; font-weight: 600; }
.card .session svg.machine { margin: 4px 0; }
.card .session svg.machine .node.compound > rect { fill: none; }
.card .session svg.machine .node.compound > text.name { font-size: 11.5px; fill: var(--muted); }
.card .session svg.machine .node.region > rect { stroke-dasharray: 4 3; }
.card .session svg.machine .node.compound.active > rect { stroke: var(--accent); stroke-width: 2; fill: var(--accent-soft); fill-opacity: .35; }
.card .session svg.machine .node.atomic.active rect:not(.inner) { fill: var(--accent); stroke: var(--accent); }
.card .session svg.machine .node.atomic.active text { fill: #fff; font-weight: 650; }
.card .session svg.machine .edge.last path { stroke: var(--accent); stroke-width: 2; }
.card ol.moves { list-style: none; margin: 2px 0 0; padding: 0; font-size: 12px; }
.card ol.moves li { display: grid; grid-template-columns: 84px 1fr; gap: 6px; color: var(--muted); }
.card ol.moves li:first-child { color: var(--text); }
.card ol.moves time { font-variant-numeric: tabular-nums; }
.card .work { margin-top: 8px; border-top: 1px solid var(--line); padding-top: 6px; }
.card ul.work-items { list-style: none; margin: 0; padding: 0; font-size: 12.5px; }
.card ul.work-items li { overflow-wrap: anywhere; }
.card ul.work-items li .kind { color: var(--muted); }
.card ul.work-items li.cancelled, .card ul.work-items li.paused { color: var(--warn); }
#events { list-style: none; margin: 0; padding: 0; max-height: calc(100vh - 150px); overflow: auto; font-size: 12.5px; }
#events li { padding: 5px 0; border-bottom: 1px solid var(--line); display: grid; grid-template-columns: 88px 1fr; gap: 2px 8px; }
#events time { color: var(--muted); font-variant-numeric: tabular-nums; }
#events .to-closed { color: var(--bad); } #events .to-active { color: var(--ok); }
#events .detail { grid-column: 2; color: var(--muted); overflow-wrap: anywhere; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
`;

const SCRIPT = /* js */ `
(function () {
  'use strict';
  var STATES = ['handshake', 'active', 'closing', 'closed'];
  var miniTemplate = document.getElementById('mini-svg');
  var cardsById = new Map();
  var diagrams = new Map();
  var lastState = null;
  var receivedAt = 0;

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) el.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === undefined || child === null || child === false) continue;
      el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
    }
    return el;
  }
  function setText(root, field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== String(text)) el.textContent = String(text);
  }
  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function fmtAge(ms) {
    if (ms === undefined || ms === null) return '?';
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    var hr = Math.floor(m / 60);
    if (hr < 48) return hr + ' h ' + (m % 60) + ' min';
    return Math.floor(hr / 24) + ' d ' + (hr % 24) + ' h';
  }
  function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }
  function fmtTime(at) {
    var d = new Date(at);
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2) + '.' + pad(d.getMilliseconds(), 3);
  }
  function peerText(peer) {
    if (!peer || (peer.pid === undefined && peer.uid === undefined)) return 'unknown';
    var parts = [];
    if (peer.pid !== undefined) parts.push('pid ' + peer.pid);
    if (peer.uid !== undefined) parts.push('uid ' + peer.uid);
    if (peer.gid !== undefined) parts.push('gid ' + peer.gid);
    return parts.join(' · ');
  }
  function errorText(e) { return e ? e.code + ': ' + e.message : ''; }
  function highlight(svg, current) {
    var nodes = svg.querySelectorAll('g.node');
    for (var i = 0; i < nodes.length; i++) nodes[i].classList.toggle('current', nodes[i].getAttribute('data-state') === current);
  }

  function sessionActive(state) {
    var set = new Set();
    (state || []).forEach(function (leaf) {
      var parts = leaf.split('.');
      for (var i = 1; i <= parts.length; i++) set.add(parts.slice(0, i).join('.'));
    });
    return set;
  }
  function lightSession(svg, session) {
    var active = sessionActive(session.state);
    var nodes = svg.querySelectorAll('g.node');
    for (var i = 0; i < nodes.length; i++) nodes[i].classList.toggle('active', active.has(nodes[i].getAttribute('data-state')));
    var moves = session.transitions || [];
    var last = moves.length > 1 ? moves[moves.length - 1] : null;
    var before = moves.length > 1 ? sessionActive(moves[moves.length - 2].state) : new Set();
    var edges = svg.querySelectorAll('g.edge');
    for (var j = 0; j < edges.length; j++) {
      var e = edges[j];
      edges[j].classList.toggle('last', !!last && before.has(e.getAttribute('data-source')) && active.has(e.getAttribute('data-target')));
    }
  }
  function updateSession(el, c) {
    var box = el.querySelector('.session');
    var session = c.session;
    el.classList.toggle('has-session', !!session);
    if (!session) { box.hidden = true; return; }
    box.hidden = false;
    box.setAttribute('data-machine', session.machine);
    box.setAttribute('data-current', session.state.join(' '));
    setText(box, 'session-title', 'session ' + session.machine + ' · ' + session.state.join(', ') + (session.status !== 'active' ? ' (' + session.status + ')' : ''));
    var holder = box.querySelector('.diagram');
    if (holder.getAttribute('data-graph') !== session.graph && diagrams.has(session.graph)) {
      holder.replaceChildren(diagrams.get(session.graph).content.firstElementChild.cloneNode(true));
      holder.setAttribute('data-graph', session.graph);
    }
    var svg = holder.querySelector('svg');
    if (svg) lightSession(svg, session);
    var list = box.querySelector('ol.moves');
    var moves = (session.transitions || []).slice(-5).reverse();
    var key = moves.map(function (m) { return m.at; }).join(',');
    if (list.getAttribute('data-key') !== key) {
      list.setAttribute('data-key', key);
      list.replaceChildren.apply(list, moves.map(function (m) {
        return h('li', null, h('time', null, fmtTime(m.at)), h('span', null, (m.event ? m.event + ' → ' : 'start → ') + m.state.join(', ')));
      }));
    }
  }
  function fmtMs(ms) {
    if (ms === undefined || ms === null) return '?';
    return ms < 1000 ? ms + ' ms' : ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : fmtAge(ms);
  }
  function updateWork(el, c) {
    var box = el.querySelector('.work');
    var work = c.work;
    var items = [];
    if (work) {
      work.handling.forEach(function (w) {
        items.push(h('li', { 'data-work': 'handling', 'data-type': w.type, class: w.cancelled ? 'cancelled' : null },
          h('span', { class: 'kind' }, 'handling '), (w.tell ? 'tell ' : '#' + w.id + ' ') + w.type,
          w.ageMs === undefined ? '' : ' · ', w.ageMs === undefined ? '' : h('span', { 'data-field': 'work-age', 'data-age': String(w.ageMs) }, fmtMs(w.ageMs)),
          w.cancelled ? ' · asker cancelled' : ''));
      });
      work.asking.forEach(function (w) {
        items.push(h('li', { 'data-work': 'asking', 'data-type': w.type },
          h('span', { class: 'kind' }, 'asking '), '#' + w.id + ' ' + w.type + (w.stream ? ' (stream)' : ''),
          w.ageMs === undefined ? '' : ' · ', w.ageMs === undefined ? '' : h('span', { 'data-field': 'work-age', 'data-age': String(w.ageMs) }, fmtMs(w.ageMs)),
          w.timeoutMs === null ? ', no timeout' : ' of ' + fmtMs(w.timeoutMs)));
      });
      work.streaming.forEach(function (w) {
        items.push(h('li', { 'data-work': 'streaming', 'data-type': w.type },
          h('span', { class: 'kind' }, 'streaming '), '#' + w.id + ' ' + w.type + ' · ' + w.itemsSent + ' sent · credit ' + w.creditLeft));
      });
      if (work.reading.paused) {
        items.push(h('li', { 'data-work': 'paused', class: 'paused' }, 'reading paused: ' + work.reading.reasons.map(function (r) {
          return r === 'reader' ? 'the application is not taking messages' : r === 'in-flight' ? 'maxInFlight of its messages are being handled' : 'the peer is not reading our replies';
        }).join('; ')));
      }
    }
    box.hidden = items.length === 0;
    box.querySelector('ul').replaceChildren.apply(box.querySelector('ul'), items);
  }

  function makeCard(c) {
    var svg = miniTemplate.content.firstElementChild.cloneNode(true);
    var badge = h('span', { class: 'badge', 'data-field': 'state' });
    var el = h('article', { class: 'card', 'data-connection-id': c.id },
      h('header', null, h('code', { title: c.id }, c.id.slice(0, 10)), badge),
      svg,
      h('dl', null,
        h('dt', null, 'peer'), h('dd', { 'data-field': 'peer' }),
        h('dt', null, 'pending asks'), h('dd', { 'data-field': 'pending' }),
        h('dt', null, 'messages'), h('dd', { 'data-field': 'messages' }),
        h('dt', null, 'bytes'), h('dd', { 'data-field': 'bytes' }),
        h('dt', null, 'age'), h('dd', { 'data-field': 'age' }),
        h('dt', null, 'last error'), h('dd', { 'data-field': 'error', class: 'error' })),
      h('section', { class: 'work', hidden: '' }, h('h3', null, 'work in flight'), h('ul', { class: 'work-items' })),
      h('section', { class: 'session', hidden: '' }, h('h3', { 'data-field': 'session-title' }, 'session'), h('div', { class: 'diagram' }), h('ol', { class: 'moves' })));
    return el;
  }
  function updateCard(el, c, isSelf) {
    el.className = 'card state-' + c.state + (el.classList.contains('flash') ? ' flash' : '');
    el.setAttribute('data-state', c.state);
    el.setAttribute('data-pid', c.peer && c.peer.pid !== undefined ? String(c.peer.pid) : '');
    setText(el, 'state', c.state + (isSelf ? ' · this dashboard' : ''));
    highlight(el.querySelector('svg'), c.state);
    setText(el, 'peer', peerText(c.peer));
    setText(el, 'pending', c.pendingAsks);
    setText(el, 'messages', 'in ' + c.stats.messagesIn + ' · out ' + c.stats.messagesOut);
    setText(el, 'bytes', 'in ' + fmtBytes(c.stats.bytesIn) + ' · out ' + fmtBytes(c.stats.bytesOut));
    setText(el, 'age', fmtAge(c.age));
    setText(el, 'error', c.lastError ? errorText(c.lastError) : '—');
    el.querySelector('[data-field="error"]').title = c.lastError ? errorText(c.lastError) : '';
    updateWork(el, c);
    updateSession(el, c);
  }

  function renderCards(container, list, keep, self) {
    var seen = new Set();
    var previous = null;
    for (var i = 0; i < list.length; i++) {
      var c = list[i];
      var key = (keep ? 'live:' : 'closed:') + c.id;
      seen.add(key);
      var el = cardsById.get(key);
      if (!el) { el = makeCard(c); cardsById.set(key, el); }
      updateCard(el, c, c.id === self);
      var want = previous ? previous.nextSibling : container.firstChild;
      if (want !== el) container.insertBefore(el, want);
      previous = el;
    }
    cardsById.forEach(function (el, key) {
      if (key.indexOf(keep ? 'live:' : 'closed:') === 0 && !seen.has(key)) { el.remove(); cardsById.delete(key); }
    });
  }

  function eventItem(e) {
    var time = h('time', { datetime: new Date(e.at).toISOString() }, fmtTime(e.at));
    if (e.kind === 'connection') {
      var c = e.connection || {};
      return h('li', { 'data-kind': 'connection', 'data-connection-id': e.id, 'data-to': e.to },
        time,
        h('span', { class: 'to-' + e.to }, h('code', null, e.id.slice(0, 10)), ' ', (e.from || 'new') + ' → ' + e.to),
        h('span', { class: 'detail', title: e.error ? errorText(e.error) : null }, peerText(c.peer) + (e.error ? ' — ' + errorText(e.error) : '')));
    }
    if (e.kind === 'server') return h('li', { 'data-kind': 'server' }, time, h('span', null, 'server ' + e.from + ' → ' + e.to));
    return h('li', { 'data-kind': 'refused' }, time, h('span', { class: 'to-closed' }, 'refused ' + e.code), h('span', { class: 'detail' }, e.message));
  }
  var shownEvents = 0;
  var newestSeq = -1;
  function renderTimeline(timeline) {
    var list = document.getElementById('events');
    var newest = timeline.length ? timeline[timeline.length - 1].seq : -1;
    if (newest === newestSeq && list.children.length === Math.min(timeline.length, 150)) return;
    newestSeq = newest;
    var items = timeline.slice(-150).reverse().map(eventItem);
    list.replaceChildren.apply(list, items);
    shownEvents = items.length;
    document.getElementById('timeline-empty').hidden = shownEvents > 0;
  }

  function render(s) {
    lastState = s;
    receivedAt = Date.now();
    var srv = s.server;
    setText(document, 'socket', srv.socket);
    setText(document, 'pid', srv.pid);
    setText(document, 'version', srv.version + ' · wire protocol ' + srv.protocolVersion);
    setText(document, 'uptime', fmtAge(srv.uptime));
    setText(document, 'mode', s.mode === 'remote' ? 'over introspection' : 'in process');
    setText(document, 'server-state', srv.state);
    setText(document, 'live', srv.live);
    setText(document, 'accepted', srv.accepted);
    setText(document, 'refused', srv.refused);
    setText(document, 'max', srv.maxConnections);
    setText(document, 'messageTypes', srv.messageTypes ? (srv.messageTypes.join(', ') || 'none') : 'not declared');
    highlight(document.querySelector('#supervisor svg'), srv.state);
    var counts = {};
    STATES.forEach(function (k) { counts[k] = 0; });
    s.connections.forEach(function (c) { counts[c.state] = (counts[c.state] || 0) + 1; });
    var nodes = document.querySelectorAll('#machine svg g.node');
    for (var i = 0; i < nodes.length; i++) nodes[i].classList.toggle('occupied', (counts[nodes[i].getAttribute('data-state')] || 0) > 0);
    STATES.forEach(function (k) { setText(document, 'count-' + k, counts[k] || 0); });
    setText(document, 'connection-count', s.connections.length + (s.hidden ? ' (+' + s.hidden + ' not shown)' : ''));
    renderCards(document.getElementById('cards'), s.connections, true, s.self);
    document.getElementById('cards-empty').hidden = s.connections.length > 0;
    renderCards(document.getElementById('closed-cards'), s.recentlyClosed.slice().reverse(), false, s.self);
    document.getElementById('closed-empty').hidden = s.recentlyClosed.length > 0;
    renderTimeline(s.timeline);
    var stream = document.getElementById('stream');
    if (s.status !== 'live') { stream.className = 'down'; stream.textContent = s.status; }
    else if (srv.state !== 'listening') { stream.className = 'wait'; stream.textContent = 'server ' + srv.state; }
    else { stream.className = 'live'; stream.textContent = 'live'; }
    document.body.setAttribute('data-ready', 'true');
  }

  function flash(e) {
    if (e.kind !== 'connection') return;
    var el = cardsById.get('live:' + e.id);
    if (!el) return;
    el.classList.add('flash');
    setTimeout(function () { el.classList.remove('flash'); }, 600);
  }

  // The token came in the address; the cookie carries it from now on: keep it off the screen.
  if (location.search) history.replaceState(null, '', location.pathname);
  var source = new EventSource('api/events');
  source.addEventListener('diagram', function (m) {
    var d = JSON.parse(m.data);
    var t = document.createElement('template');
    t.innerHTML = d.svg;
    diagrams.set(d.key, t);
  });
  source.addEventListener('state', function (m) { render(JSON.parse(m.data)); });
  source.addEventListener('transition', function (m) { flash(JSON.parse(m.data)); });
  source.addEventListener('error', function () {
    var stream = document.getElementById('stream');
    stream.className = 'wait';
    stream.textContent = 'reconnecting…';
  });
  // Ages tick between updates.
  setInterval(function () {
    if (!lastState) return;
    var elapsed = Date.now() - receivedAt;
    if (elapsed < 900) return;
    lastState.connections.forEach(function (c) {
      var el = cardsById.get('live:' + c.id);
      if (el && c.age !== undefined) setText(el, 'age', fmtAge(c.age + elapsed));
    });
  }, 1000);
})();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The whole page. */
export function dashboardPage(parts: PageParts): string {
  const title = escapeHtml(parts.title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${title}</title>
<style nonce="${parts.nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>${title}</h1>
  <div class="meta">
    <span>socket <b data-field="socket">…</b></span>
    <span>pid <b data-field="pid">…</b></span>
    <span>version <b data-field="version">…</b></span>
    <span>up <b data-field="uptime">…</b></span>
    <span>data <b data-field="mode">…</b></span>
  </div>
  <span id="stream" class="wait">connecting…</span>
</header>
<main>
  <div class="col">
    <div class="row">
      <section class="panel" id="supervisor">
        <h2>Supervisor · <span data-field="server-state">…</span></h2>
        ${parts.supervisorSvg}
        <dl class="counts">
          <div><dt>live</dt><dd data-field="live" data-testid="live">0</dd></div>
          <div><dt>accepted</dt><dd data-field="accepted" data-testid="accepted">0</dd></div>
          <div><dt>refused</dt><dd data-field="refused" data-testid="refused">0</dd></div>
          <div><dt>max</dt><dd data-field="max">0</dd></div>
        </dl>
        <div class="legend">messages <b data-field="messageTypes">…</b></div>
      </section>
      <section class="panel" id="machine">
        <h2>Connection machine</h2>
        ${parts.connectionSvg}
        <div class="legend">
          <span>handshake <b data-field="count-handshake">0</b></span>
          <span>active <b data-field="count-active">0</b></span>
          <span>closing <b data-field="count-closing">0</b></span>
        </div>
      </section>
    </div>
    <section class="panel" id="connections">
      <h2>Connections · <span data-field="connection-count">0</span></h2>
      <p class="empty" id="cards-empty">No connections.</p>
      <div class="cards" id="cards"></div>
    </section>
    <section class="panel" id="closed">
      <h2>Recently closed</h2>
      <p class="empty" id="closed-empty">None yet.</p>
      <div class="cards" id="closed-cards"></div>
    </section>
  </div>
  <section class="panel" id="timeline">
    <h2>Timeline</h2>
    <p class="empty" id="timeline-empty">No transitions yet.</p>
    <ol id="events"></ol>
  </section>
</main>
<template id="mini-svg">${parts.miniSvg}</template>
<script nonce="${parts.nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
