// The dispatcher's console: the queue of open incidents (priority first,
// then the oldest), an age timer and the unassigned-P1 alarm on each, the
// detail of the selected incident with its calls, timeline and the changes
// a dispatcher makes (status forward, priority up, a note, the units to
// send: recommend.js), and the call taker's form. The queue and the map
// follow the live board (the "incidents" topic: a snapshot, then each
// incident's new state); the selected incident's calls and timeline are
// read again when it changes.
import { api, hasRole } from './auth.js';
import { $, el, setText } from './dom.js';
import { t, tf, tName, formatTime, formatDuration, addressText } from './i18n.js';
import { districtText, FAMILY_COLORS } from './map.js';
import {
  initRecommend, startRecommend, stopRecommend, showRecommendations, recommendEvent, relabelRecommend,
  recommendLive, refollowRecommendations,
} from './recommend.js';
import { showCamerasNear, renderMedia, cameraName } from './cameras.js';

export { addressText };

// A priority-1 incident still "new" (no unit dispatched) this long after it
// opened is in alarm. Tests shorten it with localStorage ALARM_KEY (seconds).
export const ALARM_UNASSIGNED_S = 60;
const ALARM_KEY = 'citycmd.alarm.unassigned_s';

const TICK_MS = 250;
const STATUSES = ['new', 'dispatched', 'en_route', 'on_scene', 'under_control', 'closed', 'cancelled'];
const FINAL = new Set(['closed', 'cancelled', 'merged']);
const READERS = ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'];
const CALL_TAKERS = ['call_taker', 'dispatcher', 'supervisor'];
const LINES = ['110', '119', '120', '122', '12345'];
const FIELD_INPUTS = {
  line: 'call-line', caller: 'call-caller', category: 'call-category',
  location: 'call-location', 'location.text': 'call-location', text: 'call-text',
};

export function alarmThresholdS() {
  const raw = localStorage.getItem(ALARM_KEY);
  const v = raw === null || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(v) && v >= 0 ? v : ALARM_UNASSIGNED_S;
}

const st = {
  running: false,
  epoch: 0, // bumped at sign-out: answers that arrive later are dropped
  user: null,
  map: null,
  incidents: new Map(), // id -> incident (with calls and timeline once read)
  items: new Map(), // id -> its <li> in the queue
  gone: new Set(), // closed or cancelled (or no longer visible): never shown again
  fetching: new Map(), // id -> true when another read is wanted after this one
  selected: null,
  shown: null, // the incident in the detail pane (may be closed)
  skew: 0, // server clock minus browser clock, ms
  threshold: ALARM_UNASSIGNED_S,
  timer: null,
  catalogue: [],
  pick: null, // { lon, lat, text } of the call being taken
  searchTimer: null,
  searchSeq: 0,
};

// Whether the server lets this user read the incident: the same rule as
// the server's (command-centre staff read all; others their own agency's,
// jointly handled ones included, and a leader those of the agencies led).
// Used only to avoid asking for what would be refused.
function mayRead(inc) {
  const u = st.user;
  if (!u || !hasRole(st.user, READERS)) return false;
  if (u.agency === 'command') return true;
  const agencies = [inc.agency, ...(inc.joint || [])];
  if (agencies.includes(u.agency)) return true;
  if (!hasRole(st.user, ['leader']) || !u.leads) return false;
  return u.leads === '*' || u.leads.split(',').some((a) => agencies.includes(a));
}

export function setClockSkew(ms) {
  st.skew = ms;
}

function ageSeconds(inc) {
  const opened = Date.parse(inc.opened_at);
  if (!Number.isFinite(opened)) return 0;
  return Math.max(0, (Date.now() + st.skew - opened) / 1000);
}

// "3:05", or "1:03:05" past the hour.
export const formatAge = formatDuration;

function inAlarm(inc) {
  return inc.priority === 1 && inc.status === 'new' && ageSeconds(inc) >= st.threshold;
}

function idNumber(id) {
  return Number(String(id).replace(/^I-/, '')) || 0;
}

function byPriorityThenAge(a, b) {
  return (a.priority - b.priority)
    || (Date.parse(a.opened_at) - Date.parse(b.opened_at))
    || (idNumber(a.id) - idNumber(b.id));
}

