// The units on the console: the status board (every unit this user may
// read, by agency then call sign, with its status, its incident and how
// old its last position is; filters by primary status) and the units on
// the map. Positions and statuses come live from the "units" topic of the
// WebSocket (a snapshot of every unit with a position at each
// subscription, then what moved or changed); the registry (GET
// /api/v1/units) adds the units that have not reported a position yet, and
// the unit.* events of the feed keep those up to date. A click on a unit
// centres the map on it and draws its track of the last hour; a second
// click, or another unit, clears it.
import { api, hasRole } from './auth.js';
import { $, el, setText } from './dom.js';
import { t, tf, tName } from './i18n.js';
import { unitKind, primaryColor } from './map.js';
import { showTab } from './incidents.js';

const READERS = ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'];
const PRIMARIES = ['available', 'conditionally_available', 'not_available'];
const AGE_TICK_MS = 1000;

const st = {
  running: false,
  epoch: 0, // bumped at sign-out: answers that arrive later are dropped
  user: null,
  map: null,
  units: new Map(), // id -> unit: the registry's fields and, once known, the newest position
  liveAt: new Map(), // id -> when (performance.now()) the live feed last changed it
  items: new Map(), // id -> its <li> on the board
  dirty: new Set(), // ids whose item is to be filled again
  reorder: false, // a unit came, went, or changed call sign or agency
  renderTimer: null,
  filter: 'all',
  selected: null,
  track: null, // { key, n } of the note under the filters
  trackSeq: 0,
  registrySeq: 0,
  skew: 0, // server clock minus browser clock, ms
  timer: null,
};

// The server's rule for reading a unit (command-centre staff read all;
// others their own agency's, and a leader those of the agencies led).
function mayReadAgency(agency) {
  const u = st.user;
  if (!u || !hasRole(st.user, READERS)) return false;
  if (u.agency === 'command' || u.agency === agency) return true;
  if (!hasRole(st.user, ['leader']) || !u.leads) return false;
  return u.leads === '*' || u.leads.split(',').includes(agency);
}

// The topics this user's console follows for the units.
export function unitsTopics(user) {
  const roles = (user && user.roles ? user.roles : '').split(',');
  return roles.some((r) => READERS.includes(r)) ? ['units'] : [];
}

export function setUnitsClockSkew(ms) {
  st.skew = ms;
}

// ---- the units ----

// A unit as the server now has it; live: it came from the WebSocket.
function upsert(u, { live = true } = {}) {
  if (!u || !u.id) return;
  const old = st.units.get(u.id);
  const merged = old ? { ...old, ...u } : { ...u };
  st.units.set(u.id, merged);
  if (live) st.liveAt.set(u.id, performance.now());
  if (!old || old.call_sign !== merged.call_sign || old.agency !== merged.agency) st.reorder = true;
  st.dirty.add(u.id);
  // The selected unit moved on: its track grew.
  if (st.map?.setUnit(merged) && st.selected === u.id && st.track) {
    const n = st.map.trackCoordinates().length;
    showTrackNote(n === 1 ? 'units.track_one' : 'units.track', n);
  }
  scheduleRender();
}

function remove(id) {
  if (!st.units.has(id)) return;
  st.units.delete(id);
  st.liveAt.delete(id);
  st.map?.removeUnit(id);
  if (st.selected === id) deselect();
  st.reorder = true;
  scheduleRender();
}

// A unit position of the topic: the fields it leaves out are none.
function fromTopic(p) {
  return { ...p, incident: p.incident || null };
}

// The live feed of the "units" topic.
export function unitsLive(msg) {
  if (!st.running) return;
  const d = msg.data || {};
  switch (msg.type) {
    case 'units.snapshot': {
      // It replaces the positions held: a unit not in it has none now
      // (the registry, read again, says whether it is still there).
      const now = new Set((d.units || []).map((u) => u.id));
      for (const [id, u] of st.units) {
        if (!now.has(id) && Number.isFinite(u.lon)) upsert({ id, lon: undefined, lat: undefined, fix_at: undefined });
      }
      for (const u of d.units || []) upsert(fromTopic(u));
      loadRegistry();
      break;
    }
    case 'units':
      for (const u of d.units || []) upsert(fromTopic(u));
      for (const id of d.removed || []) remove(id);
      break;
    default:
      break;
  }
}

// The unit.* events of the feed: what changes the units that have no
// position yet (the topic carries the others too; both agree).
export function unitsEvent(ev) {
  if (!st.running || !/^unit\./.test(ev.type)) return;
  const d = ev.data || {};
  const id = d.unit;
  if (!id) return;
  switch (ev.type) {
    case 'unit.created': {
      const u = { ...d, id };
      delete u.unit;
      delete u.agencies;
      if (mayReadAgency(u.agency)) upsert(u);
      break;
    }
    case 'unit.status':
      if (st.units.has(id)) upsert({ id, status: d.to, primary: d.primary, incident: d.incident || null });
      break;
    case 'unit.updated': {
      if (!st.units.has(id)) {
        if (d.restored) loadRegistry();
        break;
      }
      const change = { id };
      for (const [field, v] of Object.entries(d.changes || {})) change[field] = v && v.to;
      if (change.agency && !mayReadAgency(change.agency)) remove(id);
      else upsert(change);
      break;
    }
    case 'unit.removed':
      remove(id);
      break;
    default:
      break;
  }
}

