// Kube-9 dashboard. Plain JavaScript, no build step.
//
// State comes from three lists (nodes, pods, events) and then stays current through one
// server-sent-events stream fed by kube9d's Watch, replayed from the lists' version so nothing
// is missed. Nothing is polled: ages tick on the page's own clock. Every action is one call
// through /api/call/{Method}, which runs the same ClusterService code as gRPC.
'use strict';

// Enum names as in kube9.proto (the JSON carries their numbers).
const NODE_STATUS = ['UNSPECIFIED', 'Initializing', 'Healthy', 'Failed', 'Recovering', 'PermanentlyFailed', 'Draining', 'Left'];
const NODE_STATUS_KEY = ['UNSPECIFIED', 'INITIALIZING', 'HEALTHY', 'FAILED', 'RECOVERING', 'PERMANENTLY_FAILED', 'DRAINING', 'LEFT'];
const POD_PHASE = ['Unknown', 'Pending', 'Scheduled', 'Running', 'Succeeded', 'Failed', 'Terminating'];
const CONTAINER_STATE = ['Unknown', 'Waiting', 'Running', 'Terminated'];
const FAILURE_MODES = [['heartbeat', 1], ['crash', 2], ['component', 3], ['partition', 4]];
const WATCH = { ADDED: 1, MODIFIED: 2, DELETED: 3 };
const PULL_ERRORS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const MAX_ROWS = 500;
const MAX_EVENTS = 1000;

const S = {
  session: null,
  nodes: new Map(),
  pods: new Map(),
  events: [],
  eventIds: new Set(),
  namespaces: new Set(['default']),
  samples: [],
  failMode: new Map(),
  es: null,
  synced: false,
  view: null,
  lastChangeAt: 0,
  changes: 0,
};

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const podKey = (p) => `${p.namespace || 'default'}/${p.name}`;
const canWrite = () => !!(S.session && S.session.can_write);

function ago(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? (s % 60) + 's' : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? (m % 60) + 'm' : ''}`;
  return `${Math.floor(h / 24)}d`;
}
function cpu(m) { return m % 1000 === 0 ? `${m / 1000}` : `${m}m`; }
function bytes(b) {
  if (!b) return '0';
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1 && b % 1024 === 0) { b /= 1024; i++; }
  if (i === 0 && b >= 1024 * 1024) return `${(b / (1024 * 1024)).toFixed(0)}Mi`;
  return `${b}${units[i]}`;
}
// Memory is not tracked on a node with no capacity given.
function memory(alloc, cap) { return cap ? `${bytes(alloc)}/${bytes(cap)}` : '—'; }
function pct(a, b) { return b > 0 ? Math.min(100, (100 * a) / b) : 0; }
function bar(a, b, wide) {
  const p = pct(a, b);
  return `<span class="bar${wide ? ' wide' : ''}${p > 85 ? ' hot' : ''}"><i style="width:${p.toFixed(1)}%"></i></span>`;
}
function nodeStatus(n) { return NODE_STATUS[n.status] || 'Unknown'; }
function nodeClass(n) {
  switch (n.status) {
    case 2: return n.unschedulable ? 's-warn' : 's-ok';
    case 1: case 4: case 6: return 's-warn';
    case 3: case 5: return 's-bad';
    default: return 's-muted';
  }
}
function nodeLabel(n) { return nodeStatus(n) + (n.unschedulable ? ',SchedulingDisabled' : ''); }
function podStatus(p) { return p.status_reason || POD_PHASE[p.phase] || 'Unknown'; }
function podClass(p) {
  const r = p.status_reason || '';
  if (r && (PULL_ERRORS.has(r) || /BackOff|Error|OOMKilled|Failed/.test(r))) return 's-bad';
  switch (p.phase) {
    case 3: return p.ready ? 's-ok' : 's-warn';
    case 4: return 's-muted';
    case 5: return 's-bad';
    case 1: case 2: case 6: return 's-warn';
    default: return 's-muted';
  }
}
function restarts(p) { return (p.containers || []).reduce((n, c) => n + (c.restarts || 0), 0); }
function readyCount(p) {
  const cs = p.containers || [];
  return `${cs.filter((c) => c.ready).length}/${cs.length}`;
}
function podLink(p) { return `#/pods/${encodeURIComponent(p.namespace || 'default')}/${encodeURIComponent(p.name)}`; }
function nodeLink(name) { return `#/nodes/${encodeURIComponent(name)}`; }
function eventLink(e) {
  if (e.object_kind === 'Node') return nodeLink(e.object_name);
  if (e.object_kind === 'Pod') return `#/pods/${encodeURIComponent(e.namespace || 'default')}/${encodeURIComponent(e.object_name)}`;
  return null;
}

function toast(text, bad) {
  const div = document.createElement('div');
  div.textContent = text;
  if (bad) div.className = 'bad';
  $('#toast').append(div);
  // The newest few: a burst of actions does not bury the page under its notices.
  while ($('#toast').children.length > 3) $('#toast').firstElementChild.remove();
  setTimeout(() => div.remove(), bad ? 8000 : 4000);
}

class ApiError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

async function api(path, body, method = 'POST') {
  const headers = { 'x-kube9-csrf': S.session ? S.session.csrf : '' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await r.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!r.ok) {
    if (r.status === 401 && path !== '/api/login') showLogin(data.message);
    throw new ApiError(data.code || String(r.status), data.message || r.statusText);
  }
  return data;
}
const call = (method, body = {}) => api(`/api/call/${method}`, body);