function placeText(inc) {
  if (inc.address) return addressText(inc.address);
  return inc.location ? `${inc.location.lat.toFixed(5)}, ${inc.location.lon.toFixed(5)}` : '';
}

function callersText(n) {
  return n === 1 ? t('queue.caller') : tf('queue.callers', { n });
}

// ---- the queue ----

function makeItem(id) {
  const li = el('li', 'incident');
  li.dataset.id = id;
  li.tabIndex = 0;
  li.setAttribute('role', 'option');
  const state = el('div', 'state');
  state.append(el('span', 'status'), el('span', 'alarm-text'));
  li.append(el('span', 'prio'), el('span', 'type'), el('time', 'age'), el('span', 'addr'),
    el('span', 'callers'), state);
  li.addEventListener('click', () => selectIncident(id, { center: true }));
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectIncident(id, { center: true }); }
  });
  return li;
}

function updateAge(li, inc) {
  setText(li.querySelector('.age'), formatAge(ageSeconds(inc)));
  const alarm = inAlarm(inc);
  if (li.classList.contains('alarm') !== alarm) li.classList.toggle('alarm', alarm);
  const text = li.querySelector('.alarm-text');
  text.hidden = !alarm;
  setText(text, alarm ? t('queue.alarm') : '');
  return alarm;
}

function fillItem(li, inc) {
  li.dataset.priority = inc.priority;
  li.dataset.status = inc.status;
  li.dataset.family = inc.family;
  li.style.setProperty('--family', FAMILY_COLORS[inc.family] || FAMILY_COLORS.hotline);
  li.classList.toggle('selected', st.selected === inc.id);
  li.setAttribute('aria-selected', String(st.selected === inc.id));
  const prio = li.querySelector('.prio');
  prio.className = `prio p${inc.priority}`;
  prio.textContent = `P${inc.priority}`;
  li.querySelector('.type').textContent = tName('cat', inc.type);
  li.querySelector('.age').dateTime = inc.opened_at;
  const addr = li.querySelector('.addr');
  addr.textContent = placeText(inc);
  addr.title = addr.textContent;
  const callers = li.querySelector('.callers');
  callers.dataset.count = inc.callers;
  callers.textContent = callersText(inc.callers);
  const status = li.querySelector('.status');
  status.dataset.status = inc.status;
  status.textContent = t(`status.${inc.status}`);
  updateAge(li, inc);
}