// The registry: the units that have no position yet, and the ones that
// went while this screen was away. What the live feed changed after the
// question was asked is newer than the answer and stays.
async function loadRegistry() {
  const epoch = st.epoch;
  const seq = ++st.registrySeq;
  const asked = performance.now();
  let body;
  try {
    const res = await api('/api/v1/units');
    if (!res.ok) return;
    body = await res.json();
  } catch {
    return;
  }
  if (epoch !== st.epoch || seq !== st.registrySeq) return;
  const listed = new Set();
  for (const u of body.units || []) {
    listed.add(u.id);
    const held = st.units.get(u.id);
    if (held && (st.liveAt.get(u.id) || 0) > asked) continue;
    upsert({ ...u, incident: u.incident || null }, { live: false });
  }
  for (const id of [...st.units.keys()]) {
    if (!listed.has(id) && (st.liveAt.get(id) || 0) <= asked) remove(id);
  }
}

// ---- the board ----

function byAgencyThenCallSign(a, b) {
  if (a.agency !== b.agency) return (a.agency || '') < (b.agency || '') ? -1 : 1;
  return String(a.call_sign || a.id).localeCompare(String(b.call_sign || b.id), 'en', { numeric: true });
}

// "12 s ago", "3 min ago", "2 h ago".
export function fixAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return tf('units.ago_s', { n: s });
  if (s < 3600) return tf('units.ago_m', { n: Math.floor(s / 60) });
  if (s < 86400) return tf('units.ago_h', { n: Math.floor(s / 3600) });
  return tf('units.ago_d', { n: Math.floor(s / 86400) });
}

function fixText(u) {
  const at = Date.parse(u.fix_at);
  if (!Number.isFinite(at)) return t('units.no_fix');
  return fixAge((Date.now() + st.skew - at) / 1000);
}

function makeItem(id) {
  const li = el('li', 'unit');
  li.dataset.id = id;
  li.tabIndex = 0;
  li.setAttribute('role', 'option');
  li.append(el('span', 'sym'), el('span', 'call'), el('span', 'ustatus'),
    el('span', 'meta'), el('time', 'fix'));
  li.querySelector('.meta').append(el('span', 'kind'), el('span', 'agency'), el('span', 'inc'));
  li.addEventListener('click', () => selectUnit(id));
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectUnit(id); }
  });
  return li;
}

function fillItem(li, u) {
  const k = unitKind(u.kind);
  li.dataset.primary = u.primary || '';
  li.dataset.status = u.status || '';
  li.dataset.agency = u.agency || '';
  li.classList.toggle('selected', st.selected === u.id);
  li.setAttribute('aria-selected', String(st.selected === u.id));
  li.hidden = st.filter !== 'all' && u.primary !== st.filter;
  const sym = li.querySelector('.sym');
  sym.className = `sym primary-${u.primary || 'unknown'}`;
  sym.style.setProperty('--kind-fill', k.fill);
  sym.style.setProperty('--kind-text', k.text);
  sym.style.setProperty('--kind-border', k.border || k.fill);
  sym.style.setProperty('--ring', primaryColor(u.primary));
  setText(sym, k.label);
  sym.title = tName('unit.primary', u.primary || '');
  setText(li.querySelector('.call'), u.call_sign || u.id);
  const status = li.querySelector('.ustatus');
  status.dataset.primary = u.primary || '';
  setText(status, tName('unit.status', u.status || ''));
  setText(li.querySelector('.kind'), tName('unit.kind', u.kind || ''));
  setText(li.querySelector('.agency'), tName('agency', u.agency || ''));
  const inc = li.querySelector('.inc');
  setText(inc, u.incident || '');
  inc.hidden = !u.incident;
  inc.title = t('units.incident');
  const fix = li.querySelector('.fix');
  fix.dateTime = u.fix_at || '';
  fix.title = t('units.fix_title');
  fix.classList.toggle('none', !u.fix_at);
  setText(fix, fixText(u));
}

function scheduleRender() {
  if (st.renderTimer) return;
  st.renderTimer = setTimeout(render, 0);
}

function renderCounts() {
  const counts = { all: st.units.size };
  for (const p of PRIMARIES) counts[p] = 0;
  for (const u of st.units.values()) if (u.primary in counts) counts[u.primary] += 1;
  document.querySelectorAll('#unit-filters [data-filter]').forEach((b) => {
    setText(b.querySelector('.n'), String(counts[b.dataset.filter] || 0));
    b.setAttribute('aria-pressed', String(b.dataset.filter === st.filter));
  });
  setText($('unit-count'), String(st.units.size));
  let shown = 0;
  for (const u of st.units.values()) if (st.filter === 'all' || u.primary === st.filter) shown += 1;
  $('unit-board-empty').hidden = shown > 0;
}

