// The city map: OpenLayers drawing the server's vector tiles (no tile,
// glyph or font server anywhere: labels are drawn with the browser's own
// fonts, Chinese and Latin alike), a dark command-centre style and a light
// daytime one, a layer switcher with the service districts, a search box,
// a click that says where a point is (its nearest address and districts),
// the open incidents as coloured circles on top, the units above them
// (a symbol per kind, ringed in the colour of the unit's primary status,
// with an arrow for its heading), the track of the selected unit and the
// road routes of the units recommended for the selected incident. The
// field page draws a small map of its own (RouteMap) from the same tiles,
// as the crew page does (IsolationMap, pipesmap.js): both SmallCityMaps.
import 'ol/ol.css';
import Map from 'ol/Map.js';
import View from 'ol/View.js';
import Overlay from 'ol/Overlay.js';
import { defaults as defaultControls } from 'ol/control/defaults.js';
import VectorTileLayer from 'ol/layer/VectorTile.js';
import VectorTileSource from 'ol/source/VectorTile.js';
import MVT from 'ol/format/MVT.js';
import TileState from 'ol/TileState.js';
import VectorLayer from 'ol/layer/Vector.js';
import VectorSource from 'ol/source/Vector.js';
import Feature from 'ol/Feature.js';
import Point from 'ol/geom/Point.js';
import LineString from 'ol/geom/LineString.js';
import MultiPoint from 'ol/geom/MultiPoint.js';
import { fromLonLat, toLonLat, transformExtent } from 'ol/proj.js';
import { Style, Fill, Stroke, Text, Circle, Icon } from 'ol/style.js';
import { api } from './auth.js';
import { t } from './i18n.js';

// Incident symbols: colour by family, size by priority (P1 largest).
export const FAMILY_COLORS = {
  fire: '#f85149', medical: '#2ea043', traffic: '#f0883e', police: '#3b82f6',
  utility: '#a371f7', hotline: '#8b949e',
};
const PRIORITY_RADIUS = { 1: 15, 2: 13, 3: 11, 4: 10, 5: 9 };

const THEMES = {
  dark: {
    background: '#0b1118', water: '#12324a', building: '#1c2733', buildingLine: '#243241',
    road: { major: '#c9a227', middle: '#6f7f91', minor: '#3b4856' }, roadLabel: '#c8d3de',
    label: '#ffd166', halo: '#0b1118',
    district: { fire: '#f85149', police: '#3b82f6', ems: '#2ea043', admin: '#8da2b8' },
    station: { fire: '#f85149', police: '#3b82f6', hospital: '#2ea043', ambulance: '#2ea043' },
  },
  light: {
    background: '#f4f1ea', water: '#a9cbe8', building: '#ddd6cb', buildingLine: '#cbc2b4',
    road: { major: '#e8a33d', middle: '#ffffff', minor: '#ffffff' }, roadLabel: '#3b3b3b',
    label: '#7a2e00', halo: '#ffffff',
    district: { fire: '#c62828', police: '#1e5bb8', ems: '#1b7f34', admin: '#6b6b6b' },
    station: { fire: '#c62828', police: '#1e5bb8', hospital: '#1b7f34', ambulance: '#1b7f34' },
  },
};
const MAJOR = new Set(['motorway', 'motorway_link', 'trunk', 'trunk_link', 'primary', 'primary_link', 'secondary']);
const MIDDLE = new Set(['secondary_link', 'tertiary', 'tertiary_link', 'unclassified', 'residential']);
const FONT = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", system-ui, sans-serif';

export const mapState = {
  theme: localStorage.getItem('citycmd.map.theme') || 'dark',
  layers: { roads: true, buildings: true, water: true, districts: true, labels: true },
  districtKind: 'fire',
};

function roadStyle(kind, name, resolution, th) {
  const cls = MAJOR.has(kind) ? 'major' : MIDDLE.has(kind) ? 'middle' : 'minor';
  const base = cls === 'major' ? 4 : cls === 'middle' ? 2.5 : 1.2;
  const width = Math.max(0.8, base * Math.min(2, 3 / resolution));
  const styles = [new Style({ stroke: new Stroke({ color: th.road[cls], width }), zIndex: cls === 'major' ? 3 : cls === 'middle' ? 2 : 1 })];
  if (mapState.layers.labels && name && resolution < (cls === 'major' ? 6 : 2.5)) {
    styles.push(new Style({
      text: new Text({
        text: name, placement: 'line', font: `11px ${FONT}`,
        fill: new Fill({ color: th.roadLabel }), stroke: new Stroke({ color: th.halo, width: 3 }),
      }),
      zIndex: 5,
    }));
  }
  return styles;
}