// Runs an action from a button: disables it meanwhile, reports the outcome.
async function act(button, what, fn) {
  if (button) button.disabled = true;
  try {
    await fn();
    toast(what);
  } catch (e) {
    toast(`${what} failed: ${e.message}`, true);
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Label selectors: kube9d evaluates them (ListPods), so the page reads them exactly as
// kube9ctl's -l does, with the same errors. The matching set is asked for again, at most every
// 200 ms, when pods change.
// ---------------------------------------------------------------------------------------

const labelFilter = { text: '', keys: null, error: '', timer: 0, seq: 0 };

function refreshLabelFilter() {
  clearTimeout(labelFilter.timer);
  labelFilter.timer = setTimeout(async () => {
    const seq = ++labelFilter.seq;
    const text = labelFilter.text;
    try {
      const { pods } = await listPods({ label_selector: text });
      if (seq === labelFilter.seq) { labelFilter.keys = new Set(pods.map(podKey)); labelFilter.error = ''; }
    } catch (e) {
      if (seq === labelFilter.seq) { labelFilter.keys = new Set(); labelFilter.error = e.message; }
    }
    dirty();
  }, 200);
}

// ---------------------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------------------

function showLogin(message) {
  S.session = null;
  $('#toast').replaceChildren(); // What the last session did is not the next one's news.
  if (S.es) { S.es.close(); S.es = null; }
  setConn('offline');
  $('#login').hidden = false;
  $('#logout').hidden = true;
  $('#login-err').textContent = message && message !== 'sign in first' ? message : '';
  $('#token').focus();
}

async function startSession(session) {
  S.session = session;
  $('#login').hidden = true;
  $('#logout').hidden = false;
  $('#who').textContent = `${session.role} · ${session.token_id}`;
  document.body.dataset.role = session.role;
  await sync();
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#login-err').textContent = '';
  try {
    const session = await api('/api/login', { token: $('#token').value });
    $('#token').value = '';
    await startSession(session);
  } catch (e) {
    $('#login-err').textContent = e.message;
  }
});
$('#logout').addEventListener('click', async () => {
  try { await api('/api/logout', undefined); } catch { /* signed out either way */ }
  showLogin();
});

// ---------------------------------------------------------------------------------------
// List, then watch
// ---------------------------------------------------------------------------------------

function setConn(state, text) {
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = text || state;
}

// Every pod `request` selects, 500 a page, and the version the first page was taken at.
async function listPods(request = {}) {
  const pods = [];
  let token = '', rv = 0;
  do {
    const page = await call('ListPods', { ...request, limit: 500, continue_token: token });
    pods.push(...(page.pods || []));
    if (!rv) rv = page.resource_version;
    token = page.continue_token || '';
  } while (token);
  return { pods, rv };
}

async function sync() {
  if (!S.session) return;
  setConn('connecting', 'connecting');
  if (S.es) { S.es.close(); S.es = null; }
  try {
    const [nodes, pods, events, namespaces, history] = await Promise.all([
      call('ListNodes'), listPods(), call('ListEvents', { limit: 300 }),
      call('ListNamespaces').catch(() => ({ namespaces: [] })),
      api('/api/history', undefined, 'GET').catch(() => []),
    ]);
    S.nodes = new Map((nodes.nodes || []).map((n) => [n.name, n]));
    S.pods = new Map(pods.pods.map((p) => [podKey(p), p]));
    S.events = (events.events || []).slice().sort((a, b) => b.id - a.id);
    S.eventIds = new Set(S.events.map((e) => e.id));
    for (const ns of namespaces.namespaces || []) S.namespaces.add(ns.name);
    for (const p of S.pods.values()) S.namespaces.add(p.namespace || 'default');
    S.samples = history;
    S.synced = true;
    // Changes after the oldest of the three lists: a change seen twice is applied twice,
    // harmlessly; none is missed.
    const rv = Math.min(nodes.resource_version || 0, pods.rv || 0, events.resource_version || 0);
    watch(rv);
    route(true);
  } catch (e) {
    if (e.code === 'Unauthenticated') return;
    setConn('offline', 'offline: retrying');
    setTimeout(sync, 2000);
  }
}

function watch(rv) {
  const url = `/api/watch?csrf=${encodeURIComponent(S.session.csrf)}&rv=${rv}`;
  const es = new EventSource(url);
  S.es = es;
  es.onopen = () => setConn('live', 'live');
  es.addEventListener('change', (e) => applyChange(JSON.parse(e.data)));
  es.addEventListener('sample', (e) => {
    const tick = JSON.parse(e.data);
    // Heartbeats are not changes (the watch does not carry them): they come with each sample.
    for (const [name, ms] of Object.entries(tick.heartbeats || {})) {
      const n = S.nodes.get(name);
      if (n) n.last_heartbeat_ms = ms;
    }
    delete tick.heartbeats;
    S.samples.push(tick);
    if (S.samples.length > 300) S.samples.shift();
    if (S.view && S.view.onSample) S.view.onSample();
  });
  const restart = () => {
    if (S.es !== es) return;
    es.close();
    S.es = null;
    setConn('connecting', 'reconnecting');
    setTimeout(sync, 1000);
  };
  // The watch ended (history expired, the page fell behind) or the connection dropped: list
  // again rather than let the browser replay from a stale version.
  es.addEventListener('failed', restart);
  es.onerror = restart;
}

let renderQueued = false;
function dirty() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    if (S.view && S.view.update) S.view.update();
    updateTroubleCount();
  });
}

function applyChange(ev) {
  const obj = ev.object || {};
  S.lastChangeAt = performance.now();
  S.changes++;
  if (obj.Node) {
    const n = obj.Node;
    if (ev.type === WATCH.DELETED) S.nodes.delete(n.name); else S.nodes.set(n.name, n);
  } else if (obj.Pod) {
    const p = obj.Pod;
    const key = podKey(p);
    if (ev.type === WATCH.DELETED) S.pods.delete(key); else S.pods.set(key, p);
    S.namespaces.add(p.namespace || 'default');
    if (labelFilter.text) refreshLabelFilter();
  } else if (obj.Event) {
    const e = obj.Event;
    if (!S.eventIds.has(e.id)) {
      S.eventIds.add(e.id);
      S.events.unshift(e);
      if (S.events.length > MAX_EVENTS) S.eventIds.delete(S.events.pop().id);
    }
  }
  dirty();
}

// ---------------------------------------------------------------------------------------
// Shared pieces of pages
// ---------------------------------------------------------------------------------------

