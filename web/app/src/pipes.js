// Pipes on the console: the networks the user may read as a map layer
// (switched on in the layers panel, like coverage), and the isolation of a
// burst main. "Isolate a pipe…" arms the map: the next click on or near a
// pipe asks the server for its isolation (POST /api/v1/pipes/isolations
// with the point), which is drawn on the map (pipesmap.js) and described in
// the work panel's "Pipes" tab: the valves to close in the crew's order,
// the isolated and dry lengths, the customers cut off by kind, the priority
// ones by name, conflicts with other isolations, and its repair order (or a
// button to create one). The panel follows the shown isolation live: an
// event of the feed about it (pipes.isolation.*, repair.* of its order,
// pipes.valve) reads it again and redraws, so a valve the crew could not
// close grows the area on screen without a reload.
import { toLonLat, fromLonLat } from 'ol/proj.js';
import { hasRole } from './auth.js';
import { $, el, showError } from './dom.js';
import { call, postJson, errorText, listReader } from './request.js';
import { t, tf, tName, formatDistance } from './i18n.js';
import { NetworkLayer, IsolationLayer } from './pipesmap.js';
import { lonlatText, cannotText, partTag, showAnswer } from './isolation.js';
import { showTab } from './incidents.js';

const READERS = ['dispatcher', 'supervisor', 'crew', 'leader'];
const ISOLATORS = ['dispatcher', 'supervisor', 'crew'];
const APPROVERS = ['supervisor', 'leader'];
const OPEN = new Set(['proposed', 'planned', 'active']);
const LIST_DEBOUNCE_MS = 250;

const st = {
  running: false,
  epoch: 0, // bumped at sign-out: late answers are dropped
  user: null,
  map: null, // the CityMap
  networks: [], // GET /api/v1/pipes/networks
  net: null, // NetworkLayer
  iso: null, // IsolationLayer
  armed: false,
  busy: false, // an isolation being asked
  shown: null, // id of the isolation in the panel
  data: null, // that isolation, as last read
  order: null, // its repair order, as last read (or null)
  seq: 0, // reads of the shown isolation: only the newest is drawn
  list: [], // open isolations (summaries)
  actionError: null,
};

const netName = (name) => {
  const n = st.networks.find((x) => x.name === name);
  return n ? `${name} (${tName('utility', n.utility)})` : name;
};

// ---- the networks' layer ----

function summary() {
  const out = $('pipes-summary');
  if (!$('pipes-on').checked || !st.net) { out.textContent = ''; return; }
  const counts = st.net.counts();
  out.textContent = st.networks.filter((n) => counts[n.name])
    .map((n) => tf('pipes.summary', { name: netName(n.name), links: counts[n.name].links, valves: counts[n.name].valves }))
    .join('; ');
}

async function switched() {
  const on = $('pipes-on').checked;
  if (!st.net) return;
  st.net.layer.setVisible(on);
  showError('pipes-error', null);
  if (!on) { summary(); return; }
  const epoch = st.epoch;
  $('pipes-summary').textContent = t('pipes.loading');
  for (const n of st.networks) {
    const err = await st.net.load(n);
    if (epoch !== st.epoch) return;
    if (err) showError('pipes-error', t('pipes.failed') + err);
  }
  summary();
  // Where isolations are asked: the tab opens with the layer.
  if ($('tab-pipes').getAttribute('aria-selected') !== 'true') showTab('pipes');
}

// ---- isolation mode ----

function arm(on) {
  st.armed = on && st.running;
  const b = $('iso-arm');
  b.setAttribute('aria-pressed', String(st.armed));
  b.classList.toggle('armed', st.armed);
  b.textContent = t(st.armed ? 'iso.armed' : 'iso.arm');
  $('iso-hint').hidden = !st.armed;
  const target = st.map?.el.querySelector('.map-canvas');
  if (target) target.classList.toggle('isolating', st.armed);
}

// The network of the pipe drawn under a pixel, if the layer shows one.
function networkAt(pixel) {
  if (!st.map?.map || !st.net || !st.net.layer.getVisible()) return null;
  const f = st.map.map.forEachFeatureAtPixel(pixel, (g) => g, {
    layerFilter: (l) => l === st.net.layer, hitTolerance: 6,
  });
  return f ? f.get('network') : null;
}