function styleFunction(feature, resolution) {
  const th = THEMES[mapState.theme];
  const layer = feature.get('layer');
  const kind = feature.get('kind') || '';
  const name = feature.get('name') || '';
  switch (layer) {
    case 'water':
      return mapState.layers.water ? new Style({ fill: new Fill({ color: th.water }) }) : null;
    case 'buildings':
      return mapState.layers.buildings
        ? new Style({ fill: new Fill({ color: th.building }), stroke: new Stroke({ color: th.buildingLine, width: 0.5 }) })
        : null;
    case 'roads':
      return mapState.layers.roads ? roadStyle(kind, name, resolution, th) : null;
    case 'districts': {
      if (!mapState.layers.districts || (mapState.districtKind !== 'all' && kind !== mapState.districtKind)) return null;
      const color = th.district[kind] || th.district.admin;
      return new Style({
        stroke: new Stroke({ color, width: kind === 'admin' ? 1 : 2, lineDash: kind === 'admin' ? [4, 4] : undefined }),
        fill: new Fill({ color: `${color}14` }),
      });
    }
    case 'stations': {
      const color = th.station[kind] || th.district.admin;
      return new Style({
        image: new Circle({ radius: 6, fill: new Fill({ color }), stroke: new Stroke({ color: th.halo, width: 2 }) }),
        text: mapState.layers.labels && name && resolution < 5 ? new Text({
          text: name, offsetY: -14, font: `11px ${FONT}`,
          fill: new Fill({ color }), stroke: new Stroke({ color: th.halo, width: 3 }),
        }) : undefined,
        zIndex: 8,
      });
    }
    case 'places':
      if (!mapState.layers.labels || !name) return null;
      return new Style({
        text: new Text({
          text: name, font: `bold ${kind === 'city' || kind === 'town' ? 15 : 13}px ${FONT}`,
          fill: new Fill({ color: th.label }), stroke: new Stroke({ color: th.halo, width: 4 }),
        }),
        zIndex: 10,
      });
    default:
      return null;
  }
}

// Tiles are fetched with the session's token, like every other call.
function loadTile(tile, url) {
  tile.setLoader(async (extent, resolution, projection) => {
    try {
      const res = await api(url);
      if (!res.ok) throw new Error(String(res.status));
      const data = await res.arrayBuffer();
      const format = tile.getFormat();
      tile.setFeatures(format.readFeatures(data, { extent, featureProjection: projection }));
    } catch {
      tile.setState(TileState.ERROR);
    }
  });
}

// "Fire district: Caserne X" for a district; the server's names of
// service districts already begin with their kind in English, which the
// translated kind replaces.
export function districtText(d) {
  const key = `map.district.${d.kind}`;
  const kind = t(key);
  if (kind === key) return d.name;
  return `${kind}: ${d.name.replace(/^(Fire district|Police precinct|EMS zone): /, '')}`;
}

export function districtList(districts) {
  const ul = document.createElement('ul');
  for (const d of districts || []) {
    const li = document.createElement('li');
    li.textContent = districtText(d);
    ul.append(li);
  }
  return ul;
}

function incidentStyle(feature, blink) {
  const inc = feature.get('incident');
  const th = THEMES[mapState.theme];
  const radius = PRIORITY_RADIUS[inc.priority] || 9;
  const color = FAMILY_COLORS[inc.family] || FAMILY_COLORS.hotline;
  const selected = feature.get('selected');
  const styles = [];
  if (feature.get('alarm') && blink) {
    styles.push(new Style({
      image: new Circle({ radius: radius + 7, stroke: new Stroke({ color: '#f85149', width: 3 }) }),
      zIndex: 20,
    }));
  }
  styles.push(new Style({
    image: new Circle({
      radius,
      fill: new Fill({ color }),
      stroke: new Stroke({ color: selected ? '#ffffff' : th.halo, width: selected ? 4 : 2 }),
    }),
    text: new Text({
      text: `P${inc.priority}`, font: `bold ${radius >= 13 ? 12 : 11}px ${FONT}`,
      fill: new Fill({ color: '#ffffff' }), stroke: new Stroke({ color: '#0008', width: 2 }),
    }),
    zIndex: selected ? 30 : 21 + (6 - inc.priority),
  }));
  return styles;
}

