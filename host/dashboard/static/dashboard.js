// pmdaemon's dashboard. It is a client of the daemon's API like any other: it lists the
// instances (GET /v1/list), follows the lifecycle events (GET /v1/events) and an app's logs
// (GET /v1/logs/stream), and acts with POST /v1/restart, /v1/reload and /v1/stop. Every request
// carries the token in an Authorization header. The streams are read with fetch() rather than
// EventSource, which cannot send a header: so the token never goes into a URL after the page's
// first load, nor into a cookie.
'use strict';

const TOKEN_KEY = 'pmdaemon.token';
const LIST_EVERY_MS = 2000; // the periodic list fetch, which the sparklines are drawn from
const SAMPLE_MIN_MS = 1000; // samples closer together than this (event refreshes) are not kept
const HISTORY = 60; // samples per sparkline
const LOG_TAIL = 50; // lines of each log sent when the app page opens
const LOG_KEPT = 500; // lines the log panel keeps
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;
const SVG_NS = 'http://www.w3.org/2000/svg';

const $ = (sel) => document.querySelector(sel);
const token = takeToken();

// takeToken reads the token from ?token= on the first load, keeps it in this tab's
// sessionStorage, and takes it out of the address bar and the history entry.
function takeToken() {
  const url = new URL(location.href);
  const fromURL = url.searchParams.get('token');
  if (fromURL !== null) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    if (fromURL !== '') sessionStorage.setItem(TOKEN_KEY, fromURL);
  }
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// APIError is an answer other than 2xx: its HTTP status and the API's {code, message}.
class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(resp) {
  const text = await resp.text();
  try {
    const e = JSON.parse(text);
    return new APIError(resp.status, e.code, e.message || text);
  } catch {
    return new APIError(resp.status, '', text.trim() || resp.statusText);
  }
}

async function call(method, path, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

// readSSE reads one Server-Sent Events answer of path until it ends, calling onMessage with
// each message's event name, id and data.
async function readSSE(path, headers, signal, onOpen, onMessage) {
  const resp = await fetch(path, {
    headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream', ...headers },
    cache: 'no-store',
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  onOpen();
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const msg = { event: 'message', id: '', data: [] };
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue; // a keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'data') msg.data.push(val);
        else if (field === 'event') msg.event = val;
        else if (field === 'id') msg.id = val;
      }
      if (msg.data.length > 0) onMessage(msg.event, msg.id, msg.data.join('\n'));
    }
  }
}

// keepStreaming reads a stream again whenever it ends or fails (the daemon restarted), waiting
// longer after each failure, until signal is aborted or the token is refused. The events
// stream resumes after the last event seen (Last-Event-ID).
async function keepStreaming(pathFor, badge, signal, onOpen, onMessage) {
  let lastId = '';
  let wait = RETRY_MIN_MS;
  let first = true;
  while (!signal.aborted) {
    try {
      const headers = lastId ? { 'Last-Event-ID': lastId } : {};
      await readSSE(pathFor(first), headers, signal, () => {
        first = false;
        wait = RETRY_MIN_MS;
        setBadge(badge, 'live', 'live');
        onOpen();
      }, (event, id, data) => {
        if (id) lastId = id;
        onMessage(event, JSON.parse(data));
      });
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof APIError && e.status < 500) {
        setBadge(badge, 'error', `refused (HTTP ${e.status})`);
        showNotice(`${pathFor(false).split('?')[0]}: HTTP ${e.status}: ${e.message}`, 'error', e.status);
        return;
      }
    }
    if (signal.aborted) return;
    setBadge(badge, 'connecting', 'reconnecting');
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  }
}

function setBadge(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function showNotice(text, kind, status) {
  const n = $('#notice');
  n.textContent = text;
  n.dataset.kind = kind;
  n.dataset.status = String(status || '');
  n.hidden = false;
}

// coalesced wraps an async fn so that calls while it runs make one more run after it, not one
// each: a burst of events costs two fetches, and the last one sees the state after the burst.
function coalesced(fn) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } finally {
      running = false;
    }
  };
}

// ---- the live table ----

const samples = new Map(); // id -> {at, cpu: [], mem: []}

function recordSamples(rows) {
  const now = Date.now();
  const seen = new Set();
  for (const r of rows) {
    seen.add(r.id);
    let h = samples.get(r.id);
    if (!h) {
      h = { at: 0, cpu: [], mem: [] };
      samples.set(r.id, h);
    }
    if (now - h.at < SAMPLE_MIN_MS) continue;
    h.at = now;
    h.cpu.push(r.cpu);
    h.mem.push(r.memory);
    if (h.cpu.length > HISTORY) {
      h.cpu.shift();
      h.mem.shift();
    }
  }
  for (const id of samples.keys()) if (!seen.has(id)) samples.delete(id);
}

