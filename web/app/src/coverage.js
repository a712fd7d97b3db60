// Coverage on the map: the streets farther than N minutes by road from
// every available unit of a kind, right now (GET /api/v1/coverage), drawn
// as a layer over the base map so a supervisor sees the gap to cover. Off
// until switched on in the layers panel; while on, read again every
// REFRESH_MS and when the kind or the minutes change.
import VectorLayer from 'ol/layer/Vector.js';
import VectorSource from 'ol/source/Vector.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import { Style, Stroke } from 'ol/style.js';
import { api } from './auth.js';
import { t, tf, tName } from './i18n.js';
import { $ } from './dom.js';

const REFRESH_MS = 30000;
const KINDS = ['engine', 'ambulance', 'patrol_car', 'ladder', 'rescue', 'traffic_car', 'water_crew', 'gas_crew'];

const st = {
  map: null, // the CityMap
  layer: null,
  source: null,
  timer: null,
  seq: 0,
  last: null, // the last answer, for the summary line
};

function style() {
  return new Style({ stroke: new Stroke({ color: 'rgba(230, 60, 40, 0.85)', width: 4, lineCap: 'round' }) });
}

function summary() {
  const out = $('coverage-summary');
  if (!out) return;
  const c = st.last;
  out.textContent = c ? tf('coverage.summary', {
    beyond: c.beyond_km.toFixed(1), total: c.road_km.toFixed(1), units: c.units,
    kind: tName('unit.kind', c.kind), minutes: c.minutes,
  }) : '';
}

async function refresh() {
  clearTimeout(st.timer);
  st.timer = null;
  if (!st.layer || !$('coverage-on').checked) return;
  const seq = ++st.seq;
  const kind = $('coverage-kind').value;
  const minutes = Number($('coverage-minutes').value) || 8;
  const res = await api(`/api/v1/coverage?kind=${encodeURIComponent(kind)}&minutes=${minutes}`);
  if (seq !== st.seq || !st.layer) return; // switched off or changed meanwhile
  if (res.ok) {
    const body = await res.json();
    st.last = body;
    st.source.clear();
    st.source.addFeatures(new GeoJSON().readFeatures(body.beyond, { featureProjection: 'EPSG:3857' }));
    $('coverage-error').hidden = true;
  } else {
    const body = await res.json().catch(() => null);
    st.last = null;
    st.source.clear();
    $('coverage-error').textContent = (body && body.error && body.error.message) || t('coverage.failed');
    $('coverage-error').hidden = false;
  }
  summary();
  st.timer = setTimeout(refresh, REFRESH_MS);
}

function switched() {
  const on = $('coverage-on').checked;
  if (st.layer) st.layer.setVisible(on);
  if (on) {
    refresh();
  } else {
    clearTimeout(st.timer);
    st.seq++;
    st.source?.clear();
    st.last = null;
    summary();
    $('coverage-error').hidden = true;
  }
}

// The controls: once, at start.
export function initCoverage() {
  const kind = $('coverage-kind');
  kind.replaceChildren(...KINDS.map((k) => {
    const o = document.createElement('option');
    o.value = k;
    o.textContent = tName('unit.kind', k);
    return o;
  }));
  $('coverage-on').addEventListener('change', switched);
  kind.addEventListener('change', refresh);
  $('coverage-minutes').addEventListener('change', refresh);
}

// After the map started (it has a city): adds the layer.
export function startCoverage(cityMap) {
  st.map = cityMap;
  st.source = new VectorSource();
  st.layer = new VectorLayer({ source: st.source, style: style(), zIndex: 4, visible: $('coverage-on').checked });
  cityMap.map?.addLayer(st.layer);
  if ($('coverage-on').checked) refresh();
}

export function stopCoverage() {
  clearTimeout(st.timer);
  st.seq++;
  if (st.map?.map && st.layer) st.map.map.removeLayer(st.layer);
  st.layer = null;
  st.source = null;
  st.map = null;
  st.last = null;
}

export function relabelCoverage() {
  for (const o of $('coverage-kind').options) o.textContent = tName('unit.kind', o.value);
  summary();
}

// For tests: the number of streets drawn as beyond reach.
export function coverageCount() {
  return st.source ? st.source.getFeatures().reduce((n, f) => n + f.getGeometry().getLineStrings().length, 0) : 0;
}
