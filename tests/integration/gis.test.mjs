// The city on a map: import-city against independent counts from ogrinfo on
// the same OpenStreetMap files, coordinate systems (CGCS2000, Gauss-Krüger, a
// custom WKT) landing where gdaltransform says they should, hostile files and
// parameters refused with errors, and the spatial API of a running server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { BIN, sharedData, startServer, get, tempDir } from '../lib/harness.mjs';

const OSM = sharedData('osm');
const ENV = { ...process.env, LSAN_OPTIONS: `suppressions=${path.resolve('tests/lsan.supp')}` };

function importCity(args) {
  return spawnSync(BIN, ['import-city', ...args], { encoding: 'utf8', env: ENV, timeout: 120000 });
}

// ogrinfo's own count for an SQL query on a file (GDAL's OSM driver read by
// another program, with unclosed rings refused as import-city does).
function ogrCount(file, sql) {
  const out = execFileSync('ogrinfo', ['-q', '-ro', '--config', 'OGR_GEOMETRY_ACCEPT_UNCLOSED_RING', 'NO',
    '-dialect', 'SQLite', '-sql', sql, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = out.match(/n \(Integer\S*\) = (\d+)/);
  assert.ok(m, `no count in ogrinfo output for ${sql}:\n${out}`);
  return Number(m[1]);
}

const NOT_ROADS = "('proposed','construction','abandoned','platform','razed','bus_stop','elevator')";
const DRIVABLE = "('motorway','motorway_link','trunk','trunk_link','primary','primary_link','secondary','secondary_link'," +
  "'tertiary','tertiary_link','unclassified','residential','living_street','service','road')";
const tag = (k, v) => `other_tags LIKE '%"${k}"=>"${v}"%'`;

function expectedCounts(pbf) {
  const stationPoints = (cond) => ogrCount(pbf, `SELECT count(*) AS n FROM points WHERE ${cond}`);
  const stationAreas = (cond) => ogrCount(pbf, `SELECT count(*) AS n FROM multipolygons WHERE ${cond}`);
  const kinds = {
    police: [tag('amenity', 'police'), "amenity = 'police'"],
    fire: [tag('amenity', 'fire_station'), "amenity = 'fire_station'"],
    hospital: [tag('amenity', 'hospital'), "amenity = 'hospital'"],
  };
  const stations = {};
  for (const [k, [p, a]] of Object.entries(kinds)) stations[k] = stationPoints(p) + stationAreas(a);
  return {
    roads: ogrCount(pbf, `SELECT count(*) AS n FROM lines WHERE highway IS NOT NULL AND highway NOT IN ${NOT_ROADS}`),
    drivable: ogrCount(pbf, `SELECT count(*) AS n FROM lines WHERE highway IN ${DRIVABLE}`),
    admin: ogrCount(pbf, "SELECT count(*) AS n FROM multipolygons WHERE boundary = 'administrative' AND admin_level IS NOT NULL AND name IS NOT NULL"),
    stations,
  };
}

function packageCount(dir, sql) {
  return ogrCount(path.join(dir, 'city.gpkg'), sql);
}

for (const city of ['monaco', 'andorra']) {
  test(`import-city ${city}: roads, stations and districts match ogrinfo's own counts`, () => {
    const out = tempDir();
    const t0 = Date.now();
    const r = importCity(['--osm', path.join(OSM, `${city}.osm.pbf`), '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const ms = Date.now() - t0;
    const want = expectedCounts(path.join(OSM, `${city}.osm.pbf`));
    const got = {
      roads: packageCount(out, 'SELECT count(*) AS n FROM roads'),
      drivable: packageCount(out, 'SELECT count(*) AS n FROM roads WHERE drivable = 1'),
      admin: packageCount(out, "SELECT count(*) AS n FROM districts WHERE kind = 'admin'"),
      stations: Object.fromEntries(Object.keys(want.stations).map((k) =>
        [k, packageCount(out, `SELECT count(*) AS n FROM stations WHERE kind = '${k}'`)])),
    };
    console.log(`# ${city}: imported in ${ms} ms: ${JSON.stringify(got)}`);
    assert.deepEqual(got, want);
    assert.ok(got.drivable > 1000, 'a real road network');
    // Derived districts: one per distinct station site of each kind at most,
    // at least one where there are stations.
    for (const [kind, from] of [['fire', ['fire']], ['police', ['police']], ['ems', ['hospital', 'ambulance']]]) {
      const n = packageCount(out, `SELECT count(*) AS n FROM districts WHERE kind = '${kind}'`);
      const stations = from.reduce((s, k) => s + (got.stations[k] || 0), 0);
      assert.ok(n >= (stations > 0 ? 1 : 0) && n <= stations, `${kind}: ${n} districts for ${stations} stations`);
    }
    const meta = JSON.parse(readFileSync(path.join(out, 'city.json'), 'utf8'));
    assert.equal(meta.attribution, '© OpenStreetMap contributors');
    assert.equal(meta.counts.roads, got.roads);
    const [w, s, e, n] = meta.bbox;
    assert.ok(w < meta.center[0] && meta.center[0] < e && s < meta.center[1] && meta.center[1] < n);
  });
}

describe('the spatial API on the demo city', () => {
  let srv;
  const cityDir = tempDir();
  before(async () => {
    const r = importCity(['--osm', path.join(OSM, 'monaco.osm.pbf'), '--out', cityDir, '--name', 'Monaco']);
    assert.equal(r.status, 0, r.stderr);
    srv = await startServer({ args: ['--city', cityDir] });
  });
  after(async () => { await srv.stop(); srv.cleanup(); });

  test('each derived district holds its own stations, and one district of a kind per point', async () => {
    const stations = (await get(srv.url, '/api/v1/gis/layers/stations?limit=10000')).body.features;
    assert.ok(stations.length > 10);
    for (const f of stations) {
      const [lon, lat] = f.geometry.coordinates;
      const kind = { fire: 'fire', police: 'police', hospital: 'ems', ambulance: 'ems' }[f.properties.kind];
      const r = await get(srv.url, `/api/v1/gis/districts?lon=${lon}&lat=${lat}&kind=${kind}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.districts.length, 1, `station ${f.properties.name} in ${JSON.stringify(r.body.districts)}`);
    }
  });

  test('reverse geocoding reads like a dispatcher would say it', async () => {
    // On Avenue de la Costa in Monte-Carlo.
    const r = await get(srv.url, '/api/v1/gis/reverse?lon=7.4246&lat=43.7384');
    assert.equal(r.status, 200);
    assert.match(r.body.text, /^near .+, Monte-Carlo$/);
    assert.ok(r.body.road.distance_m < 50);
    assert.ok(r.body.districts.some((d) => d.kind === 'fire'));
    assert.ok(r.body.districts.some((d) => d.kind === 'admin' && d.name === 'Monaco'));
  });

  test('search finds streets and places regardless of case and accents', async () => {
    const r = await get(srv.url, `/api/v1/gis/search?q=${encodeURIComponent('PRINCESSE GRÂCE')}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.results.some((x) => x.name === 'Avenue Princesse Grace' && x.kind === 'street'));
    const p = await get(srv.url, '/api/v1/gis/search?q=monte-carlo');
    assert.equal(p.body.results[0].name, 'Monte-Carlo');
    assert.equal(p.body.results[0].kind, 'suburb');
  });

  test('points near a place come nearest first, within the radius', async () => {
    const r = await get(srv.url, '/api/v1/gis/nearby?layer=stations&lon=7.4246&lat=43.7384&radius=2000&limit=50');
    assert.equal(r.status, 200);
    const d = r.body.features.map((f) => f.distance_m);
    assert.ok(d.length > 3);
    assert.deepEqual(d, [...d].sort((a, b) => a - b));
    assert.ok(d.every((x) => x <= 2000));
  });

  test('vector tiles: GDAL reads them back; cached; out-of-range and unknown layers refused', async () => {
    // The tile over Monte-Carlo at zoom 15 (Web Mercator tiling).
    const z = 15, lon = 7.4246, lat = 43.7384, n = 2 ** z;
    const x = Math.floor((lon + 180) / 360 * n);
    const y = Math.floor((1 - Math.log(Math.tan(lat * Math.PI / 180) + 1 / Math.cos(lat * Math.PI / 180)) / Math.PI) / 2 * n);
    const fetchTile = async (p) => {
      const res = await fetch(`${srv.url}${p}`, { headers: { authorization: `Bearer ${srv.token}` } });
      return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    };
    const first = await fetchTile(`/tiles/base/${z}/${x}/${y}.mvt`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'application/vnd.mapbox-vector-tile');
    assert.equal(first.headers.get('x-tile-cache'), 'miss');
    assert.match(first.headers.get('cache-control'), /max-age/);
    const again = await fetchTile(`/tiles/base/${z}/${x}/${y}.mvt`);
    assert.equal(again.headers.get('x-tile-cache'), 'hit');
    assert.ok(first.body.equals(again.body));
    // Decoded by GDAL's own MVT reader: the layers, with features where the tile is.
    const dir = tempDir();
    const file = path.join(dir, `${y}.mvt`);
    writeFileSync(file, first.body);
    const info = execFileSync('ogrinfo', ['-ro', '-so', '-al', '-oo', `X=${x}`, '-oo', `Y=${y}`, '-oo', `Z=${z}`, `MVT:${file}`], { encoding: 'utf8' });
    const counts = Object.fromEntries([...info.matchAll(/Layer name: (\w+)[\s\S]*?Feature Count: (\d+)/g)].map((m) => [m[1], Number(m[2])]));
    for (const l of ['roads', 'buildings', 'districts']) assert.ok(counts[l] > 0, `${l} in the tile: ${JSON.stringify(counts)}`);
    const ext = info.match(/Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)/);
    const size = 2 * Math.PI * 6378137 / n;
    const minx = -Math.PI * 6378137 + x * size;
    assert.ok(Math.abs(Number(ext[1]) - minx) < size * 0.1, 'features sit in the tile GDAL expects');
    // A single layer, an empty tile, refusals.
    const roadsOnly = await fetchTile(`/tiles/roads/${z}/${x}/${y}.mvt`);
    assert.equal(roadsOnly.status, 200);
    assert.ok(roadsOnly.body.length > 0 && roadsOnly.body.length < first.body.length);
    const sea = await fetchTile('/tiles/base/15/0/0.mvt');
    assert.equal(sea.status, 200);
    assert.equal(sea.body.length, 0);
    for (const p of ['/tiles/base/21/0/0.mvt', '/tiles/base/3/8/0.mvt', '/tiles/base/3/0/-1.mvt', '/tiles/base/a/0/0.mvt', '/tiles/base/3/0/0.png']) {
      assert.equal((await fetchTile(p)).status, 400, p);
    }
    assert.equal((await fetchTile('/tiles/nope/3/0/0.mvt')).status, 404);
    const anon = await fetch(`${srv.url}/tiles/base/${z}/${x}/${y}.mvt`);
    assert.equal(anon.status, 401);
  });

  test('bad parameters are 400 naming the parameter; unknown layers 404', async () => {
    for (const q of ['lon=NaN&lat=43.7', 'lon=7.4&lat=1e308', 'lon=7.4', 'lon=181&lat=0', 'lon=7.4&lat=abc', 'lon=Infinity&lat=0']) {
      const r = await get(srv.url, `/api/v1/gis/reverse?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'invalid_parameter');
      assert.match(r.body.error.message, /'(lon|lat)'/);
    }
    for (const b of ['1,2,3', '7.5,43.7,7.4,43.8', 'a,b,c,d', '7,43,7,1e308']) {
      assert.equal((await get(srv.url, `/api/v1/gis/box?layer=stations&bbox=${b}`)).status, 400, b);
    }
    assert.equal((await get(srv.url, '/api/v1/gis/layers/nope')).status, 404);
    const one = await get(srv.url, '/api/v1/gis/layers/stations/1');
    assert.equal(one.status, 200);
    assert.equal(one.body.type, 'Feature');
    assert.equal(one.body.id, 1);
    assert.equal(one.body.geometry.type, 'Point');
    assert.equal((await get(srv.url, '/api/v1/gis/layers/stations/999999')).status, 404);
    assert.equal((await get(srv.url, '/api/v1/gis/layers/stations/x')).status, 400);
    assert.equal((await get(srv.url, '/api/v1/gis/nearby?layer=nope&lon=7.4&lat=43.7')).status, 404);
    assert.equal((await get(srv.url, '/api/v1/gis/search?q=')).status, 400);
    assert.equal((await get(srv.url, '/api/v1/gis/search?q=x', { authorization: null })).status, 401);
  });
});

// Points of known WGS84 position, written in other coordinate systems by
// gdaltransform (another program), must come back where they were.
describe('coordinate systems on import', () => {
  // Hangzhou and Beijing, inside CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549).
  const points = [[120.1551, 30.2741], [119.9, 30.5], [121.47, 31.23]];

  function transform(srs, pts) {
    const out = execFileSync('gdaltransform', ['-s_srs', 'EPSG:4326', '-t_srs', srs, '-output_xy'],
      { input: pts.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n', encoding: 'utf8' });
    return out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  }

  function featureCollection(coords, crsName) {
    return JSON.stringify({
      type: 'FeatureCollection',
      ...(crsName ? { crs: { type: 'name', properties: { name: crsName } } } : {}),
      features: coords.map((c, i) => ({ type: 'Feature', properties: { name: `p${i}` }, geometry: { type: 'Point', coordinates: c } })),
    });
  }

  function importedPoints(dir, layer) {
    const out = execFileSync('ogrinfo', ['-q', '-ro', path.join(dir, 'city.gpkg'), layer], { encoding: 'utf8' });
    // Geometry lines only ("  POINT (x y)"), not a WKT attribute ("  WKT (String) = POINT …").
    return [...out.matchAll(/^\s+POINT \(([-\d.e+]+) ([-\d.e+]+)\)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
  }

  // 1 cm in degrees at these latitudes is about 1e-7.
  function assertWithinCm(got, want) {
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      const dx = (got[i][0] - want[i][0]) * 111320 * Math.cos(want[i][1] * Math.PI / 180);
      const dy = (got[i][1] - want[i][1]) * 110540;
      assert.ok(Math.hypot(dx, dy) < 0.01, `point ${i}: ${Math.hypot(dx, dy).toFixed(4)} m off`);
    }
  }

  for (const [srs, label] of [['EPSG:4490', 'CGCS2000 geographic'], ['EPSG:4549', 'CGCS2000 / 3-degree Gauss-Kruger CM 120E']]) {
    test(`${label} (${srs}) lands within 1 cm of where it belongs`, () => {
      const dir = tempDir();
      const src = path.join(dir, 'in.geojson');
      const coords = transform(srs, points);
      if (srs === 'EPSG:4549') assert.ok(coords[0][0] > 400000 && coords[0][1] > 3000000, 'projected metres, not degrees');
      writeFileSync(src, featureCollection(coords, `urn:ogc:def:crs:${srs.replace(':', '::')}`));
      const r = importCity(['--out', path.join(dir, 'pkg'), '--name', 'Hangzhou', '--layer', `cams=${src}`]);
      assert.equal(r.status, 0, r.stderr);
      assertWithinCm(importedPoints(path.join(dir, 'pkg'), 'cams'), points);
    });
  }

  test('a custom WKT (.prj of a shapefile) and --source-srs for a source without one', () => {
    const dir = tempDir();
    // A local transverse Mercator with a false origin, as a surveyor might deliver.
    const wkt = 'PROJCS["Hangzhou local",GEOGCS["CGCS2000",DATUM["China_2000",SPHEROID["CGCS2000",6378137,298.257222101]],' +
      'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],' +
      'PARAMETER["latitude_of_origin",30],PARAMETER["central_meridian",120.5],PARAMETER["scale_factor",1],' +
      'PARAMETER["false_easting",50000],PARAMETER["false_northing",-3300000],UNIT["metre",1]]';
    const coords = transform(wkt, points);
    const gj = path.join(dir, 'plain.geojson');
    writeFileSync(gj, featureCollection(coords));
    // To a shapefile whose .prj carries the custom WKT.
    const shp = path.join(dir, 'shp');
    mkdirSync(shp);
    execFileSync('ogr2ogr', ['-a_srs', wkt, '-f', 'ESRI Shapefile', path.join(shp, 'survey.shp'), gj], { stdio: 'ignore' });
    assert.match(readFileSync(path.join(shp, 'survey.prj'), 'utf8'), /Transverse_Mercator/);
    const r = importCity(['--out', path.join(dir, 'pkg'), '--layer', `survey=${path.join(shp, 'survey.shp')}`]);
    assert.equal(r.status, 0, r.stderr);
    assertWithinCm(importedPoints(path.join(dir, 'pkg'), 'survey'), points);

    // A GeoJSON declaring no CRS is read as WGS84 by GDAL; a CSV declares none at all.
    const csv = path.join(dir, 'points.csv');
    writeFileSync(csv, 'name,WKT\n' + coords.map((c, i) => `p${i},"POINT (${c[0]} ${c[1]})"`).join('\n') + '\n');
    const none = importCity(['--out', path.join(dir, 'pkg2'), '--layer', `survey=${csv}`]);
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /declares no CRS: give --source-srs/);
    const given = importCity(['--out', path.join(dir, 'pkg2'), '--layer', `survey=${csv}`, '--source-srs', wkt]);
    assert.equal(given.status, 0, given.stderr);
    assertWithinCm(importedPoints(path.join(dir, 'pkg2'), 'survey'), points);
  });
});

describe('hostile files give errors, not crashes', () => {
  function refuse(name, content, pattern, extra = []) {
    const dir = tempDir();
    const src = path.join(dir, name);
    writeFileSync(src, content);
    const r = importCity(['--out', path.join(dir, 'pkg'), '--layer', `bad=${src}`, ...extra]);
    assert.equal(r.status, 1, `${name}: exit ${r.status} ${r.stderr}`);
    assert.equal(r.signal, null);
    assert.match(r.stderr, pattern);
    return r;
  }
  const fc = (geometry) => JSON.stringify({ type: 'FeatureCollection', features: [
    { type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [7.42, 43.73] } },
    { type: 'Feature', properties: {}, geometry }] });

  test('huge coordinates, NaN, self-intersecting rings, truncated files', () => {
    refuse('huge.geojson', fc({ type: 'Point', coordinates: [1e308, 43.7] }), /feature 2: .*(outside longitude|cannot be reprojected|not a finite)/);
    refuse('lat.geojson', fc({ type: 'Point', coordinates: [7.4, 95] }), /feature 2: .*outside longitude/);
    refuse('nan.csv', 'id,WKT\n1,"POINT (nan nan)"\n', /feature 1: .*(finite|reprojected|outside|no geometry)/, ['--source-srs', 'EPSG:4326']);
    refuse('bowtie.geojson', fc({ type: 'Polygon', coordinates: [[[7.40, 43.70], [7.45, 43.75], [7.45, 43.70], [7.40, 43.75], [7.40, 43.70]]] }),
      /feature 2: is not a valid polygon/);
    const full = readFileSync(path.join(OSM, 'monaco.osm.pbf'));
    for (const cut of [0, 1000, 100000]) {
      const dir = tempDir();
      const pbf = path.join(dir, 'cut.osm.pbf');
      writeFileSync(pbf, full.subarray(0, cut));
      const r = importCity(['--osm', pbf, '--out', path.join(dir, 'pkg')]);
      assert.equal(r.signal, null, `truncated at ${cut}: no crash`);
      if (r.status !== 0) assert.match(r.stderr, /citycmd import-city: /);
    }
    refuse('cut.geojson', fc({ type: 'Point', coordinates: [7.42, 43.73] }).slice(0, 60), /--layer bad: cannot read/);
  });
});