function eventsTable(events, limit = 50) {
  if (!events.length) return '<div class="empty">No events.</div>';
  const rows = events.slice(0, limit).map((e) => {
    const link = eventLink(e);
    const obj = `${e.object_kind.toLowerCase()}/${e.namespace ? e.namespace + '/' : ''}${e.object_name}`;
    return `<tr data-event="${e.id}"><td>${ago(e.time_ms)}</td>
      <td><span class="${e.type === 'Warning' ? 's-bad' : 's-muted'}">${esc(e.type)}</span></td>
      <td>${link ? `<a href="${link}">${esc(obj)}</a>` : esc(obj)}</td>
      <td>${esc(e.reason)}</td><td class="wrap">${esc(e.message)}</td></tr>`;
  });
  return `<table class="events"><thead><tr><th>Age</th><th>Type</th><th>Object</th><th>Reason</th><th>Message</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function objectEvents(kind, name, namespace) {
  return S.events.filter((e) => e.object_kind === kind && e.object_name === name && (kind !== 'Pod' || (e.namespace || 'default') === namespace));
}

// Loads an object's older events (beyond what the page holds) into the page's list.
async function loadEvents(kind, name, namespace) {
  try {
    const r = await call('ListEvents', { object_kind: kind, object_name: name, namespace: namespace || '', limit: 200 });
    let added = false;
    for (const e of r.events || []) {
      if (!S.eventIds.has(e.id)) { S.eventIds.add(e.id); S.events.push(e); added = true; }
    }
    if (added) { S.events.sort((a, b) => b.id - a.id); dirty(); }
  } catch { /* the live list still shows */ }
}

function nodeActions(n) {
  if (!canWrite()) return '';
  const name = esc(n.name);
  const chosen = S.failMode.get(n.name) || 'heartbeat';
  const modes = FAILURE_MODES.map(([m]) => `<option value="${m}"${m === chosen ? ' selected' : ''}>${m}</option>`).join('');
  return `<span class="actions" data-actions="${name}">
    <button data-op="${n.unschedulable ? 'uncordon' : 'cordon'}" data-node="${name}">${n.unschedulable ? 'Uncordon' : 'Cordon'}</button>
    <button data-op="drain" data-node="${name}">Drain</button>
    <select data-fail="${name}" aria-label="Failure mode for ${name}">${modes}</select>
    <button data-op="fail" data-node="${name}" class="danger">Fail</button>
    <button data-op="recover" data-node="${name}">Recover</button>
    <button data-op="cleanup" data-node="${name}">Cleanup</button>
    <button data-op="delete-node" data-node="${name}" class="danger">Delete</button>
  </span>`;
}

async function nodeOp(button) {
  const name = button.dataset.node;
  const op = button.dataset.op;
  switch (op) {
    case 'cordon': return act(button, `node/${name} cordoned`, () => call('CordonNode', { name, unschedulable: true }));
    case 'uncordon': return act(button, `node/${name} uncordoned`, () => call('CordonNode', { name, unschedulable: false }));
    case 'drain':
      if (!confirm(`Drain ${name}? Its pods are evicted and placed elsewhere.`)) return;
      return act(button, `node/${name} drained`, () => call('DrainNode', { name }));
    case 'fail': {
      const select = document.querySelector(`select[data-fail="${CSS.escape(name)}"]`);
      const mode = select ? select.value : 'heartbeat';
      let component = '';
      if (mode === 'component') {
        component = prompt('Component to fail', 'kubelet');
        if (!component) return;
      }
      const num = FAILURE_MODES.find(([m]) => m === mode)[1];
      return act(button, `node/${name}: ${mode} failure injected`, () => call('SimulateNodeFailure', { name, mode: num, component }));
    }
    case 'recover': return act(button, `node/${name} recovering`, () => call('RecoverNode', { name }));
    case 'cleanup':
      if (!confirm(`Force cleanup of ${name}? Its container or process is removed and its pods rescheduled.`)) return;
      return act(button, `node/${name} cleaned up`, () => call('ForceCleanupNode', { name }));
    case 'delete-node':
      if (!confirm(`Delete node ${name}? Its pods are drained first.`)) return;
      return act(button, `node/${name} deleted`, () => call('DeleteNode', { name }));
    case 'delete-pod': {
      const [namespace, pod] = [button.dataset.ns, button.dataset.pod];
      if (!confirm(`Delete pod ${namespace}/${pod}?`)) return;
      return act(button, `pod/${pod} deleted`, () => call('DeletePod', { name: pod, namespace }));
    }
    default: return undefined;
  }
}
document.addEventListener('click', (ev) => {
  const button = ev.target.closest('button[data-op]');
  if (button) nodeOp(button);
});
// The tables are redrawn on every change: a failure mode picked stays picked.
document.addEventListener('change', (ev) => {
  if (ev.target.matches('select[data-fail]')) S.failMode.set(ev.target.dataset.fail, ev.target.value);
});

// ---------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------

function chart(samples, series, maxY, unit) {
  const W = 600, H = 150, L = 34, B = 16, T = 6;
  // The last ten minutes, or since the first sample (at least two minutes) on a young page.
  const t1 = samples.length ? samples[samples.length - 1].time_ms : Date.now();
  const span = samples.length ? t1 - samples[0].time_ms : 0;
  const t0 = t1 - Math.min(10 * 60 * 1000, Math.max(2 * 60 * 1000, span));
  const x = (t) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - 4);
  const y = (v) => T + (1 - v / (maxY || 1)) * (H - T - B);
  const grid = [0, 0.5, 1].map((f) => `<line class="grid-line" x1="${L}" x2="${W}" y1="${y(f * maxY)}" y2="${y(f * maxY)}"/>
    <text x="2" y="${y(f * maxY) + 3}">${Math.round(f * maxY)}${unit}</text>`).join('');
  const lines = series.map(([cls, f]) => {
    const shown = samples.filter((s) => s.time_ms >= t0);
    const pts = shown.map((s) => `${x(s.time_ms).toFixed(1)},${y(f(s)).toFixed(1)}`);
    // A young page's single sample: a short stroke ending at it, not nothing.
    if (shown.length === 1) pts.unshift(`${(x(shown[0].time_ms) - 6).toFixed(1)},${y(f(shown[0])).toFixed(1)}`);
    return `<polyline class="${cls}" points="${pts.join(' ')}"/>`;
  }).join('');
  const labels = `<text x="${L}" y="${H - 3}">-${Math.round((t1 - t0) / 60000)}m</text><text x="${W - 24}" y="${H - 3}">now</text>`;
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img">${grid}${lines}${labels}</svg>`;
}

