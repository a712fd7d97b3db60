// Geofences against the real server on the demo city: fences drawn over
// HTTP, units driving in and out of them through the OsmAnd listener, the
// geofence.enter / geofence.exit events, and the statuses that follow by
// themselves (at_hospital, in_station, on_scene) — and only from the
// statuses they follow from. Bad geometries are 400 naming the field.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, addUser, login, request, get, post, tempDir, waitFor } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const HERE = { lon: 7.4246, lat: 43.7384 }; // Monte-Carlo
const PW = 'geofence password 1';
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const north = (p, d) => ({ lon: p.lon, lat: p.lat + d / 111195 });
const east = (p, d) => ({ lon: p.lon + d / (111195 * Math.cos((p.lat * Math.PI) / 180)), lat: p.lat });
const portOf = (s, proto) => Number(s.lines.map((l) => l.match(new RegExp(`event=gps\\.listening protocol=${proto} .*port=(\\d+)`))).find(Boolean)[1]);

const USERS = {
  admin: { username: 'fleet.admin', roles: 'operator,dispatcher', agency: 'command' },
  fireSup: { username: 'sup.fire', roles: 'supervisor', agency: 'fire' },
};

// The hospital: a square about 130 m across, west of Monte-Carlo.
const HOSP = { lon: 7.4200, lat: 43.7330 };
const square = (c, d) => [[[c.lon - d, c.lat - d], [c.lon + d, c.lat - d], [c.lon + d, c.lat + d], [c.lon - d, c.lat + d], [c.lon - d, c.lat - d]]];
const STATION = { lon: 7.4163, lat: 43.7296 };

