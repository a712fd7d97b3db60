// The field unit's phone page (/field.html): the same sign-in as the
// console; the user picks their unit among their agency's (remembered in
// localStorage); shares the phone's position (geolocation, high accuracy)
// as the unit's, at most one report every 5 s (the newest fix waits while
// one is in flight); sets the unit's status; sees the incident the unit is
// assigned to, with the route by road from the unit to it on a small map of
// the city's own tiles, its travel time and distance. The status and the
// assignment stay current from the event feed (unit.status, incident.* of
// the assigned incident).
//
// The route starts at the phone's own fix while sharing, else at the
// unit's last position on the server (its track, read again every
// ROUTE_MIN_MS); it is asked again when that place moved more than
// ROUTE_MOVED_M from where the last route started, at most once every
// ROUTE_MIN_MS (a new assignment asks at once).
import './field.css';
import { auth, api } from './auth.js';
import { $, showError } from './dom.js';
import { errorText } from './request.js';
import { t, tf, tName, formatTime, formatDuration, formatDistance, addressText } from './i18n.js';
import { RouteMap } from './map.js';
import { runFieldPage } from './fieldpage.js';

const UNIT_KEY = 'citycmd.field.unit';
const SHARE_KEY = 'citycmd.field.share';
const REPORT_INTERVAL_MS = 5000;
const ROUTE_MOVED_M = 50;
const ROUTE_MIN_MS = 30000;

const st = {
  epoch: 0, // bumped at sign-out and at a change of unit: late answers are dropped
  unit: null, // the chosen unit, as the server has it
  incident: null, // its incident (GET /api/v1/incidents/{id}), or null
  incSeq: 0,
  // Sharing the position.
  watch: null, // the watchPosition id, or null when not sharing
  geoState: '', // '', 'waiting', 'denied', 'insecure', 'unsupported', 'unavailable', 'timeout'
  pending: null, // the newest fix not yet sent
  inFlight: false,
  lastSentAt: 0,
  sendTimer: null,
  lastFix: null, // { at, accuracy, lon, lat }
  verdict: null, // { key, detail }
  // The route to the assigned incident.
  route: null, // { incident, from: [lon, lat], source: 'fix'|'server', asked (ms), body, error }
  routeSeq: 0,
  routeTimer: null, // a route waiting for ROUTE_MIN_MS to pass
  pollTimer: null, // reads the unit's position on the server while assigned
  serverPos: null, // [lon, lat] of the unit's newest position on the server, or null
  routeMap: null,
};

async function call(path, init) {
  let res;
  let body;
  try {
    res = await api(path, init);
    body = await res.json().catch(() => ({}));
  } catch {
    return { res: null, body: null };
  }
  return { res, body };
}

// ---- choosing the unit ----

function storedUnit() {
  try {
    const v = JSON.parse(localStorage.getItem(UNIT_KEY) || 'null');
    return v && auth.user && v.user === auth.user.username ? v.id : null;
  } catch {
    return null;
  }
}

async function showPicker() {
  const epoch = ++st.epoch;
  stopSharing({ remember: false });
  st.unit = null;
  st.incident = null;
  stopRoute();
  $('unit-view').hidden = true;
  $('pick').hidden = false;
  const list = $('unit-choices');
  list.replaceChildren();
  $('pick-empty').hidden = true;
  const agency = auth.user.agency;
  const q = agency && agency !== 'command' ? `?agency=${encodeURIComponent(agency)}` : '';
  const { res, body } = await call(`/api/v1/units${q}`);
  if (epoch !== st.epoch) return;
  const empty = $('pick-empty');
  if (!res || !res.ok) {
    delete empty.dataset.i18n;
    empty.hidden = false;
    empty.textContent = t('field.units_failed') + errorText(body, res);
    return;
  }
  const units = body.units || [];
  empty.dataset.i18n = 'field.no_units';
  empty.textContent = t('field.no_units');
  empty.hidden = units.length > 0;
  for (const u of units) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'big choice';
    b.dataset.id = u.id;
    const sign = document.createElement('span');
    sign.className = 'call';
    sign.textContent = u.call_sign || u.id;
    const kind = document.createElement('span');
    kind.className = 'muted kind';
    kind.dataset.kind = u.kind || '';
    kind.textContent = tName('unit.kind', u.kind || '');
    b.append(sign, kind);
    b.addEventListener('click', () => chooseUnit(u));
    li.append(b);
    list.append(li);
  }
}

