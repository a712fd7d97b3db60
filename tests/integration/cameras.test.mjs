// The camera registry against the real server: create, change, remove,
// import (CSV and GeoJSON, all or nothing), the near query (the cameras
// that see the point first, each group by distance), the map's cones, who
// may read and manage which camera (403, audited), bad input refused with
// a clear 4xx, and credentials never leaving the server: not in any reply,
// event or log line.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, addUser, login, request, tempDir } from '../lib/harness.mjs';

const PW = 'camera password 1';
const SECRET = 'Sup3r-secret-cam-pw';
const SECRET2 = 'an0ther,secret"pw';
const USERS = {
  op: { username: 'cam.op', roles: 'operator', agency: 'command' },
  polSup: { username: 'sup.police', roles: 'supervisor', agency: 'police' },
  fireSup: { username: 'sup.fire', roles: 'supervisor', agency: 'fire' },
  polDisp: { username: 'disp.police', roles: 'dispatcher', agency: 'police' },
  fireDisp: { username: 'disp.fire', roles: 'dispatcher', agency: 'fire' },
  cmdTaker: { username: 'taker.cmd', roles: 'call_taker', agency: 'command' },
  auditor: { username: 'aud.gov', roles: 'auditor', agency: 'government' },
};
// The scene, and places around it in metres (a degree of latitude is
// 111 195 m, of longitude 80 350 m at this latitude).
const SCENE = { lon: 7.4265, lat: 43.7395 };
const at = (east, north) => ({ lon: SCENE.lon + east / 80350.15, lat: SCENE.lat + north / 111195.08 });

