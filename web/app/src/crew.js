// The repair crew's tablet page (/crew.html): the same sign-in as the
// console; the open repair orders of the user's agency (GET
// /api/v1/repair-orders: the server lists those the user may read); an
// order's view with its pipe, status and the buttons of the steps it may
// take next (and approval: who approved, or a supervisor's button), a small
// map of the city's own tiles with the isolated area and the valves to
// close numbered in order, one row per valve with "Closed" and "Failed to
// close" (POST /api/v1/pipes/isolations/{id}/valves/{valve}: a failed valve
// makes the area grow, shown at once), and the customers to notify,
// priority ones first. The order stays current from the event feed
// (repair.* of the order, pipes.isolation.* of its isolation, pipes.valve).
import './field.css';
import './crew.css';
import { auth, hasRole } from './auth.js';
import { $, el, showError } from './dom.js';
import { call, postJson, errorText, listReader } from './request.js';
import { t, tf, tName, formatDistance } from './i18n.js';
import { IsolationMap } from './pipesmap.js';
import { lonlatText, cannotText, partTag, showAnswer } from './isolation.js';
import { runFieldPage } from './fieldpage.js';

const APPROVERS = ['supervisor', 'leader'];
const OPEN = new Set(['proposed', 'planned', 'active']);
const MAX_CUSTOMERS = 300;
const LIST_DEBOUNCE_MS = 250;

const st = {
  epoch: 0, // bumped at sign-out: late answers are dropped
  orders: [],
  shown: null, // the id of the order in view
  order: null, // that order (GET /api/v1/repair-orders/{id}), with isolation_detail
  seq: 0,
  map: null, // IsolationMap
  pending: new Set(), // valves whose report is in flight
};

// ---- the list of orders ----

function showList() {
  st.shown = null;
  st.order = null;
  st.seq += 1;
  if (location.hash) history.replaceState(null, '', location.pathname);
  $('order-view').hidden = true;
  $('orders').hidden = false;
  orderList.load();
}

const orderList = listReader({
  path: '/api/v1/repair-orders', wait: LIST_DEBOUNCE_MS, epoch: () => st.epoch, done: ordersRead,
});

function ordersRead(r) {
  if (!r.res || !r.res.ok || !r.body) {
    showError('orders-error', t('crew.orders_failed') + errorText(r.body, r.res));
    return;
  }
  showError('orders-error', null);
  st.orders = r.body.orders || [];
  renderOrders();
}

function renderOrders() {
  $('orders-empty').hidden = st.orders.length > 0;
  $('order-list').replaceChildren(...st.orders.map((o) => {
    const li = el('li');
    const b = el('button', 'big choice order-choice');
    b.type = 'button';
    b.dataset.id = o.id;
    b.dataset.status = o.status;
    const s = o.summary || {};
    const main = el('span', 'order-main');
    main.append(el('span', 'call', `#${o.id}`), el('span', 'what', tf('crew.item', { network: s.network || '', pipe: s.pipe || '' })));
    const side = el('span', 'order-side');
    const status = el('span', 'pill', tName('repair.status', o.status));
    status.dataset.status = o.status;
    side.append(status);
    if (Number.isFinite(s.customers)) side.append(el('span', 'muted', tf('crew.item_customers', { n: s.customers })));
    if (o.awaiting_approval) side.append(el('span', 'pill warn', t('iso.awaiting')));
    b.append(main, side);
    b.addEventListener('click', () => openOrder(o.id));
    li.append(b);
    return li;
  }));
}

// ---- an order ----

function openOrder(id) {
  st.shown = id;
  st.order = null;
  history.replaceState(null, '', `#order/${id}`);
  $('orders').hidden = true;
  $('order-view').hidden = false;
  $('order-view').dataset.order = String(id);
  showError('order-error', null);
  showError('valve-error', null);
  renderOrder();
  loadOrder();
}

async function loadOrder() {
  const id = st.shown;
  if (id === null) return;
  const seq = ++st.seq;
  const epoch = st.epoch;
  const r = await call(`/api/v1/repair-orders/${id}`);
  if (epoch !== st.epoch || seq !== st.seq || st.shown !== id) return;
  if (!r.res || !r.res.ok || !r.body || !r.body.order) {
    showError('order-error', t('crew.gone') + errorText(r.body, r.res));
    return;
  }
  st.order = r.body.order;
  renderOrder();
}

function iso() {
  return st.order && st.order.isolation_detail;
}