// ---- unit symbols ----

// A unit is a rounded square in its service's colour with a short label of
// its kind, ringed in the colour of its primary status; the board draws the
// same symbol in CSS from these colours.
export const UNIT_KINDS = {
  engine: { label: 'E', fill: '#d7301f', text: '#ffffff' },
  ladder: { label: 'L', fill: '#d7301f', text: '#ffffff' },
  rescue: { label: 'R', fill: '#d7301f', text: '#ffffff' },
  tanker: { label: 'TK', fill: '#d7301f', text: '#ffffff' },
  hazmat: { label: 'HZ', fill: '#d7301f', text: '#ffffff' },
  ambulance: { label: 'A', fill: '#ffffff', text: '#1a7f37', border: '#1a7f37' },
  patrol_car: { label: 'P', fill: '#1f5bd8', text: '#ffffff' },
  motorcycle: { label: 'M', fill: '#1f5bd8', text: '#ffffff' },
  traffic_car: { label: 'TR', fill: '#1f5bd8', text: '#ffffff' },
  tow_truck: { label: 'T', fill: '#f59e0b', text: '#1b1300' },
  water_crew: { label: 'W', fill: '#0bb4d6', text: '#00222a' },
  gas_crew: { label: 'G', fill: '#facc15', text: '#2a2200' },
  command_car: { label: 'C', fill: '#8b5cf6', text: '#ffffff' },
};
const UNIT_OTHER = { label: '?', fill: '#6e7781', text: '#ffffff' };
export const PRIMARY_COLORS = {
  available: '#2ea043', conditionally_available: '#f0a020', not_available: '#e5484d',
};
const PRIMARY_OTHER = '#8b949e';
export const unitKind = (kind) => UNIT_KINDS[kind] || UNIT_OTHER;
export const primaryColor = (primary) => PRIMARY_COLORS[primary] || PRIMARY_OTHER;

const UNIT_THEMES = {
  dark: { halo: '#0b1118', label: '#e6edf3', arrow: '#ffffff', arrowLine: '#0b1118', track: '#ffd166', selected: '#58a6ff' },
  light: { halo: '#ffffff', label: '#1f2328', arrow: '#1f2328', arrowLine: '#ffffff', track: '#c2410c', selected: '#1e5bb8' },
};
const SYMBOL = { body: 20, gap: 1.5, ring: 3 }; // px: the square, the halo between it and the ring, the ring
const SYMBOL_SIZE = 32;
const ARROW_SIZE = 64;