describe('geofences', () => {
  let s, A, osmand;
  const clock = new Map(); // device -> the last timestamp sent
  // Reports a position as the device's tracker, 10 s after its last one.
  const report = async (device, p) => {
    const t = (clock.get(device) ?? Math.floor(Date.now() / 1000) - 300) + 10;
    clock.set(device, t);
    const r = await fetch(`${osmand}/?id=${device}&lat=${p.lat}&lon=${p.lon}&timestamp=${t}`);
    assert.equal(await r.text(), 'accepted');
  };
  const addUnit = async (call_sign, kind, agency, device, station = '') => {
    const r = await post(s.url, '/api/v1/units', { call_sign, kind, agency, device, station }, A);
    assert.equal(r.status, 201, r.text);
    return r.body.unit.id;
  };
  const setStatus = async (id, body) => {
    const r = await request(s.url, 'PATCH', `/api/v1/units/${id}`, body, A);
    assert.equal(r.status, 200, r.text);
  };
  const newIncident = async (where) => {
    const r = await post(s.url, '/api/v1/calls', { line: '119', caller: '1', location: where, category: 'fire/structure' }, A);
    assert.equal(r.status, 201, r.text);
    return r.body.incident.id;
  };
  const statusOf = async (id) => (await get(s.url, `/api/v1/units/${id}`, A)).body.unit.status;
  const events = async () => (await get(s.url, '/api/v1/events?after=0&limit=1000', A)).body.events;
  const fence = (body) => post(s.url, '/api/v1/geofences', body, A);

  before(async () => {
    const state = tempDir();
    for (const u of Object.values(USERS)) addUser(state, { ...u, password: PW });
    s = await startServer({ state, args: ['--city', CITY, '--gps-osmand', '127.0.0.1:0'] });
    for (const u of Object.values(USERS)) u.token = await login(s.url, u.username, PW);
    A = bearer(USERS.admin.token);
    osmand = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    let r = await fence({ name: 'Centre Hospitalier', kind: 'hospital', geometry: { type: 'Polygon', coordinates: square(HOSP, 0.0006) } });
    assert.equal(r.status, 201, r.text);
    assert.match(r.body.geofence.id, /^G-\d+$/);
    r = await fence({ name: 'Caserne de Fontvieille', kind: 'station', agency: 'fire', geometry: { type: 'Circle', coordinates: [STATION.lon, STATION.lat], radius_m: 80 } });
    assert.equal(r.status, 201, r.text);
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('the fences are listed; drawing one needs units.manage for its agency; removing one', async () => {
    const list = await get(s.url, '/api/v1/geofences', A);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.geofences.map((f) => [f.name, f.kind, f.agency, f.geometry.type]),
      [['Centre Hospitalier', 'hospital', '', 'Polygon'], ['Caserne de Fontvieille', 'station', 'fire', 'Circle']]);
    const sup = bearer(USERS.fireSup.token);
    const zone = { name: 'Gas leak', kind: 'hazard', agency: 'police', geometry: { type: 'Circle', coordinates: [7.42, 43.74], radius_m: 40 } };
    let r = await post(s.url, '/api/v1/geofences', zone, sup);
    assert.equal(r.status, 403, 'a fire supervisor draws no police fence');
    r = await get(s.url, '/api/v1/geofences', { authorization: null });
    assert.equal(r.status, 401);
    r = await post(s.url, '/api/v1/geofences', { ...zone, agency: 'fire' }, sup);
    assert.equal(r.status, 201, r.text);
    const id = r.body.geofence.id;
    r = await request(s.url, 'DELETE', `/api/v1/geofences/${id}`, undefined, A);
    assert.equal(r.status, 204);
    r = await request(s.url, 'DELETE', `/api/v1/geofences/${id}`, undefined, A);
    assert.equal(r.status, 404);
    r = await request(s.url, 'DELETE', '/api/v1/geofences/G-999', undefined, A);
    assert.equal(r.status, 404);
    assert.equal((await get(s.url, '/api/v1/geofences', A)).body.geofences.length, 2);
  });

  test('bad fences are 400 naming the field', async () => {
    const ring = square(HOSP, 0.001)[0];
    const cases = [
      [{ type: 'Polygon', coordinates: [ring.slice(0, 4)] }, 'geometry', /not closed/],
      [{ type: 'Polygon', coordinates: [[[NaN, 43.73], ...ring.slice(1, 4), [NaN, 43.73]]] }, 'geometry', /not a number/],
      [{ type: 'Polygon', coordinates: [[[1e300, 43.73], ...ring.slice(1, 4), [1e300, 43.73]]] }, 'geometry', /outside/],
      [{ type: 'Polygon', coordinates: [[[7.41, 43.73], [7.42, 43.74], [7.42, 43.73], [7.41, 43.74], [7.41, 43.73]]] }, 'geometry', /invalid polygon/i],
      [{ type: 'Circle', coordinates: [7.42, 43.73], radius_m: 0 }, 'geometry.radius_m', /1 to 50000/],
      [{ type: 'Circle', coordinates: [7.42, 43.73], radius_m: 50001 }, 'geometry.radius_m', /1 to 50000/],
      [{ type: 'Circle', coordinates: [1e300, 43.73], radius_m: 10 }, 'geometry.coordinates', /centre/],
      [{ type: 'LineString', coordinates: [[7.41, 43.73], [7.42, 43.74]] }, 'geometry.type', /Polygon or a Circle/],
      [undefined, 'geometry', /Polygon/],
    ];
    for (const [geometry, field, message] of cases) {
      const r = await fence({ name: 'x', kind: 'custom', geometry });
      assert.equal(r.status, 400, `${JSON.stringify(geometry)}: ${r.text}`);
      assert.equal(r.body.error.field, field, r.text);
      assert.match(r.body.error.message, message);
    }
    const good = { type: 'Circle', coordinates: [7.42, 43.73], radius_m: 10 };
    for (const [body, field] of [[{ kind: 'custom', geometry: good }, 'name'], [{ name: 'x', kind: 'morgue', geometry: good }, 'kind'],
      [{ name: 'x', kind: 'custom', agency: 'nasa', geometry: good }, 'agency']]) {
      const r = await fence(body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.field, field);
    }
  });

  test('transporting into the hospital: at_hospital, with enter and exit events', async () => {
    const inc = await newIncident(HERE);
    const amb = await addUnit('A-01', 'ambulance', 'ems', 'amb-1');
    await setStatus(amb, { status: 'transporting', incident: inc });
    await report('amb-1', north(HOSP, -400));
    await report('amb-1', north(HOSP, -200));
    assert.equal(await statusOf(amb), 'transporting');
    await report('amb-1', HOSP);
    await waitFor(async () => (await statusOf(amb)) === 'at_hospital', { what: 'at_hospital' });
    const u = (await get(s.url, `/api/v1/units/${amb}`, A)).body.unit;
    assert.equal(u.incident, inc, 'the same incident');
    await report('amb-1', north(HOSP, 300));
    const mine = await waitFor(async () => {
      const ev = (await events()).filter((e) => e.type.startsWith('geofence.') && e.data.unit === amb);
      return ev.length >= 2 && ev;
    }, { what: 'the enter and exit events' });
    assert.deepEqual(mine.map((e) => [e.type, e.subject, e.data.name, e.data.kind, e.data.agencies]), [
      ['geofence.enter', `unit/${amb.slice(2)}`, 'Centre Hospitalier', 'hospital', ['ems']],
      ['geofence.exit', `unit/${amb.slice(2)}`, 'Centre Hospitalier', 'hospital', ['ems']],
    ]);
    assert.match(mine[0].data.fence, /^G-\d+$/);
    assert.ok(!Number.isNaN(Date.parse(mine[0].data.at)));
    const fireSees = (await get(s.url, '/api/v1/events?after=0&limit=1000', bearer(USERS.fireSup.token))).body.events;
    assert.ok(!fireSees.some((e) => e.type.startsWith('geofence.e')), 'another agency does not see where an ems unit went');
    assert.ok(fireSees.some((e) => e.type === 'geofence.created' && e.data.agency === 'fire'), 'but its own fences');
    const change = (await events()).find((e) => e.type === 'unit.status' && e.data.unit === amb && e.data.to === 'at_hospital');
    assert.equal(change.actor, 'system');
    const timeline = (await get(s.url, `/api/v1/incidents/${inc}`, A)).body.incident.timeline;
    assert.ok(timeline.some((e) => e.type === 'incident.unit' && e.data.to === 'at_hospital'), 'in the incident timeline');
    // Once at the hospital, coming back in changes nothing.
    await report('amb-1', HOSP);
    await waitFor(async () => (await events()).filter((e) => e.type === 'geofence.enter' && e.data.unit === amb).length === 2);
    assert.equal(await statusOf(amb), 'at_hospital');
  });

  test('returning into its own station: in_station; another station does nothing', async () => {
    const eng = await addUnit('E-01', 'engine', 'fire', 'eng-1', 'Caserne de Fontvieille');
    const other = await addUnit('E-02', 'engine', 'fire', 'eng-2', 'Caserne de Monte-Carlo');
    await setStatus(eng, { status: 'returning' });
    await setStatus(other, { status: 'returning' });
    for (const dev of ['eng-1', 'eng-2']) {
      await report(dev, east(STATION, 400));
      await report(dev, east(STATION, 20));
    }
    await waitFor(async () => (await statusOf(eng)) === 'in_station', { what: 'in_station' });
    await waitFor(async () => (await events()).some((e) => e.type === 'geofence.enter' && e.data.unit === other));
    assert.equal(await statusOf(other), 'returning');
  });

  test('en route within 50 m of its incident: on_scene', async () => {
    const where = north(HERE, 700);
    const inc = await newIncident(where);
    const car = await addUnit('P-01', 'patrol_car', 'police', 'pol-1');
    await setStatus(car, { status: 'en_route', incident: inc });
    await report('pol-1', north(where, -400));
    await report('pol-1', north(where, -80));
    assert.equal(await statusOf(car), 'en_route', '80 m away is not there');
    await report('pol-1', north(where, -30));
    await waitFor(async () => (await statusOf(car)) === 'on_scene', { what: 'on_scene' });
  });

  test('out of service into the hospital: the event, no status change', async () => {
    const amb = await addUnit('A-02', 'ambulance', 'ems', 'amb-2');
    await setStatus(amb, { status: 'out_of_service' });
    await report('amb-2', north(HOSP, -300));
    await report('amb-2', HOSP);
    await waitFor(async () => (await events()).some((e) => e.type === 'geofence.enter' && e.data.unit === amb));
    assert.equal(await statusOf(amb), 'out_of_service');
  });

  test('a unit seen first inside a fence gets an enter; the fences survive a restart', async () => {
    const amb = await addUnit('A-03', 'ambulance', 'ems', 'amb-3');
    await report('amb-3', HOSP);
    await waitFor(async () => (await events()).some((e) => e.type === 'geofence.enter' && e.data.unit === amb));
    const before = (await get(s.url, '/api/v1/geofences', A)).body.geofences;
    await s.stop();
    s = await startServer({ state: s.stateDir, users: false, args: ['--city', CITY, '--gps-osmand', '127.0.0.1:0'] });
    A = bearer(await login(s.url, USERS.admin.username, PW));
    assert.deepEqual((await get(s.url, '/api/v1/geofences', A)).body.geofences, before);
  });
});