const refreshList = coalesced(async () => {
  let rows;
  try {
    rows = await call('GET', '/v1/list');
  } catch (e) {
    listFailed(e);
    return;
  }
  recordSamples(rows);
  renderTable(rows);
});

function listFailed(e) {
  if (e instanceof APIError) {
    showNotice(`the list was refused (HTTP ${e.status}): ${e.message}`, 'error', e.status);
    if (e.status === 401) stopAll();
  } else {
    setBadge($('#connection'), 'error', 'daemon unreachable');
  }
}

// renderTable updates the rows in place: a row and its buttons stay the same elements while
// their instance exists, so a click is never lost to a refresh that replaced the button.
function renderTable(rows) {
  const tbody = $('#instances tbody');
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
  const names = new Set();
  let online = 0;
  let prev = null;
  for (const r of rows) {
    names.add(r.name);
    if (r.status === 'online') online++;
    let tr = existing.get(String(r.id));
    existing.delete(String(r.id));
    if (!tr || tr.dataset.name !== r.name) {
      if (tr) tr.remove();
      tr = newRow(r);
    }
    fillRow(tr, r);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of existing.values()) tr.remove();
  $('#empty').hidden = rows.length > 0;
  $('#summary').textContent = `${plural(names.size, 'app')}, ${plural(rows.length, 'instance')}, ${online} online`;
}

const ROW_CELLS = ['id', 'name', 'status', 'pid', 'port', 'num cpu', 'spark-cell cpu-history', 'num memory',
  'spark-cell memory-history', 'num uptime', 'num restarts', 'actions'];

function newRow(r) {
  const tr = document.createElement('tr');
  tr.dataset.id = r.id;
  tr.dataset.name = r.name;
  for (const cls of ROW_CELLS) tr.append(cell(cls));
  const link = document.createElement('a');
  link.className = 'app-link';
  link.href = '#app=' + encodeURIComponent(r.name);
  link.textContent = r.name;
  tr.querySelector('.name').append(link);
  tr.querySelector('.actions').append(...['restart', 'reload', 'stop'].map((a) => actionButton(a, String(r.id))));
  return tr;
}

function fillRow(tr, r) {
  const set = (cls, value) => {
    const td = tr.querySelector('.' + cls);
    if (td.textContent !== String(value)) td.textContent = value;
    return td;
  };
  tr.classList.toggle('selected', r.name === app.name);
  set('id', r.id);
  const status = set('status', r.status + (r.health ? ` (${r.health})` : ''));
  status.dataset.status = r.status;
  status.title = r.reason || r.health_error || '';
  set('pid', r.pid || '–');
  set('port', r.port == null ? '–' : r.port);
  set('cpu', r.cpu.toFixed(1) + '%');
  set('memory', bytes(r.memory));
  set('uptime', r.status === 'online' ? duration(r.uptime_ms) : '–');
  set('restarts', r.restarts);
  const h = samples.get(r.id) || { cpu: [], mem: [] };
  tr.querySelector('.cpu-history').replaceChildren(sparkline(h.cpu, 'cpu', 5, (v) => v.toFixed(1) + '%'));
  tr.querySelector('.memory-history').replaceChildren(sparkline(h.mem, 'mem', 1, bytes));
}

function cell(cls, ...content) {
  const td = document.createElement('td');
  td.className = cls;
  td.append(...content.map((c) => (c instanceof Node ? c : String(c))));
  return td;
}

function actionButton(action, target) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  b.dataset.target = target;
  b.textContent = action[0].toUpperCase() + action.slice(1);
  return b;
}

