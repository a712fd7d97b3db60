// Who goes: travel times by road, the response plan's slots filled with the
// right kinds ranked by ETA, busy units never offered, a diversion marked,
// assignment and release — against the real server on the demo city.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, addUser, login, post, get, request, connectWs, tempDir } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const SCENE = { lon: 7.4265, lat: 43.7395 }; // Monte-Carlo
// Places on streets around the scene, nearer to farther (straight line).
const NEAR = { lon: 7.4252, lat: 43.7398 };
const MID = { lon: 7.4205, lat: 43.7365 };
const FAR = { lon: 7.4120, lat: 43.7310 };
const metres = (a, b) => Math.hypot((a[0] - b[0]) * 111320 * Math.cos(b[1] * Math.PI / 180), (a[1] - b[1]) * 110540);

describe('routes, recommendations and assignment', () => {
  let s, op, pol, units, incident, lowIncident;
  const place = async (id, p) => {
    const r = await post(s.url, `/api/v1/units/${id}/position`, p, bearer(op));
    assert.equal(r.status, 200, r.text);
  };
  const status = async (id, st, inc) => {
    const r = await s.request('PATCH', `/api/v1/units/${id}`, { status: st, ...(inc ? { incident: inc } : {}) }, bearer(op));
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    const state = tempDir();
    addUser(state, { username: 'ops.op', password: 'operator password 1', roles: 'operator,dispatcher', agency: 'command' });
    addUser(state, { username: 'pol.disp', password: 'police password 1', roles: 'dispatcher', agency: 'police' });
    s = await startServer({ state, args: ['--city', CITY] });
    s.request = (method, p, body, headers) => request(s.url, method, p, body, headers);
    op = await login(s.url, 'ops.op', 'operator password 1');
    pol = await login(s.url, 'pol.disp', 'police password 1');
    units = {};
    for (const [sign, kind, agency] of [['E-NEAR', 'engine', 'fire'], ['E-MID', 'engine', 'fire'], ['E-FAR', 'engine', 'fire'],
      ['E-OOS', 'engine', 'fire'], ['E-DIV', 'engine', 'fire'], ['L-1', 'ladder', 'fire'], ['A-1', 'ambulance', 'ems'],
      ['P-1', 'patrol_car', 'police']]) {
      const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind, agency }, bearer(op));
      assert.equal(r.status, 201, r.text);
      units[sign] = r.body.unit.id;
    }
    await place(units['E-NEAR'], NEAR);
    await place(units['E-MID'], MID);
    await place(units['E-FAR'], FAR);
    await place(units['E-OOS'], NEAR);
    await place(units['E-DIV'], NEAR);
    await place(units['L-1'], MID);
    await place(units['A-1'], FAR);
    await place(units['P-1'], NEAR);
    await status(units['E-OOS'], 'out_of_service');
    // A low-priority incident (a fire alarm, priority 3) far away, E-DIV on its way there.
    const low = await post(s.url, '/api/v1/calls', { line: '119', caller: '+377 600 000 010', location: { lon: 7.4080, lat: 43.7280 }, category: 'fire/alarm', text: 'alarm bell' }, bearer(op));
    assert.equal(low.status, 201, low.text);
    lowIncident = low.body.incident.id;
    await status(units['E-DIV'], 'en_route', lowIncident);
    // The structure fire (priority 1).
    const r = await post(s.url, '/api/v1/calls', { line: '119', caller: '+377 600 000 011', location: SCENE, category: 'fire/structure', text: 'smoke from a roof' }, bearer(op));
    assert.equal(r.status, 201, r.text);
    incident = r.body.incident.id;
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('a route by road: its time and distance, its shape from one place to the other', async () => {
    const r = await get(s.url, `/api/v1/route?from=${FAR.lon},${FAR.lat}&to=${SCENE.lon},${SCENE.lat}`, bearer(op));
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.eta_ms > 30000 && r.body.eta_ms < 900000, `${r.body.eta_ms} ms`);
    const c = r.body.route.coordinates;
    assert.ok(c.length >= 2);
    assert.ok(metres(c[0], [FAR.lon, FAR.lat]) < 60);
    assert.ok(metres(c[c.length - 1], [SCENE.lon, SCENE.lat]) < 60);
    // By road is longer than the straight line.
    assert.ok(r.body.distance_m > metres([FAR.lon, FAR.lat], [SCENE.lon, SCENE.lat]));
    // Bad input: named, not guessed.
    assert.equal((await get(s.url, '/api/v1/route?from=7.4,abc&to=7.42,43.73', bearer(op))).body.error.field, 'from');
    assert.equal((await get(s.url, `/api/v1/route?from=${FAR.lon},${FAR.lat}&to=NaN,43.7`, bearer(op))).status, 400);
    assert.equal((await get(s.url, `/api/v1/route?from=${FAR.lon},${FAR.lat}&to=2.35,48.85`, bearer(op))).status, 422);
  });

  test('the plan\'s slots hold the right kinds, nearest by road first; a busy unit never, a diversion marked', async () => {
    const r = await get(s.url, `/api/v1/incidents/${incident}/recommendations`, bearer(op));
    assert.equal(r.status, 200, r.text);
    const slots = r.body.slots;
    assert.deepEqual(slots.map((x) => [x.kind, x.count]), [['engine', 2], ['ladder', 1], ['ambulance', 1]]);
    for (const slot of slots) {
      assert.ok(slot.units.every((u) => u.kind === slot.kind), `${slot.kind} slot holds only ${slot.kind}s`);
      const etas = slot.units.map((u) => u.eta_ms);
      assert.deepEqual([...etas].sort((a, b) => a - b), etas, 'ranked by ETA');
      assert.equal(slot.units.filter((u) => u.recommended).length, slot.count);
    }
    const all = slots.flatMap((x) => x.units);
    assert.ok(!all.some((u) => u.id === units['E-OOS']), 'out of service is never recommended');
    assert.ok(!all.some((u) => u.kind === 'patrol_car'), 'a patrol car is not in a fire plan');
    const engines = slots[0].units;
    assert.equal(engines[0].call_sign === 'E-NEAR' || engines[0].call_sign === 'E-DIV', true);
    const div = engines.find((u) => u.id === units['E-DIV']);
    assert.ok(div && div.diversion === true, 'the unit en route to a priority-3 alarm is offered as a diversion');
    assert.ok(engines.filter((u) => u.id !== units['E-DIV']).every((u) => u.diversion === false));
    // The recommended ETA is the route's ETA from the unit's place.
    const near = engines.find((u) => u.id === units['E-NEAR']);
    const route = await get(s.url, `/api/v1/route?from=${NEAR.lon},${NEAR.lat}&to=${SCENE.lon},${SCENE.lat}`, bearer(op));
    assert.equal(near.eta_ms, route.body.eta_ms);
    // Recommended units come with their route to the scene.
    const rec = all.filter((u) => u.recommended);
    assert.ok(rec.every((u) => u.route && u.route.coordinates.length >= 2));
    // A far engine is not ahead of a near one.
    const far = engines.find((u) => u.id === units['E-FAR']);
    if (far) assert.ok(far.eta_ms >= near.eta_ms);
    // Police may not read a fire incident's recommendations.
    assert.equal((await get(s.url, `/api/v1/incidents/${incident}/recommendations`, bearer(pol))).status, 403);
    assert.equal((await get(s.url, '/api/v1/incidents/I-999999/recommendations', bearer(op))).status, 404);
    assert.equal((await get(s.url, '/api/v1/incidents/x/recommendations', bearer(op))).status, 400);
  });

  test('coverage: the streets beyond N minutes of every available engine shrink as N grows', async () => {
    const cov = async (kind, minutes) => {
      const r = await get(s.url, `/api/v1/coverage?kind=${kind}&minutes=${minutes}`, bearer(op));
      assert.equal(r.status, 200, r.text);
      return r.body;
    };
    const one = await cov('engine', 1), three = await cov('engine', 3), thirty = await cov('engine', 30);
    assert.equal(one.units, 3, 'E-NEAR, E-MID and E-FAR: not the one out of service nor the one en route');
    assert.ok(one.beyond_km > three.beyond_km && three.beyond_km >= thirty.beyond_km, `${one.beyond_km} > ${three.beyond_km} >= ${thirty.beyond_km}`);
    assert.ok(one.beyond_km < one.road_km);
    assert.equal(one.beyond.geometry.type, 'MultiLineString');
    assert.ok(one.beyond.geometry.coordinates.length > 0);
    // No gas crew anywhere: the whole city is beyond reach.
    const none = await cov('gas_crew', 5);
    assert.equal(none.units, 0);
    assert.equal(none.beyond_km, none.road_km);
    assert.equal((await get(s.url, '/api/v1/coverage?kind=spaceship&minutes=5', bearer(op))).body.error.field, 'kind');
    assert.equal((await get(s.url, '/api/v1/coverage?kind=engine&minutes=0', bearer(op))).status, 400);
  });

  test('a screen following the incident gets new recommendations when a unit moves, and only then', async () => {
    const c = await connectWs(s.wsUrl, { token: op });
    await c.next((m) => m.type === 'hello');
    c.send({ type: 'recommendations', id: 'r1', data: { incident } });
    const first = await c.next((m) => m.type === 'recommendations' && m.re === 'r1');
    assert.equal(first.data.incident, incident);
    const farBefore = first.data.slots[0].units.find((u) => u.id === units['E-FAR']);
    // E-FAR drives on a little (a plausible 50 m): its ETA changes, and the screen is told.
    await place(units['E-FAR'], { lon: FAR.lon + 0.0005, lat: FAR.lat + 0.0002 });
    const next = await c.next((m) => m.type === 'recommendations' && !m.re, 5000);
    const farAfter = next.data.slots[0].units.find((u) => u.id === units['E-FAR']);
    assert.ok(farAfter, 'E-FAR is still listed');
    if (farBefore) assert.notEqual(farAfter.eta_ms, farBefore.eta_ms);
    // A patrol car moving changes nothing in a fire plan: no message.
    await place(units['P-1'], { lon: NEAR.lon + 0.0003, lat: NEAR.lat });
    await assert.rejects(c.next((m) => m.type === 'recommendations' && !m.re, 2500));
    // Errors: an unknown incident; then null stops.
    c.send({ type: 'recommendations', id: 'r2', data: { incident: 'I-999999' } });
    assert.equal((await c.next((m) => m.type === 'error' && m.re === 'r2')).error.code, 'not_found');
    c.send({ type: 'recommendations', id: 'r3', data: { incident: null } });
    await c.next((m) => m.type === 'recommendations' && m.re === 'r3');
    c.ws.close();
  });

  test('assigning the recommended plan dispatches the units; the slots then show them; release frees one', async () => {
    const r = await get(s.url, `/api/v1/incidents/${incident}/recommendations`, bearer(op));
    const chosen = r.body.slots.flatMap((x) => x.units.filter((u) => u.recommended).map((u) => u.id));
    const a = await post(s.url, `/api/v1/incidents/${incident}/assign`, { units: chosen }, bearer(op));
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.units.length, chosen.length, JSON.stringify(a.body.refused));
    for (const id of chosen) {
      const u = await get(s.url, `/api/v1/units/${id}`, bearer(op));
      assert.equal(u.body.unit.status, 'dispatched');
      assert.equal(u.body.unit.incident, incident);
    }
    // Again: already there, refused by name, nothing changed.
    const again = await post(s.url, `/api/v1/incidents/${incident}/assign`, { units: [chosen[0], 'U-999999'] }, bearer(op));
    assert.equal(again.status, 409);
    assert.deepEqual(again.body.refused.map((x) => x.code).sort(), ['already_assigned', 'not_found']);
    // The plan now shows them assigned and needs nobody.
    const after2 = await get(s.url, `/api/v1/incidents/${incident}/recommendations`, bearer(op));
    assert.equal(after2.body.slots[0].assigned.length, 2);
    assert.ok(after2.body.slots.every((x) => x.units.every((u) => !u.recommended)));
    // The incident is dispatched now, and its timeline records each unit.
    const tl = await get(s.url, `/api/v1/incidents/${incident}`, bearer(op));
    assert.equal(tl.status, 200);
    assert.equal(tl.body.incident.status, 'dispatched');
    const dispatchedUnits = tl.body.incident.timeline.filter((e) => e.type === 'incident.unit').map((e) => e.data.unit);
    for (const id of chosen) assert.ok(dispatchedUnits.includes(id), `${id} on the timeline`);
    // Release one: it is returning, and the engine slot needs one again.
    const rel = await post(s.url, `/api/v1/incidents/${incident}/release`, { units: [chosen[0]] }, bearer(op));
    assert.equal(rel.status, 200, rel.text);
    const u = await get(s.url, `/api/v1/units/${chosen[0]}`, bearer(op));
    assert.equal(u.body.unit.status, 'returning');
    const after3 = await get(s.url, `/api/v1/incidents/${incident}/recommendations`, bearer(op));
    assert.equal(after3.body.slots[0].assigned.length, 1);
    assert.equal(after3.body.slots[0].units.filter((x) => x.recommended).length, 1);
    // Bad bodies.
    assert.equal((await post(s.url, `/api/v1/incidents/${incident}/assign`, { units: [] }, bearer(op))).status, 400);
    assert.equal((await post(s.url, `/api/v1/incidents/${incident}/assign`, { units: 'E-1' }, bearer(op))).status, 400);
    assert.equal((await post(s.url, `/api/v1/incidents/${incident}/assign`, { units: [chosen[1]] }, bearer(pol))).status, 403);
  });

  test('the response plans are listed', async () => {
    const r = await get(s.url, '/api/v1/response-plans', bearer(op));
    assert.equal(r.status, 200);
    const fire = r.body.plans.find((p) => p.category === 'fire/structure');
    assert.deepEqual(fire.slots, [{ kind: 'engine', count: 2 }, { kind: 'ladder', count: 1 }, { kind: 'ambulance', count: 1 }]);
    assert.ok(r.body.plans.some((p) => p.category === 'utility/water-main-burst'));
  });
});

