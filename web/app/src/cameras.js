// Cameras on the console, for those who may read them (cameras.read):
//  - a map layer (switched on in the layers panel, like coverage): each
//    camera a dot with its view cone (GET /api/v1/cameras.geojson); a click
//    on a camera opens a small live player in the map's popup;
//  - "Cameras near" in the selected incident's detail: the cameras within
//    RADIUS_M of its place (GET /api/v1/cameras?near=…), those that see it
//    first and marked so, each with "Watch" (a small player under it),
//    "Snapshot to incident" and "Save clip" (POST …/snapshots, …/clips);
//  - the incident's snapshots and clips (its "media"), each opened with the
//    session's token (video.js showMedia).
// Every player is a tile of the console's one WebSocket (video.js VideoHub).
// The layer and the list follow the event feed (camera.*).
import VectorLayer from 'ol/layer/Vector.js';
import VectorSource from 'ol/source/Vector.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import Feature from 'ol/Feature.js';
import Point from 'ol/geom/Point.js';
import { fromLonLat } from 'ol/proj.js';
import { Style, Fill, Stroke, Circle, Text } from 'ol/style.js';
import { hasRole } from './auth.js';
import { $, el } from './dom.js';
import { call, postJson, errorText, listReader } from './request.js';
import { t, tf, formatTime, formatDistance } from './i18n.js';
import { mapState } from './map.js';
import { VideoHub, VideoPlayer, showMedia } from './video.js';

const READERS = ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'];
const RECORDERS = ['dispatcher', 'supervisor']; // incidents.update: snapshots and clips
const RADIUS_M = 500;
const CLIP = { before: 10, after: 5 };
const LIST_DEBOUNCE_MS = 400;
const FONT = 'system-ui, sans-serif';

const st = {
  running: false,
  epoch: 0, // bumped at sign-out: late answers are dropped
  user: null,
  conn: null,
  hub: null, // VideoHub of the console's connection
  map: null, // CityMap
  source: null,
  layer: null,
  click: null, // the map's click handler of the layer
  cams: new Map(), // id -> camera, of the layer and the near list
  seeing: new Set(), // ids of the cameras that see the selected incident
  popupPlayer: null, // the player in the map's popup
  near: { id: null, lon: null, lat: null, cameras: null, error: null, seq: 0 },
  nearPlayer: null, // { camera, player } in the near list
  reloadIncident: () => {},
};

// ---- the map layer ----

const CONE = { dark: '#22d3ee', light: '#0e7490' };

function layerStyle(f, resolution) {
  const color = CONE[mapState.theme] || CONE.dark;
  const sees = st.seeing.has(f.get('camera'));
  if (f.get('part') === 'cone') {
    return new Style({
      fill: new Fill({ color: `${color}${sees ? '40' : '1f'}` }),
      stroke: new Stroke({ color: `${color}${sees ? 'ff' : '99'}`, width: sees ? 2 : 1 }),
      zIndex: 1,
    });
  }
  const halo = mapState.theme === 'light' ? '#ffffff' : '#0b1118';
  return new Style({
    image: new Circle({ radius: sees ? 8 : 7, fill: new Fill({ color }), stroke: new Stroke({ color: halo, width: 2.5 }) }),
    text: resolution < 4 ? new Text({
      text: f.get('name') || '', offsetY: -16, font: `bold 11px ${FONT}`,
      fill: new Fill({ color }), stroke: new Stroke({ color: halo, width: 3 }),
    }) : undefined,
    zIndex: 2,
  });
}

function summary() {
  const out = $('cams-summary');
  out.textContent = $('cams-on').checked && st.source ? tf('cams.summary', { n: st.source.getFeatures().length / 2 }) : '';
}

const layerReader = listReader({
  path: '/api/v1/cameras.geojson', wait: LIST_DEBOUNCE_MS, epoch: () => st.epoch, done: layerRead,
});

function layerRead(r) {
  if (!st.source) return;
  if (!r.res || !r.res.ok || !r.body) {
    $('cams-error').textContent = t('cams.failed') + errorText(r.body, r.res);
    $('cams-error').hidden = false;
    return;
  }
  $('cams-error').hidden = true;
  const features = [];
  const cones = new GeoJSON().readFeatures(r.body, { featureProjection: 'EPSG:3857' });
  for (const cone of cones) {
    const cam = cone.getProperties();
    const id = cone.getId() || cam.id;
    delete cam.geometry;
    cam.id = id;
    st.cams.set(id, { ...st.cams.get(id), ...cam });
    cone.setProperties({ part: 'cone', camera: id });
    cone.setId(`cone:${id}`);
    features.push(cone);
    if (Number.isFinite(cam.lon) && Number.isFinite(cam.lat)) {
      const dot = new Feature({ geometry: new Point(fromLonLat([cam.lon, cam.lat])), part: 'camera', camera: id, name: cam.name });
      dot.setId(`camera:${id}`);
      features.push(dot);
    }
  }
  st.source.clear();
  st.source.addFeatures(features);
  summary();
}

