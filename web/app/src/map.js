// The city map: OpenLayers drawing the server's vector tiles (no tile,
// glyph or font server anywhere: labels are drawn with the browser's own
// fonts, Chinese and Latin alike), a dark command-centre style and a light
// daytime one, a layer switcher with the service districts, a search box,
// a click that says where a point is (its nearest address and districts),
// and the open incidents as coloured circles on top.
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
import { fromLonLat, toLonLat, transformExtent } from 'ol/proj.js';
import { Style, Fill, Stroke, Text, Circle } from 'ol/style.js';
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
    this.onIncidentClick = null; // (id) => …
    this.onUseLocation = null; // ({ lon, lat, text }) => …
    this.pickOnce = null; // the next click is a location for the call form
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
    this.layer = new VectorTileLayer({
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
    const extent = transformExtent(city.bbox, 'EPSG:4326', 'EPSG:3857');
    this.popup = new Overlay({ element: this.el.querySelector('.map-popup'), autoPan: true, positioning: 'bottom-center', offset: [0, -10] });
    this.map = new Map({
      target,
      layers: [this.layer, this.incidentLayer],
      overlays: [this.popup],
      controls: defaultControls({ attributionOptions: { collapsible: false } }),
      view: new View({ center: fromLonLat(city.center), zoom: 15, minZoom: 11, maxZoom: 20, extent, constrainOnlyCenter: true }),
    });
    this.map.on('singleclick', (e) => this.clicked(e));
    this.map.on('pointermove', (e) => {
      if (e.dragging) return;
      target.style.cursor = this.incidentAt(e.pixel) ? 'pointer' : '';
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
  }

  incidentAt(pixel) {
    if (!this.map) return null;
    return this.map.forEachFeatureAtPixel(pixel, (f) => f, {
      layerFilter: (l) => l === this.incidentLayer, hitTolerance: 4,
    }) || null;
  }

  // A click on an incident selects it; in pick mode a click is the call's
  // location; anywhere else it says where the point is.
  async clicked(e) {
    if (this.pickOnce) {
      const pick = this.pickOnce;
      this.pickOnce = null;
      const [lon, lat] = toLonLat(e.coordinate);
      const where = await this.where(lon, lat);
      pick({ lon, lat, text: where ? where.text : '' });
      return;
    }
    const f = this.incidentAt(e.pixel);
    if (f) {
      this.popup.setPosition(undefined);
      this.onIncidentClick?.(f.getId());
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