function canvasOf(size) {
  const dpr = Math.max(1, Math.round(window.devicePixelRatio || 1));
  const c = document.createElement('canvas');
  c.width = size * dpr;
  c.height = size * dpr;
  const ctx = c.getContext('2d');
  ctx.scale(dpr, dpr);
  return { c, ctx, dpr };
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

const iconCache = new Map();

// The symbol of a kind and primary status in a theme (drawn once, kept).
function unitIcon(kind, primary, theme) {
  const key = `s|${kind}|${primary}|${theme}`;
  let icon = iconCache.get(key);
  if (icon) return icon;
  const k = unitKind(kind);
  const th = UNIT_THEMES[theme];
  const ring = primaryColor(primary);
  const { c, ctx, dpr } = canvasOf(SYMBOL_SIZE);
  const mid = SYMBOL_SIZE / 2;
  const outer = SYMBOL.body / 2 + SYMBOL.gap + SYMBOL.ring;
  // The ring, then the halo that parts it from the body, then the body.
  roundRect(ctx, mid - outer - 0.5, mid - outer - 0.5, 2 * outer + 1, 2 * outer + 1, 8);
  ctx.fillStyle = th.halo;
  ctx.fill();
  roundRect(ctx, mid - outer, mid - outer, 2 * outer, 2 * outer, 7.5);
  ctx.fillStyle = ring;
  ctx.fill();
  const inner = SYMBOL.body / 2 + SYMBOL.gap;
  roundRect(ctx, mid - inner, mid - inner, 2 * inner, 2 * inner, 5.5);
  ctx.fillStyle = th.halo;
  ctx.fill();
  const b = SYMBOL.body / 2;
  roundRect(ctx, mid - b, mid - b, 2 * b, 2 * b, 4);
  ctx.fillStyle = k.fill;
  ctx.fill();
  if (k.border) {
    roundRect(ctx, mid - b + 1, mid - b + 1, 2 * b - 2, 2 * b - 2, 3);
    ctx.lineWidth = 2;
    ctx.strokeStyle = k.border;
    ctx.stroke();
  }
  ctx.fillStyle = k.text;
  ctx.font = `bold ${k.label.length > 1 ? 10 : 13}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(k.label, mid, mid + 0.5);
  // What the style draws, for the tests and the curious.
  Object.assign(c.dataset, { role: 'unit-symbol', kind, primary, ring, fill: k.fill, label: k.label });
  icon = new Icon({ img: c, scale: 1 / dpr, declutterMode: 'obstacle' });
  iconCache.set(key, icon);
  return icon;
}

// The heading: a small arrow outside the symbol, pointing up before the
// style rotates it by the course.
function arrowCanvas(theme) {
  const key = `a|${theme}`;
  let c = iconCache.get(key);
  if (c) return c;
  const th = UNIT_THEMES[theme];
  ({ c } = canvasOf(ARROW_SIZE));
  const ctx = c.getContext('2d');
  const mid = ARROW_SIZE / 2;
  ctx.beginPath();
  ctx.moveTo(mid, 2);
  ctx.lineTo(mid + 6, 12);
  ctx.lineTo(mid, 9.5);
  ctx.lineTo(mid - 6, 12);
  ctx.closePath();
  ctx.lineJoin = 'round';
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = th.arrowLine;
  ctx.stroke();
  ctx.fillStyle = th.arrow;
  ctx.fill();
  c.dataset.role = 'unit-heading';
  iconCache.set(key, c);
  return c;
}

function unitStyle(feature, resolution) {
  const u = feature.get('unit');
  const th = UNIT_THEMES[mapState.theme];
  const selected = feature.get('selected');
  const styles = [];
  if (selected) {
    styles.push(new Style({
      image: new Circle({ radius: 23, stroke: new Stroke({ color: th.selected, width: 3 }), declutterMode: 'obstacle' }),
      zIndex: 1,
    }));
  }
  if (Number.isFinite(u.course)) {
    const c = arrowCanvas(mapState.theme);
    const dpr = c.width / ARROW_SIZE;
    styles.push(new Style({
      image: new Icon({ img: c, scale: 1 / dpr, rotation: (u.course * Math.PI) / 180, declutterMode: 'obstacle' }),
      zIndex: 2,
    }));
  }
  styles.push(new Style({
    image: unitIcon(u.kind, u.primary, mapState.theme),
    // Call signs once the map is close enough to read them (zoom 15 on).
    text: resolution < 5 && u.call_sign ? new Text({
      text: u.call_sign, offsetY: 24, font: `bold 11px ${FONT}`,
      fill: new Fill({ color: th.label }), stroke: new Stroke({ color: th.halo, width: 3 }),
    }) : undefined,
    zIndex: selected ? 10 : 3,
  }));
  return styles;
}

// A route by road: the unit's kind colour over a halo (dashed: proposed,
// solid: on its way). The unit's symbol at its start names it.
function routeStyle(feature) {
  const th = UNIT_THEMES[mapState.theme];
  const color = feature.get('color') || th.selected;
  return [
    new Style({ stroke: new Stroke({ color: th.halo, width: 7, lineCap: 'round', lineJoin: 'round' }), zIndex: 1 }),
    new Style({
      stroke: new Stroke({ color, width: 4, lineCap: 'round', lineJoin: 'round', lineDash: feature.get('dashed') ? [10, 6] : undefined }),
      zIndex: 2,
    }),
  ];
}

// The vector tiles of the city (the base map), for either map.
export function cityTileLayer(city) {
  return new VectorTileLayer({
    declutter: true,
    source: new VectorTileSource({
      format: new MVT(),
      url: '/tiles/base/{z}/{x}/{y}.mvt',
      maxZoom: 18,
      tileLoadFunction: loadTile,
      attributions: city.attribution,
    }),
    style: styleFunction,
  });
}

// Features of routes [{ id, kind, dashed, coordinates: [[lon, lat]…] }].
function routeFeatures(routes) {
  const out = [];
  for (const r of routes || []) {
    const coords = (r.coordinates || []).filter((c) => Number.isFinite(c[0]) && Number.isFinite(c[1]));
    if (coords.length < 2) continue;
    const f = new Feature({
      geometry: new LineString(coords.map((c) => fromLonLat(c))),
      color: r.kind ? unitKind(r.kind).fill : null, dashed: Boolean(r.dashed),
    });
    if (r.id) f.setId(r.id);
    out.push(f);
  }
  return out;
}

function trackStyle(feature) {
  const th = UNIT_THEMES[mapState.theme];
  if (feature.getGeometry() instanceof MultiPoint) {
    return new Style({
      image: new Circle({ radius: 3, fill: new Fill({ color: th.track }), stroke: new Stroke({ color: th.halo, width: 1 }) }),
    });
  }
  return [
    new Style({ stroke: new Stroke({ color: th.halo, width: 6, lineCap: 'round', lineJoin: 'round' }) }),
    new Style({ stroke: new Stroke({ color: th.track, width: 3, lineCap: 'round', lineJoin: 'round' }) }),
  ];
}

export class CityMap {
  constructor(el) {
    this.el = el;
    this.map = null;
    // The incidents are kept here whether or not the map could start.
    this.blink = false;
    this.incidentSource = new VectorSource();
    this.incidentLayer = new VectorLayer({
      source: this.incidentSource,
      style: (f) => incidentStyle(f, this.blink),
      zIndex: 10,
      updateWhileAnimating: true,
      updateWhileInteracting: true,
    });
    // The units above the incidents, and the selected unit's track between.
    this.unitSource = new VectorSource();
    this.unitLayer = new VectorLayer({
      source: this.unitSource,
      style: unitStyle,
      zIndex: 20,
      declutter: 'units',
      updateWhileAnimating: true,
      updateWhileInteracting: true,
    });
    this.trackSource = new VectorSource();
    this.trackLayer = new VectorLayer({ source: this.trackSource, style: trackStyle, zIndex: 15 });
    // The selected incident's recommended routes, under the incidents.
    this.routeSource = new VectorSource();
    this.routeLayer = new VectorLayer({ source: this.routeSource, style: routeStyle, zIndex: 5 });
    this.onIncidentClick = null; // (id) => …
    this.onUnitClick = null; // (id) => …
    this.selectedUnit = null;
    this.trackLine = null; // the selected unit's track: a line and its positions
    this.trackPoints = null;
    this.trackLast = -Infinity; // ms of its newest position
    this.onUseLocation = null; // ({ lon, lat, text }) => …
    this.pickOnce = null; // the next click is a location for the call form
    this.clickHook = null; // (e) => true when it took the click (the pipes' isolation mode)
    // Layers of other modules whose features take a click (the cameras):
    // [{ layer, hitTolerance, filter(feature), click(feature, e) }].
    this.featureClicks = [];
  }

  async start() {
    const res = await api('/api/v1/city');
    const city = res.ok ? await res.json() : { loaded: false };
    if (!city.loaded) {
      this.el.querySelector('.placeholder').hidden = false;
      return false;
    }
    this.city = city;
    this.el.querySelector('.placeholder').hidden = true;
    this.el.classList.toggle('light', mapState.theme === 'light');
    const target = this.el.querySelector('.map-canvas');
    target.hidden = false;
    this.layer = cityTileLayer(city);
    const extent = transformExtent(city.bbox, 'EPSG:4326', 'EPSG:3857');
    this.popup = new Overlay({ element: this.el.querySelector('.map-popup'), autoPan: true, positioning: 'bottom-center', offset: [0, -10] });
    this.map = new Map({
      target,
      layers: [this.layer, this.routeLayer, this.incidentLayer, this.trackLayer, this.unitLayer],
      overlays: [this.popup],
      controls: defaultControls({ attributionOptions: { collapsible: false } }),
      view: new View({ center: fromLonLat(city.center), zoom: 15, minZoom: 11, maxZoom: 20, extent, constrainOnlyCenter: true }),
    });
    this.map.on('singleclick', (e) => this.clicked(e));
    this.map.on('pointermove', (e) => {
      if (e.dragging) return;
      target.style.cursor = this.unitAt(e.pixel) || this.incidentAt(e.pixel) || this.clickableAt(e.pixel) ? 'pointer' : '';
    });
    window.citycmdMap = this;
    return true;
  }

  stop() {
    if (this.map) this.map.setTarget(null);
    this.map = null;
    this.el.querySelector('.map-canvas').hidden = true;
    this.popup?.setPosition(undefined);
  }

  restyle() {
    this.el.classList.toggle('light', mapState.theme === 'light');
    this.layer?.changed();
    this.incidentLayer.changed();
    this.unitLayer.changed();
    this.trackLayer.changed();
    this.routeLayer.changed();
    for (const c of this.featureClicks) c.layer.changed();
  }

  incidentAt(pixel) {
    if (!this.map) return null;
    return this.map.forEachFeatureAtPixel(pixel, (f) => f, {
      layerFilter: (l) => l === this.incidentLayer, hitTolerance: 4,
    }) || null;
  }

  unitAt(pixel) {
    if (!this.map) return null;
    return this.map.forEachFeatureAtPixel(pixel, (f) => f, {
      layerFilter: (l) => l === this.unitLayer, hitTolerance: 2,
    }) || null;
  }

  // The feature of featureClicks under a pixel, with its handler, or null.
  clickableAt(pixel) {
    if (!this.map) return null;
    for (const c of this.featureClicks) {
      if (!c.layer.getVisible()) continue;
      const f = this.map.forEachFeatureAtPixel(pixel, (g) => (!c.filter || c.filter(g) ? g : undefined), {
        layerFilter: (l) => l === c.layer, hitTolerance: c.hitTolerance || 2,
      });
      if (f) return { feature: f, click: c.click };
    }
    return null;
  }

  // A click on a unit or an incident selects it; in pick mode a click is the call's
  // location; one on a feature of featureClicks (a camera) goes to its
  // module; anywhere else it says where the point is.
  async clicked(e) {
    if (this.pickOnce) {
      const pick = this.pickOnce;
      this.pickOnce = null;
      const [lon, lat] = toLonLat(e.coordinate);
      const where = await this.where(lon, lat);
      pick({ lon, lat, text: where ? where.text : '' });
      return;
    }
    if (this.clickHook && this.clickHook(e)) return;
    const u = this.unitAt(e.pixel);
    if (u && this.onUnitClick) {
      this.popup.setPosition(undefined);
      this.onUnitClick(u.getId());
      return;
    }
    const f = this.incidentAt(e.pixel);
    if (f) {
      this.popup.setPosition(undefined);
      this.onIncidentClick?.(f.getId());
      return;
    }
    const hit = this.clickableAt(e.pixel);
    if (hit) {
      hit.click(hit.feature, e);
      return;
    }
    this.describe(e.coordinate);
  }

  async where(lon, lat) {
    const res = await api(`/api/v1/gis/reverse?lon=${lon.toFixed(7)}&lat=${lat.toFixed(7)}`);
    return res.ok ? res.json() : null;
  }

  // "near 12 Boulevard X, Monte-Carlo" and the districts, in a popup.
  async describe(coordinate) {
    const [lon, lat] = toLonLat(coordinate);
    const body = await this.where(lon, lat);
    if (!body || !this.map) return;
    const box = this.el.querySelector('.map-popup');
    const text = document.createElement('p');
    text.className = 'where';
    text.textContent = body.text;
    const coords = document.createElement('p');
    coords.className = 'coords';
    coords.textContent = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    const parts = [text, coords, districtList(body.districts)];
    if (this.onUseLocation) {
      const use = document.createElement('button');
      use.type = 'button';
      use.className = 'use-location';
      use.textContent = t('map.use_for_call');
      use.addEventListener('click', () => {
        this.popup.setPosition(undefined);
        this.onUseLocation({ lon, lat, text: body.text });
      });
      parts.push(use);
    }
    box.querySelector('.content').replaceChildren(...parts);
    this.popup.setPosition(coordinate);
  }

  // ---- incidents ----

  // Adds or updates the symbol of an open incident.
  setIncident(inc) {
    if (!inc.location || !Number.isFinite(inc.location.lon) || !Number.isFinite(inc.location.lat)) return;
    const at = fromLonLat([inc.location.lon, inc.location.lat]);
    let f = this.incidentSource.getFeatureById(inc.id);
    if (!f) {
      f = new Feature({ geometry: new Point(at), incident: inc });
      f.setId(inc.id);
      this.incidentSource.addFeature(f);
    } else {
      f.getGeometry().setCoordinates(at);
      f.set('incident', inc);
    }
  }

  removeIncident(id) {
    const f = this.incidentSource.getFeatureById(id);
    if (f) this.incidentSource.removeFeature(f);
  }

  clearIncidents() {
    this.incidentSource.clear();
  }

  incidentCount() {
    return this.incidentSource.getFeatures().length;
  }

  // The selected incident is drawn with a white ring (null: none).
  selectIncident(id) {
    for (const f of this.incidentSource.getFeatures()) {
      const on = f.getId() === id;
      if (Boolean(f.get('selected')) !== on) f.set('selected', on);
    }
  }

  // Incidents in alarm get a ring that flashes once a second; called with
  // the ids in alarm several times a second.
  setAlarms(ids) {
    let changed = false;
    for (const f of this.incidentSource.getFeatures()) {
      const on = ids.has(f.getId());
      if (Boolean(f.get('alarm')) !== on) { f.set('alarm', on, true); changed = true; }
    }
    const blink = ids.size > 0 && Math.floor(Date.now() / 500) % 2 === 0;
    if (blink !== this.blink) { this.blink = blink; changed = true; }
    if (changed) this.incidentLayer.changed();
  }

  // Centres the map on an incident without changing the zoom.
  showIncident(id) {
    const f = this.incidentSource.getFeatureById(id);
    if (!f || !this.map) return;
    this.map.getView().animate({ center: f.getGeometry().getCoordinates(), duration: 300 });
  }

  // ---- units ----

  // Adds, moves or restyles a unit; one without a position leaves the map.
  // True when the unit is the selected one and its track grew.
  setUnit(u) {
    if (!Number.isFinite(u.lon) || !Number.isFinite(u.lat)) {
      this.removeUnit(u.id);
      return false;
    }
    const at = fromLonLat([u.lon, u.lat]);
    let f = this.unitSource.getFeatureById(u.id);
    if (!f) {
      f = new Feature({ geometry: new Point(at), unit: u, selected: this.selectedUnit === u.id });
      f.setId(u.id);
      this.unitSource.addFeature(f);
    } else {
      const g = f.getGeometry();
      const [x, y] = g.getCoordinates();
      if (x !== at[0] || y !== at[1]) g.setCoordinates(at);
      f.set('unit', u);
    }
    // The selected unit's track grows as it moves.
    const fix = Date.parse(u.fix_at);
    if (this.selectedUnit === u.id && this.trackLine && fix > this.trackLast) {
      this.trackLast = fix;
      this.trackLine.getGeometry().appendCoordinate(at);
      this.trackPoints.getGeometry().appendPoint(new Point(at));
      return true;
    }
    return false;
  }

  removeUnit(id) {
    const f = this.unitSource.getFeatureById(id);
    if (f) this.unitSource.removeFeature(f);
  }

  clearUnits() {
    this.unitSource.clear();
    this.setTrack(null);
    this.selectedUnit = null;
  }

  unitCount() {
    return this.unitSource.getFeatures().length;
  }

  // [lon, lat] of a unit's symbol, or null.
  unitPosition(id) {
    const f = this.unitSource.getFeatureById(id);
    return f ? toLonLat(f.getGeometry().getCoordinates()) : null;
  }

  // What the style draws for a unit at the present zoom: the symbol's kind
  // label, body and ring colours, the heading arrow's rotation (degrees,
  // null: none) and the call sign label (null: none).
  unitSymbol(id) {
    const f = this.unitSource.getFeatureById(id);
    if (!f) return null;
    const resolution = this.map ? this.map.getView().getResolution() : 1;
    const styles = unitStyle(f, resolution);
    const out = { arrow: null, label: null, selected: Boolean(f.get('selected')) };
    for (const s of styles) {
      const img = s.getImage();
      const canvas = img && img.getImage ? img.getImage(1) : null;
      if (canvas && canvas.dataset && canvas.dataset.role === 'unit-symbol') {
        Object.assign(out, { ...canvas.dataset });
        out.label = s.getText() ? s.getText().getText() : null;
      } else if (canvas && canvas.dataset && canvas.dataset.role === 'unit-heading') {
        out.arrow = Math.round((img.getRotation() * 180) / Math.PI);
      }
    }
    return out;
  }

  // The selected unit has a ring of the accent colour (null: none).
  selectUnit(id) {
    this.selectedUnit = id;
    for (const f of this.unitSource.getFeatures()) {
      const on = f.getId() === id;
      if (Boolean(f.get('selected')) !== on) f.set('selected', on);
    }
  }

  // Centres the map on a unit without changing the zoom.
  showUnit(id) {
    const f = this.unitSource.getFeatureById(id);
    if (!f || !this.map) return;
    this.map.getView().animate({ center: f.getGeometry().getCoordinates(), duration: 300 });
  }

  // The track of the selected unit: positions [{lon, lat, at}] oldest
  // first, as a line with a dot at each position (null: none).
  setTrack(positions) {
    this.trackSource.clear();
    this.trackLine = null;
    this.trackPoints = null;
    this.trackLast = -Infinity;
    if (!positions) return;
    const coords = positions.map((p) => fromLonLat([p.lon, p.lat]));
    this.trackLine = new Feature({ geometry: new LineString(coords) });
    this.trackPoints = new Feature({ geometry: new MultiPoint(coords) });
    this.trackLast = positions.length ? Date.parse(positions[positions.length - 1].at) : -Infinity;
    this.trackSource.addFeatures([this.trackLine, this.trackPoints]);
  }

  // [[lon, lat]…] of the drawn track.
  trackCoordinates() {
    return this.trackLine ? this.trackLine.getGeometry().getCoordinates().map((c) => toLonLat(c)) : [];
  }

  // ---- routes ----

  // The routes of the units recommended for (dashed) or assigned to the
  // selected incident: [{ id (the unit's), kind, dashed, coordinates:
  // [[lon, lat]…] }], or null to clear them.
  setRoutes(routes) {
    this.routeSource.clear();
    if (routes) this.routeSource.addFeatures(routeFeatures(routes));
  }

  // The ids of the units whose route is drawn (for the tests).
  routeIds() {
    return this.routeSource.getFeatures().map((f) => f.getId());
  }

  async search(q) {
    const res = await api(`/api/v1/gis/search?q=${encodeURIComponent(q)}&limit=8`);
    if (!res.ok) return [];
    return (await res.json()).results;
  }

  goTo(lon, lat) {
    const c = fromLonLat([lon, lat]);
    this.map.getView().animate({ center: c, zoom: 17, duration: 400 });
    this.describe(c);
  }
}

// A page's small map of the city's own tiles (the field page's route, the
// crew page's isolation): a subclass gives the layers drawn over the tiles
// (overlays()) and show(what), called again with what was last shown once
// the map is up (this.pending).
export class SmallCityMap {
  constructor(target, { maxZoom }) {
    this.target = target;
    this.maxZoom = maxZoom;
    this.map = null;
    this.pending = null;
  }

  // Reads the city once; false when it has none (the map stays hidden).
  async start() {
    const res = await api('/api/v1/city');
    const city = res.ok ? await res.json() : { loaded: false };
    if (!city.loaded || !this.target) return false;
    const extent = transformExtent(city.bbox, 'EPSG:4326', 'EPSG:3857');
    this.map = new Map({
      target: this.target,
      layers: [cityTileLayer(city), ...this.overlays()],
      controls: defaultControls({ attributionOptions: { collapsible: true, collapsed: true }, rotate: false }),
      view: new View({
        center: fromLonLat(city.center), zoom: 15, minZoom: 11, maxZoom: this.maxZoom, extent, constrainOnlyCenter: true,
      }),
    });
    if (this.pending) this.show(this.pending);
    return true;
  }

  stop() {
    if (this.map) this.map.setTarget(null);
    this.map = null;
  }
}

const endStyle = (f) => new Style({
  image: new Circle({
    radius: f.get('end') === 'to' ? 8 : 6,
    fill: new Fill({ color: f.get('end') === 'to' ? '#f85149' : '#58a6ff' }),
    stroke: new Stroke({ color: '#ffffff', width: 2 }),
  }),
  zIndex: 10,
});

// The field page's small map: the city's tiles, the route from the unit to
// its incident, a dot at each end; the view fits the route.
export class RouteMap extends SmallCityMap {
  constructor(target) {
    super(target, { maxZoom: 19 });
    this.source = new VectorSource();
    this.ends = new VectorSource();
  }

  overlays() {
    return [new VectorLayer({ source: this.source, style: routeStyle, zIndex: 5 }),
      new VectorLayer({ source: this.ends, style: endStyle, zIndex: 10 })];
  }

  // { coordinates: [[lon, lat]…], from: [lon, lat], to: [lon, lat] }, or null.
  show(route) {
    this.pending = route;
    this.source.clear();
    this.ends.clear();
    if (!route) return;
    this.source.addFeatures(routeFeatures([{ id: 'route', coordinates: route.coordinates }]));
    for (const [end, at] of [['from', route.from], ['to', route.to]]) {
      if (at) this.ends.addFeature(new Feature({ geometry: new Point(fromLonLat(at)), end }));
    }
    if (!this.map) return;
    this.map.updateSize();
    const extent = this.source.getExtent();
    if (Number.isFinite(extent[0])) {
      this.map.getView().fit(extent, { padding: [36, 36, 36, 36], maxZoom: 18, duration: 0 });
    }
  }

  // The number of drawn route lines (for the tests).
  routeCount() {
    return this.source.getFeatures().length;
  }
}