const overview = {
  mount(view) {
    view.innerHTML = `<h1>Overview</h1>
      <div class="grid">
        <div class="card"><h2>Nodes</h2><div class="big" id="ov-nodes-total"></div><div class="chips" id="ov-nodes"></div></div>
        <div class="card"><h2>Pods</h2><div class="big" id="ov-pods-total"></div><div class="chips" id="ov-pods"></div></div>
        <div class="card"><h2>CPU allocated</h2><div class="big" id="ov-cpu"></div><div id="ov-cpu-bar"></div></div>
        <div class="card"><h2>Memory allocated</h2><div class="big" id="ov-mem"></div><div id="ov-mem-bar"></div></div>
      </div>
      <div class="two">
        <div class="card"><h2>Node health</h2><div id="ov-chart-health"></div>
          <div class="legend"><span><i class="l-healthy"></i>healthy</span><span><i class="l-unhealthy"></i>not healthy</span></div></div>
        <div class="card"><h2>Allocation</h2><div id="ov-chart-alloc"></div>
          <div class="legend"><span><i class="l-cpu"></i>CPU %</span><span><i class="l-mem"></i>memory %</span></div></div>
      </div>
      <div class="section-head"><h2>Recent events</h2><a href="#/troubleshooting">Troubleshooting →</a></div>
      <div id="ov-events"></div>`;
    this.onSample();
  },
  update() {
    const byStatus = new Map();
    let cpuCap = 0, cpuAlloc = 0, memCap = 0, memAlloc = 0;
    for (const n of S.nodes.values()) {
      byStatus.set(nodeStatus(n), (byStatus.get(nodeStatus(n)) || 0) + 1);
      cpuCap += n.cpu_capacity_millis; cpuAlloc += n.cpu_allocated_millis;
      memCap += n.memory_capacity_bytes; memAlloc += n.memory_allocated_bytes;
    }
    $('#ov-nodes-total').textContent = S.nodes.size;
    $('#ov-nodes').innerHTML = [...byStatus].map(([s, c]) => `<span data-status="${esc(s)}">${esc(s)} <b>${c}</b></span>`).join('');
    const byPhase = new Map();
    for (const p of S.pods.values()) byPhase.set(podStatus(p), (byPhase.get(podStatus(p)) || 0) + 1);
    $('#ov-pods-total').textContent = S.pods.size;
    $('#ov-pods').innerHTML = [...byPhase].sort((a, b) => b[1] - a[1]).map(([s, c]) => `<span data-phase="${esc(s)}">${esc(s)} <b>${c}</b></span>`).join('');
    $('#ov-cpu').textContent = `${cpu(cpuAlloc)} / ${cpu(cpuCap)} cores`;
    $('#ov-cpu-bar').innerHTML = bar(cpuAlloc, cpuCap, true);
    $('#ov-mem').textContent = memCap ? `${bytes(memAlloc)} / ${bytes(memCap)}` : 'not tracked';
    $('#ov-mem-bar').innerHTML = bar(memAlloc, memCap, true);
    $('#ov-events').innerHTML = eventsTable(S.events, 15);
  },
  onSample() {
    const s = S.samples;
    const healthy = (x) => x.nodes.HEALTHY || 0;
    const total = (x) => Object.values(x.nodes).reduce((a, b) => a + b, 0);
    // Even, so that the middle grid line is a whole number of nodes too.
    const maxNodes = 2 * Math.ceil(Math.max(1, ...s.map(total)) / 2);
    $('#ov-chart-health').innerHTML = chart(s, [['l-healthy', healthy], ['l-unhealthy', (x) => total(x) - healthy(x)]], maxNodes, '');
    $('#ov-chart-alloc').innerHTML = chart(s, [
      ['l-cpu', (x) => pct(x.cpu_allocated_millis, x.cpu_capacity_millis)],
      ['l-mem', (x) => pct(x.memory_allocated_bytes, x.memory_capacity_bytes)],
    ], 100, '%');
  },
};

// ---------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------

function parseQuantity(text, what) {
  const m = String(text).trim().match(/^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/);
  if (!m) throw new Error(`invalid ${what} quantity "${text}"`);
  const mult = { undefined: 1, m: 0.001, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }[m[2]];
  return parseFloat(m[1]) * mult;
}