function chooseUnit(u) {
  localStorage.setItem(UNIT_KEY, JSON.stringify({ user: auth.user.username, id: u.id }));
  showUnit(u.id, u);
}

// Shows the unit (reading it again from the server) and, when sharing was
// on for it, goes on sharing.
async function showUnit(id, known) {
  const epoch = ++st.epoch;
  $('pick').hidden = true;
  $('unit-view').hidden = false;
  if (known) setUnit(known);
  const { res, body } = await call(`/api/v1/units/${encodeURIComponent(id)}`);
  if (epoch !== st.epoch) return;
  if (!res || !res.ok) {
    if (res && (res.status === 404 || res.status === 403)) {
      localStorage.removeItem(UNIT_KEY);
      showPicker();
    }
    return;
  }
  setUnit(body.unit || body);
  if (localStorage.getItem(SHARE_KEY) === id && st.watch === null) startSharing();
}

async function refreshUnit() {
  const epoch = st.epoch;
  const id = st.unit && st.unit.id;
  if (!id) return;
  const { res, body } = await call(`/api/v1/units/${encodeURIComponent(id)}`);
  if (epoch !== st.epoch || !res || !res.ok || !st.unit || st.unit.id !== id) return;
  setUnit(body.unit || body);
}

function setUnit(u) {
  const prevIncident = st.unit ? st.unit.incident || null : undefined;
  st.unit = { ...(st.unit && st.unit.id === u.id ? st.unit : {}), ...u };
  renderUnit();
  const inc = st.unit.incident || null;
  if (inc !== prevIncident || (inc && !st.incident)) loadIncident();
}

function renderUnit() {
  const u = st.unit;
  if (!u) return;
  $('unit-call').textContent = u.call_sign || u.id;
  $('unit-call').dataset.id = u.id;
  $('unit-kind').textContent = `${tName('unit.kind', u.kind || '')} · ${tName('agency', u.agency || '')}`;
  const s = $('unit-status');
  s.dataset.status = u.status || '';
  s.dataset.primary = u.primary || '';
  s.textContent = tName('unit.status', u.status || '');
  document.querySelectorAll('#status-buttons button').forEach((b) => {
    b.setAttribute('aria-pressed', String(b.dataset.status === u.status));
  });
}

// ---- the assignment ----

async function loadIncident() {
  const seq = ++st.incSeq;
  const id = st.unit && st.unit.incident;
  showError('inc-error', null);
  if (!id) {
    st.incident = null;
    renderIncident();
    followRoute();
    return;
  }
  const { res, body } = await call(`/api/v1/incidents/${encodeURIComponent(id)}`);
  if (seq !== st.incSeq) return;
  if (!res || !res.ok) {
    st.incident = { id };
    renderIncident();
    showError('inc-error', t('detail.gone') + errorText(body, res));
    return;
  }
  st.incident = body.incident || body;
  renderIncident();
  followRoute();
}

function renderIncident() {
  const inc = st.incident;
  $('assignment').hidden = !inc;
  $('no-assignment').hidden = !!inc;
  if (!inc) return;
  $('assignment').dataset.id = inc.id;
  $('inc-id').textContent = inc.id;
  $('inc-type').textContent = inc.type ? tName('cat', inc.type) : '—';
  $('inc-type').dataset.type = inc.type || '';
  $('inc-address').textContent = inc.address ? addressText(inc.address) : '—';
  $('inc-priority').textContent = inc.priority ? `P${inc.priority}` : '—';
}

// ---- the route to the incident ----

function metres(a, b) {
  const k = Math.cos((b[1] * Math.PI) / 180);
  return Math.hypot((a[0] - b[0]) * 111320 * k, (a[1] - b[1]) * 110540);
}

function incidentPlace() {
  const l = st.incident && st.incident.location;
  return l && Number.isFinite(l.lon) && Number.isFinite(l.lat) ? [l.lon, l.lat] : null;
}

// Where the unit is: the phone's fix while sharing, else the server's.
function here() {
  if (st.watch !== null && st.lastFix && Number.isFinite(st.lastFix.lon)) {
    return { at: [st.lastFix.lon, st.lastFix.lat], source: 'fix' };
  }
  return st.serverPos ? { at: st.serverPos, source: 'server' } : null;
}