function renderQueue() {
  const list = $('incident-queue');
  for (const [id, li] of st.items) {
    if (!st.incidents.has(id)) { li.remove(); st.items.delete(id); }
  }
  const sorted = [...st.incidents.values()].sort(byPriorityThenAge);
  sorted.forEach((inc, i) => {
    let li = st.items.get(inc.id);
    if (!li) {
      li = makeItem(inc.id);
      st.items.set(inc.id, li);
    }
    fillItem(li, inc);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  $('incident-count').textContent = String(sorted.length);
  $('incident-queue-empty').hidden = sorted.length > 0 || !hasRole(st.user, READERS);
}

function tick() {
  const alarms = new Set();
  for (const [id, inc] of st.incidents) {
    const li = st.items.get(id);
    if (li && updateAge(li, inc)) alarms.add(id);
  }
  st.map?.setAlarms(alarms);
  if (st.shown && st.incidents.has(st.shown.id)) {
    const age = document.querySelector('#incident-detail .detail-age');
    if (age) setText(age, formatAge(ageSeconds(st.shown)));
  }
}

// ---- the incidents ----

// The incident as the server now has it (a list row, a read, a PATCH
// answer or the data of incident.opened).
function upsert(inc, { render = true } = {}) {
  if (!inc || !inc.id) return;
  if (st.gone.has(inc.id)) {
    if (st.selected === inc.id && FINAL.has(inc.status)) renderDetail(inc);
    return;
  }
  const old = st.incidents.get(inc.id);
  if (old && old.updated_at && inc.updated_at && inc.updated_at < old.updated_at) return; // stale
  const merged = old ? { ...old, ...inc } : { ...inc };
  delete merged.agencies;
  if (FINAL.has(merged.status)) {
    finish(merged);
    return;
  }
  st.incidents.set(merged.id, merged);
  st.map?.setIncident(merged);
  if (render) renderQueue();
  if (st.selected === merged.id) renderDetail(merged);
}

// A closed, cancelled or merged incident (ended) or one this screen no
// longer sees leaves the queue and the map (the detail pane still shows how
// it ended). An ended one never comes back.
function finish(inc, { ended = true, why = '' } = {}) {
  if (ended) st.gone.add(inc.id);
  st.incidents.delete(inc.id);
  st.map?.removeIncident(inc.id);
  renderQueue();
  if (st.selected === inc.id) {
    showRecommendations(null);
    if (why) showDetailError(t('detail.gone') + why);
    else renderDetail(inc);
  }
}

// Reads one incident again (its calls and timeline, for the detail pane);
// reads of one incident never overlap, and changes that arrive during a
// read cause one more read after it.
async function refresh(id) {
  if (st.fetching.has(id)) {
    st.fetching.set(id, true);
    return;
  }
  const epoch = st.epoch;
  const fetching = st.fetching;
  fetching.set(id, false);
  try {
    do {
      fetching.set(id, false);
      const res = await api(`/api/v1/incidents/${id}`);
      if (epoch !== st.epoch) return;
      const body = await res.json().catch(() => ({}));
      if (epoch !== st.epoch) return;
      if (res.ok) {
        upsert(body.incident);
      } else if (res.status === 403 || res.status === 404) {
        const inc = st.incidents.get(id) || { id };
        finish(inc, { why: (body.error && body.error.message) || String(res.status) });
        return;
      }
    } while (fetching.get(id));
  } catch {
    /* the next change of the incident reads it again */
  } finally {
    fetching.delete(id);
  }
}

// The topics this user's console follows on the WebSocket.
export function consoleTopics() {
  return hasRole(st.user, READERS) ? ['events', 'incidents'] : ['events'];
}

// The live board, from the "incidents" topic: a snapshot of every open
// incident this user may see at each (re)subscription, then each change
// (the whole incident when it is new to this screen, else the fields that
// changed), and a removal when one ends.
export function consoleLive(msg) {
  if (!st.running) return;
  if (msg.type === 'recommendations') {
    recommendLive(msg);
    return;
  }
  const d = msg.data || {};
  switch (msg.type) {
    case 'incidents.snapshot': {
      const open = new Set((d.incidents || []).map((i) => i.id));
      // Shown but not in the snapshot: it ended while this screen was away.
      for (const [id, inc] of [...st.incidents]) if (!open.has(id)) finish(inc);
      for (const inc of d.incidents || []) upsert(inc, { render: false });
      renderQueue();
      if (st.selected && open.has(st.selected)) refresh(st.selected);
      break;
    }
    case 'incident':
      upsert(d);
      break;
    case 'incident.changed':
      // The fields that changed, for an incident this screen holds.
      if (st.incidents.has(d.id)) upsert(d);
      break;
    case 'incident.removed': {
      const inc = d.incident || st.incidents.get(d.id) || { id: d.id };
      finish(inc, { ended: d.reason === 'ended' });
      break;
    }
    default:
      break;
  }
}

// Reads an incident again now (after a change made elsewhere on screen: a
// snapshot or a clip attached to it).
export function reloadIncident(id) {
  if (st.running && id) refresh(id);
}

// Every event of the feed passes here: the selected incident's timeline
// and calls are read again when it changes.
export function consoleEvent(ev) {
  if (!st.running) return;
  recommendEvent(ev);
  if (!/^(incident|call)\./.test(ev.type)) return;
  const m = /^incident\/(\d+)$/.exec(ev.subject || '');
  if (m && st.selected === `I-${m[1]}`) refresh(st.selected);
}

// ---- the detail ----

export function selectIncident(id, { center = false } = {}) {
  if (!st.running) return;
  st.selected = id;
  for (const [iid, li] of st.items) {
    li.classList.toggle('selected', iid === id);
    li.setAttribute('aria-selected', String(iid === id));
  }
  st.items.get(id)?.scrollIntoView({ block: 'nearest' });
  st.map?.selectIncident(id);
  if (center) st.map?.showIncident(id);
  $('incident-error').hidden = true;
  showTab('detail');
  renderDetail(st.incidents.get(id) || null);
  showRecommendations(st.gone.has(id) ? null : id);
  refresh(id);
}

function showDetailError(text) {
  const err = $('incident-error');
  err.textContent = text;
  err.hidden = false;
}

function fact(dl, key, value) {
  const dt = el('dt', '', t(key));
  dt.dataset.i18n = key;
  const dd = el('dd');
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  dl.append(dt, dd);
  return dd;
}

function timelineSummary(e) {
  const d = e.data || {};
  switch (e.type) {
    case 'incident.opened':
      return `${tName('cat', d.type || '')} · P${d.priority || ''}`;
    case 'call.received': {
      const c = d.call || {};
      return `${c.line || ''} ${c.caller || ''}${d.joined ? ` (${t('event.joined')})` : ''}`;
    }
    case 'incident.status':
      return `${t(`status.${d.from}`)} → ${t(`status.${d.to}`)}`;
    case 'incident.priority':
      return `P${d.from} → P${d.to}`;
    case 'incident.level':
      return d.to || '—';
    case 'incident.note':
      return d.text || '';
    case 'incident.media': {
      // A snapshot or a clip of a camera (or why it could not be made).
      const m = d.media || d;
      const what = `${t(m.kind === 'clip' ? 'media.clip' : 'media.snapshot')} · ${cameraName(m.camera)}`;
      return m.error ? `${what} · ${t('media.failed')}: ${m.error}` : what;
    }
    default:
      return '';
  }
}

function statusButton(inc, to, primary) {
  const b = el('button', primary ? 'primary' : '', t(`status.${to}`));
  b.type = 'button';
  b.dataset.status = to;
  if (to === 'cancelled') b.classList.add('danger');
  b.addEventListener('click', () => patchIncident(inc.id, { status: to }, b));
  return b;
}

function renderDetail(inc) {
  st.shown = inc;
  const box = $('incident-detail');
  box.querySelector('.empty').hidden = Boolean(inc);
  const body = box.querySelector('.detail-body');
  body.hidden = !inc;
  showCamerasNear(inc);
  if (!inc) return;
  box.dataset.id = inc.id;
  box.dataset.status = inc.status;

  const head = box.querySelector('.detail-head');
  const prio = el('span', `prio p${inc.priority}`, `P${inc.priority}`);
  const id = el('span', 'detail-id', inc.id);
  const type = el('span', 'detail-type', tName('cat', inc.type));
  const status = el('span', 'status', t(`status.${inc.status}`));
  status.dataset.status = inc.status;
  head.replaceChildren(prio, id, type, status);

  const dl = box.querySelector('.facts');
  dl.replaceChildren();
  fact(dl, 'detail.address', placeText(inc));
  const districts = el('ul', 'districts');
  for (const d of inc.districts || []) districts.append(el('li', '', districtText(d)));
  fact(dl, 'detail.districts', districts);
  const agencies = [inc.agency, ...(inc.joint || [])].filter(Boolean).map((a) => tName('agency', a));
  fact(dl, 'detail.agencies', agencies.join(', ')).className = 'agencies';
  const opened = el('span', '', `${formatTime(inc.opened_at)} · `);
  const age = el('span', 'detail-age', formatAge(ageSeconds(inc)));
  const openedBox = el('span');
  openedBox.append(opened, FINAL.has(inc.status) ? '' : age);
  fact(dl, 'detail.opened', openedBox);
  if (inc.level) fact(dl, 'detail.level', inc.level);
  fact(dl, 'detail.callers', callersText(inc.callers)).className = 'callers';

  const actions = box.querySelector('.actions');
  actions.replaceChildren();
  const f = STATUSES.indexOf(inc.status);
  if (FINAL.has(inc.status)) {
    actions.append(el('p', 'final', tf('detail.final', { status: t(`status.${inc.status}`) })));
  } else {
    const label = el('span', 'move', t('detail.move'));
    actions.append(label);
    STATUSES.slice(f + 1, 6).forEach((to, i) => actions.append(statusButton(inc, to, i === 0)));
    actions.append(statusButton(inc, 'cancelled', false));
    if (inc.priority > 1) {
      const raise = el('button', 'raise', tf('detail.raise', { n: inc.priority - 1 }));
      raise.type = 'button';
      raise.id = 'incident-raise';
      raise.addEventListener('click', () => patchIncident(inc.id, { priority: inc.priority - 1 }, raise));
      actions.append(raise);
    }
  }
  $('incident-note-form').hidden = FINAL.has(inc.status);

  const calls = box.querySelector('.calls');
  calls.replaceChildren(...(inc.calls || []).map((c) => {
    const li = el('li', 'call');
    li.dataset.id = c.id;
    const time = el('time', '', formatTime(c.received_at));
    time.dateTime = c.received_at;
    const line = el('span', 'line', c.line);
    line.title = tName('line', c.line);
    const who = el('span', 'caller', c.caller);
    const text = el('span', 'text', c.text || '');
    li.append(time, line, who, text);
    if (c.location && c.location.text) li.append(el('span', 'where', c.location.text));
    return li;
  }));

  renderMedia(inc);

  const timeline = box.querySelector('.timeline');
  timeline.replaceChildren(...[...(inc.timeline || [])].reverse().map((e) => {
    const li = el('li', `tl ${e.type.replace('.', '-')}`);
    li.dataset.seq = e.seq;
    const time = el('time', '', formatTime(e.at));
    time.dateTime = e.at;
    li.append(time, el('span', 'kind', tName('event', e.type)), el('span', 'actor', e.actor),
      el('span', 'text', timelineSummary(e)));
    return li;
  }));
}

async function patchIncident(id, change, button) {
  const err = $('incident-error');
  err.hidden = true;
  if (button) button.disabled = true;
  const epoch = st.epoch;
  let res;
  try {
    res = await api(`/api/v1/incidents/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(change),
    });
  } catch {
    if (button) button.disabled = false;
    showDetailError(t('detail.failed') + t('auth.unreachable'));
    return false;
  }
  const body = await res.json().catch(() => ({}));
  if (epoch !== st.epoch) return false;
  if (button) button.disabled = false;
  if (!res.ok) {
    if (res.status !== 401) showDetailError(t('detail.failed') + ((body.error && body.error.message) || res.status));
    return false;
  }
  upsert(body.incident);
  refresh(id);
  return true;
}

async function submitNote(e) {
  e.preventDefault();
  const input = $('incident-note');
  if (!st.selected || !input.value) return;
  if (await patchIncident(st.selected, { note: input.value })) input.value = '';
}

// The work panel's tabs: the incident, the call form, the units' board.
export function showTab(name) {
  document.querySelectorAll('.work .tabs [data-tab]').forEach((b) => {
    const on = b.dataset.tab === name;
    b.setAttribute('aria-selected', String(on));
    const pane = document.getElementById(b.getAttribute('aria-controls'));
    if (pane) pane.hidden = !on;
  });
}

// ---- the call taker's form ----

function fillCategories() {
  const select = $('call-category');
  const value = select.value;
  const first = el('option', '', '—');
  first.value = '';
  const groups = new Map();
  for (const c of st.catalogue) {
    if (!groups.has(c.family)) {
      const g = document.createElement('optgroup');
      g.label = tName('family', c.family);
      groups.set(c.family, g);
    }
    const o = el('option', '', `${tName('cat', c.name)} · P${c.priority}`);
    o.value = c.name;
    groups.get(c.family).append(o);
  }
  select.replaceChildren(first, ...groups.values());
  select.value = st.catalogue.some((c) => c.name === value) ? value : '';
}

function fillLines() {
  const select = $('call-line');
  const value = select.value || '119';
  select.replaceChildren(...LINES.map((l) => {
    const o = el('option', '', tName('line', l));
    o.value = l;
    return o;
  }));
  select.value = value;
}

async function loadCatalogue() {
  const epoch = st.epoch;
  const res = await api('/api/v1/catalogue');
  if (epoch !== st.epoch || !res.ok) return;
  const body = await res.json();
  if (epoch !== st.epoch) return;
  st.catalogue = body.categories || [];
  fillCategories();
}

function showPick() {
  const coords = $('call-coords');
  coords.hidden = !st.pick;
  coords.textContent = st.pick ? `📍 ${st.pick.lat.toFixed(5)}, ${st.pick.lon.toFixed(5)}` : '';
}

// The call's location from a suggestion, the map or its popup.
export function setCallLocation({ lon, lat, text }) {
  st.pick = { lon, lat, text: text || '' };
  $('call-location').value = text || '';
  $('call-suggestions').hidden = true;
  showPick();
  disarmPick();
  showTab('call');
}

function disarmPick() {
  const b = $('call-pick');
  b.classList.remove('armed');
  b.textContent = t('call.pick');
  if (st.map) st.map.pickOnce = null;
}

function suggest() {
  clearTimeout(st.searchTimer);
  const q = $('call-location').value.trim();
  const list = $('call-suggestions');
  st.searchTimer = setTimeout(async () => {
    const seq = ++st.searchSeq;
    if (!q || !st.map || !st.map.city) { list.hidden = true; return; }
    const res = await api(`/api/v1/gis/search?q=${encodeURIComponent(q)}&limit=5`);
    if (seq !== st.searchSeq || !res.ok) return;
    const { results } = await res.json();
    if (seq !== st.searchSeq) return;
    list.replaceChildren(...results.map((r) => {
      const li = el('li', '', r.name);
      li.tabIndex = 0;
      li.append(el('span', 'kind', r.kind));
      const choose = () => { setCallLocation({ lon: r.lon, lat: r.lat, text: r.name }); $('call-location').focus(); };
      li.addEventListener('click', choose);
      li.addEventListener('keydown', (k) => {
        if (k.key === 'Enter') { k.preventDefault(); choose(); }
        if (k.key === 'ArrowDown') { k.preventDefault(); li.nextElementSibling?.focus(); }
        if (k.key === 'ArrowUp') { k.preventDefault(); (li.previousElementSibling || $('call-location')).focus(); }
        if (k.key === 'Escape') { list.hidden = true; $('call-location').focus(); }
      });
      return li;
    }));
    list.hidden = results.length === 0;
  }, 200);
}

function clearFieldMarks() {
  document.querySelectorAll('#call-form .invalid').forEach((x) => {
    x.classList.remove('invalid');
    x.removeAttribute('aria-invalid');
  });
}

async function submitCall(e) {
  e.preventDefault();
  const error = $('call-error');
  const result = $('call-result');
  error.hidden = true;
  result.hidden = true;
  clearFieldMarks();
  const text = $('call-location').value.trim();
  const location = st.pick ? { lon: st.pick.lon, lat: st.pick.lat, text: text || st.pick.text } : { text };
  const call = {
    line: $('call-line').value,
    caller: $('call-caller').value.trim(),
    category: $('call-category').value,
    location,
    text: $('call-text').value,
  };
  const button = $('call-form').querySelector('button[type=submit]');
  button.disabled = true;
  const epoch = st.epoch;
  let res;
  let body;
  try {
    res = await api('/api/v1/calls', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(call),
    });
    body = await res.json().catch(() => ({}));
  } catch {
    res = null;
  }
  button.disabled = false;
  if (epoch !== st.epoch) return;
  if (!res || res.status !== 201) {
    if (res && res.status === 401) return;
    const err = (body && body.error) || {};
    const message = res ? (err.message || String(res.status)) : t('auth.unreachable');
    error.textContent = t('call.failed') + message + (err.field ? ` (${t('call.field')} “${err.field}”)` : '');
    error.dataset.field = err.field || '';
    error.hidden = false;
    const input = err.field && $(FIELD_INPUTS[err.field]);
    if (input) {
      input.classList.add('invalid');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
    return;
  }
  const id = body.call.incident_id;
  // Shown at once if this user may see it (the event follows anyway); an
  // incident of another agency is handed over and not shown here.
  const visible = body.incident && mayRead(body.incident);
  if (visible) upsert(body.incident);
  const msg = body.joined
    ? tf('call.joined', { id, n: body.incident ? body.incident.callers : '?' })
    : tf('call.opened', { id });
  result.replaceChildren(el('span', '', msg));
  if (visible) {
    const show = el('button', 'link', t('call.show'));
    show.type = 'button';
    show.addEventListener('click', () => selectIncident(id, { center: true }));
    result.append(' ', show);
  }
  result.dataset.id = id;
  result.dataset.joined = String(Boolean(body.joined));
  result.hidden = false;
  $('call-caller').value = '';
  $('call-text').value = '';
  $('call-location').value = '';
  st.pick = null;
  showPick();
}

// ---- life cycle ----

// Once, at page load: the controls.
export function initConsole() {
  document.querySelectorAll('.work .tabs [data-tab]').forEach((b) => {
    b.addEventListener('click', () => showTab(b.dataset.tab));
  });
  $('incident-note-form').addEventListener('submit', submitNote);
  $('call-form').addEventListener('submit', submitCall);
  $('call-location').addEventListener('input', () => {
    st.pick = null;
    showPick();
    suggest();
  });
  $('call-location').addEventListener('keydown', (k) => {
    const list = $('call-suggestions');
    if (k.key === 'ArrowDown' && !list.hidden) { k.preventDefault(); list.firstElementChild?.focus(); }
    if (k.key === 'Escape') list.hidden = true;
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.call-where')) $('call-suggestions').hidden = true;
  });
  $('call-pick').addEventListener('click', () => {
    if (!st.map || !st.map.map) return;
    if (st.map.pickOnce) { disarmPick(); return; }
    const b = $('call-pick');
    b.classList.add('armed');
    b.textContent = t('call.picking');
    st.map.pickOnce = (p) => setCallLocation(p);
  });
  ['call-line', 'call-caller', 'call-category', 'call-text'].forEach((id) => {
    $(id).addEventListener('input', () => { $(id).classList.remove('invalid'); $(id).removeAttribute('aria-invalid'); });
  });
  fillLines();
  initRecommend();
}

// On sign-in.
export function startConsole({ map, user, send }) {
  st.running = true;
  st.user = user;
  st.map = map;
  st.threshold = alarmThresholdS();
  map.onIncidentClick = (id) => selectIncident(id);
  map.onUseLocation = hasRole(st.user, CALL_TAKERS) ? (p) => setCallLocation(p) : null;
  const reader = hasRole(st.user, READERS);
  const taker = hasRole(st.user, CALL_TAKERS);
  $('incident-queue-none').hidden = reader;
  $('tab-call').hidden = !taker;
  $('tab-detail').hidden = !reader;
  showTab(taker ? 'call' : 'detail');
  renderDetail(null);
  renderQueue();
  startRecommend({ map, user, send });
  if (taker) loadCatalogue();
  // Four times a second, so that an age and an alarm are never more than a
  // quarter of a second late (only what changed is written).
  st.timer = setInterval(tick, TICK_MS);
}

// After the WebSocket reconnected and subscribed again.
export function consoleReconnected() {
  refollowRecommendations();
}

// On sign-out: nothing of the previous user stays on screen.
export function stopConsole() {
  stopRecommend();
  st.running = false;
  st.epoch += 1;
  clearInterval(st.timer);
  clearTimeout(st.searchTimer);
  st.timer = null;
  st.incidents = new Map();
  st.gone = new Set();
  st.fetching = new Map();
  st.selected = null;
  st.shown = null;
  st.pick = null;
  st.user = null;
  st.map = null;
  renderQueue();
  renderDetail(null);
  $('incident-error').hidden = true;
  $('call-error').hidden = true;
  $('call-result').hidden = true;
  $('call-suggestions').hidden = true;
  for (const id of ['call-caller', 'call-location', 'call-text', 'call-category']) $(id).value = '';
  showPick();
  disarmPick();
  clearFieldMarks();
}

// After a change of language: the parts drawn here.
export function relabelConsole() {
  fillLines();
  fillCategories();
  renderQueue();
  if (st.shown) renderDetail(st.shown);
  relabelRecommend();
  $('call-pick').textContent = t(st.map?.pickOnce ? 'call.picking' : 'call.pick');
}
