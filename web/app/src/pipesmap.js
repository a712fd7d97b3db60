// Pipe networks and isolations on a map, for the console (pipes.js) and the
// repair crew's page (crew.js): the networks' pipes (thin, in the
// utility's colour) and valves (small dots coloured by state), and an
// isolation's answer — the isolated pipes thick red, the pipes left without
// supply dashed orange, the valves to close as numbered markers in the
// crew's order (green once reported closed), the valves that failed as red
// crosses, every customer cut off as a small dot (orange where the area went
// dry) and the priority customers among them as magenta diamonds.
import VectorLayer from 'ol/layer/Vector.js';
import VectorSource from 'ol/source/Vector.js';
import Feature from 'ol/Feature.js';
import Point from 'ol/geom/Point.js';
import MultiLineString from 'ol/geom/MultiLineString.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import { fromLonLat } from 'ol/proj.js';
import { Style, Fill, Stroke, Text, Circle, RegularShape } from 'ol/style.js';
import { api } from './auth.js';
import { SmallCityMap } from './map.js';

export const UTILITY_COLORS = { water: '#3b9eff', gas: '#f5a524' };
export const VALVE_COLORS = { open: '#2ea043', closed: '#f85149', inoperable: '#8b949e' };
const FONT = 'system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';

// ---- the networks ----

// A thin line in the utility's colour over a dark casing, so that a pipe
// stands out from the road it runs under.
const linkStyles = {};
function linkStyle(feature) {
  const u = feature.get('utility') || 'water';
  if (!linkStyles[u]) {
    linkStyles[u] = [
      new Style({ stroke: new Stroke({ color: 'rgba(11, 17, 24, 0.8)', width: 3.5 }), zIndex: 0 }),
      new Style({ stroke: new Stroke({ color: UTILITY_COLORS[u] || UTILITY_COLORS.water, width: 1.5 }), zIndex: 1 }),
    ];
  }
  return linkStyles[u];
}

const valveStyles = {};
function valveStyle(feature, resolution) {
  if (resolution > 6) return null; // a dot per valve only once close enough to tell them apart
  const s = feature.get('state') || 'open';
  if (!valveStyles[s]) {
    valveStyles[s] = new Style({
      image: new Circle({ radius: 3, fill: new Fill({ color: VALVE_COLORS[s] || VALVE_COLORS.open }), stroke: new Stroke({ color: '#0b1118', width: 1 }) }),
      zIndex: 2,
    });
  }
  return valveStyles[s];
}

// The networks' layer: features of GET …/features, each tagged with its
// network and utility; ids "network/id" (a valve's state can be updated).
export class NetworkLayer {
  constructor() {
    this.source = new VectorSource();
    this.layer = new VectorLayer({
      source: this.source,
      style: (f, r) => (f.get('layer') === 'valves' ? valveStyle(f, r) : linkStyle(f)),
      zIndex: 3,
      visible: false,
    });
    this.loaded = new Set(); // network names read
  }

  // Reads a network's pipes and valves once; resolves with null or an error text.
  async load(net) {
    if (this.loaded.has(net.name)) return null;
    this.loaded.add(net.name);
    const fmt = new GeoJSON();
    for (const layer of ['links', 'valves']) {
      const res = await api(`/api/v1/pipes/networks/${encodeURIComponent(net.name)}/features?layer=${layer}`);
      const body = await res.json().catch(() => null);
      if (!res.ok || !body) {
        this.loaded.delete(net.name);
        return (body && body.error && body.error.message) || String(res.status);
      }
      const feats = fmt.readFeatures(body, { featureProjection: 'EPSG:3857' });
      for (const f of feats) {
        f.setId(`${net.name}/${layer}/${f.get('id')}`);
        f.set('network', net.name);
        f.set('utility', net.utility);
        f.set('layer', layer);
      }
      this.source.addFeatures(feats);
    }
    return null;
  }

  setValveState(network, id, state) {
    const f = this.source.getFeatureById(`${network}/valves/${id}`);
    if (f) f.set('state', state);
  }

  clear() {
    this.source.clear();
    this.loaded.clear();
  }

  counts() {
    const out = {};
    for (const f of this.source.getFeatures()) {
      const n = f.get('network');
      out[n] = out[n] || { links: 0, valves: 0 };
      out[n][f.get('layer')] += 1;
    }
    return out;
  }
}

// ---- an isolation ----

const PART_Z = { dry: 1, isolated: 2, affected: 4, customer: 5, failed: 6, valve: 7 };

