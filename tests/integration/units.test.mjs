// The unit registry and unit status against the real server on the demo
// city: create, list, change and remove units; every validation error names
// its field; NENA EIDO statuses set the primary state and go into the
// incident's timeline; CSV and GeoJSON imports are all or nothing; who may
// change which unit; the audit trail; the registry across a restart; the
// demo fleet.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BIN, startServer, addUser, login, request, get, post, tempDir } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const HERE = { lon: 7.4246, lat: 43.7384 }; // Monte-Carlo
const PW = 'units password 1';
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const sql = (state, q) => execFileSync('sqlite3', ['-batch', path.join(state, 'citycmd.db'), q], { encoding: 'utf8' }).trim();
const north = (p, d) => ({ lon: p.lon, lat: p.lat + d / 110540 });
const patch = (s, id, body, h) => request(s.url, 'PATCH', `/api/v1/units/${id}`, body, h);
const csv = (s, text, h = {}) => request(s.url, 'POST', '/api/v1/units/import', text, { 'content-type': 'text/csv', ...h });

// Every account the tests use; the fleet manager may do everything.
const USERS = {
  admin: { username: 'fleet.admin', roles: 'operator,dispatcher', agency: 'command' },
  fireSup: { username: 'sup.fire', roles: 'supervisor', agency: 'fire' },
  fireField: { username: 'field.fire', roles: 'field_unit', agency: 'fire' },
  policeDisp: { username: 'disp.police', roles: 'dispatcher', agency: 'police' },
  auditor: { username: 'aud.gov', roles: 'auditor', agency: 'government' },
};

async function serve(state, args = ['--city', CITY]) {
  const s = await startServer({ state, args });
  for (const u of Object.values(USERS)) u.token = await login(s.url, u.username, PW);
  return s;
}

function unit(over = {}) {
  return { call_sign: 'F-ENG-01', kind: 'engine', agency: 'fire', station: 'Caserne de Fontvieille', device: 'dev-0001',
    capabilities: ['pump', 'foam'], home: { lon: 7.4163, lat: 43.7296 }, ...over };
}