function render({ all = false } = {}) {
  clearTimeout(st.renderTimer);
  st.renderTimer = null;
  const list = $('unit-list');
  for (const [id, li] of st.items) {
    if (!st.units.has(id)) { li.remove(); st.items.delete(id); }
  }
  if (st.reorder || all) {
    const sorted = [...st.units.values()].sort(byAgencyThenCallSign);
    sorted.forEach((u, i) => {
      let li = st.items.get(u.id);
      if (!li) {
        li = makeItem(u.id);
        st.items.set(u.id, li);
        st.dirty.add(u.id);
      }
      if (all) st.dirty.add(u.id);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    st.reorder = false;
  }
  for (const id of st.dirty) {
    const li = st.items.get(id);
    const u = st.units.get(id);
    if (li && u) fillItem(li, u);
  }
  st.dirty.clear();
  renderCounts();
}

function tick() {
  for (const [id, li] of st.items) {
    const u = st.units.get(id);
    if (u && u.fix_at) setText(li.querySelector('.fix'), fixText(u));
  }
}

function setFilter(f) {
  st.filter = f;
  render({ all: true });
}

function showTrackNote(key, n) {
  st.track = key ? { key, n } : null;
  const p = $('unit-track');
  p.hidden = !key;
  p.dataset.state = key || '';
  p.textContent = key ? (n === undefined ? t(key) : tf(key, { n })) : '';
}

// ---- the selected unit and its track ----

function deselect() {
  st.selected = null;
  st.trackSeq += 1;
  st.map?.selectUnit(null);
  st.map?.setTrack(null);
  showTrackNote(null);
  for (const li of st.items.values()) {
    li.classList.remove('selected');
    li.setAttribute('aria-selected', 'false');
  }
}

// A click on a unit (on the board or the map): the map centres on it and
// draws where it went in the last hour; the same unit again clears it.
export function selectUnit(id, { toggle = true } = {}) {
  if (!st.running || !st.units.has(id)) return;
  if (st.selected === id) {
    if (toggle) deselect();
    return;
  }
  deselect();
  st.selected = id;
  const li = st.items.get(id);
  if (li) {
    li.classList.add('selected');
    li.setAttribute('aria-selected', 'true');
    li.scrollIntoView({ block: 'nearest' });
  }
  st.map?.selectUnit(id);
  st.map?.showUnit(id);
  loadTrack(id);
}

async function loadTrack(id) {
  const seq = ++st.trackSeq;
  const epoch = st.epoch;
  showTrackNote('units.track_loading');
  let res;
  let body;
  try {
    res = await api(`/api/v1/units/${encodeURIComponent(id)}/track`);
    body = await res.json().catch(() => ({}));
  } catch {
    res = null;
  }
  if (epoch !== st.epoch || seq !== st.trackSeq || st.selected !== id) return;
  if (!res || !res.ok) {
    const why = res ? ((body && body.error && body.error.message) || String(res.status)) : t('auth.unreachable');
    st.track = null;
    const p = $('unit-track');
    p.hidden = false;
    p.dataset.state = 'failed';
    p.textContent = t('units.track_failed') + why;
    return;
  }
  const positions = (body.positions || []).filter((p) => Number.isFinite(p.lon) && Number.isFinite(p.lat));
  st.map?.setTrack(positions);
  if (positions.length === 0) showTrackNote('units.track_none');
  else showTrackNote(positions.length === 1 ? 'units.track_one' : 'units.track', positions.length);
}

// ---- life cycle ----

// Once, at page load: the controls.
export function initUnits() {
  document.querySelectorAll('#unit-filters [data-filter]').forEach((b) => {
    b.addEventListener('click', () => setFilter(b.dataset.filter));
  });
}

// On sign-in (after the console: the tabs are its).
export function startUnits({ map, user }) {
  st.running = true;
  st.user = user;
  st.map = map;
  const reader = hasRole(st.user, READERS);
  $('tab-units').hidden = !reader;
  map.onUnitClick = (id) => {
    showTab('units');
    selectUnit(id, { toggle: false });
  };
  st.filter = 'all';
  render({ all: true });
  st.timer = setInterval(tick, AGE_TICK_MS);
}

// On sign-out: nothing of the previous user stays on screen.
export function stopUnits() {
  st.running = false;
  st.epoch += 1;
  clearInterval(st.timer);
  st.timer = null;
  deselect();
  st.map?.clearUnits();
  st.units = new Map();
  st.liveAt = new Map();
  st.dirty.clear();
  st.user = null;
  st.map = null;
  st.filter = 'all';
  render({ all: true });
}

// After a change of language: the parts drawn here.
export function relabelUnits() {
  render({ all: true });
  if (st.track) showTrackNote(st.track.key, st.track.n);
}
