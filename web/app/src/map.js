// The city map: OpenLayers drawing the server's vector tiles (no tile,
// glyph or font server anywhere: labels are drawn with the browser's own
// fonts, Chinese and Latin alike), a dark command-centre style and a light
// daytime one, a layer switcher with the service districts, a search box,
// and a click that says where a point is: its nearest address and districts.
import 'ol/ol.css';
import Map from 'ol/Map.js';
import View from 'ol/View.js';
import Overlay from 'ol/Overlay.js';
import { defaults as defaultControls } from 'ol/control/defaults.js';
import VectorTileLayer from 'ol/layer/VectorTile.js';
import VectorTileSource from 'ol/source/VectorTile.js';
import MVT from 'ol/format/MVT.js';
import TileState from 'ol/TileState.js';
import { fromLonLat, toLonLat, transformExtent } from 'ol/proj.js';
import { Style, Fill, Stroke, Text, Circle } from 'ol/style.js';
import { api } from './auth.js';
import { t } from './i18n.js';

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

function districtList(districts) {
  const ul = document.createElement('ul');
  for (const d of districts) {
    const li = document.createElement('li');
    li.textContent = `${t(`map.district.${d.kind}`)}: ${d.name}`;
    ul.append(li);
  }
  return ul;
}

export class CityMap {
  constructor(el) {
    this.el = el;
    this.map = null;
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
      layers: [this.layer],
      overlays: [this.popup],
      controls: defaultControls({ attributionOptions: { collapsible: false } }),
      view: new View({ center: fromLonLat(city.center), zoom: 15, minZoom: 11, maxZoom: 20, extent, constrainOnlyCenter: true }),
    });
    this.map.on('singleclick', (e) => this.describe(e.coordinate));
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
  }

  // "near 12 Boulevard X, Monte-Carlo" and the districts, in a popup.
  async describe(coordinate) {
    const [lon, lat] = toLonLat(coordinate);
    const res = await api(`/api/v1/gis/reverse?lon=${lon.toFixed(7)}&lat=${lat.toFixed(7)}`);
    if (!res.ok) return;
    const body = await res.json();
    const box = this.el.querySelector('.map-popup');
    const text = document.createElement('p');
    text.className = 'where';
    text.textContent = body.text;
    const coords = document.createElement('p');
    coords.className = 'coords';
    coords.textContent = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    box.querySelector('.content').replaceChildren(text, coords, districtList(body.districts));
    this.popup.setPosition(coordinate);
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