function renderOrder() {
  const o = st.order;
  const view = $('order-view');
  $('order-title').textContent = tf('crew.order', { id: st.shown });
  if (!o) {
    // Being read: nothing of another order stays on screen.
    for (const id of ['order-pipe', 'order-network', 'order-status', 'order-crew', 'order-approval']) $(id).textContent = '';
    $('order-status').dataset.status = '';
    $('order-approval').dataset.state = '';
    renderSteps();
    renderIsolation();
    return;
  }
  const i = iso();
  view.dataset.isolation = i ? String(i.id) : String(o.isolation);
  view.dataset.status = o.status;
  $('order-pipe').textContent = i ? i.pipe : '—';
  $('order-network').textContent = i ? `${i.network} (${tName('utility', o.agency)})` : '—';
  const status = $('order-status');
  status.dataset.status = o.status;
  status.textContent = tName('repair.status', o.status);
  $('order-crew').textContent = o.crew ? (o.crew.call_sign || o.crew.id) : t('iso.no_crew');
  const ap = $('order-approval');
  if (o.awaiting_approval) {
    ap.dataset.state = 'awaiting';
    ap.textContent = t('crew.approval.awaiting');
  } else if (o.approved_by) {
    ap.dataset.state = 'approved';
    ap.textContent = tf('crew.approval.approved', { who: o.approved_by });
  } else {
    ap.dataset.state = 'none';
    ap.textContent = t('crew.approval.none');
  }
  renderSteps();
  renderIsolation();
}

function renderSteps() {
  const o = st.order;
  const next = (o && o.next) || [];
  const box = $('step-buttons');
  box.replaceChildren(...next.map((s) => {
    const b = el('button', `big step${s === 'cancelled' ? ' danger' : ''}`, t(`repair.next.${s}`));
    b.type = 'button';
    b.dataset.status = s;
    b.disabled = s === 'in_progress' && o.awaiting_approval;
    b.addEventListener('click', () => setStatus(s, b));
    return b;
  }));
  const note = $('steps-note');
  if (!o) {
    note.hidden = true;
  } else if (!next.length) {
    note.hidden = false;
    note.textContent = t('crew.no_steps');
  } else if (o.awaiting_approval) {
    note.hidden = false;
    note.textContent = t('crew.needs_approval');
  } else {
    note.hidden = true;
  }
  $('order-approve').hidden = !(o && o.awaiting_approval && hasRole(auth.user, APPROVERS));
}

async function setStatus(status, button) {
  const id = st.shown;
  const epoch = st.epoch;
  showError('order-error', null);
  button.disabled = true;
  const r = await postJson(`/api/v1/repair-orders/${id}/status`, { status });
  button.disabled = false;
  if (epoch !== st.epoch || st.shown !== id) return;
  if (!r.res || !r.res.ok || !r.body || !r.body.order) {
    showError('order-error', t('crew.refused') + errorText(r.body, r.res));
    return;
  }
  st.seq += 1; // an older read in flight must not undo this
  st.order = r.body.order;
  renderOrder();
  orderList.schedule();
}

async function approve() {
  const id = st.shown;
  const epoch = st.epoch;
  const b = $('order-approve');
  showError('order-error', null);
  b.disabled = true;
  const r = await postJson(`/api/v1/repair-orders/${id}/approve`, {});
  b.disabled = false;
  if (epoch !== st.epoch || st.shown !== id) return;
  if (!r.res || !r.res.ok || !r.body || !r.body.order) {
    showError('order-error', t('crew.refused') + errorText(r.body, r.res));
    return;
  }
  st.seq += 1;
  st.order = r.body.order;
  renderOrder();
}

// ---- the isolation: map, valves, customers ----

function ensureMap() {
  if (st.map) return;
  st.map = new IsolationMap($('iso-map'));
  st.map.start();
}

function reportButtons(v, open) {
  const wrap = el('div', 'report');
  for (const result of ['closed', 'failed']) {
    const b = el('button', `big report-${result}`, t(result === 'closed' ? 'crew.closed' : 'crew.failed'));
    b.type = 'button';
    b.dataset.result = result;
    b.dataset.testid = `valve-${result}`;
    const pressed = result === 'closed' ? v.reported === 'closed' : Boolean(v.failed);
    b.setAttribute('aria-pressed', String(pressed));
    b.disabled = !open || st.pending.has(v.id);
    b.addEventListener('click', () => report(v.id, result));
    wrap.append(b);
  }
  return wrap;
}

function valveRow(v, open, { cannot = false } = {}) {
  const li = el('li', `valve-row${cannot ? ' cannot' : ''}`);
  li.dataset.valve = v.id;
  if (v.order) li.dataset.order = v.order;
  li.dataset.reported = v.reported || (v.failed ? 'failed' : '');
  const info = el('button', 'valve-info');
  info.type = 'button';
  if (v.order) info.append(el('span', 'n', String(v.order)));
  const text = el('span', 'valve-text');
  text.append(el('span', 'vid', v.id), el('span', 'pos', lonlatText(v.position)));
  let state;
  if (cannot) state = cannotText(v);
  else state = t(v.reported === 'closed' ? 'crew.reported_closed' : 'crew.to_close');
  const stateEl = el('span', `vstate ${cannot ? 'bad' : v.reported === 'closed' ? 'ok' : ''}`, state);
  text.append(stateEl);
  if (Number.isFinite(v.from_previous_m)) text.append(el('span', 'dist muted', tf('iso.from_previous', { d: formatDistance(v.from_previous_m) })));
  info.append(text);
  if (v.position) info.addEventListener('click', () => st.map?.centre(v.position));
  li.append(info);
  // A valve that could not be closed may still be reported closed after all;
  // an inoperable one (not this isolation's report) is the network's state.
  if (!cannot || v.failed) li.append(reportButtons(v, open));
  return li;
}