const nodesPage = {
  mount(view) {
    view.innerHTML = `<h1>Nodes</h1>
      <form class="toolbar" id="create-node" ${canWrite() ? '' : 'hidden'}>
        <label for="cn-name">New node</label><input id="cn-name" placeholder="name" required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" size="14">
        <label for="cn-cpu">CPU</label><input id="cn-cpu" value="4" size="4">
        <label for="cn-mem">Memory</label><input id="cn-mem" value="4Gi" size="6">
        <button class="primary" id="cn-create">Create</button>
      </form>
      <div class="toolbar"><input id="filter" placeholder="Filter by name or status ( / )" size="30"><span class="muted" id="nodes-count"></span></div>
      <div id="nodes-table"></div>`;
    $('#create-node').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = $('#cn-name').value.trim();
      let cpuMillis, memory;
      try {
        cpuMillis = Math.round(parseQuantity($('#cn-cpu').value, 'CPU') * 1000);
        memory = Math.round(parseQuantity($('#cn-mem').value, 'memory'));
      } catch (e) { toast(e.message, true); return; }
      act($('#cn-create'), `node/${name} created`, async () => {
        await call('CreateNode', { name, cpu_millis: cpuMillis, memory_bytes: memory });
        $('#cn-name').value = '';
      });
    });
    $('#filter').addEventListener('input', () => this.update());
  },
  update() {
    const f = ($('#filter')?.value || '').toLowerCase();
    const nodes = [...S.nodes.values()].sort((a, b) => a.name.localeCompare(b.name))
      .filter((n) => !f || n.name.includes(f) || nodeLabel(n).toLowerCase().includes(f));
    $('#nodes-count').textContent = `${nodes.length} of ${S.nodes.size}`;
    if (!nodes.length) { $('#nodes-table').innerHTML = '<div class="empty">No nodes.</div>'; return; }
    const rows = nodes.slice(0, MAX_ROWS).map((n) => `<tr data-node="${esc(n.name)}">
      <td><a href="${nodeLink(n.name)}">${esc(n.name)}</a></td>
      <td class="status"><span class="badge ${nodeClass(n)}">${esc(nodeLabel(n))}</span>${n.injected_fault ? ` <span class="s-bad">fault: ${esc(n.injected_fault)}</span>` : ''}</td>
      <td class="wrap reason">${esc(n.reason)}</td>
      <td>${bar(n.cpu_allocated_millis, n.cpu_capacity_millis)}<span class="mono">${cpu(n.cpu_allocated_millis)}/${cpu(n.cpu_capacity_millis)}</span></td>
      <td class="mono">${memory(n.memory_allocated_bytes, n.memory_capacity_bytes)}</td>
      <td>${(n.pods || []).length}</td>
      <td class="age" data-hb="${esc(n.name)}">${ago(n.last_heartbeat_ms)}</td>
      <td class="mono">${esc(n.runtime ? `${n.runtime.kind}:${(n.runtime.id || '').slice(0, 12)}` : '')}</td>
      <td>${nodeActions(n)}</td></tr>`);
    $('#nodes-table').innerHTML = `<table id="nodes"><thead><tr><th>Name</th><th>Status</th><th>Reason</th><th>CPU</th><th>Memory</th><th>Pods</th><th>Heartbeat</th><th>Runtime</th><th>${canWrite() ? 'Actions' : ''}</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      + (nodes.length > MAX_ROWS ? `<div class="muted">Showing ${MAX_ROWS} of ${nodes.length}: filter to narrow.</div>` : '');
  },
};

const nodePage = (name) => ({
  mount(view) {
    view.innerHTML = `<div class="section-head"><h1>Node <span class="mono">${esc(name)}</span></h1><a href="#/nodes">← Nodes</a></div>
      <div id="node-detail"></div>`;
    loadEvents('Node', name, '');
  },
  update() {
    const n = S.nodes.get(name);
    const el = $('#node-detail');
    if (!n) { el.innerHTML = '<div class="empty">This node does not exist (any more).</div>' + eventsTable(objectEvents('Node', name, '')); return; }
    const comps = (n.components || []).map((c) => `<tr><td>${esc(c.name)}</td><td><span class="badge ${c.healthy ? 's-ok' : 's-bad'}">${c.healthy ? 'Healthy' : 'Unhealthy'}</span></td><td>${c.critical ? 'yes' : 'no'}</td><td class="wrap">${esc(c.message)}</td></tr>`).join('');
    const pods = (n.pods || []).map((k) => {
      const p = S.pods.get(k);
      return p ? `<tr><td><a href="${podLink(p)}">${esc(k)}</a></td><td><span class="badge ${podClass(p)}">${esc(podStatus(p))}</span></td><td>${cpu(p.cpu_request_millis)}</td></tr>` : `<tr><td>${esc(k)}</td><td></td><td></td></tr>`;
    }).join('');
    const labels = Object.entries(n.labels || {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ');
    el.innerHTML = `<div class="toolbar">${nodeActions(n)}</div>
      <div class="two"><div class="card"><dl class="kv">
        <dt>Status</dt><dd class="status"><span class="badge ${nodeClass(n)}">${esc(nodeLabel(n))}</span></dd>
        <dt>Reason</dt><dd>${esc(n.reason) || '—'}</dd>
        <dt>Injected fault</dt><dd>${esc(n.injected_fault) || '—'}</dd>
        <dt>CPU</dt><dd>${bar(n.cpu_allocated_millis, n.cpu_capacity_millis)}${cpu(n.cpu_allocated_millis)} / ${cpu(n.cpu_capacity_millis)}</dd>
        <dt>Memory</dt><dd>${n.memory_capacity_bytes ? bar(n.memory_allocated_bytes, n.memory_capacity_bytes) : ''}${memory(n.memory_allocated_bytes, n.memory_capacity_bytes)}</dd>
        <dt>Heartbeat</dt><dd class="age" data-hb="${esc(n.name)}">${ago(n.last_heartbeat_ms)}</dd>
        <dt>Agent</dt><dd>${n.agent_connected ? 'connected' : 'not connected'} ${esc(n.agent_address)} ${esc(n.agent_version)}</dd>
        <dt>Runtime</dt><dd class="mono">${esc(n.runtime ? `${n.runtime.kind} ${n.runtime.id}` : '—')}</dd>
        <dt>Pod isolation</dt><dd>${esc(n.pod_isolation) || '—'}</dd>
        <dt>Recovery attempts</dt><dd>${n.recovery_attempts}</dd>
        <dt>Labels</dt><dd class="mono">${labels || '—'}</dd>
        <dt>Created</dt><dd>${ago(n.created_ms)} ago</dd></dl></div>
      <div class="card"><h2>Components</h2>${comps ? `<table id="components"><thead><tr><th>Component</th><th>Health</th><th>Critical</th><th>Message</th></tr></thead><tbody>${comps}</tbody></table>` : '<div class="empty">No component reports yet.</div>'}</div></div>
      <h2>Pods (${(n.pods || []).length})</h2>${pods ? `<table><thead><tr><th>Pod</th><th>Status</th><th>CPU</th></tr></thead><tbody>${pods}</tbody></table>` : '<div class="empty">No pods.</div>'}
      <h2>Events</h2><div id="node-events">${eventsTable(objectEvents('Node', name, ''))}</div>`;
  },
});

// ---------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------

const EXAMPLE = `apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels:
    app: hello
spec:
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "while true; do date; sleep 5; done"]
      resources:
        requests:
          cpu: 100m