// The map's click while armed: the isolation of the pipe nearest the point.
function mapClick(e) {
  if (!st.armed) return false;
  const [lon, lat] = toLonLat(e.coordinate);
  const network = $('iso-network').value || networkAt(e.pixel);
  isolate({ lon, lat, network });
  return true;
}

async function isolate({ lon, lat, network }) {
  if (st.busy) return;
  st.busy = true;
  const epoch = st.epoch;
  showError('iso-error', null);
  const hint = $('iso-hint');
  hint.textContent = t('iso.working');
  const body = { point: [Number(lon.toFixed(7)), Number(lat.toFixed(7))] };
  if (network) body.network = network;
  const r = await postJson('/api/v1/pipes/isolations', body);
  st.busy = false;
  hint.textContent = t('iso.hint');
  if (epoch !== st.epoch) return;
  if (!r.res || r.res.status !== 201 || !r.body || !r.body.isolation) {
    showError('iso-error', t('iso.failed') + errorText(r.body, r.res));
    return; // still armed: the next click tries again
  }
  arm(false);
  showTab('pipes');
  show(r.body.isolation.id, { data: r.body.isolation });
  openList.load();
}

// ---- the shown isolation ----

// Shows an isolation (data: an answer already in hand); reads it (and its
// order) from the server unless given.
async function show(id, { data = null, fit = false } = {}) {
  st.shown = id;
  st.actionError = null;
  if (data) {
    st.data = data;
    if (!data.order) st.order = null;
    else if (st.order && st.order.id !== data.order) st.order = null;
    render();
    if (data.order) refresh();
  } else {
    st.data = null;
    st.order = null;
    render();
    await refresh();
  }
  if (fit) fitShown();
}

function centre(lonlat) {
  const view = st.map?.map?.getView();
  if (view) view.animate({ center: fromLonLat(lonlat), zoom: Math.max(view.getZoom() || 17, 17), duration: 300 });
}

function fitShown() {
  const e = st.iso?.extent();
  if (e && st.map?.map) st.map.map.getView().fit(e, { padding: [40, 40, 40, 40], maxZoom: 18, duration: 300 });
}

// Reads the shown isolation and its repair order again, and redraws.
async function refresh() {
  const id = st.shown;
  if (id === null) return;
  const seq = ++st.seq;
  const epoch = st.epoch;
  const r = await call(`/api/v1/pipes/isolations/${id}`);
  if (epoch !== st.epoch || seq !== st.seq || st.shown !== id) return;
  if (!r.res || !r.res.ok || !r.body || !r.body.isolation) {
    showError('iso-action-error', t('iso.gone') + errorText(r.body, r.res));
    return;
  }
  const iso = r.body.isolation;
  let order = null;
  if (iso.order) {
    const o = await call(`/api/v1/repair-orders/${iso.order}`);
    if (epoch !== st.epoch || seq !== st.seq || st.shown !== id) return;
    if (o.res && o.res.ok && o.body && o.body.order) order = o.body.order;
  }
  st.data = iso;
  st.order = order;
  render();
}

function hide() {
  st.shown = null;
  st.data = null;
  st.order = null;
  st.seq += 1;
  render();
}

function valveItem(v) {
  const li = el('li', 'valve');
  li.dataset.valve = v.id;
  li.dataset.order = v.order;
  li.dataset.reported = v.reported || '';
  li.append(el('span', 'n', String(v.order)), el('span', 'vid', v.id), el('span', 'pos', lonlatText(v.position)));
  if (v.reported === 'closed') li.append(el('span', 'vstate closed', t('iso.reported_closed')));
  if (Number.isFinite(v.from_previous_m)) li.append(el('span', 'dist', tf('iso.from_previous', { d: formatDistance(v.from_previous_m) })));
  li.title = `${v.link} · ${v.node}`;
  if (v.position) li.addEventListener('click', () => centre(v.position));
  return li;
}

function cannotItem(v) {
  const li = el('li', 'valve cannot');
  li.dataset.valve = v.id;
  li.dataset.failed = String(Boolean(v.failed));
  li.append(el('span', 'vid', v.id), el('span', 'pos', lonlatText(v.position)),
    el('span', 'vstate bad', cannotText(v)));
  if (v.position) li.addEventListener('click', () => centre(v.position));
  return li;
}