// Starts, restarts or stops following the route as the assignment comes,
// changes and goes.
async function followRoute() {
  if (!incidentPlace()) {
    clearInterval(st.pollTimer);
    clearTimeout(st.routeTimer);
    st.pollTimer = null;
    st.routeTimer = null;
    st.route = null;
    st.routeSeq += 1;
    renderRoute();
    return;
  }
  const fresh = !st.route || st.route.incident !== st.incident.id;
  if (!st.pollTimer) st.pollTimer = setInterval(pollPosition, ROUTE_MIN_MS);
  if (!fresh) return;
  st.route = null;
  st.routeSeq += 1;
  renderRoute();
  const epoch = st.epoch;
  if (!here() || here().source === 'server') await readServerPosition();
  if (epoch === st.epoch && incidentPlace()) maybeRoute(true);
}

async function pollPosition() {
  if (st.watch === null) await readServerPosition();
  maybeRoute();
}

// The unit's newest position on the server (from its track of the last hour).
async function readServerPosition() {
  const id = st.unit && st.unit.id;
  if (!id) return;
  const epoch = st.epoch;
  const { res, body } = await call(`/api/v1/units/${encodeURIComponent(id)}/track`);
  if (epoch !== st.epoch || !res || !res.ok) return;
  const positions = ((body && body.positions) || []).filter((p) => Number.isFinite(p.lon) && Number.isFinite(p.lat));
  if (positions.length) {
    const last = positions[positions.length - 1];
    st.serverPos = [last.lon, last.lat];
  }
}

// Asks the route when it is due (force: a new assignment, at once).
function maybeRoute(force = false) {
  const to = incidentPlace();
  if (!to) return;
  const pos = here();
  if (!pos) { renderRoute(); return; }
  const r = st.route;
  if (!force && r && r.incident === st.incident.id) {
    if (metres(r.from, pos.at) <= ROUTE_MOVED_M || st.routeTimer) return;
    const wait = r.asked + ROUTE_MIN_MS - Date.now();
    if (wait > 0) {
      st.routeTimer = setTimeout(() => { st.routeTimer = null; maybeRoute(); }, wait);
      return;
    }
  }
  clearTimeout(st.routeTimer);
  st.routeTimer = null;
  askRoute(pos, to);
}

async function askRoute(pos, to) {
  const seq = ++st.routeSeq;
  const epoch = st.epoch;
  const incident = st.incident.id;
  const old = st.route && st.route.incident === incident ? st.route : null;
  st.route = { incident, from: pos.at, source: pos.source, asked: Date.now(), body: old ? old.body : null, error: null };
  const q = `from=${pos.at[0].toFixed(7)},${pos.at[1].toFixed(7)}&to=${to[0].toFixed(7)},${to[1].toFixed(7)}`;
  const { res, body } = await call(`/api/v1/route?${q}`);
  if (epoch !== st.epoch || seq !== st.routeSeq || !st.route) return;
  if (res && res.ok && body && body.route) {
    st.route.body = body;
  } else {
    const code = body && body.error && body.error.code;
    st.route.body = null;
    if (code === 'not_routable') st.route.error = { key: 'field.route_not_routable' };
    else if (code === 'no_route') st.route.error = { key: 'field.route_no_route' };
    else st.route.error = { key: 'field.route_failed', detail: errorText(body, res) };
  }
  renderRoute();
}

function routeState(to, r) {
  if (!to) return '';
  if (r && r.body) return 'shown';
  if (r && r.error) return 'failed';
  return here() ? 'loading' : 'no_position';
}

function renderRoute() {
  const box = $('route');
  const to = incidentPlace();
  box.hidden = !to;
  const r = st.route;
  const b = r && r.body;
  box.dataset.state = routeState(to, r);
  $('route-eta').textContent = b ? formatDuration(b.eta_ms / 1000) : '—';
  $('route-eta').dataset.ms = b ? b.eta_ms : '';
  $('route-distance').textContent = b ? formatDistance(b.distance_m) : '—';
  $('route-distance').dataset.m = b ? b.distance_m : '';
  const from = $('route-from');
  let note = '';
  if (box.dataset.state === 'no_position') note = t('field.route_no_position');
  else if (b) note = t(r.source === 'fix' ? 'field.route_from_fix' : 'field.route_from_server');
  from.hidden = !note;
  from.textContent = note;
  from.dataset.source = b ? r.source : '';
  const e = r && r.error;
  showError('route-error', e ? t(e.key) + (e.detail || '') : null);
  const mapBox = $('route-map');
  mapBox.hidden = !b;
  if (!b) {
    st.routeMap?.show(null);
    return;
  }
  if (!st.routeMap) {
    st.routeMap = new RouteMap(mapBox);
    st.routeMap.start();
  }
  st.routeMap.show({ coordinates: b.route.coordinates, from: r.from, to });
}