`;

const podsPage = {
  mount(view) {
    const ns = [...S.namespaces].sort().map((n) => `<option>${esc(n)}</option>`).join('');
    const phases = POD_PHASE.slice(1).map((p) => `<option>${p}</option>`).join('');
    view.innerHTML = `<h1>Pods</h1>
      <details id="create" ${canWrite() ? '' : 'hidden'}><summary>Create from YAML <kbd>c</kbd></summary>
        <textarea id="yaml" spellcheck="false" aria-label="Manifest">${esc(localStorage.getItem('kube9.yaml') || EXAMPLE)}</textarea>
        <div class="toolbar"><button class="primary" id="apply">Apply</button><button id="dry-run">Validate (server dry run)</button><span class="muted">Ctrl+Enter applies</span></div>
        <div id="apply-msg" role="alert"></div>
      </details>
      <div class="toolbar">
        <label for="f-ns">Namespace</label><select id="f-ns"><option value="">all</option>${ns}</select>
        <label for="f-label">Labels</label><input id="f-label" placeholder="app=web,tier!=db" size="24">
        <label for="f-phase">Phase</label><select id="f-phase"><option value="">all</option>${phases}</select>
        <input id="filter" placeholder="Name ( / )" size="18">
        <span class="muted" id="pods-count"></span><span class="error" id="f-err"></span>
      </div>
      <div id="pods-table"></div>`;
    const yaml = $('#yaml');
    yaml.addEventListener('keydown', (ev) => {
      if (ev.key === 'Tab' && !ev.shiftKey) {
        ev.preventDefault();
        yaml.setRangeText('  ', yaml.selectionStart, yaml.selectionEnd, 'end');
      } else if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        applyYaml(false);
      }
    });
    yaml.addEventListener('input', () => localStorage.setItem('kube9.yaml', yaml.value));
    $('#apply').addEventListener('click', () => applyYaml(false));
    $('#dry-run').addEventListener('click', () => applyYaml(true));
    for (const id of ['#f-ns', '#f-phase', '#filter']) $(id).addEventListener('input', () => this.update());
    $('#f-label').addEventListener('input', () => this.update());
    const saved = JSON.parse(sessionStorage.getItem('kube9.podFilter') || '{}');
    if (saved.ns) $('#f-ns').value = saved.ns;
    if (saved.label) $('#f-label').value = saved.label;
    if (saved.phase) $('#f-phase').value = saved.phase;
  },
  update() {
    const ns = $('#f-ns').value, phase = $('#f-phase').value, name = $('#filter').value.toLowerCase();
    sessionStorage.setItem('kube9.podFilter', JSON.stringify({ ns, label: $('#f-label').value, phase }));
    const selector = $('#f-label').value.trim();
    if (selector !== labelFilter.text) {
      labelFilter.text = selector;
      labelFilter.keys = null;
      labelFilter.error = '';
      if (selector) refreshLabelFilter();
    }
    $('#f-err').textContent = labelFilter.error;
    const byLabel = (p) => !selector || (labelFilter.keys !== null && labelFilter.keys.has(podKey(p)));
    const pods = [...S.pods.values()]
      .filter((p) => (!ns || (p.namespace || 'default') === ns) && (!phase || POD_PHASE[p.phase] === phase)
        && (!name || p.name.includes(name)) && byLabel(p))
      .sort((a, b) => podKey(a).localeCompare(podKey(b)));
    $('#pods-count').textContent = `${pods.length} of ${S.pods.size}`;
    if (!pods.length) { $('#pods-table').innerHTML = '<div class="empty">No pods match.</div>'; return; }
    const rows = pods.slice(0, MAX_ROWS).map((p) => `<tr data-pod="${esc(podKey(p))}">
      <td>${esc(p.namespace || 'default')}</td><td><a href="${podLink(p)}">${esc(p.name)}</a></td>
      <td>${readyCount(p)}</td><td class="status"><span class="badge ${podClass(p)}">${esc(podStatus(p))}</span></td>
      <td>${restarts(p)}</td><td>${p.node ? `<a href="${nodeLink(p.node)}">${esc(p.node)}</a>` : '<span class="muted">—</span>'}</td>
      <td class="mono">${esc(p.pod_ip)}</td><td>${cpu(p.cpu_request_millis)}</td><td class="age" data-ms="${p.created_ms}">${ago(p.created_ms)}</td>
      <td class="wrap reason">${esc(p.phase === 1 ? p.reason : '')}</td>
      <td>${canWrite() ? `<button data-op="delete-pod" data-ns="${esc(p.namespace || 'default')}" data-pod="${esc(p.name)}" class="danger">Delete</button>` : ''}</td></tr>`);
    $('#pods-table').innerHTML = `<table id="pods"><thead><tr><th>Namespace</th><th>Name</th><th>Ready</th><th>Status</th><th>Restarts</th><th>Node</th><th>IP</th><th>CPU</th><th>Age</th><th>Reason</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      + (pods.length > MAX_ROWS ? `<div class="muted">Showing ${MAX_ROWS} of ${pods.length}: filter to narrow.</div>` : '');
  },
};

async function applyYaml(dryRun) {
  const msg = $('#apply-msg');
  msg.innerHTML = '';
  const line = (cls, text) => { const d = document.createElement('div'); d.className = cls; d.textContent = text; msg.append(d); };
  $('#apply').disabled = true;
  try {
    const r = await api('/api/apply', { yaml: $('#yaml').value, dry_run: dryRun });
    for (const w of r.warnings || []) line('warning', `Warning: ${w}`);
    for (const x of r.results || []) line('result', `${x.kind.toLowerCase()}/${x.name} ${x.action}${dryRun ? ' (server dry run)' : ''}`);
  } catch (e) {
    line('error', `error: ${e.message}`);
  } finally {
    $('#apply').disabled = false;
  }
}