// Where the panel shows the parts of the answer the crew's page shows too.
const ANSWER_IDS = {
  isolated: 'iso-isolated', dry: 'iso-dry', warn: 'iso-warn', valvesTitle: 'iso-valves-title', valves: 'iso-valves',
  valvesNote: 'iso-valves-note', cannotBox: 'iso-cannot-box', cannot: 'iso-cannot', customers: 'iso-customers',
};

function render() {
  const view = $('iso-view');
  const iso = st.data;
  if (!st.iso) return;
  if (!iso) {
    // None, or being read: nothing of another isolation stays on screen.
    st.iso.clear();
    view.hidden = st.shown === null;
    view.dataset.isolation = st.shown === null ? '' : String(st.shown);
    view.dataset.status = '';
    $('iso-title').textContent = st.shown === null ? '' : tf('iso.title', { id: st.shown });
    for (const id of ['iso-status', 'iso-network-name', 'iso-pipe', 'iso-isolated', 'iso-dry', 'iso-customers',
      'iso-valves-title', 'iso-priority-title']) $(id).textContent = '';
    for (const id of ['iso-isolated', 'iso-dry', 'iso-customers']) $(id).dataset.count = '';
    for (const id of ['iso-valves', 'iso-cannot', 'iso-kinds', 'iso-priority', 'iso-conflicts']) $(id).replaceChildren();
    for (const id of ['iso-warn', 'iso-valves-note', 'iso-cannot-box', 'iso-conflicts-box', 'iso-order',
      'iso-create-order', 'iso-approve', 'iso-cancel']) $(id).hidden = true;
    if (st.shown === null) showError('iso-action-error', null);
    markList();
    return;
  }
  st.iso.show(iso);
  const a = iso.answer;
  view.hidden = false;
  view.dataset.isolation = String(iso.id);
  view.dataset.status = iso.status;
  $('iso-title').textContent = tf('iso.title', { id: iso.id });
  const status = $('iso-status');
  status.dataset.status = iso.status;
  status.textContent = tName('iso.status', iso.status);
  $('iso-network-name').textContent = netName(iso.network);
  $('iso-pipe').textContent = iso.pipe;
  const hasIncident = Boolean(iso.incident);
  $('iso-incident-dt').hidden = !hasIncident;
  $('iso-incident').hidden = !hasIncident;
  $('iso-incident').textContent = iso.incident || '';

  showAnswer(ANSWER_IDS, iso, { valveItem, cannotItem });
  if (a) $('iso-isolated').dataset.length = String(a.isolated.length_m);
  $('iso-cannot-title').textContent = tf('iso.cannot', { n: ((a && a.cannot_close) || []).length });

  const c = a && a.customers;
  $('iso-kinds').replaceChildren(...Object.entries((c && c.by_kind) || {})
    .sort((x, y) => y[1] - x[1])
    .map(([kind, n]) => {
      const li = el('li');
      li.dataset.kind = kind;
      li.append(el('span', 'kind', tName('ckind', kind)), el('span', 'n', String(n)));
      return li;
    }));
  const prio = (c && c.priority_list) || [];
  $('iso-priority-title').textContent = tf('iso.priority', { n: prio.length });
  $('iso-priority').replaceChildren(...(prio.length ? prio.map((p) => {
    const li = el('li', 'customer');
    li.dataset.id = p.id;
    li.dataset.kind = p.kind;
    li.append(el('span', 'name', p.name || p.id), el('span', 'kind', tName('ckind', p.kind)), partTag(p));
    if (p.position) li.addEventListener('click', () => centre(p.position));
    return li;
  }) : [el('li', 'empty', t('iso.priority_none'))]));

  const conflicts = iso.conflicts || [];
  $('iso-conflicts-box').hidden = conflicts.length === 0;
  $('iso-conflicts-title').textContent = tf('iso.conflicts', { n: conflicts.length });
  $('iso-conflicts').replaceChildren(...conflicts.map((x) => {
    const li = el('li', 'conflict', tf('iso.conflict', {
      id: x.isolation, status: tName('iso.status', x.status), extra: x.extra_customers, prio: x.extra_priority,
    }));
    li.dataset.isolation = x.isolation;
    li.addEventListener('click', () => show(x.isolation, { fit: true }));
    return li;
  }));

  renderOrder();
  const open = OPEN.has(iso.status);
  const mayIsolate = hasRole(st.user, ISOLATORS);
  $('iso-create-order').hidden = !(open && mayIsolate && !(st.order && !['closed', 'cancelled'].includes(st.order.status)));
  $('iso-cancel').hidden = !(open && mayIsolate);
  $('iso-approve').hidden = !(st.order && st.order.awaiting_approval && hasRole(st.user, APPROVERS));
  showError('iso-action-error', st.actionError);
  markList();
}