function stopRoute() {
  clearInterval(st.pollTimer);
  clearTimeout(st.routeTimer);
  st.pollTimer = null;
  st.routeTimer = null;
  st.route = null;
  st.routeSeq += 1;
  st.serverPos = null;
  st.routeMap?.stop();
  st.routeMap = null;
  $('route-map').replaceChildren();
  renderRoute();
}

// ---- the status ----

async function setStatus(status) {
  if (!st.unit) return;
  const epoch = st.epoch;
  const id = st.unit.id;
  showError('status-error', null);
  const buttons = document.querySelectorAll('#status-buttons button');
  buttons.forEach((b) => { b.disabled = true; });
  const { res, body } = await call(`/api/v1/units/${encodeURIComponent(id)}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ status }),
  });
  buttons.forEach((b) => { b.disabled = false; });
  if (epoch !== st.epoch) return;
  if (!res || !res.ok) {
    showError('status-error', t('field.refused') + errorText(body, res));
    return;
  }
  setUnit(body.unit || body);
}

// ---- sharing the position ----

function showGeo(state) {
  st.geoState = state;
  const p = $('geo-state');
  p.dataset.state = state;
  p.hidden = !state;
  p.textContent = state ? t(`field.${state}`) : '';
}

// What the page says while not sharing: nothing, unless it cannot share.
function idleGeo() {
  if (st.geoState === 'denied') return; // until the permission changes
  if (!window.isSecureContext) showGeo('insecure');
  else if (!('geolocation' in navigator)) showGeo('unsupported');
  else showGeo('');
}

// Says so before the toggle is pressed when the browser already refuses.
async function checkPermission() {
  if (!window.isSecureContext || !navigator.permissions) return;
  try {
    const p = await navigator.permissions.query({ name: 'geolocation' });
    const apply = () => {
      if (p.state === 'denied') {
        if (st.watch !== null) stopSharing({ remember: false, keepState: true });
        showGeo('denied');
      } else if (st.geoState === 'denied') {
        st.geoState = '';
        if (st.watch === null) idleGeo();
      }
    };
    apply();
    p.onchange = apply;
  } catch {
    /* no Permissions API for geolocation: the error of watchPosition tells */
  }
}

function renderShare() {
  const on = st.watch !== null;
  $('share').setAttribute('aria-checked', String(on));
  $('share').classList.toggle('on', on);
  const fix = $('fix-time');
  if (st.lastFix) {
    fix.dataset.at = st.lastFix.at;
    fix.textContent = formatTime(st.lastFix.at) +
      (Number.isFinite(st.lastFix.accuracy) ? ` (${tf('field.accuracy', { m: Math.round(st.lastFix.accuracy) })})` : '');
  } else {
    fix.dataset.at = '';
    fix.textContent = '—';
  }
  const v = $('verdict');
  if (st.verdict) {
    v.dataset.verdict = st.verdict.key;
    v.textContent = st.verdict.key === 'failed'
      ? t('field.verdict.failed') + st.verdict.detail
      : tName('field.verdict', st.verdict.key);
  } else {
    v.dataset.verdict = '';
    v.textContent = '—';
  }
}

// The report of a geolocation position (the API's fields).
function fixOf(pos) {
  const c = pos.coords;
  const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const speed = num(c.speed);
  const heading = num(c.heading);
  return {
    lon: c.longitude,
    lat: c.latitude,
    accuracy_m: num(c.accuracy) === null ? null : Math.min(c.accuracy, 100000),
    speed_kmh: speed === null ? null : Math.min(1000, Math.max(0, speed * 3.6)),
    course: heading === null ? null : heading % 360,
    at: new Date(pos.timestamp || Date.now()).toISOString(),
  };
}

function startSharing() {
  if (!st.unit) return;
  if (!window.isSecureContext) { showGeo('insecure'); renderShare(); return; }
  if (!('geolocation' in navigator)) { showGeo('unsupported'); renderShare(); return; }
  const unitId = st.unit.id;
  localStorage.setItem(SHARE_KEY, unitId);
  st.geoState = '';
  showGeo('waiting');
  st.watch = navigator.geolocation.watchPosition(
    (pos) => onFix(unitId, pos),
    (err) => {
      if (err.code === 1) {
        showGeo('denied');
        stopSharing({ remember: false, keepState: true });
      } else {
        showGeo(err.code === 3 ? 'timeout' : 'unavailable');
      }
    },
    { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 },
  );
  renderShare();
}

function stopSharing({ remember = true, keepState = false } = {}) {
  if (st.watch !== null) navigator.geolocation.clearWatch(st.watch);
  st.watch = null;
  st.pending = null;
  clearTimeout(st.sendTimer);
  st.sendTimer = null;
  if (remember) localStorage.removeItem(SHARE_KEY);
  if (!keepState) idleGeo();
  renderShare();
}

function onFix(unitId, pos) {
  if (st.watch === null || !st.unit || st.unit.id !== unitId) return;
  const fix = fixOf(pos);
  st.lastFix = { at: fix.at, accuracy: fix.accuracy_m, lon: fix.lon, lat: fix.lat };
  showGeo('');
  st.pending = { unitId, fix };
  renderShare();
  pump();
  if (st.incident) maybeRoute();
}

// Sends the newest fix when none is in flight and the last went at least
// REPORT_INTERVAL_MS ago; otherwise it waits (a newer fix replaces it).
async function pump() {
  if (st.inFlight || !st.pending || st.sendTimer) return;
  const wait = st.lastSentAt + REPORT_INTERVAL_MS - Date.now();
  if (wait > 0) {
    st.sendTimer = setTimeout(() => { st.sendTimer = null; pump(); }, wait);
    return;
  }
  const { unitId, fix } = st.pending;
  st.pending = null;
  st.inFlight = true;
  st.lastSentAt = Date.now();
  const { res, body } = await call(`/api/v1/units/${encodeURIComponent(unitId)}/position`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fix),
  });
  st.inFlight = false;
  if (st.unit && st.unit.id === unitId) {
    if (res && body && typeof body.verdict === 'string') st.verdict = { key: body.verdict };
    else st.verdict = { key: 'failed', detail: errorText(body, res) };
    renderShare();
  }
  pump();
}

// ---- the live feed ----

function onEvent(ev) {
  const d = ev.data || {};
  const u = st.unit;
  if (!u) return;
  if (ev.type === 'unit.status' && d.unit === u.id) {
    setUnit({ id: u.id, status: d.to, primary: d.primary, incident: d.incident || null });
  } else if (ev.type === 'unit.updated' && d.unit === u.id) {
    const change = { id: u.id };
    for (const [field, v] of Object.entries(d.changes || {})) change[field] = v && v.to;
    setUnit(change);
  } else if (ev.type === 'unit.removed' && d.unit === u.id) {
    localStorage.removeItem(UNIT_KEY);
    showPicker();
  } else if (/^incident\./.test(ev.type) && u.incident && st.incident
             && ev.subject === `incident/${String(u.incident).replace(/^I-/, '')}`) {
    loadIncident();
  }
}

// ---- the page ----

runFieldPage({
  title: 'field.title',
  main: 'field',
  init() {
    $('change-unit').addEventListener('click', () => {
      localStorage.removeItem(UNIT_KEY);
      localStorage.removeItem(SHARE_KEY);
      showPicker();
    });
    $('share').addEventListener('click', () => {
      if (st.watch !== null) stopSharing();
      else startSharing();
    });
    $('status-buttons').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-status]');
      if (b) setStatus(b.dataset.status);
    });
    // Told before anything is pressed: this page cannot share from here.
    idleGeo();
    checkPermission();
  },
  enter(conn) {
    window.citycmdField = { conn, st };
    const id = storedUnit();
    if (id) showUnit(id);
    else showPicker();
  },
  leave() {
    st.epoch += 1;
    stopSharing({ remember: false });
    st.unit = null;
    st.incident = null;
    st.lastFix = null;
    st.verdict = null;
    stopRoute();
    renderShare();
  },
  onEvent,
  // Back after a break: read the unit again (what the feed missed).
  onConnected() {
    if (st.unit) refreshUnit();
  },
  onLogout() {
    localStorage.removeItem(SHARE_KEY);
  },
  relabel() {
    document.querySelectorAll('#status-buttons button').forEach((b) => {
      b.textContent = tName('unit.status', b.dataset.status);
    });
    document.querySelectorAll('#unit-choices .kind').forEach((k) => {
      k.textContent = tName('unit.kind', k.dataset.kind);
    });
    renderUnit();
    renderIncident();
    renderRoute();
    renderShare();
    if (st.geoState) showGeo(st.geoState);
  },
});