function isolationStyle(feature, resolution) {
  switch (feature.get('part')) {
    case 'isolated':
      return [
        new Style({ stroke: new Stroke({ color: '#0b1118', width: 9, lineCap: 'round', lineJoin: 'round' }), zIndex: 1 }),
        new Style({ stroke: new Stroke({ color: '#e5303a', width: 6, lineCap: 'round', lineJoin: 'round' }), zIndex: 2 }),
      ];
    case 'dry':
      return new Style({ stroke: new Stroke({ color: '#ff8c1a', width: 4, lineDash: [8, 6], lineCap: 'butt' }), zIndex: 1 });
    case 'valve': {
      const closed = feature.get('reported') === 'closed';
      return new Style({
        image: new Circle({
          radius: 11,
          fill: new Fill({ color: closed ? '#2ea043' : '#ffd166' }),
          stroke: new Stroke({ color: '#0b1118', width: 2 }),
        }),
        text: new Text({
          text: String(feature.get('order')), font: `bold 12px ${FONT}`,
          fill: new Fill({ color: closed ? '#ffffff' : '#1b1300' }),
        }),
        zIndex: 10 + (100000 - feature.get('order')),
      });
    }
    case 'failed':
      return new Style({
        image: new RegularShape({
          points: 4, radius: 10, radius2: 0, angle: Math.PI / 4,
          stroke: new Stroke({ color: '#f85149', width: 4 }),
        }),
        zIndex: 9,
      });
    case 'affected':
      // Every customer cut off (the answer lists up to 5,000): small dots,
      // orange where the supply goes because the area went dry.
      return new Style({
        image: new Circle({
          radius: 3.5,
          fill: new Fill({ color: feature.get('dry') ? '#ff8c1a' : '#e5303a' }),
          stroke: new Stroke({ color: '#0b1118', width: 1 }),
        }),
        zIndex: 4,
      });
    case 'customer':
      return new Style({
        image: new RegularShape({
          points: 4, radius: 8, angle: 0,
          fill: new Fill({ color: '#d946ef' }), stroke: new Stroke({ color: '#ffffff', width: 1.5 }),
        }),
        text: resolution < 3 ? new Text({
          text: feature.get('name') || '', offsetY: -15, font: `bold 11px ${FONT}`,
          fill: new Fill({ color: '#f5d0fe' }), stroke: new Stroke({ color: '#0b1118', width: 3 }),
        }) : undefined,
        zIndex: 8,
      });
    default:
      return null;
  }
}

function lines(geometry) {
  const coords = (geometry && geometry.coordinates) || [];
  return new MultiLineString(coords.map((line) => line.map((c) => fromLonLat(c))));
}

// The features of an isolation ({…, answer}), or [] without an answer.
export function isolationFeatures(iso) {
  const a = iso && iso.answer;
  if (!a) return [];
  const out = [
    new Feature({ geometry: lines(a.dry && a.dry.geometry), part: 'dry' }),
    new Feature({ geometry: lines(a.isolated && a.isolated.geometry), part: 'isolated' }),
  ];
  for (const v of a.valves || []) {
    if (!v.position) continue;
    const f = new Feature({ geometry: new Point(fromLonLat(v.position)), part: 'valve', order: v.order, reported: v.reported || null, valve: v.id });
    f.setId(`valve/${v.id}`);
    out.push(f);
  }
  for (const v of a.cannot_close || []) {
    if (!v.failed || !v.position) continue;
    out.push(new Feature({ geometry: new Point(fromLonLat(v.position)), part: 'failed', valve: v.id }));
  }
  const priority = new Set(((a.customers && a.customers.priority_list) || []).map((c) => c.id));
  for (const c of (a.customers && a.customers.list) || []) {
    if (!c.position || priority.has(c.id)) continue;
    out.push(new Feature({ geometry: new Point(fromLonLat(c.position)), part: 'affected', name: c.name, dry: !!c.dry }));
  }
  for (const c of (a.customers && a.customers.priority_list) || []) {
    if (!c.position) continue;
    out.push(new Feature({ geometry: new Point(fromLonLat(c.position)), part: 'customer', name: c.name, kind: c.kind }));
  }
  for (const f of out) f.set('z', PART_Z[f.get('part')]);
  return out;
}

// An isolation drawn over a map.
export class IsolationLayer {
  constructor() {
    this.source = new VectorSource();
    this.layer = new VectorLayer({ source: this.source, style: isolationStyle, zIndex: 12 });
  }

  show(iso) {
    this.source.clear();
    this.source.addFeatures(isolationFeatures(iso));
  }

  clear() {
    this.source.clear();
  }

  // The extent of what is drawn (EPSG:3857), or null when nothing is.
  extent() {
    const e = this.source.getExtent();
    return this.source.getFeatures().length && Number.isFinite(e[0]) ? e : null;
  }

  // What is drawn, for the tests: lines isolated and dry, valve markers by order…
  drawn() {
    const out = { isolated: 0, dry: 0, valves: [], failed: [], customers: 0 };
    for (const f of this.source.getFeatures()) {
      const p = f.get('part');
      if (p === 'isolated' || p === 'dry') out[p] += f.getGeometry().getLineStrings().length;
      else if (p === 'valve') out.valves.push({ order: f.get('order'), id: f.get('valve'), reported: f.get('reported') });
      else if (p === 'failed') out.failed.push(f.get('valve'));
      else if (p === 'customer') out.customers += 1;
    }
    out.valves.sort((x, y) => x.order - y.order);
    return out;
  }
}

// The crew page's small map: the city's tiles and one isolation; the view
// fits the isolation when it is first shown (not on every update).
export class IsolationMap extends SmallCityMap {
  constructor(target) {
    super(target, { maxZoom: 20 });
    this.iso = new IsolationLayer();
    this.fitted = null; // the isolation id the view was fitted to
  }

  overlays() {
    return [this.iso.layer];
  }

  show(iso) {
    this.pending = iso;
    this.iso.show(iso);
    if (!this.map) return;
    this.map.updateSize();
    if (iso && this.fitted !== iso.id) this.fit();
  }

  fit() {
    const e = this.iso.extent();
    if (!this.map || !e) return;
    this.fitted = this.pending && this.pending.id;
    this.map.getView().fit(e, { padding: [40, 40, 40, 40], maxZoom: 18, duration: 0 });
  }

  centre(lonlat) {
    if (!this.map) return;
    this.map.getView().animate({ center: fromLonLat(lonlat), zoom: Math.max(this.map.getView().getZoom() || 17, 18), duration: 300 });
  }
}
