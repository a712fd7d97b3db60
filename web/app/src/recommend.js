// Who goes: the "Units to send" section of the selected incident's detail.
// For each slot of the response plan (GET /api/v1/incidents/{id}/
// recommendations): the kind and count, the units already assigned (each
// with a Release button) and the units that could go, ranked by their
// travel time by road, the plan's choice ticked; "Send the plan" assigns
// the plan's choice at once, "Send selected" what is ticked. The routes of
// the recommended units (dashed) and of the assigned ones (solid) are drawn
// on the map while the incident is selected.
//
// The recommendation is read when the incident is selected, after each
// assignment or release, and when an event of a unit in it (or of the
// incident) arrives — then at most once every REFRESH_MIN_MS, as the feed
// can bring many; and the server pushes a new one as units move (the
// WebSocket message "recommendations", followed while it is selected). Answers that arrive after another incident was selected
// (or after sign-out) are dropped.
import { api, hasRole } from './auth.js';
import { $, el } from './dom.js';
import { t, tf, tName, formatDuration, formatDistance } from './i18n.js';

const REFRESH_MIN_MS = 2000;
const DISPATCHERS = ['dispatcher', 'supervisor']; // incidents.update: who may send
const MOVED_M = 50; // an assigned unit's route is asked again when it moved farther

const st = {
  running: false,
  epoch: 0, // bumped at each change of incident and at sign-out
  user: null,
  map: null,
  incident: null, // the id shown, or null
  body: null, // the last answer, or null
  state: '', // '', 'loading', 'error'
  error: '', // the text of a failed read
  checked: new Map(), // id -> ticked, where the dispatcher changed the plan's choice
  known: new Map(), // id -> { call_sign, kind, status } of units seen
  asking: new Set(), // ids whose unit is being read
  routes: new Map(), // assigned id -> { from: [lon, lat], coordinates } to the target
  busy: false, // an assignment or release in flight
  seq: 0,
  timer: null,
  lastLoad: 0,
};

function callSign(id) {
  const u = st.known.get(id);
  return (u && u.call_sign) || id;
}

function remember(u) {
  if (!u || !u.id) return;
  const old = st.known.get(u.id) || {};
  st.known.set(u.id, {
    call_sign: u.call_sign || old.call_sign, kind: u.kind || old.kind, status: u.status || old.status,
  });
}

// Every id the recommendation names: their events cause a new read.
function namedIds() {
  const b = st.body;
  if (!b) return new Set();
  const ids = new Set([...(b.unreachable || []), ...(b.unplaced || [])]);
  for (const slot of b.slots || []) {
    for (const id of slot.assigned || []) ids.add(id);
    for (const u of slot.units || []) ids.add(u.id);
  }
  return ids;
}

function showError(text) {
  const p = $('rec-error');
  p.hidden = !text;
  p.textContent = text || '';
}

function showResult(text) {
  const p = $('rec-result');
  p.hidden = !text;
  p.textContent = text || '';
}

// ---- reading ----

function schedule() {
  if (!st.incident || st.timer) return;
  const wait = Math.max(0, st.lastLoad + REFRESH_MIN_MS - Date.now());
  st.timer = setTimeout(() => { st.timer = null; load(); }, wait);
}

async function load() {
  clearTimeout(st.timer);
  st.timer = null;
  const id = st.incident;
  if (!id) return;
  st.lastLoad = Date.now();
  const seq = ++st.seq;
  const epoch = st.epoch;
  let res;
  let body;
  try {
    res = await api(`/api/v1/incidents/${encodeURIComponent(id)}/recommendations`);
    body = await res.json().catch(() => ({}));
  } catch {
    res = null;
  }
  if (epoch !== st.epoch || seq !== st.seq) return;
  if (!res || !res.ok) {
    if (res && res.status === 401) return;
    const code = body && body.error && body.error.code;
    st.body = null;
    st.state = 'error';
    if (code === 'not_routable') st.error = t('rec.not_routable');
    else if (code === 'no_road_graph') st.error = t('rec.no_road_graph');
    else st.error = t('rec.failed') + (res ? ((body && body.error && body.error.message) || String(res.status)) : t('auth.unreachable'));
    st.errorCode = code || '';
    render();
    return;
  }
  apply(body);
}