describe('the unit registry', () => {
  let s, state, A;
  const add = (body, h) => post(s.url, '/api/v1/units', body, h ?? bearer(USERS.admin.token));
  const newIncident = async (d, category = 'fire/structure') => {
    const r = await post(s.url, '/api/v1/calls', { line: '119', caller: '1', location: north(HERE, d), category });
    assert.equal(r.status, 201, r.text);
    return r.body.incident.id;
  };

  before(async () => {
    state = tempDir();
    for (const u of Object.values(USERS)) addUser(state, { ...u, password: PW });
    s = await serve(state);
    A = bearer(USERS.admin.token);
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('create, list, get, change and remove a unit', async () => {
    const r = await add(unit());
    assert.equal(r.status, 201, r.text);
    const u = r.body.unit;
    assert.match(u.id, /^U-\d+$/);
    assert.equal(r.headers.get('location'), `/api/v1/units/${u.id}`);
    assert.deepEqual({ ...u, id: 0, status_at: 0, created_at: 0, updated_at: 0 }, {
      id: 0, call_sign: 'F-ENG-01', kind: 'engine', agency: 'fire', station: 'Caserne de Fontvieille', capabilities: ['pump', 'foam'],
      device: 'dev-0001', home: { lon: 7.4163, lat: 43.7296 }, status: 'in_station', primary: 'available', incident: null,
      status_at: 0, created_at: 0, updated_at: 0,
    });
    const other = await add(unit({ call_sign: 'P-CAR-01', kind: 'patrol_car', agency: 'police', device: null, capabilities: [], home: null }));
    assert.equal(other.status, 201, other.text);

    const list = await get(s.url, '/api/v1/units', A);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.units.map((x) => x.call_sign), ['F-ENG-01', 'P-CAR-01'], 'by call sign');
    const filtered = async (q) => (await get(s.url, `/api/v1/units?${q}`, A)).body.units.map((x) => x.call_sign);
    assert.deepEqual(await filtered('agency=police'), ['P-CAR-01']);
    assert.deepEqual(await filtered('kind=engine'), ['F-ENG-01']);
    assert.deepEqual(await filtered('status=in_station&agency=fire'), ['F-ENG-01']);
    assert.deepEqual(await filtered('status=available'), ['F-ENG-01', 'P-CAR-01']);
    assert.deepEqual(await filtered('status=not_available'), []);
    for (const q of ['kind=dragon', 'status=asleep', 'agency=mafia']) assert.equal((await get(s.url, `/api/v1/units?${q}`, A)).status, 400, q);

    const one = await get(s.url, `/api/v1/units/${u.id}`, A);
    assert.equal(one.status, 200);
    assert.equal(one.body.unit.call_sign, 'F-ENG-01');
    assert.deepEqual(one.body.unit.history, []);
    assert.equal((await get(s.url, `/api/v1/units/${u.id.slice(2)}`, A)).status, 200, 'the bare number works too');
    assert.equal((await get(s.url, '/api/v1/units/U-999999', A)).status, 404);
    assert.equal((await get(s.url, '/api/v1/units/nonsense', A)).status, 400);

    const changed = await patch(s, u.id, { station: 'Caserne de la Condamine', device: 'dev-0002', capabilities: ['pump', 'pump', 'ladder'] }, A);
    assert.equal(changed.status, 200, changed.text);
    assert.equal(changed.body.unit.station, 'Caserne de la Condamine');
    assert.equal(changed.body.unit.device, 'dev-0002');
    assert.deepEqual(changed.body.unit.capabilities, ['pump', 'ladder'], 'duplicates dropped');
    const ev = (await get(s.url, '/api/v1/events?limit=1000', A)).body.events.filter((e) => e.subject === `unit/${u.id.slice(2)}`);
    assert.deepEqual(ev.map((e) => e.type), ['unit.created', 'unit.updated']);
    assert.deepEqual(ev[1].data.changes.device, { from: 'dev-0001', to: 'dev-0002' });
    assert.deepEqual(ev[1].data.agencies, ['fire']);
    assert.equal((await patch(s, u.id, { station: 'Caserne de la Condamine' }, A)).status, 200, 'no change is fine');
    assert.equal(Number(sql(state, `SELECT count(*) FROM events WHERE subject = 'unit/${u.id.slice(2)}'`)), 2, 'and writes no event');

    assert.equal((await request(s.url, 'DELETE', `/api/v1/units/${u.id}`, undefined, A)).status, 204);
    assert.deepEqual(await filtered(''), ['P-CAR-01'], 'a removed unit leaves the list');
    assert.deepEqual(await filtered('all=true'), ['F-ENG-01', 'P-CAR-01'], 'but stays on record');
    const removed = (await get(s.url, `/api/v1/units/${u.id}`, A)).body.unit;
    assert.ok(removed.removed_at);
    assert.equal(removed.device, null, 'its tracker is freed');
    assert.equal((await request(s.url, 'DELETE', `/api/v1/units/${u.id}`, undefined, A)).status, 404);
    assert.equal((await patch(s, u.id, { station: 'x' }, A)).status, 404);
    const reuse = await add(unit({ call_sign: 'F-ENG-02', device: 'dev-0002' }));
    assert.equal(reuse.status, 201, 'the freed tracker goes to another unit');
    const taken = await add(unit({ device: 'dev-0099' }));
    assert.equal(taken.status, 409, 'the call sign stays with the removed unit');
    assert.equal(taken.body.error.field, 'call_sign');
  });

  test('every validation error names its field; duplicates are 409', async () => {
    const cases = [
      [{ call_sign: undefined }, 'call_sign'], [{ call_sign: '' }, 'call_sign'], [{ call_sign: '   ' }, 'call_sign'],
      [{ call_sign: 'x'.repeat(33) }, 'call_sign'], [{ call_sign: 7 }, 'call_sign'], [{ call_sign: 'a\u0001b' }, 'call_sign'],
      [{ kind: 'dragon' }, 'kind'], [{ kind: undefined }, 'kind'], [{ kind: ['engine'] }, 'kind'],
      [{ agency: 'mafia' }, 'agency'], [{ agency: undefined }, 'agency'], [{ agency: 3 }, 'agency'],
      [{ station: 'y'.repeat(101) }, 'station'], [{ station: 5 }, 'station'],
      [{ device: 'has space' }, 'device'], [{ device: 'd'.repeat(65) }, 'device'], [{ device: 12 }, 'device'],
      [{ capabilities: 'pump' }, 'capabilities'], [{ capabilities: ['Pump'] }, 'capabilities'], [{ capabilities: [''] }, 'capabilities'],
      [{ capabilities: [3] }, 'capabilities'], [{ capabilities: ['a b'] }, 'capabilities'],
      [{ capabilities: Array.from({ length: 33 }, (_, i) => `c${i}`) }, 'capabilities'],
      [{ home: { lon: 200, lat: 0 } }, 'home'], [{ home: 'station' }, 'home'], [{ home: { lon: 7 } }, 'home'],
      [{ status: 'asleep' }, 'status'], [{ incident: 'I-1' }, 'incident'], [{ status: 'en_route', incident: 'fire' }, 'incident'],
    ];
    for (const [change, field] of cases) {
      const r = await add(unit({ call_sign: 'V-01', device: null, ...change }));
      assert.equal(r.status, 400, `${JSON.stringify(change).slice(0, 80)}: ${r.status} ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_field');
      assert.equal(r.body.error.field, field, JSON.stringify(change).slice(0, 80));
    }
    const a = await add(unit({ call_sign: 'V-01', device: 'dev-v01' }));
    assert.equal(a.status, 201);
    const dupSign = await add(unit({ call_sign: 'V-01', device: 'dev-v02' }));
    assert.equal(dupSign.status, 409);
    assert.equal(dupSign.body.error.field, 'call_sign');
    assert.match(dupSign.body.error.message, new RegExp(a.body.unit.id));
    const dupDevice = await add(unit({ call_sign: 'V-02', device: 'dev-v01' }));
    assert.equal(dupDevice.status, 409);
    assert.equal(dupDevice.body.error.field, 'device');
    const b = await add(unit({ call_sign: 'V-02', device: 'dev-v02' }));
    assert.equal((await patch(s, b.body.unit.id, { device: 'dev-v01' }, A)).status, 409, 'a change to a taken device too');
    assert.equal((await patch(s, b.body.unit.id, { call_sign: 'V-01' }, A)).body.error.field, 'call_sign');
    assert.equal((await patch(s, b.body.unit.id, {}, A)).status, 400);
    assert.equal((await patch(s, b.body.unit.id, { kind: 'dragon' }, A)).body.error.field, 'kind');
    assert.equal((await post(s.url, '/api/v1/units', '{"call_sign":', A)).status, 400);
  });

  test('statuses set the primary state; those about an incident need one, open, and go into its timeline', async () => {
    const r = await add(unit({ call_sign: 'S-ENG-01', device: 'dev-s01' }));
    const id = r.body.unit.id;
    const set = (body, h = A) => patch(s, id, body, h);
    for (const [status, primary] of [['on_patrol', 'available'], ['available_on_radio', 'available'],
      ['returning', 'conditionally_available'], ['out_of_service', 'not_available'], ['in_station', 'available']]) {
      const x = await set({ status });
      assert.equal(x.status, 200, x.text);
      assert.equal(x.body.unit.status, status);
      assert.equal(x.body.unit.primary, primary, status);
      assert.equal(x.body.unit.incident, null);
    }
    for (const status of ['dispatched', 'en_route', 'on_scene', 'transporting', 'at_hospital']) {
      const x = await set({ status });
      assert.equal(x.status, 400, `${status} without an incident`);
      assert.equal(x.body.error.field, 'incident');
    }
    const unknown = await set({ status: 'dispatched', incident: 'I-999999' });
    assert.equal(unknown.status, 400, 'an unknown incident');
    assert.equal(unknown.body.error.field, 'incident');
    assert.match(unknown.body.error.message, /no incident I-999999/);

    const inc = await newIncident(2000);
    const d = await set({ status: 'dispatched', incident: inc });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.unit.primary, 'not_available');
    assert.equal(d.body.unit.incident, inc);
    const e = await set({ status: 'en_route' });
    assert.equal(e.body.unit.incident, inc, 'the unit keeps its incident when none is given');
    assert.equal((await set({ status: 'in_station', incident: inc })).body.error.field, 'incident', 'in_station concerns no incident');
    assert.equal((await request(s.url, 'DELETE', `/api/v1/units/${id}`, undefined, A)).status, 409, 'a busy unit is not removed');
    // Diverted to another incident: both timelines record it.
    const inc2 = await newIncident(-2000);
    assert.equal((await set({ status: 'en_route', incident: inc2 })).body.unit.incident, inc2);
    assert.equal((await set({ status: 'on_scene' })).body.unit.incident, inc2);
    const back = await set({ status: 'returning' });
    assert.equal(back.body.unit.incident, null);
    assert.equal(back.body.unit.primary, 'conditionally_available');

    const timeline = async (i) => (await get(s.url, `/api/v1/incidents/${i}`, A)).body.incident.timeline.filter((t) => t.type === 'incident.unit');
    assert.deepEqual((await timeline(inc)).map((t) => [t.data.unit, t.data.call_sign, t.data.from, t.data.to, t.data.incident]), [
      [id, 'S-ENG-01', 'in_station', 'dispatched', inc], [id, 'S-ENG-01', 'dispatched', 'en_route', inc],
      [id, 'S-ENG-01', 'en_route', 'en_route', inc2]]);
    assert.deepEqual((await timeline(inc2)).map((t) => [t.data.from, t.data.to, t.data.incident]), [
      ['en_route', 'en_route', inc2], ['en_route', 'on_scene', inc2], ['on_scene', 'returning', null]]);
    assert.equal((await timeline(inc))[0].actor, USERS.admin.username);

    const h = (await get(s.url, `/api/v1/units/${id}`, A)).body.unit.history;
    assert.deepEqual(h.slice(0, 3).map((x) => [x.from, x.to]), [['on_scene', 'returning'], ['en_route', 'on_scene'], ['en_route', 'en_route']], 'newest first');
    assert.equal(h[0].primary, 'conditionally_available');
    assert.equal(h[2].incident, inc2);

    // A closed incident takes no units.
    const closed = await newIncident(4000);
    await request(s.url, 'PATCH', `/api/v1/incidents/${closed}`, { status: 'closed' });
    const c = await set({ status: 'dispatched', incident: closed });
    assert.equal(c.status, 409);
    assert.match(c.body.error.message, /closed/);
    assert.equal(sql(state, `SELECT status || '|' || primary_status || '|' || incident_id FROM units WHERE id = ${id.slice(2)}`), 'returning|conditionally_available|0');
  });

  test('CSV import: all or nothing, the first error named by line and field; re-importing updates', async () => {
    const before = sql(state, 'SELECT count(*) FROM units');
    const good = 'call_sign,kind,agency,station,device,capabilities\r\n'
      + 'C-AMB-01,ambulance,ems,"Centre Hospitalier, entrée B",csv-0001,als;oxygen\r\n'
      + 'C-TOW-01,tow_truck,traffic,,csv-0002,\r\n'
      + '\r\n'
      + 'C-GAS-01,gas_crew,gas,Dépôt Est,,gas_detector\r\n';
    const r = await csv(s, good, A);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { created: 3, updated: 0, unchanged: 0 });
    const amb = (await get(s.url, '/api/v1/units?kind=ambulance', A)).body.units.find((x) => x.call_sign === 'C-AMB-01');
    assert.equal(amb.station, 'Centre Hospitalier, entrée B');
    assert.deepEqual(amb.capabilities, ['als', 'oxygen']);
    assert.equal(amb.home, null);
    const again = await csv(s, good.replace('Dépôt Est', 'Dépôt Ouest'), A);
    assert.deepEqual(again.body, { created: 0, updated: 1, unchanged: 2 });

    const countNow = sql(state, 'SELECT count(*) FROM units');
    const bad = 'call_sign,kind,agency,station,device,capabilities\n'
      + 'C-NEW-01,engine,fire,,,\n'
      + 'C-NEW-02,dragon,fire,,,\n';
    const e = await csv(s, bad, A);
    assert.equal(e.status, 400);
    assert.equal(e.body.error.line, 3);
    assert.equal(e.body.error.field, 'kind');
    assert.match(e.body.error.message, /^line 3: /);
    assert.equal(sql(state, 'SELECT count(*) FROM units'), countNow, 'nothing changed');
    assert.equal(sql(state, "SELECT count(*) FROM units WHERE call_sign = 'C-NEW-01'"), '0');
    // A device already fitted to another unit is found by the writer: still nothing is written.
    const clash = await csv(s, 'call_sign,kind,agency,device\nC-NEW-03,engine,fire,\nC-NEW-04,engine,fire,csv-0001\n', A);
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error.line, 3);
    assert.equal(clash.body.error.field, 'device');
    assert.equal(sql(state, "SELECT count(*) FROM units WHERE call_sign LIKE 'C-NEW-%'"), '0');
    for (const [text, line, field] of [
      ['call_sign,kind\nX,engine\n', 1, 'agency'], ['call_sign,kind,agency,colour\n', 1, 'colour'],
      ['call_sign,kind,agency\nX,engine\n', 2, undefined], ['call_sign,kind,agency\n"X,engine,fire\n', 2, undefined],
      ['call_sign,kind,agency\nA,engine,fire\nA,ladder,fire\n', 3, 'call_sign'],
      ['call_sign,kind,agency,capabilities\nA,engine,fire,Foam\n', 2, 'capabilities'],
    ]) {
      const x = await csv(s, text, A);
      assert.equal(x.status, 400, text);
      assert.equal(x.body.error.line, line, text);
      assert.equal(x.body.error.field, field, text);
    }
    assert.equal(sql(state, 'SELECT count(*) FROM units'), countNow);
    assert.equal(Number(countNow), Number(before) + 3);
    const typeless = await request(s.url, 'POST', '/api/v1/units/import', good, { 'content-type': 'text/plain', ...A });
    assert.equal(typeless.status, 415);
  });

  test('GeoJSON import: properties carry the fields, a Point is the home station', async () => {
    const fc = (features) => ({ type: 'FeatureCollection', features });
    const f = (props, geometry = null) => ({ type: 'Feature', properties: props, geometry });
    const doc = fc([
      f({ call_sign: 'G-WAT-01', kind: 'water_crew', agency: 'water', station: 'Usine', capabilities: 'valve_keys;pumps', device: 'geo-1' },
        { type: 'Point', coordinates: [7.4201, 43.7335] }),
      f({ call_sign: 'G-WAT-02', kind: 'water_crew', agency: 'water', capabilities: ['pumps'] }),
    ]);
    const r = await request(s.url, 'POST', '/api/v1/units/import', JSON.stringify(doc), { 'content-type': 'application/geo+json', ...A });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { created: 2, updated: 0, unchanged: 0 });
    assert.equal(sql(state, "SELECT call_sign || '|' || ifnull(home_lon, '') || '|' || ifnull(home_lat, '') || '|' || capabilities FROM units WHERE call_sign LIKE 'G-WAT-%' ORDER BY call_sign"),
      'G-WAT-01|7.4201|43.7335|["valve_keys","pumps"]\nG-WAT-02|||["pumps"]');
    const u = (await get(s.url, '/api/v1/units?agency=water', A)).body.units.find((x) => x.call_sign === 'G-WAT-01');
    assert.deepEqual(u.home, { lon: 7.4201, lat: 43.7335 });
    const bad = fc([f({ call_sign: 'G-WAT-03', kind: 'water_crew', agency: 'water' }), f({ call_sign: 'G-WAT-04', kind: 'water_crew', agency: 'sewers' })]);
    const e = await post(s.url, '/api/v1/units/import', bad, A);
    assert.equal(e.status, 400);
    assert.equal(e.body.error.feature, 1);
    assert.equal(e.body.error.field, 'agency');
    const line = await post(s.url, '/api/v1/units/import', fc([f({ call_sign: 'G-WAT-05', kind: 'water_crew', agency: 'water' }, { type: 'LineString', coordinates: [[7, 43], [7.1, 43]] })]), A);
    assert.equal(line.body.error.field, 'geometry');
    assert.equal((await post(s.url, '/api/v1/units/import', { type: 'Feature' }, A)).status, 400);
    assert.equal(sql(state, "SELECT count(*) FROM units WHERE call_sign IN ('G-WAT-03', 'G-WAT-05')"), '0');
  });

  test('who may change which unit: refusals are 403 and audited; every change is in the audit trail', async () => {
    const fire = (await add(unit({ call_sign: 'Z-ENG-01', device: 'dev-z01' }))).body.unit.id;
    const police = (await add(unit({ call_sign: 'Z-CAR-01', kind: 'patrol_car', agency: 'police', device: 'dev-z02' }))).body.unit.id;
    const { fireSup, fireField, policeDisp, auditor } = USERS;
    const h = (u) => bearer(u.token);
    // A police dispatcher may not change a fire unit, but may a police one.
    assert.equal((await patch(s, fire, { status: 'on_patrol' }, h(policeDisp))).status, 403);
    assert.equal((await patch(s, police, { status: 'on_patrol' }, h(policeDisp))).status, 200);
    assert.equal((await patch(s, police, { station: 'elsewhere' }, h(policeDisp))).status, 403, 'a dispatcher sets status, not fields');
    // A field unit sets the status of its agency's units only.
    const mine = await patch(s, fire, { status: 'out_of_service' }, h(fireField));
    assert.equal(mine.status, 200, mine.text);
    assert.equal(mine.body.unit.primary, 'not_available');
    assert.equal((await patch(s, police, { status: 'in_station' }, h(fireField))).status, 403);
    // A fire supervisor manages fire units, not police ones, nor moves a unit to police.
    assert.equal((await add(unit({ call_sign: 'Z-ENG-02', device: null }), h(fireSup))).status, 201);
    assert.equal((await add(unit({ call_sign: 'Z-CAR-02', agency: 'police', device: null }), h(fireSup))).status, 403);
    assert.equal((await patch(s, fire, { agency: 'police' }, h(fireSup))).status, 403);
    assert.equal((await patch(s, fire, { station: 'Caserne de la Condamine' }, h(fireSup))).status, 200);
    assert.equal((await request(s.url, 'DELETE', `/api/v1/units/${police}`, undefined, h(fireSup))).status, 403);
    assert.equal((await csv(s, 'call_sign,kind,agency\nZ-ENG-03,engine,fire\nZ-CAR-03,patrol_car,police\n', h(fireSup))).status, 403);
    assert.equal((await csv(s, 'call_sign,kind,agency\nZ-CAR-01,engine,fire\n', h(fireSup))).status, 403, 'taking over a police unit by its call sign');
    assert.equal(sql(state, "SELECT count(*) FROM units WHERE call_sign IN ('Z-ENG-03', 'Z-CAR-03')"), '0');
    // Reading: each agency its own units; the command centre all; an auditor none.
    assert.equal((await get(s.url, `/api/v1/units/${fire}`, h(policeDisp))).status, 403);
    assert.ok((await get(s.url, '/api/v1/units', h(policeDisp))).body.units.every((x) => x.agency === 'police'));
    assert.ok((await get(s.url, '/api/v1/units', h(fireField))).body.units.every((x) => x.agency === 'fire'));
    assert.equal((await get(s.url, '/api/v1/units', h(auditor))).status, 403);
    assert.equal((await patch(s, fire, { status: 'in_station' }, h(auditor))).status, 403);
    const events = (await get(s.url, '/api/v1/events?limit=1000', h(policeDisp))).body.events;
    assert.ok(events.some((e) => e.subject === `unit/${police.slice(2)}`));
    assert.ok(!events.some((e) => e.subject === `unit/${fire.slice(2)}`), 'a fire unit\'s events are not on the police feed');

    const audit = (await get(s.url, '/api/v1/audit?limit=1000', h(auditor))).body.entries;
    const has = (pred) => audit.some(pred);
    assert.ok(has((e) => e.action === 'units.status' && e.outcome === 'denied' && e.actor === 'disp.police' && e.object === `/api/v1/units/${fire}`));
    assert.ok(has((e) => e.action === 'units.status' && e.outcome === 'denied' && e.actor === 'field.fire'));
    assert.ok(has((e) => e.action === 'units.manage' && e.outcome === 'denied' && e.actor === 'sup.fire'));
    assert.ok(has((e) => e.action === 'units.read' && e.outcome === 'denied' && e.actor === 'aud.gov'));
    assert.ok(has((e) => e.action === 'unit.status' && e.outcome === 'ok' && e.actor === 'field.fire' && e.object === `unit/${fire.slice(2)}`));
    assert.ok(has((e) => e.action === 'unit.updated' && e.actor === 'sup.fire'));
    // Every change so far, of every unit, has its audit row.
    const events_ = Number(sql(state, "SELECT count(*) FROM events WHERE type LIKE 'unit.%' OR type = 'incident.unit'"));
    const rows = Number(sql(state, "SELECT count(*) FROM audit WHERE outcome = 'ok' AND (action LIKE 'unit.%' OR action = 'incident.unit')"));
    assert.equal(rows, events_);
    for (const t of ['unit.created', 'unit.updated', 'unit.status', 'unit.removed', 'incident.unit']) {
      assert.ok(Number(sql(state, `SELECT count(*) FROM audit WHERE action = '${t}'`)) > 0, t);
    }
  });

  test('the registry survives a restart', async () => {
    const listing = async () => (await get(s.url, '/api/v1/units?all=true', A)).body.units;
    const beforeRestart = await listing();
    assert.ok(beforeRestart.length > 10);
    await s.stop();
    s = await serve(state);
    A = bearer(USERS.admin.token);
    assert.deepEqual(await listing(), beforeRestart);
    // The mirror came back too: changes go to the right units.
    const u = beforeRestart.find((x) => x.call_sign === 'Z-ENG-01');
    const r = await patch(s, u.id, { status: 'in_station' }, A);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.unit.primary, 'available');
    assert.equal((await patch(s, beforeRestart.find((x) => x.removed_at).id, { station: 'x' }, A)).status, 404);
  });
});

test('the demo fleet: units at the city\'s stations, created once', async () => {
  const state = tempDir();
  addUser(state, { ...USERS.admin, password: PW });
  let s = await startServer({ state, args: ['--demo', '--city', CITY] });
  try {
    const h = bearer(await login(s.url, USERS.admin.username, PW));
    const units = (await get(s.url, '/api/v1/units', h)).body.units;
    const stations = (kind) => Number(execFileSync('sqlite3', [path.join(CITY, 'city.gpkg'), `SELECT count(*) FROM stations WHERE kind IN (${kind})`], { encoding: 'utf8' }));
    const count = (kind) => units.filter((u) => u.kind === kind).length;
    assert.equal(count('engine'), 2 * stations("'fire'"));
    assert.equal(count('ladder'), stations("'fire'"));
    assert.equal(count('patrol_car'), 3 * stations("'police'"));
    assert.equal(count('ambulance'), 2 * stations("'hospital','ambulance'"));
    for (const k of ['tow_truck', 'water_crew', 'gas_crew']) assert.equal(count(k), 2, k);
    assert.ok(units.every((u) => /^demo-\d{4}$/.test(u.device) && u.home && u.status === 'in_station'));
    assert.ok(units.some((u) => u.call_sign === 'F-ENG-01'));
    await s.stop();
    s = await startServer({ state, args: ['--demo', '--city', CITY] });
    const h2 = bearer(await login(s.url, USERS.admin.username, PW));
    assert.equal((await get(s.url, '/api/v1/units', h2)).body.units.length, units.length, 'not created twice');
  } finally {
    await s.stop();
    s.cleanup();
  }
});