const podPage = (namespace, name) => ({
  key: `${namespace}/${name}`,
  mount(view) {
    view.innerHTML = `<div class="section-head"><h1>Pod <span class="mono">${esc(namespace)}/${esc(name)}</span></h1><a href="#/pods">← Pods</a></div>
      <div id="pod-detail"></div>
      <h2>Logs</h2>
      <div class="toolbar"><label for="log-container">Container</label><select id="log-container"></select>
        <label><input type="checkbox" id="log-follow" checked> follow</label><span class="muted" id="log-state"></span></div>
      <pre class="logs" id="logs"></pre>
      <h2>Events</h2><div id="pod-events"></div>`;
    loadEvents('Pod', name, namespace);
    $('#log-container').addEventListener('change', () => this.logs());
    this.containers = '';
  },
  update() {
    const p = S.pods.get(this.key);
    const el = $('#pod-detail');
    $('#pod-events').innerHTML = eventsTable(objectEvents('Pod', name, namespace));
    if (!p) { el.innerHTML = '<div class="empty">This pod does not exist (any more).</div>'; return; }
    const row = (c, init) => `<tr data-container="${esc(c.name)}"><td>${esc(c.name)}${init ? ' <span class="muted">(init)</span>' : ''}</td><td class="mono">${esc(c.image)}</td>
      <td>${CONTAINER_STATE[c.state] || 'Unknown'}</td><td>${c.ready ? 'yes' : 'no'}</td><td>${c.restarts || 0}</td>
      <td>${esc(c.reason)}${c.state === 3 ? ` (exit ${c.exit_code})` : ''}</td><td class="wrap">${esc(c.message)}</td></tr>`;
    const containers = [...(p.init_containers || []).map((c) => row(c, true)), ...(p.containers || []).map((c) => row(c, false))].join('');
    const labels = Object.entries(p.labels || {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ');
    el.innerHTML = `<div class="toolbar">${canWrite() ? `<button data-op="delete-pod" data-ns="${esc(namespace)}" data-pod="${esc(name)}" class="danger">Delete</button>` : ''}</div>
      <div class="card"><dl class="kv">
        <dt>Status</dt><dd class="status"><span class="badge ${podClass(p)}">${esc(podStatus(p))}</span> <span class="muted">phase ${POD_PHASE[p.phase]}</span></dd>
        <dt>Reason</dt><dd>${esc(p.reason) || '—'}</dd>
        <dt>Node</dt><dd>${p.node ? `<a href="${nodeLink(p.node)}">${esc(p.node)}</a>` : '—'}</dd>
        <dt>IP</dt><dd class="mono">${esc(p.pod_ip) || '—'}</dd>
        <dt>Ready</dt><dd>${readyCount(p)}</dd>
        <dt>Requests</dt><dd>CPU ${cpu(p.cpu_request_millis)}, memory ${bytes(p.memory_request_bytes)}</dd>
        <dt>Restart policy</dt><dd>${esc(p.restart_policy || 'Always')}</dd>
        <dt>Rescheduled</dt><dd>${p.reschedules} times</dd>
        <dt>Labels</dt><dd class="mono">${labels || '—'}</dd>
        <dt>UID</dt><dd class="mono">${esc(p.uid)}</dd>
        <dt>Created</dt><dd>${ago(p.created_ms)} ago</dd></dl></div>
      <h2>Containers</h2><table id="containers"><thead><tr><th>Name</th><th>Image</th><th>State</th><th>Ready</th><th>Restarts</th><th>Reason</th><th>Message</th></tr></thead><tbody>${containers}</tbody></table>`;
    // Logs (re)start when the pod's containers first show, or its binding or phase changes
    // (a pod that starts running has logs to follow; a rebound one has new ones).
    const names = (p.containers || []).map((c) => c.name).join(',') + '@' + p.uid + ':' + p.phase;
    if (names !== this.containers) {
      this.containers = names;
      const select = $('#log-container');
      const current = select.value;
      select.innerHTML = (p.containers || []).map((c) => `<option>${esc(c.name)}</option>`).join('');
      if (current) select.value = current;
      this.logs();
    }
  },
  logs() {
    if (this.logSource) this.logSource.close();
    const pre = $('#logs');
    pre.textContent = '';
    const p = S.pods.get(this.key);
    if (!p || !p.node || p.phase < 3) { $('#log-state').textContent = 'waiting for the pod to start'; return; }
    const container = $('#log-container').value;
    const q = new URLSearchParams({ csrf: S.session.csrf, namespace, pod: name, container, tail: '500' });
    const es = new EventSource(`/api/logs?${q}`);
    this.logSource = es;
    $('#log-state').textContent = 'following';
    es.addEventListener('log', (e) => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(JSON.parse(e.data));
      if (pre.textContent.length > 1_000_000) pre.textContent = pre.textContent.slice(-500_000);
      if ($('#log-follow').checked && atEnd) pre.scrollTop = pre.scrollHeight;
    });
    es.addEventListener('failed', (e) => { $('#log-state').textContent = JSON.parse(e.data).message; es.close(); });
    es.addEventListener('end', () => { $('#log-state').textContent = 'the log ended'; es.close(); });
    es.onerror = () => { if (es.readyState !== EventSource.CLOSED) { es.close(); $('#log-state').textContent = 'disconnected'; } };
  },
  unmount() { if (this.logSource) this.logSource.close(); },
});

// ---------------------------------------------------------------------------------------
// Troubleshooting
// ---------------------------------------------------------------------------------------

function troubles() {
  const nodes = [...S.nodes.values()].filter((n) => n.status !== 2 || n.injected_fault || (n.components || []).some((c) => !c.healthy));
  const pods = [...S.pods.values()];
  const pending = pods.filter((p) => p.phase === 1);
  const crashing = pods.filter((p) => p.status_reason === 'CrashLoopBackOff' || (p.containers || []).some((c) => c.reason === 'CrashLoopBackOff'));
  const pulls = pods.filter((p) => PULL_ERRORS.has(p.status_reason) || (p.containers || []).some((c) => PULL_ERRORS.has(c.reason)));
  const failed = pods.filter((p) => p.phase === 5);
  return { nodes, pending, crashing, pulls, failed };
}

function updateTroubleCount() {
  if (!S.synced) return;
  const t = troubles();
  const n = t.nodes.length + t.pending.length + t.crashing.length + t.pulls.length + t.failed.length;
  $('#trouble-count').textContent = n ? String(n) : '';
}

function lastEvent(kind, name, namespace) {
  const e = S.events.find((x) => x.object_kind === kind && x.object_name === name && (kind !== 'Pod' || (x.namespace || 'default') === namespace));
  return e ? `<span class="${e.type === 'Warning' ? 's-bad' : 's-muted'}">${esc(e.reason)}</span>: ${esc(e.message)} <span class="muted">(${ago(e.time_ms)} ago)</span>` : '<span class="muted">no recent event</span>';
}

const troublePage = {
  mount(view) {
    view.innerHTML = `<h1>Troubleshooting</h1><div id="trouble"></div>`;
  },
  update() {
    const t = troubles();
    const podRows = (list, why) => list.slice(0, MAX_ROWS).map((p) => `<tr data-pod="${esc(podKey(p))}"><td><a href="${podLink(p)}">${esc(podKey(p))}</a></td>
      <td><span class="badge ${podClass(p)}">${esc(podStatus(p))}</span></td><td class="wrap">${esc(why(p))}</td>
      <td class="wrap">${lastEvent('Pod', p.name, p.namespace || 'default')}</td><td><a href="${podLink(p)}">events →</a></td></tr>`).join('');
    const section = (title, id, count, head, rows) => `<h2>${title} <span class="muted">(${count})</span></h2>` + (count
      ? `<table id="${id}"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>`
      : '<div class="empty">None.</div>');
    const containerWhy = (p) => (p.containers || []).filter((c) => c.reason && c.reason !== 'Completed').map((c) => `${c.name}: ${c.reason}${c.message ? ' — ' + c.message : ''}`).join('; ') || p.reason;
    const nodeRows = t.nodes.map((n) => `<tr data-node="${esc(n.name)}"><td><a href="${nodeLink(n.name)}">${esc(n.name)}</a></td>
      <td class="status"><span class="badge ${nodeClass(n)}">${esc(nodeLabel(n))}</span></td>
      <td class="wrap">${esc(n.reason || (n.components || []).filter((c) => !c.healthy).map((c) => `${c.name}: ${c.message}`).join('; '))}</td>
      <td>${n.recovery_attempts}</td><td class="wrap">${lastEvent('Node', n.name, '')}</td><td><a href="${nodeLink(n.name)}">events →</a></td></tr>`).join('');
    $('#trouble').innerHTML =
      section('Nodes failing, recovering or lost', 'trouble-nodes', t.nodes.length, ['Node', 'Status', 'Reason', 'Recoveries', 'Last event', ''], nodeRows)
      + section('Pending pods', 'trouble-pending', t.pending.length, ['Pod', 'Status', 'Why', 'Last event', ''], podRows(t.pending, (p) => p.reason))
      + section('Crash loops', 'trouble-crash', t.crashing.length, ['Pod', 'Status', 'Containers', 'Last event', ''], podRows(t.crashing, containerWhy))
      + section('Image pull errors', 'trouble-pull', t.pulls.length, ['Pod', 'Status', 'Containers', 'Last event', ''], podRows(t.pulls, containerWhy))
      + section('Failed pods', 'trouble-failed', t.failed.length, ['Pod', 'Status', 'Why', 'Last event', ''], podRows(t.failed, containerWhy))
      + '<h2>Warnings</h2>' + eventsTable(S.events.filter((e) => e.type === 'Warning'), 50);
  },
};

// ---------------------------------------------------------------------------------------
// Routing, clock, keyboard, theme
// ---------------------------------------------------------------------------------------

function route(force) {
  const hash = location.hash || '#/overview';
  if (!force && S.view && S.view.hash === hash) return;
  if (S.view && S.view.unmount) S.view.unmount();
  const parts = hash.slice(2).split('/').map(decodeURIComponent);
  let view;
  switch (parts[0]) {
    case 'nodes': view = parts[1] ? nodePage(parts[1]) : nodesPage; break;
    case 'pods': view = parts[2] ? podPage(parts[1], parts[2]) : podsPage; break;
    case 'troubleshooting': view = troublePage; break;
    default: view = overview;
  }
  view.hash = hash;
  S.view = view;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  if (!S.synced) return;
  view.mount($('#view'));
  view.update();
  updateTroubleCount();
}
window.addEventListener('hashchange', () => { if (!linkedSignIn()) route(false); });

// Ages tick on the page's clock: no request is made for them.
setInterval(() => {
  for (const el of document.querySelectorAll('.age[data-ms]')) el.textContent = ago(Number(el.dataset.ms));
  for (const el of document.querySelectorAll('.age[data-hb]')) {
    const n = S.nodes.get(el.dataset.hb);
    if (n) el.textContent = ago(n.last_heartbeat_ms);
  }
}, 1000);

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem('kube9.theme', theme);
}
setTheme(localStorage.getItem('kube9.theme') || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
$('#theme').addEventListener('click', () => setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'));

let gPressed = 0;
document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  if (t.matches('input, textarea, select') || ev.ctrlKey || ev.metaKey || ev.altKey) {
    if (ev.key === 'Escape' && t.blur) t.blur();
    return;
  }
  const now = Date.now();
  if (ev.key === 'g') { gPressed = now; return; }
  if (now - gPressed < 1500) {
    const to = { o: '#/overview', n: '#/nodes', p: '#/pods', t: '#/troubleshooting' }[ev.key];
    gPressed = 0;
    if (to) { location.hash = to; ev.preventDefault(); return; }
  }
  if (ev.key === '/') { const f = $('#filter'); if (f) { ev.preventDefault(); f.focus(); } }
  else if (ev.key === 'c' && canWrite()) {
    if (!location.hash.startsWith('#/pods') || location.hash.split('/').length > 2) location.hash = '#/pods';
    setTimeout(() => { const d = $('#create'); if (d) { d.open = true; $('#yaml').focus(); } }, 0);
    ev.preventDefault();
  } else if (ev.key === 'd') setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
  else if (ev.key === '?') $('#help').showModal();
});

// A link from `kube9ctl dashboard` (#token=...) signs in and leaves the address bar clean.
function linkedSignIn() {
  const linked = location.hash.match(/^#token=([^&]+)$/);
  if (!linked) return false;
  history.replaceState(null, '', location.pathname + '#/overview');
  api('/api/login', { token: decodeURIComponent(linked[1]) })
    .then(startSession, (e) => showLogin(e.message));
  return true;
}

// Start: a sign-in link, else an existing session, else the sign-in form.
(async () => {
  if (linkedSignIn()) return;
  route(false);
  try {
    await startSession(await api('/api/session', undefined, 'GET'));
  } catch (e) {
    showLogin(e.message);
  }
})();