// A recommendation (read, or pushed by the server) on screen.
function apply(body) {
  st.body = body;
  st.state = '';
  for (const slot of body.slots || []) for (const u of slot.units || []) remember(u);
  render();
  readUnknown();
  drawRoutes();
}

// Asks the server to push this screen the incident's recommendations as
// units move (the WebSocket message "recommendations"); null stops.
function follow(id) {
  if (st.send) st.send('recommendations', { incident: id || null });
}

// The assigned units the recommendation names by id only.
async function readUnknown() {
  const epoch = st.epoch;
  for (const slot of (st.body && st.body.slots) || []) {
    for (const id of slot.assigned || []) {
      if (st.known.has(id) || st.asking.has(id)) continue;
      st.asking.add(id);
      api(`/api/v1/units/${encodeURIComponent(id)}`)
        .then((res) => (res.ok ? res.json() : null))
        .then((b) => {
          st.asking.delete(id);
          if (epoch !== st.epoch || !b || !b.unit) return;
          remember(b.unit);
          render();
        })
        .catch(() => st.asking.delete(id));
    }
  }
}

// ---- the routes on the map ----

function metres(a, b) {
  const k = Math.cos((b[1] * Math.PI) / 180);
  return Math.hypot((a[0] - b[0]) * 111320 * k, (a[1] - b[1]) * 110540);
}

// The recommended units' routes come with the recommendation; an assigned
// unit's is asked from its place on the map to the incident's road point
// (again only when it moved more than MOVED_M).
async function drawRoutes() {
  const b = st.body;
  if (!st.map || !b) { st.map?.setRoutes(null); return; }
  const routes = [];
  const assigned = new Set();
  for (const slot of b.slots || []) {
    for (const u of slot.units || []) {
      if (u.recommended && u.route) {
        routes.push({ id: u.id, kind: u.kind, coordinates: u.route.coordinates, dashed: true });
      }
    }
    for (const id of slot.assigned || []) assigned.add(id);
  }
  for (const id of [...st.routes.keys()]) if (!assigned.has(id)) st.routes.delete(id);
  const target = b.target;
  const epoch = st.epoch;
  const asks = [];
  if (target) {
    for (const id of assigned) {
      const at = st.map.unitPosition(id);
      if (!at) continue;
      const held = st.routes.get(id);
      if (held && metres(held.from, at) <= MOVED_M) continue;
      asks.push(api(`/api/v1/route?from=${at[0].toFixed(7)},${at[1].toFixed(7)}&to=${target.lon},${target.lat}`)
        .then((res) => (res.ok ? res.json() : null))
        .then((r) => { if (r && r.route && epoch === st.epoch) st.routes.set(id, { from: at, coordinates: r.route.coordinates }); })
        .catch(() => {}));
    }
  }
  const show = () => {
    if (epoch !== st.epoch || !st.map) return;
    const all = [...routes];
    for (const [id, r] of st.routes) {
      all.push({ id, kind: (st.known.get(id) || {}).kind, coordinates: r.coordinates, dashed: false });
    }
    st.map.setRoutes(all);
  };
  show();
  if (asks.length) {
    await Promise.all(asks);
    show();
  }
}

// ---- drawing ----

function badge(cls, key, title) {
  const b = el('span', `badge ${cls}`, t(key));
  if (title) b.title = t(title);
  return b;
}

function candidate(u) {
  const li = el('li', 'cand');
  li.dataset.id = u.id;
  li.dataset.recommended = String(Boolean(u.recommended));
  const label = el('label');
  const box = el('input', 'pick');
  box.type = 'checkbox';
  box.checked = st.checked.has(u.id) ? st.checked.get(u.id) : Boolean(u.recommended);
  box.disabled = st.busy;
  box.addEventListener('change', () => {
    st.checked.set(u.id, box.checked);
    renderButtons();
  });
  const eta = el('span', 'eta', formatDuration(u.eta_ms / 1000));
  eta.title = t('rec.eta_title');
  eta.dataset.ms = u.eta_ms;
  const dist = el('span', 'dist', formatDistance(u.distance_m));
  dist.dataset.m = u.distance_m;
  const status = el('span', 'ustatus', tName('unit.status', u.status || ''));
  status.dataset.status = u.status || '';
  label.append(box, el('span', 'call', u.call_sign || u.id), status, eta, dist);
  if (u.recommended) label.append(badge('recommended', 'rec.recommended'));
  if (u.diversion) label.append(badge('diversion', 'rec.diversion', 'rec.diversion_title'));
  if (u.own_district) label.append(badge('own', 'rec.own_district'));
  li.append(label);
  return li;
}