function renderOrder() {
  const box = $('iso-order');
  const o = st.order;
  const id = st.data && st.data.order;
  box.hidden = !id;
  box.dataset.order = id ? String(id) : '';
  box.dataset.status = o ? o.status : '';
  if (!id) return;
  $('iso-order-line').textContent = tf('iso.order_line', { id, status: o ? tName('repair.status', o.status) : '…' });
  const crew = o && o.crew ? (o.crew.call_sign || o.crew.id) : t('iso.no_crew');
  $('iso-order-crew').textContent = `${t('iso.crew')}: ${crew}`;
  const ap = $('iso-order-approval');
  if (o && o.awaiting_approval) {
    ap.dataset.state = 'awaiting';
    ap.textContent = t('iso.awaiting');
  } else if (o && o.approved_by) {
    ap.dataset.state = 'approved';
    ap.textContent = tf('iso.approved_by', { who: o.approved_by });
  } else {
    ap.dataset.state = '';
    ap.textContent = '';
  }
}

async function action(button, path, data, after) {
  const id = st.shown;
  const epoch = st.epoch;
  button.disabled = true;
  st.actionError = null;
  showError('iso-action-error', null);
  const r = await postJson(path, data);
  button.disabled = false;
  if (epoch !== st.epoch || st.shown !== id) return;
  if (!r.res || !r.res.ok) {
    st.actionError = t('iso.refused') + errorText(r.body, r.res);
    showError('iso-action-error', st.actionError);
    return;
  }
  if (after) after(r.body);
  refresh();
  openList.load();
}

function createOrder() {
  if (st.shown === null) return;
  action($('iso-create-order'), '/api/v1/repair-orders', { isolation: st.shown }, (body) => {
    if (body && body.order) {
      st.order = body.order;
      if (st.data) st.data.order = body.order.id;
      render();
    }
  });
}

function approve() {
  if (!st.order) return;
  action($('iso-approve'), `/api/v1/repair-orders/${st.order.id}/approve`, {}, (body) => {
    if (body && body.order) { st.order = body.order; render(); }
  });
}

function cancelIsolation() {
  if (st.shown === null) return;
  action($('iso-cancel'), `/api/v1/pipes/isolations/${st.shown}/cancel`, {}, (body) => {
    if (body && body.isolation) { st.data = body.isolation; render(); }
  });
}

// ---- the open isolations ----

const openList = listReader({
  path: '/api/v1/pipes/isolations', wait: LIST_DEBOUNCE_MS, epoch: () => st.epoch, done: isolationsRead,
});

function isolationsRead(r) {
  if (!r.res || !r.res.ok || !r.body) return;
  st.list = r.body.isolations || [];
  renderList();
}

function renderList() {
  const list = $('iso-list');
  $('iso-count').textContent = String(st.list.length);
  $('iso-list-empty').hidden = st.list.length > 0;
  list.replaceChildren(...st.list.map((i) => {
    const li = el('li', 'iso-item');
    li.tabIndex = 0;
    li.dataset.id = i.id;
    li.dataset.status = i.status;
    const head = el('div', 'iso-item-head');
    const status = el('span', 'status', tName('iso.status', i.status));
    status.dataset.status = i.status;
    head.append(el('span', 'iso-id', `#${i.id}`), el('span', 'what', tf('iso.item', { network: i.network, pipe: i.pipe })), status);
    li.append(head);
    if (i.summary) {
      li.append(el('div', 'iso-item-counts', tf('iso.item_counts', { valves: i.summary.valves, customers: i.summary.customers })));
    }
    const go = () => show(i.id, { fit: true });
    li.addEventListener('click', go);
    li.addEventListener('keydown', (k) => { if (k.key === 'Enter') go(); });
    return li;
  }));
  markList();
}

function markList() {
  for (const li of $('iso-list').children) li.classList.toggle('selected', Number(li.dataset.id) === st.shown);
}

// ---- the live feed ----