// sparkline draws values as a line scaled to their maximum (at least floor), newest right.
function sparkline(values, cls, floor, fmt) {
  const w = 90;
  const h = 22;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'spark spark-' + cls);
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  if (values.length > 0) {
    const max = Math.max(floor, ...values);
    const y = (v) => (h - 1 - (v / max) * (h - 2)).toFixed(1);
    // The samples there are span the width; one sample is a level line.
    const step = w / Math.max(values.length - 1, 1);
    const points = values.length === 1 ? [`0,${y(values[0])}`, `${w},${y(values[0])}`]
      : values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`);
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute('points', points.join(' '));
    const title = document.createElementNS(SVG_NS, 'title');
    title.textContent = `now ${fmt(values[values.length - 1])}, highest ${fmt(Math.max(...values))}`;
    svg.append(title, line);
  }
  return svg;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function bytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// ---- the app page: configured vs live ports, health, cgroup, the live log tail ----

const app = { name: '', logs: null };

function appFromHash() {
  const m = /^#app=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : '';
}

function openApp(name) {
  if (app.logs) app.logs.abort();
  app.name = name;
  app.logs = null;
  for (const tr of document.querySelectorAll('#instances tbody tr')) {
    tr.classList.toggle('selected', tr.dataset.name === name);
  }
  $('#app').hidden = name === '';
  if (name === '') return;
  $('#app-name').textContent = name;
  $('#log-tail').replaceChildren();
  $('#app-instances tbody').replaceChildren();
  refreshApp();
  app.logs = new AbortController();
  const target = encodeURIComponent(name);
  // After a reconnect, only new lines: the tail was shown already.
  keepStreaming((first) => `/v1/logs/stream?target=${target}&lines=${first ? LOG_TAIL : 0}`,
    $('#log-state'), app.logs.signal, () => {}, (event, line) => {
      if (event === 'log') appendLog(line);
      else if (event === 'dropped') appendLog({ stream: 'err', app: '', id: '', line: `(${line.dropped} lines not shown: the page read too slowly)` });
    });
}

const refreshApp = coalesced(async () => {
  const name = app.name;
  if (name === '') return;
  let info;
  try {
    info = await call('GET', '/v1/info?target=' + encodeURIComponent(name));
  } catch (e) {
    if (name !== app.name) return;
    $('#app-command').textContent = `(${e.message})`;
    return;
  }
  if (name !== app.name) return;
  renderApp(info);
});

function renderApp(info) {
  $('#app-command').textContent = info.command.join(' ');
  $('#app-ports-configured').textContent = info.port_spec || '(none)';
  const live = $('#app-ports-live');
  live.replaceChildren(`${info.live_port_spec || '(none)'}${info.ports.length ? ' → ' + info.ports.join(', ') : ''}`);
  if (info.port_override) {
    const o = document.createElement('span');
    o.className = 'override';
    o.textContent = 'runtime override (the saved config keeps the configured ports)';
    live.append(o);
  }
  const rows = info.instances.map((i) => {
    const tr = document.createElement('tr');
    tr.dataset.id = i.id;
    const health = cell('health', i.health ? i.health + (i.health_error ? `: ${i.health_error}` : '') : 'no check');
    health.dataset.health = i.health || '';
    const status = cell('status', i.status);
    status.dataset.status = i.status;
    tr.append(cell('id', i.id), status, cell('port', i.port == null ? '–' : i.port), health,
      cell('mono cgroup', i.cgroup || '(process group)'), cell('mono', i.out_log));
    return tr;
  });
  $('#app-instances tbody').replaceChildren(...rows);
}

function appendLog(l) {
  const pre = $('#log-tail');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const line = document.createElement('div');
  if (l.stream === 'err') line.className = 'err';
  const src = document.createElement('span');
  src.className = 'src';
  src.textContent = l.app ? `${l.app}[${l.id}] ` : '';
  line.append(src, l.line);
  pre.append(line);
  while (pre.childElementCount > LOG_KEPT) pre.firstElementChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// ---- actions ----

async function act(action, target, button) {
  button.disabled = true;
  try {
    const res = await call('POST', '/v1/' + action, { target });
    const ids = (res.apps || []).flatMap((a) => a.ids || []);
    showNotice(`${action} ${target}: done${ids.length ? ` (ids ${ids.join(', ')})` : ''}`, 'ok', 200);
  } catch (e) {
    if (e instanceof APIError && e.status === 403) {
      showNotice(`${action} ${target} was refused (HTTP 403): ${e.message}`, 'error', 403);
    } else if (e instanceof APIError) {
      showNotice(`${action} ${target} failed (HTTP ${e.status}): ${e.message}`, 'error', e.status);
    } else {
      showNotice(`${action} ${target} failed: ${e.message}`, 'error', 0);
    }
  } finally {
    button.disabled = false;
  }
  refreshList();
  refreshApp();
}

// ---- start ----

const events = new AbortController();
let timer = 0;

function stopAll() {
  events.abort();
  if (app.logs) app.logs.abort();
  clearInterval(timer);
}

function main() {
  if (token === '') {
    $('#need-token').hidden = false;
    setBadge($('#connection'), 'error', 'no token');
    return;
  }
  $('#main').hidden = false;
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const target = b.dataset.scope === 'app' ? app.name : b.dataset.target;
    if (target) act(b.dataset.action, target, b);
  });
  $('#app-close').addEventListener('click', (ev) => {
    ev.preventDefault();
    history.replaceState(history.state, '', location.pathname + location.search);
    openApp('');
  });
  window.addEventListener('hashchange', () => openApp(appFromHash()));
  // Every event may change what the table shows: fetch the list again (coalesced), and the
  // app page when the event is of its app. On (re)connecting, fetch it too: events may have
  // been missed meanwhile.
  keepStreaming(() => '/v1/events', $('#connection'), events.signal, () => {
    refreshList();
    refreshApp();
  }, (event, ev) => {
    refreshList();
    if (ev.app === app.name || event === 'dropped') refreshApp();
  });
  refreshList();
  timer = setInterval(() => {
    refreshList();
    refreshApp();
  }, LIST_EVERY_MS);
  openApp(appFromHash());
}

main();