describe('road closures', () => {
  let state, s, op;
  const FROM = { lon: 7.4120, lat: 43.7310 };
  const TO = { lon: 7.4265, lat: 43.7395 };
  const routeOf = async () => (await get(s.url, `/api/v1/route?from=${FROM.lon},${FROM.lat}&to=${TO.lon},${TO.lat}`, bearer(op))).body;
  before(async () => {
    state = tempDir();
    addUser(state, { username: 'ops.op', password: 'operator password 1', roles: 'operator,dispatcher', agency: 'command' });
    s = await startServer({ state, args: ['--city', CITY] });
    op = await login(s.url, 'ops.op', 'operator password 1');
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('closing a street on the route sends the route round it, at once and after a restart; reopening restores it', async () => {
    const first = await routeOf();
    const c = first.route.coordinates;
    const mid = c[Math.floor(c.length / 2)];
    const r = await post(s.url, '/api/v1/roads/closures', { lon: mid[0], lat: mid[1], reason: 'burst water main' }, bearer(op));
    assert.equal(r.status, 201, r.text);
    const closure = r.body.closure;
    assert.equal(closure.reason, 'burst water main');
    assert.ok(closure.geometry.coordinates.length >= 2);
    const round = await routeOf();
    assert.ok(round.eta_ms > first.eta_ms, `${round.eta_ms} > ${first.eta_ms}`);
    // The new route does not use the closed street.
    const onClosed = (p) => closure.geometry.coordinates.some((q) => metres(p, q) < 1);
    const inner = round.route.coordinates.slice(1, -1);
    assert.ok(!inner.every(onClosed) && inner.filter(onClosed).length < closure.geometry.coordinates.length);
    assert.equal((await get(s.url, '/api/v1/roads/closures', bearer(op))).body.closures.length, 1);
    // Kept across a restart.
    await s.stop();
    s = await startServer({ state, args: ['--city', CITY] });
    op = await login(s.url, 'ops.op', 'operator password 1');
    assert.equal((await routeOf()).eta_ms, round.eta_ms);
    // Reopened: the first route again; reopening twice is 404.
    const d = await request(s.url, 'DELETE', `/api/v1/roads/closures/${closure.id}`, undefined, bearer(op));
    assert.equal(d.status, 200, d.text);
    assert.equal((await routeOf()).eta_ms, first.eta_ms);
    assert.equal((await request(s.url, 'DELETE', `/api/v1/roads/closures/${closure.id}`, undefined, bearer(op))).status, 404);
    // Bad input.
    assert.equal((await post(s.url, '/api/v1/roads/closures', { lon: 'x', lat: 43.7 }, bearer(op))).body.error.field, 'lon');
    assert.equal((await post(s.url, '/api/v1/roads/closures', { lon: 2.35, lat: 48.85 }, bearer(op))).status, 422);
  });
});

describe('ties', () => {
  let s, op;
  before(async () => {
    const state = tempDir();
    addUser(state, { username: 'ops.op', password: 'operator password 1', roles: 'operator,dispatcher', agency: 'command' });
    s = await startServer({ state, args: ['--city', CITY] });
    op = await login(s.url, 'ops.op', 'operator password 1');
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('equal ETAs: the district\'s own unit first, whatever the call signs say; then the call sign', async () => {
    const call = await post(s.url, '/api/v1/calls', { line: '119', caller: '+377 600 000 012', location: SCENE, category: 'fire/other', text: 'smoke' }, bearer(op));
    assert.equal(call.status, 201, call.text);
    const inc = call.body.incident;
    const fire = inc.districts.find((d) => d.kind === 'fire');
    assert.ok(fire, 'the scene is in a fire district');
    const station = fire.name.slice(fire.name.indexOf(': ') + 2);
    const ids = {};
    // Same place, so the same ETA; "A-…" sorts before "B-…" and "C-…".
    for (const [sign, st] of [['A-OTHER', 'Somewhere else'], ['B-OWN', station], ['C-OTHER', 'Elsewhere']]) {
      const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind: 'engine', agency: 'fire', station: st }, bearer(op));
      assert.equal(r.status, 201, r.text);
      ids[sign] = r.body.unit.id;
      assert.equal((await post(s.url, `/api/v1/units/${ids[sign]}/position`, MID, bearer(op))).status, 200);
    }
    const r = await get(s.url, `/api/v1/incidents/${inc.id}/recommendations`, bearer(op));
    assert.equal(r.status, 200, r.text);
    const engines = r.body.slots[0].units;
    assert.deepEqual(engines.map((u) => u.call_sign), ['B-OWN', 'A-OTHER', 'C-OTHER']);
    assert.equal(engines[0].own_district, true);
    assert.equal(engines[0].recommended, true);
    assert.ok(engines.every((u) => u.eta_ms === engines[0].eta_ms));
  });

  test('a slot that asks for a capability takes only units that have it, however near the others are', async () => {
    const call = await post(s.url, '/api/v1/calls', { line: '120', caller: '+377 600 000 013', location: SCENE, category: 'medical/cardiac', text: 'collapsed, not breathing' }, bearer(op));
    assert.equal(call.status, 201, call.text);
    const ids = {};
    for (const [sign, caps, at] of [['AMB-BLS', [], NEAR], ['AMB-ALS', ['als'], FAR]]) {
      const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind: 'ambulance', agency: 'ems', capabilities: caps }, bearer(op));
      assert.equal(r.status, 201, r.text);
      ids[sign] = r.body.unit.id;
      assert.equal((await post(s.url, `/api/v1/units/${ids[sign]}/position`, at, bearer(op))).status, 200);
    }
    const r = await get(s.url, `/api/v1/incidents/${call.body.incident.id}/recommendations`, bearer(op));
    assert.equal(r.status, 200, r.text);
    const amb = r.body.slots.find((x) => x.kind === 'ambulance');
    assert.deepEqual(amb.capabilities, ['als']);
    assert.deepEqual(amb.units.map((u) => u.call_sign), ['AMB-ALS']);
    assert.equal(amb.units[0].recommended, true);
  });
});