function assignedItem(id) {
  const li = el('li', 'assigned-unit');
  li.dataset.id = id;
  const u = st.known.get(id) || {};
  const status = el('span', 'ustatus', u.status ? tName('unit.status', u.status) : '');
  status.dataset.status = u.status || '';
  const release = el('button', 'release', t('rec.release'));
  release.type = 'button';
  release.disabled = st.busy;
  release.addEventListener('click', () => send('release', [id]));
  li.append(el('span', 'call', callSign(id)), status, release);
  return li;
}

function slotItem(slot) {
  const li = el('li', 'slot');
  li.dataset.kind = slot.kind;
  li.dataset.count = slot.count;
  li.dataset.missing = slot.missing || 0;
  const head = el('div', 'slot-head');
  head.append(el('span', 'slot-kind', tName('unit.kind', slot.kind)),
    el('span', 'slot-need', tf('rec.need', { n: slot.count })));
  const assigned = slot.assigned || [];
  if (assigned.length) head.append(el('span', 'slot-assigned', tf('rec.assigned_n', { n: assigned.length })));
  if (slot.missing) head.append(el('span', 'slot-missing', tf('rec.missing', { n: slot.missing })));
  li.append(head);
  if (assigned.length) {
    const ul = el('ul', 'assigned');
    ul.append(...assigned.map(assignedItem));
    li.append(ul);
  }
  const units = slot.units || [];
  if (units.length) {
    const ol = el('ol', 'ranked');
    ol.append(...units.map(candidate));
    li.append(ol);
  } else if (assigned.length < slot.count) {
    li.append(el('p', 'slot-none', t('rec.none')));
  }
  return li;
}

function recommendedIds() {
  const ids = [];
  for (const slot of (st.body && st.body.slots) || []) {
    for (const u of slot.units || []) if (u.recommended) ids.push(u.id);
  }
  return ids;
}

function checkedIds() {
  return [...document.querySelectorAll('#rec-slots input.pick:checked')].map((b) => b.closest('li').dataset.id);
}

function renderButtons() {
  $('rec-send-plan').disabled = st.busy || recommendedIds().length === 0;
  $('rec-send-selected').disabled = st.busy || checkedIds().length === 0;
}

function render() {
  const box = $('recommend');
  if (!box) return;
  box.hidden = !st.incident;
  if (!st.incident) return;
  box.dataset.incident = st.incident;
  box.dataset.state = st.state || (st.body ? 'ready' : 'loading');
  const note = $('rec-note');
  const b = st.body;
  let noteText = '';
  if (st.state === 'loading' && !b) noteText = t('rec.loading');
  else if (b && !b.plan) noteText = t('rec.no_plan');
  note.hidden = !noteText;
  note.textContent = noteText;
  const err = $('rec-load-error');
  err.hidden = st.state !== 'error';
  err.textContent = st.state === 'error' ? st.error : '';
  err.dataset.code = st.state === 'error' ? (st.errorCode || '') : '';
  $('rec-slots').replaceChildren(...((b && b.slots) || []).map(slotItem));
  const extra = [];
  if (b && (b.unplaced || []).length) extra.push(tf('rec.unplaced', { list: b.unplaced.map(callSign).join(', ') }));
  if (b && (b.unreachable || []).length) extra.push(tf('rec.unreachable', { list: b.unreachable.map(callSign).join(', ') }));
  const ex = $('rec-extra');
  ex.hidden = extra.length === 0;
  ex.textContent = extra.join(' · ');
  renderButtons();
}