function switched() {
  const on = $('cams-on').checked;
  if (!st.layer) return;
  st.layer.setVisible(on);
  if (on) layerReader.load();
  else {
    layerReader.cancel();
    st.source.clear();
    $('cams-error').hidden = true;
    closePopup();
  }
  summary();
}

// A click on a camera's dot: its live picture in the map's popup.
function cameraClicked(feature) {
  const id = feature.get('camera');
  const cam = st.cams.get(id) || { id, name: id };
  const map = st.map;
  if (!map || !map.popup || !st.hub) return;
  closePopup();
  const box = map.el.querySelector('.map-popup');
  const head = el('p', 'where cam-popup-head');
  head.append(el('span', '', cam.name || id), el('span', 'cam-id', ` ${id}`));
  const player = new VideoPlayer(st.hub, { name: cam.name || id, className: 'popup-player' });
  player.el.dataset.testid = 'camera-popup-player';
  box.querySelector('.content').replaceChildren(head, player.el);
  box.classList.add('with-video');
  st.popupPlayer = player;
  map.popup.setPosition(feature.getGeometry().getCoordinates());
  player.play(id, cam.name || id);
}

// The popup closed, or shows something else now: its player stops.
function popupMoved() {
  const p = st.popupPlayer;
  if (!p) return;
  if (!st.map?.popup?.getPosition() || !p.el.isConnected) closePopup();
}

function closePopup() {
  const p = st.popupPlayer;
  st.popupPlayer = null;
  if (!p) return;
  p.stop();
  const box = st.map?.el.querySelector('.map-popup');
  box?.classList.remove('with-video');
  if (p.el.isConnected) {
    p.el.remove();
    st.map?.popup?.setPosition(undefined);
  }
}

// ---- cameras near the selected incident ----

function nearText(state, text) {
  const note = $('cams-near-note');
  note.hidden = !text;
  note.textContent = text || '';
  $('cams-near').dataset.state = state;
}

function stopNearPlayer() {
  if (!st.nearPlayer) return;
  st.nearPlayer.player.stop();
  st.nearPlayer.player.el.remove();
  st.nearPlayer = null;
}

function result(text, ok) {
  const p = $('cams-near-result');
  p.hidden = !text;
  p.textContent = text || '';
  p.classList.toggle('form-error', !ok);
}

async function record(kind, cam, button) {
  const incident = st.near.id;
  if (!incident) return;
  const epoch = st.epoch;
  button.disabled = true;
  result(null);
  const path = `/api/v1/incidents/${encodeURIComponent(incident)}/${kind === 'clip' ? 'clips' : 'snapshots'}`;
  const body = kind === 'clip' ? { camera: cam.id, ...CLIP } : { camera: cam.id };
  const r = await postJson(path, body);
  if (epoch !== st.epoch) return;
  button.disabled = false;
  if (st.near.id !== incident) return;
  if (!r.res || !r.res.ok) {
    if (r.res && r.res.status === 401) return;
    result(t('cams.refused') + errorText(r.body, r.res), false);
    return;
  }
  result(kind === 'clip'
    ? tf('cams.clip_done', { name: cam.name, ...CLIP })
    : tf('cams.snapshot_done', { name: cam.name }), true);
  st.reloadIncident(incident);
}

function watchNear(cam, li) {
  const same = st.nearPlayer && st.nearPlayer.camera === cam.id;
  stopNearPlayer();
  for (const b of $('cams-near-list').querySelectorAll('button.cam-watch')) {
    b.textContent = t('cams.watch');
    b.setAttribute('aria-pressed', 'false');
  }
  if (same || !st.hub) return;
  const player = new VideoPlayer(st.hub, { name: cam.name, className: 'near-player' });
  player.el.dataset.testid = 'near-player';
  li.append(player.el);
  st.nearPlayer = { camera: cam.id, player };
  const b = li.querySelector('button.cam-watch');
  b.textContent = t('cams.stop');
  b.setAttribute('aria-pressed', 'true');
  player.play(cam.id, cam.name);
}