export function pipesEvent(ev) {
  if (!st.running) return;
  const type = ev.type || '';
  const d = ev.data || {};
  if (type === 'pipes.valve') {
    if (st.net && d.network && d.id) st.net.setValveState(d.network, d.id, d.state);
    if (st.shown !== null) refresh();
    return;
  }
  if (type.startsWith('pipes.isolation.')) {
    openList.schedule();
    // Its own change, or another isolation of its network (conflicts).
    if (st.shown !== null && (ev.subject === `isolation/${st.shown}` || (st.data && d.network === st.data.network))) refresh();
    return;
  }
  if (type.startsWith('repair.')) {
    openList.schedule();
    const orderId = Number((/^repair-order\/(\d+)$/.exec(ev.subject || '') || [])[1]);
    if (st.shown !== null && (d.isolation === st.shown || (st.data && st.data.order === orderId))) refresh();
  }
}

// After the WebSocket reconnected: what may have changed meanwhile.
export function pipesReconnected() {
  if (!st.running) return;
  openList.load();
  if (st.shown !== null) refresh();
}

// ---- life cycle ----

export function initPipes() {
  $('pipes-on').addEventListener('change', switched);
  $('iso-arm').addEventListener('click', () => { showError('iso-error', null); arm(!st.armed); });
  $('iso-hide').addEventListener('click', hide);
  $('iso-create-order').addEventListener('click', createOrder);
  $('iso-approve').addEventListener('click', approve);
  $('iso-cancel').addEventListener('click', cancelIsolation);
  document.addEventListener('keydown', (k) => { if (k.key === 'Escape' && st.armed) arm(false); });
}

// After the map started; the layer and the tab only for those who may read pipes.
export async function startPipes({ map, user }) {
  st.running = true;
  st.user = user;
  st.map = map;
  const epoch = st.epoch;
  $('pipes-ctl').hidden = true;
  $('tab-pipes').hidden = true;
  if (!hasRole(st.user, READERS)) return;
  const r = await call('/api/v1/pipes/networks');
  if (epoch !== st.epoch) return;
  st.networks = (r.res && r.res.ok && r.body && r.body.networks) || [];
  if (st.networks.length === 0) return;
  st.net = new NetworkLayer();
  st.iso = new IsolationLayer();
  map.map?.addLayer(st.net.layer);
  map.map?.addLayer(st.iso.layer);
  map.clickHook = mapClick;
  const select = $('iso-network');
  const any = select.options[0];
  select.replaceChildren(any, ...st.networks.map((n) => {
    const o = el('option', '', netName(n.name));
    o.value = n.name;
    return o;
  }));
  $('pipes-ctl').hidden = false;
  $('tab-pipes').hidden = false;
  $('iso-arm').hidden = !hasRole(st.user, ISOLATORS);
  select.hidden = !hasRole(st.user, ISOLATORS);
  if ($('pipes-on').checked) switched();
  render();
  openList.load();
  // For the tests: what the map draws, and where a place is on screen.
  window.citycmdPipes = {
    drawn: () => (st.iso ? st.iso.drawn() : null),
    network: () => (st.net ? st.net.counts() : null),
    shown: () => st.shown,
    armed: () => st.armed,
  };
}

export function stopPipes() {
  st.running = false;
  st.epoch += 1;
  openList.cancel();
  arm(false);
  if (st.map) {
    if (st.map.map && st.net) st.map.map.removeLayer(st.net.layer);
    if (st.map.map && st.iso) st.map.map.removeLayer(st.iso.layer);
    st.map.clickHook = null;
  }
  st.net = null;
  st.iso = null;
  st.map = null;
  st.user = null;
  st.networks = [];
  st.list = [];
  st.shown = null;
  st.data = null;
  st.order = null;
  st.actionError = null;
  $('iso-view').hidden = true;
  $('iso-list').replaceChildren();
  $('iso-count').textContent = '0';
  $('pipes-ctl').hidden = true;
  $('tab-pipes').hidden = true;
  $('pipes-on').checked = false;
  $('pipes-summary').textContent = '';
  showError('pipes-error', null);
  showError('iso-error', null);
  showError('iso-action-error', null);
}

export function relabelPipes() {
  arm(st.armed);
  const select = $('iso-network');
  for (const o of select.options) if (o.value) o.textContent = netName(o.value);
  summary();
  if (st.data || st.shown !== null) render();
  renderList();
}