// ---- sending and releasing ----

async function send(what, ids) {
  const id = st.incident;
  if (!id || !ids.length || st.busy) return;
  const epoch = st.epoch;
  st.busy = true;
  showError(null);
  showResult(null);
  render();
  let res;
  let body;
  try {
    res = await api(`/api/v1/incidents/${encodeURIComponent(id)}/${what}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ units: ids }),
    });
    body = await res.json().catch(() => ({}));
  } catch {
    res = null;
  }
  if (epoch !== st.epoch) return;
  st.busy = false;
  const prefix = what === 'assign' ? t('rec.refused') : t('rec.release_refused');
  if (!res) {
    showError(prefix + t('auth.unreachable'));
  } else if (res.status !== 401) {
    for (const u of (body && body.units) || []) remember(u);
    const refused = (body && body.refused) || [];
    if (refused.length) {
      showError(prefix + refused.map((r) => `${callSign(r.id)} (${r.message || r.code})`).join('; '));
    } else if (!res.ok) {
      showError(prefix + ((body && body.error && body.error.message) || String(res.status)));
    }
    const done = (body && body.units) || [];
    if (what === 'assign' && done.length) showResult(tf('rec.sent', { list: done.map((u) => u.call_sign || u.id).join(', ') }));
    if (res.ok) st.checked.clear();
  }
  render();
  load();
}

// ---- what incidents.js tells ----

// The incident selected in the console (null: none, or it ended): its
// recommendation is read at once and its routes drawn; those of the one
// before are gone.
export function showRecommendations(id) {
  if (!st.running) return;
  const next = id && hasRole(st.user, DISPATCHERS) ? id : null;
  if (next === st.incident) {
    if (next && st.state === 'error') load();
    return;
  }
  st.epoch += 1;
  clearTimeout(st.timer);
  st.timer = null;
  st.incident = next;
  st.body = null;
  st.state = next ? 'loading' : '';
  st.checked.clear();
  st.routes.clear();
  st.busy = false;
  st.lastLoad = 0;
  st.map?.setRoutes(null);
  showError(null);
  showResult(null);
  render();
  follow(next);
  if (next) load();
}

// An event of the feed: one of a unit the recommendation names, or of the
// incident itself, causes a new read (at most one every REFRESH_MIN_MS).
export function recommendEvent(ev) {
  if (!st.running || !st.incident) return;
  const d = ev.data || {};
  if (/^unit\./.test(ev.type)) {
    if (!d.unit) return;
    if (ev.type === 'unit.status' && st.known.has(d.unit)) remember({ id: d.unit, status: d.to });
    if (namedIds().has(d.unit)) schedule();
  } else if (/^incident\./.test(ev.type) && ev.subject === `incident/${st.incident.replace(/^I-/, '')}`) {
    schedule();
  }
}

export function startRecommend({ map, user, send }) {
  st.running = true;
  st.map = map;
  st.user = user;
  st.send = send || null;
}

// A message of the WebSocket: a pushed recommendation for the incident on
// screen (newer than any read in flight, which is then dropped).
export function recommendLive(msg) {
  if (!st.running || msg.type !== 'recommendations' || msg.re || !st.incident) return;
  const d = msg.data || {};
  if (d.incident !== st.incident) return;
  st.seq += 1;
  apply(d);
}

// After a reconnection: the server forgot what this screen followed.
export function refollowRecommendations() {
  if (st.running && st.incident) follow(st.incident);
}

export function stopRecommend() {
  showRecommendations(null);
  st.running = false;
  st.epoch += 1;
  st.map = null;
  st.user = null;
  st.send = null;
  st.known.clear();
  st.asking.clear();
}

export function relabelRecommend() {
  if (st.state === 'error' && st.errorCode === 'not_routable') st.error = t('rec.not_routable');
  if (st.state === 'error' && st.errorCode === 'no_road_graph') st.error = t('rec.no_road_graph');
  render();
}

// Once, at page load.
export function initRecommend() {
  $('rec-send-plan').addEventListener('click', () => send('assign', recommendedIds()));
  $('rec-send-selected').addEventListener('click', () => send('assign', checkedIds()));
}