function camRow(cam) {
  const li = el('li', 'cam');
  li.dataset.camera = cam.id;
  li.dataset.sees = String(Boolean(cam.sees));
  const line = el('div', 'cam-line');
  const name = el('span', 'cam-name', cam.name);
  name.title = cam.id;
  line.append(name, el('span', 'cam-dist', formatDistance(cam.distance_m)));
  if (cam.sees) {
    const badge = el('span', 'badge sees', `👁 ${t('cams.sees')}`);
    badge.title = t('cams.sees_title');
    line.append(badge);
  } else {
    line.append(el('span', 'badge away', t('cams.away')));
  }
  const buttons = el('div', 'cam-buttons');
  const watch = el('button', 'cam-watch', t('cams.watch'));
  watch.type = 'button';
  watch.setAttribute('aria-pressed', 'false');
  watch.addEventListener('click', () => watchNear(cam, li));
  buttons.append(watch);
  if (hasRole(st.user, RECORDERS)) {
    const snap = el('button', 'cam-snapshot', t('cams.snapshot'));
    snap.type = 'button';
    snap.addEventListener('click', () => record('snapshot', cam, snap));
    const clip = el('button', 'cam-clip', t('cams.clip'));
    clip.type = 'button';
    clip.addEventListener('click', () => record('clip', cam, clip));
    buttons.append(snap, clip);
  }
  li.append(line, buttons);
  return li;
}

function renderNear() {
  const n = st.near;
  const list = $('cams-near-list');
  $('cams-near').dataset.incident = n.id || '';
  // The player stays when its camera is still in the list.
  const keep = st.nearPlayer && n.cameras && n.cameras.some((c) => c.id === st.nearPlayer.camera) ? st.nearPlayer : null;
  if (!keep) stopNearPlayer();
  else keep.player.el.remove();
  if (n.error) nearText('error', t('cams.failed') + n.error);
  else if (!n.cameras) nearText('loading', n.lon === null ? t('cams.no_location') : t('cams.loading'));
  else if (n.cameras.length === 0) nearText('none', tf('cams.none', { m: RADIUS_M }));
  else nearText('shown', '');
  list.replaceChildren(...(n.cameras || []).map(camRow));
  if (keep) {
    const li = list.querySelector(`li[data-camera="${CSS.escape(keep.camera)}"]`);
    li.append(keep.player.el);
    const b = li.querySelector('button.cam-watch');
    b.textContent = t('cams.stop');
    b.setAttribute('aria-pressed', 'true');
  }
  st.seeing = new Set((n.cameras || []).filter((c) => c.sees).map((c) => c.id));
  st.layer?.changed();
}

async function loadNear() {
  const n = st.near;
  const seq = ++n.seq;
  const epoch = st.epoch;
  if (n.lon === null) {
    renderNear();
    return;
  }
  const r = await call(`/api/v1/cameras?near=${n.lon.toFixed(7)},${n.lat.toFixed(7)}&radius=${RADIUS_M}`);
  if (epoch !== st.epoch || seq !== n.seq) return;
  if (!r.res || !r.res.ok || !r.body) {
    n.error = errorText(r.body, r.res);
    n.cameras = null;
  } else {
    n.error = null;
    n.cameras = r.body.cameras || [];
    for (const c of n.cameras) st.cams.set(c.id, { ...st.cams.get(c.id), ...c });
  }
  renderNear();
}

// The incident in the detail pane (null: none): its cameras are looked for
// when it or its place changes, not at each change of the incident.
export function showCamerasNear(inc) {
  if (!st.running) return;
  const box = $('cams-near');
  const readable = hasRole(st.user, READERS);
  const id = inc && readable ? inc.id : null;
  const loc = inc && inc.location;
  const lon = loc && Number.isFinite(loc.lon) ? loc.lon : null;
  const lat = loc && Number.isFinite(loc.lat) ? loc.lat : null;
  box.hidden = !id;
  const n = st.near;
  if (n.id === id && n.lon === lon && n.lat === lat) return;
  if (n.id !== id) {
    stopNearPlayer();
    result(null);
  }
  Object.assign(n, { id, lon, lat, cameras: null, error: null });
  n.seq += 1;
  if (!id) {
    $('cams-near-list').replaceChildren();
    st.seeing = new Set();
    st.layer?.changed();
    return;
  }
  renderNear();
  loadNear();
}

const nearReader = { timer: null };

function nearLater() {
  clearTimeout(nearReader.timer);
  nearReader.timer = setTimeout(() => { if (st.near.id) loadNear(); }, LIST_DEBOUNCE_MS);
}

// ---- the incident's snapshots and clips ----

// "Quay west (C-2)" for a camera this screen has seen, else its id.
export function cameraName(id) {
  const c = st.cams.get(id);
  return c && c.name ? `${c.name} (${id})` : id || '';
}