async function report(valve, result) {
  const i = iso();
  if (!i || st.pending.has(valve)) return;
  const id = st.shown;
  const epoch = st.epoch;
  st.pending.add(valve);
  showError('valve-error', null);
  renderIsolation();
  const r = await postJson(`/api/v1/pipes/isolations/${i.id}/valves/${encodeURIComponent(valve)}`, { result });
  st.pending.delete(valve);
  if (epoch !== st.epoch || st.shown !== id) return;
  if (!r.res || !r.res.ok || !r.body || !r.body.isolation) {
    showError('valve-error', t('crew.refused') + errorText(r.body, r.res));
    renderIsolation();
    return;
  }
  st.seq += 1;
  st.order = { ...st.order, isolation_detail: r.body.isolation };
  renderIsolation();
}

// Where this page shows the parts of the answer the console shows too.
const ANSWER_IDS = {
  isolated: 'iso-isolated', dry: 'iso-dry', warn: 'iso-warn', valvesTitle: 'valves-title', valves: 'valve-list',
  valvesNote: 'valves-note', cannotBox: 'cannot-box', cannot: 'cannot-list', customers: 'cust-summary',
};

function renderIsolation() {
  const i = iso();
  ensureMap();
  st.map.show(i || null);
  const open = Boolean(i && OPEN.has(i.status));
  const a = showAnswer(ANSWER_IDS, i, {
    valveItem: (v) => valveRow(v, open),
    cannotItem: (v) => valveRow(v, open, { cannot: true }),
  });

  const c = a && a.customers;
  const prio = (c && c.priority_list) || [];
  const seen = new Set(prio.map((p) => p.id));
  const rest = ((c && c.list) || []).filter((p) => !seen.has(p.id));
  const all = [...prio.map((p) => ({ ...p, priority: true })), ...rest];
  const shown = all.slice(0, MAX_CUSTOMERS);
  $('cust-list').replaceChildren(...shown.map((p) => {
    const li = el('li', `cust${p.priority ? ' priority' : ''}`);
    li.dataset.id = p.id;
    li.dataset.kind = p.kind;
    li.dataset.priority = String(Boolean(p.priority));
    const head = el('span', 'cust-name', p.name || p.id);
    const meta = el('span', 'cust-meta');
    meta.append(el('span', 'kind', tName('ckind', p.kind)));
    if (p.units > 1) meta.append(el('span', 'muted', `× ${p.units}`));
    meta.append(partTag(p));
    li.append(head, meta);
    if (p.position) li.addEventListener('click', () => st.map?.centre(p.position));
    return li;
  }));
  const more = (c ? c.count : 0) - shown.length;
  $('cust-more').hidden = more <= 0;
  $('cust-more').textContent = more > 0 ? tf('crew.more', { n: more }) : '';
}

// ---- the live feed ----

function onEvent(ev) {
  const type = ev.type || '';
  if (type.startsWith('repair.')) {
    orderList.schedule();
    if (st.shown !== null && ev.subject === `repair-order/${st.shown}`) loadOrder();
    return;
  }
  const i = iso();
  if (type.startsWith('pipes.isolation.')) {
    if (i && ev.subject === `isolation/${i.id}`) loadOrder();
    orderList.schedule();
  } else if (type === 'pipes.valve' && st.shown !== null) {
    loadOrder();
  }
}

// ---- the page ----

runFieldPage({
  title: 'crew.title',
  main: 'crew',
  init() {
    $('orders-refresh').addEventListener('click', orderList.load);
    $('order-back').addEventListener('click', showList);
    $('order-approve').addEventListener('click', approve);
  },
  enter(conn) {
    window.citycmdCrew = { conn, st, drawn: () => (st.map ? st.map.iso.drawn() : null) };
    const m = /^#order\/(\d+)$/.exec(location.hash);
    if (m) openOrder(Number(m[1]));
    else showList();
  },
  leave() {
    st.epoch += 1;
    orderList.cancel();
    st.orders = [];
    st.shown = null;
    st.order = null;
    st.pending.clear();
    st.map?.stop();
    st.map = null;
    $('iso-map').replaceChildren();
    $('order-list').replaceChildren();
    $('order-view').hidden = true;
    $('orders').hidden = false;
  },
  onEvent,
  // Back after a break: read again what the feed may have missed.
  onConnected() {
    orderList.load();
    if (st.shown !== null) loadOrder();
  },
  relabel() {
    renderOrders();
    if (st.shown !== null) renderOrder();
  },
});