describe('cameras', () => {
  let s;
  const tok = {};
  const texts = []; // every reply body, to look for credentials in
  const call = async (who, method, p, body, headers = {}) => {
    const r = await request(s.url, method, p, body, { authorization: `Bearer ${tok[who]}`, ...headers });
    texts.push(r.text);
    return r;
  };
  const make = async (who, fields) => {
    const r = await call(who, 'POST', '/api/v1/cameras', fields);
    assert.equal(r.status, 201, r.text);
    return r.body.camera;
  };
  const cam = (name, place, extra = {}) => ({
    name, agency: 'police', ...place, heading: 90, fov: 60, rtsp_url: 'rtsp://127.0.0.1:8554/cam1', ...extra,
  });

  before(async () => {
    const state = tempDir();
    for (const u of Object.values(USERS)) addUser(state, { ...u, password: PW });
    s = await startServer({ state });
    for (const [k, u] of Object.entries(USERS)) tok[k] = await login(s.url, u.username, PW);
  });
  after(async () => { await s?.stop(); s?.cleanup(); });

  test('create, read, change and remove a camera; credentials are only said to be set', async () => {
    const r = await call('polSup', 'POST', '/api/v1/cameras', cam('Casino square', at(-50, 0), {
      height_m: 6, range_m: 120, ptz: true, codec: 'h264', username: 'viewer', password: SECRET,
    }));
    assert.equal(r.status, 201, r.text);
    const c = r.body.camera;
    assert.match(c.id, /^C-\d+$/);
    assert.equal(r.headers.get('location'), `/api/v1/cameras/${c.id}`);
    assert.equal(c.credentials, true);
    assert.equal(c.ptz, true);
    assert.equal(c.codec, 'h264');
    assert.equal(c.range_m, 120);
    assert.equal(c.height_m, 6);
    assert.ok(!('password' in c) && !('username' in c));
    // Defaults: range 150 m, no credentials, no codec.
    const d = await make('polSup', cam('Harbour', at(0, 400)));
    assert.equal(d.range_m, 150);
    assert.equal(d.credentials, false);
    assert.equal(d.codec, null);

    const got = await call('polDisp', 'GET', `/api/v1/cameras/${c.id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.camera.name, 'Casino square');
    // By number too.
    assert.equal((await call('polDisp', 'GET', `/api/v1/cameras/${c.id.slice(2)}`)).status, 200);

    const ch = await call('polSup', 'PATCH', `/api/v1/cameras/${c.id}`, { heading: 360, password: 'changed-pw-1' });
    assert.equal(ch.status, 200, ch.text);
    assert.equal(ch.body.camera.heading, 0);
    assert.equal(ch.body.camera.credentials, true);
    const cleared = await call('polSup', 'PATCH', `/api/v1/cameras/${d.id}`, { username: 'a', password: 'changed-pw-2' });
    assert.equal(cleared.body.camera.credentials, true);
    const none = await call('polSup', 'PATCH', `/api/v1/cameras/${d.id}`, { username: null, password: null });
    assert.equal(none.body.camera.credentials, false);

    const del = await call('polSup', 'DELETE', `/api/v1/cameras/${d.id}`);
    assert.equal(del.status, 204);
    assert.equal((await call('polSup', 'GET', `/api/v1/cameras/${d.id}`)).status, 404);
    assert.equal((await call('polSup', 'DELETE', `/api/v1/cameras/${d.id}`)).status, 404);
    // The name is free again.
    await make('polSup', cam('Harbour', at(0, 400)));
    // Names are unique.
    const dup = await call('polSup', 'POST', '/api/v1/cameras', cam('Harbour', at(0, 410)));
    assert.equal(dup.status, 409, dup.text);
    assert.equal(dup.body.error.field, 'name');

    // The events say what changed, never the secrets.
    const ev = await call('polDisp', 'GET', '/api/v1/events?limit=1000');
    assert.equal(ev.status, 200);
    const types = ev.body.events.filter((e) => e.type.startsWith('camera.')).map((e) => e.type);
    assert.ok(types.includes('camera.created') && types.includes('camera.changed') && types.includes('camera.removed'), types.join());
    const change = ev.body.events.find((e) => e.type === 'camera.changed' && e.data.camera === c.id);
    assert.deepEqual(change.data.changes.heading, { from: 90, to: 0 });
    assert.deepEqual(change.data.changes.credentials, { from: true, to: true });
    assert.deepEqual(change.data.agencies, ['police']);
  });

  test('near a point: the cameras that see it first, each group by distance', async () => {
    const near = [
      await make('op', cam('N-sees-50', at(-50, 0), { heading: 90 })), // looks east at the scene
      await make('op', cam('N-blind-20', at(0, 20), { heading: 0 })), // 20 m north, looks away
      await make('op', cam('N-sees-120', at(0, -120), { heading: 0, agency: 'fire' })), // 120 m south, looks north
      await make('op', cam('N-short-100', at(100, 0), { heading: 270, range_m: 80 })), // looks at it, too short
      await make('op', cam('N-wrap', at(-10, -100), { heading: 350, fov: 40 })), // bearing ≈ 5.7°, inside 330..10
      await make('op', cam('N-far', at(2000, 0), { heading: 270 })), // outside the radius
    ];
    const ids = Object.fromEntries(near.map((c) => [c.name, c.id]));
    const r = await call('cmdTaker', 'GET', `/api/v1/cameras?near=${SCENE.lon},${SCENE.lat}&radius=300`);
    assert.equal(r.status, 200, r.text);
    const mine = r.body.cameras.filter((c) => c.name.startsWith('N-'));
    assert.deepEqual(mine.map((c) => c.name), ['N-sees-50', 'N-wrap', 'N-sees-120', 'N-blind-20', 'N-short-100']);
    assert.deepEqual(mine.map((c) => c.sees), [true, true, true, false, false]);
    const by = Object.fromEntries(mine.map((c) => [c.name, c]));
    assert.ok(Math.abs(by['N-sees-50'].distance_m - 50) < 0.2, `${by['N-sees-50'].distance_m}`);
    assert.ok(Math.abs(by['N-sees-50'].bearing - 90) < 0.2);
    assert.ok(Math.abs(by['N-sees-120'].bearing - 0) < 0.2 || Math.abs(by['N-sees-120'].bearing - 360) < 0.2);
    assert.ok(Math.abs(by['N-blind-20'].bearing - 180) < 0.2);
    assert.ok(Math.abs(by['N-wrap'].bearing - 5.7) < 0.2, `${by['N-wrap'].bearing}`);
    assert.equal(r.body.radius_m, 300);
    // Seeing first, all in the answer ordered as promised.
    const all = r.body.cameras;
    for (let i = 1; i < all.length; i++) {
      const [a, b] = [all[i - 1], all[i]];
      assert.ok(a.sees > b.sees || (a.sees === b.sees && a.distance_m <= b.distance_m), `${a.name} before ${b.name}`);
      assert.ok(b.distance_m <= 300);
    }
    // The default radius (300 m) and a small one.
    assert.equal((await call('cmdTaker', 'GET', `/api/v1/cameras?near=${SCENE.lon},${SCENE.lat}`)).body.radius_m, 300);
    const small = await call('cmdTaker', 'GET', `/api/v1/cameras?near=${SCENE.lon},${SCENE.lat}&radius=30`);
    assert.deepEqual(small.body.cameras.filter((c) => c.name.startsWith('N-')).map((c) => c.name), ['N-blind-20']);
    // A fire dispatcher is offered the fire camera only.
    const fire = await call('fireDisp', 'GET', `/api/v1/cameras?near=${SCENE.lon},${SCENE.lat}&radius=300`);
    assert.deepEqual(fire.body.cameras.map((c) => c.name), ['N-sees-120']);

    // The map: a cone per camera.
    const g = await call('cmdTaker', 'GET', '/api/v1/cameras.geojson');
    assert.equal(g.status, 200, g.text);
    assert.match(g.headers.get('content-type'), /application\/geo\+json/);
    assert.equal(g.body.type, 'FeatureCollection');
    const f = g.body.features.find((x) => x.id === ids['N-sees-50']);
    assert.equal(f.geometry.type, 'Polygon');
    const ring = f.geometry.coordinates[0];
    assert.deepEqual(ring[0], ring[ring.length - 1]);
    assert.ok(Math.abs(ring[0][0] - f.properties.lon) < 1e-6 && Math.abs(ring[0][1] - f.properties.lat) < 1e-6);
    assert.ok(ring.length >= 14); // the apex, an arc of 60° in 5° steps, closed
    assert.ok(g.body.features.every((x) => x.properties.agency && 'credentials' in x.properties));
  });

  test('import from CSV and GeoJSON: all or nothing, by name, the file line named', async () => {
    const csv = [
      'name,agency,lon,lat,height_m,heading,fov,range_m,rtsp_url,username,password,ptz,codec',
      `Import 1,police,7.4301,43.7401,5,180,70,,rtsp://127.0.0.1:8554/cam2,admin,"${SECRET2.replace(/"/g, '""')}",yes,h265`,
      'Import 2,police,7.4302,43.7402,,45.5,90,200,rtsp://127.0.0.1:8554/cam3,,,no,',
      '',
    ].join('\r\n');
    const r = await call('polSup', 'POST', '/api/v1/cameras/import', csv, { 'content-type': 'text/csv' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { created: 2, updated: 0, unchanged: 0 });
    const list = (await call('polSup', 'GET', '/api/v1/cameras')).body.cameras;
    const one = list.find((c) => c.name === 'Import 1');
    assert.equal(one.credentials, true);
    assert.equal(one.ptz, true);
    assert.equal(one.codec, 'h265');
    assert.equal(one.range_m, 150);
    assert.equal(list.find((c) => c.name === 'Import 2').heading, 45.5);
    // The same file again changes nothing; a changed heading updates one.
    assert.deepEqual((await call('polSup', 'POST', '/api/v1/cameras/import', csv, { 'content-type': 'text/csv' })).body,
      { created: 0, updated: 0, unchanged: 2 });
    const changed = csv.replace(',45.5,', ',50,');
    assert.deepEqual((await call('polSup', 'POST', '/api/v1/cameras/import', changed, { 'content-type': 'text/csv' })).body,
      { created: 0, updated: 1, unchanged: 1 });

    // A bad line: nothing written, the line and field named.
    const bad = 'name,agency,lon,lat,heading,fov,rtsp_url\nImport 3,police,7.43,43.74,10,60,rtsp://h/x\nImport 4,police,7.43,NaN,10,60,rtsp://h/y\n';
    const b = await call('polSup', 'POST', '/api/v1/cameras/import', bad, { 'content-type': 'text/csv' });
    assert.equal(b.status, 400, b.text);
    assert.equal(b.body.error.line, 3);
    assert.equal(b.body.error.field, 'lat');
    assert.ok(!(await call('polSup', 'GET', '/api/v1/cameras')).body.cameras.some((c) => c.name === 'Import 3'));
    const noCol = await call('polSup', 'POST', '/api/v1/cameras/import', 'name,agency\nX,police\n', { 'content-type': 'text/csv' });
    assert.equal(noCol.status, 400);
    assert.equal(noCol.body.error.line, 1);
    const twice = await call('polSup', 'POST', '/api/v1/cameras/import',
      'name,agency,lon,lat,heading,fov,rtsp_url\nSame,police,7.43,43.74,1,60,rtsp://h/a\nSame,police,7.43,43.74,1,60,rtsp://h/b\n', { 'content-type': 'text/csv' });
    assert.equal(twice.status, 400);
    assert.equal(twice.body.error.field, 'name');
    assert.equal((await call('polSup', 'POST', '/api/v1/cameras/import', 'x', { 'content-type': 'text/plain' })).status, 415);

    // GeoJSON: the Point is the place.
    const doc = { type: 'FeatureCollection', features: [
      { type: 'Feature', geometry: { type: 'Point', coordinates: [7.4310, 43.7410] },
        properties: { name: 'Geo 1', agency: 'police', heading: 270, fov: 50, rtsp_url: 'rtsps://cams.example:322/g1', password: SECRET } },
    ] };
    const gj = await call('polSup', 'POST', '/api/v1/cameras/import', doc, { 'content-type': 'application/geo+json' });
    assert.equal(gj.status, 200, gj.text);
    assert.equal(gj.body.created, 1);
    const geo = (await call('polSup', 'GET', '/api/v1/cameras')).body.cameras.find((c) => c.name === 'Geo 1');
    assert.equal(geo.lon, 7.431);
    assert.equal(geo.credentials, true);
    const noPoint = await call('polSup', 'POST', '/api/v1/cameras/import',
      { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: null, properties: { name: 'x' } }] },
      { 'content-type': 'application/geo+json' });
    assert.equal(noPoint.status, 400);
    assert.equal(noPoint.body.error.feature, 0);
    assert.equal(noPoint.body.error.field, 'geometry');
  });

  test('who may read and manage which camera: refusals are 403 and audited', async () => {
    const police = await make('polSup', cam('Agency police', at(300, 300)));
    const fire = await make('fireSup', cam('Agency fire', at(310, 300), { agency: 'fire' }));
    // Reading: each agency its own; the command centre all; an auditor none.
    assert.equal((await call('polDisp', 'GET', `/api/v1/cameras/${police.id}`)).status, 200);
    const denied = await call('fireDisp', 'GET', `/api/v1/cameras/${police.id}`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'forbidden');
    assert.equal((await call('cmdTaker', 'GET', `/api/v1/cameras/${fire.id}`)).status, 200);
    assert.equal((await call('auditor', 'GET', '/api/v1/cameras')).status, 403);
    const fireList = (await call('fireDisp', 'GET', '/api/v1/cameras')).body.cameras;
    assert.ok(fireList.length > 0 && fireList.every((c) => c.agency === 'fire'));
    const cmdList = (await call('cmdTaker', 'GET', '/api/v1/cameras')).body.cameras;
    assert.ok(cmdList.some((c) => c.agency === 'fire') && cmdList.some((c) => c.agency === 'police'));
    assert.ok((await call('fireDisp', 'GET', '/api/v1/cameras.geojson')).body.features.every((f) => f.properties.agency === 'fire'));
    // Managing: supervisors their agency's, operators all; dispatchers none.
    assert.equal((await call('fireSup', 'PATCH', `/api/v1/cameras/${police.id}`, { heading: 10 })).status, 403);
    assert.equal((await call('fireSup', 'DELETE', `/api/v1/cameras/${police.id}`)).status, 403);
    assert.equal((await call('fireSup', 'POST', '/api/v1/cameras', cam('Sneaky', at(0, 0)))).status, 403);
    assert.equal((await call('polSup', 'PATCH', `/api/v1/cameras/${police.id}`, { agency: 'fire' })).status, 403);
    assert.equal((await call('polDisp', 'POST', '/api/v1/cameras', cam('By a dispatcher', at(0, 0)))).status, 403);
    assert.equal((await call('polDisp', 'PATCH', `/api/v1/cameras/${police.id}`, { heading: 10 })).status, 403);
    const imp = await call('fireSup', 'POST', '/api/v1/cameras/import',
      'name,agency,lon,lat,heading,fov,rtsp_url\nAgency police,fire,7.43,43.74,1,60,rtsp://h/a\n', { 'content-type': 'text/csv' });
    assert.equal(imp.status, 403, 'an import may not take over another agency\'s camera by its name');
    assert.equal((await call('op', 'PATCH', `/api/v1/cameras/${police.id}`, { heading: 10 })).status, 200);
    // A camera moved to another agency: both hear of it.
    const moved = await call('op', 'PATCH', `/api/v1/cameras/${police.id}`, { agency: 'fire' });
    assert.equal(moved.status, 200);
    assert.equal((await call('fireDisp', 'GET', `/api/v1/cameras/${police.id}`)).status, 200);
    assert.equal((await call('polDisp', 'GET', `/api/v1/cameras/${police.id}`)).status, 403);
    const fireEvents = (await call('fireDisp', 'GET', '/api/v1/events?limit=1000')).body.events;
    assert.ok(fireEvents.some((e) => e.type === 'camera.changed' && e.data.camera === police.id && e.data.changes.agency));
    assert.ok(!fireEvents.some((e) => e.type === 'camera.created' && e.data.camera !== fire.id && e.data.agencies.includes('police') && !e.data.agencies.includes('fire')));

    const audit = (await call('auditor', 'GET', '/api/v1/audit?outcome=denied&limit=1000')).body.entries;
    const has = (pred) => audit.some(pred);
    assert.ok(has((e) => e.action === 'cameras.read' && e.actor === 'disp.fire' && e.object === `/api/v1/cameras/${police.id}`));
    assert.ok(has((e) => e.action === 'cameras.manage' && e.actor === 'sup.fire'));
    assert.ok(has((e) => e.action === 'cameras.manage' && e.actor === 'disp.police'));
    assert.ok(has((e) => e.action === 'cameras.read' && e.actor === 'aud.gov'));
    const ok = (await call('auditor', 'GET', '/api/v1/audit?outcome=ok&limit=1000')).body.entries;
    assert.ok(ok.some((e) => e.action === 'camera.created' && e.actor === 'sup.police'));
  });

  test('bad input is refused with a clear 4xx naming what is wrong', async () => {
    const bad = async (body, field, status = 400) => {
      const r = await call('op', 'POST', '/api/v1/cameras', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      if (field) assert.equal(r.body.error.field, field, r.text);
      return r;
    };
    const good = cam('Bad input', at(0, 0));
    await bad({ ...good, lon: 1e308 }, 'lon');
    await bad({ ...good, lat: -91 }, 'lat');
    await bad({ ...good, lat: 89 }, 'lat');
    await bad({ ...good, lon: 'NaN' }, 'lon');
    await bad({ ...good, heading: 361 }, 'heading');
    await bad({ ...good, heading: -1 }, 'heading');
    await bad({ ...good, fov: 0 }, 'fov');
    await bad({ ...good, fov: 400 }, 'fov');
    await bad({ ...good, range_m: 0 }, 'range_m');
    await bad({ ...good, range_m: 1e9 }, 'range_m');
    await bad({ ...good, height_m: -2 }, 'height_m');
    await bad({ ...good, agency: 'nobody' }, 'agency');
    await bad({ ...good, name: '' }, 'name');
    await bad({ ...good, name: 'x'.repeat(101) }, 'name');
    await bad({ ...good, rtsp_url: 'http://127.0.0.1/cam' }, 'rtsp_url');
    await bad({ ...good, rtsp_url: 'rtsp://' }, 'rtsp_url');
    await bad({ ...good, rtsp_url: 'rtsp://host/a b' }, 'rtsp_url');
    const inUrl = await bad({ ...good, rtsp_url: `rtsp://admin:${SECRET}@127.0.0.1:8554/cam1` }, 'rtsp_url');
    assert.ok(!inUrl.text.includes(SECRET));
    await bad({ ...good, ptz: 'yes' }, 'ptz');
    await bad({ ...good, codec: 'vp9' }, 'codec');
    await bad({ ...good, password: 'x'.repeat(300) }, 'password');
    await bad({ ...good, fov_deg: 60 }, 'fov_deg');
    const { heading, ...noHeading } = good;
    await bad(noHeading, 'heading');
    // Not JSON at all, or JSON's forbidden NaN.
    for (const text of ['{"name":', '[1,2]', `{"name":"x","lon":NaN}`]) {
      const r = await call('op', 'POST', '/api/v1/cameras', text);
      assert.equal(r.status, 400, `${text}: ${r.text}`);
      assert.ok(r.body.error.code, r.text);
    }
    // Unknown and malformed ids.
    assert.equal((await call('cmdTaker', 'GET', '/api/v1/cameras/C-99999')).status, 404);
    assert.equal((await call('op', 'PATCH', '/api/v1/cameras/C-99999', { heading: 1 })).status, 404);
    assert.equal((await call('op', 'DELETE', '/api/v1/cameras/99999')).status, 404);
    assert.equal((await call('cmdTaker', 'GET', '/api/v1/cameras/abc')).status, 400);
    assert.equal((await call('cmdTaker', 'GET', '/api/v1/cameras/C-1x')).status, 400);
    // An operator manages cameras but does not watch them.
    assert.equal((await call('op', 'GET', '/api/v1/cameras')).status, 403);
    // A change is checked like a creation.
    const c = await make('op', good);
    const p = await call('op', 'PATCH', `/api/v1/cameras/${c.id}`, { fov: -5 });
    assert.equal(p.status, 400);
    assert.equal(p.body.error.field, 'fov');
    assert.equal((await call('op', 'PATCH', `/api/v1/cameras/${c.id}`, '{"fov":')).status, 400);
    // The near query.
    for (const q of ['near=NaN,43.7', 'near=1000,1000', 'near=7.42', 'near=7.42,43.7,1', 'near=abc,def']) {
      const r = await call('cmdTaker', 'GET', `/api/v1/cameras?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.body.error.field, 'near');
    }
    for (const q of ['radius=0', 'radius=NaN', 'radius=1e9', 'radius=-5']) {
      const r = await call('cmdTaker', 'GET', `/api/v1/cameras?near=${SCENE.lon},${SCENE.lat}&${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
    }
    assert.equal((await call('cmdTaker', 'GET', '/api/v1/cameras?radius=100')).status, 400);
  });

  test('credentials appear in no reply, event or log line', async () => {
    const ev = await call('cmdTaker', 'GET', '/api/v1/events?limit=1000');
    assert.equal(ev.status, 200);
    await call('cmdTaker', 'GET', '/api/v1/cameras');
    await call('cmdTaker', 'GET', '/api/v1/cameras.geojson');
    assert.ok(texts.length > 50);
    for (const secret of [SECRET, SECRET2, 'changed-pw-1', 'changed-pw-2']) {
      for (const t of texts) assert.ok(!t.includes(secret), `a reply carries a password: ${t.slice(0, 200)}`);
      assert.ok(!s.lines.some((l) => l.includes(secret)), 'a log line carries a password');
    }
    assert.ok(!texts.some((t) => /"password"\s*:/.test(t)), 'no reply has a password field');
  });
});