// Fills the detail's list of the incident's media: [{ kind: 'snapshot' |
// 'clip', camera, at, and url, or error when it could not be made }],
// newest first.
export function renderMedia(inc) {
  const list = $('incident-media');
  const media = (inc && Array.isArray(inc.media) ? inc.media : []).slice().reverse();
  $('incident-media-title').hidden = media.length === 0;
  list.hidden = media.length === 0;
  list.replaceChildren(...media.map((m) => {
    const li = el('li', `media-item kind-${m.kind}`);
    li.dataset.kind = m.kind || '';
    if (m.url) li.dataset.url = m.url;
    const time = el('time', '', m.at ? formatTime(m.at) : '');
    if (m.at) time.dateTime = m.at;
    const kind = el('span', 'kind', t(m.kind === 'clip' ? 'media.clip' : 'media.snapshot'));
    const cam = el('span', 'text', cameraName(m.camera));
    li.append(time, kind, cam);
    if (m.error) {
      const bad = el('span', 'media-state bad', `${t('media.failed')}: ${m.error}`);
      li.append(bad);
    } else if (m.url) {
      const open = el('button', 'link media-open', t('media.open'));
      open.type = 'button';
      open.title = m.url;
      open.addEventListener('click', () => showMedia({
        url: m.url, kind: m.kind, title: `${kind.textContent} · ${cam.textContent} · ${time.textContent}`,
      }));
      li.append(open);
    }
    return li;
  }));
}

// ---- life cycle ----

export function initCameras() {
  $('cams-on').addEventListener('change', switched);
}

// On sign-in, once the connection exists (it need not be up yet).
// reloadIncident(id): reads an incident again (after a snapshot or a clip).
export function startCameras({ user, conn, reloadIncident }) {
  st.running = true;
  st.user = user;
  st.conn = conn;
  st.reloadIncident = reloadIncident || (() => {});
  st.near = { id: null, lon: null, lat: null, cameras: null, error: null, seq: 0 };
  if (!hasRole(user, READERS)) return;
  st.hub = new VideoHub(conn);
  window.citycmdCameras = {
    hub: () => st.hub,
    layerCount: () => (st.source ? st.source.getFeatures().filter((f) => f.get('part') === 'camera').length : 0),
    // Where a camera's dot is on the screen (CSS pixels in the map), or null.
    pixel: (id) => {
      const f = st.source?.getFeatureById(`camera:${id}`);
      const px = f && st.map?.map ? st.map.map.getPixelFromCoordinate(f.getGeometry().getCoordinates()) : null;
      return px ? [px[0], px[1]] : null;
    },
  };
}

// After the map started: the layer, for those who may read cameras.
export function camerasOnMap(map) {
  if (!st.running || !st.hub) return;
  st.map = map;
  st.source = new VectorSource();
  st.layer = new VectorLayer({
    source: st.source, style: layerStyle, zIndex: 6, visible: $('cams-on').checked,
  });
  map.map?.addLayer(st.layer);
  st.click = { layer: st.layer, hitTolerance: 6, filter: (f) => f.get('part') === 'camera', click: cameraClicked };
  map.featureClicks.push(st.click);
  map.popup?.on('change:position', popupMoved);
  $('cams-ctl').hidden = false;
  if ($('cams-on').checked) switched();
}

export function camerasEvent(ev) {
  if (!st.running || !st.hub || !/^camera\./.test(ev.type)) return;
  if (st.layer && $('cams-on').checked) layerReader.schedule();
  nearLater();
}

export function stopCameras() {
  closePopup();
  stopNearPlayer();
  layerReader.cancel();
  clearTimeout(nearReader.timer);
  st.hub?.close();
  if (st.map) {
    if (st.map.map && st.layer) st.map.map.removeLayer(st.layer);
    st.map.popup?.un('change:position', popupMoved);
    st.map.featureClicks = st.map.featureClicks.filter((c) => c !== st.click);
  }
  Object.assign(st, {
    running: false, user: null, conn: null, hub: null, map: null, source: null, layer: null, click: null,
  });
  st.epoch += 1;
  st.cams = new Map();
  st.seeing = new Set();
  st.near = { id: null, lon: null, lat: null, cameras: null, error: null, seq: 0 };
  $('cams-near').hidden = true;
  $('cams-near-list').replaceChildren();
  result(null);
  $('cams-ctl').hidden = true;
  $('cams-on').checked = false;
  $('cams-summary').textContent = '';
  $('cams-error').hidden = true;
}

export function relabelCameras() {
  summary();
  if (st.near.id) renderNear();
  st.popupPlayer?.relabel();
}
