// Calls become incidents: intake validation, fusion by family, distance and
// time, the lifecycle, who may see what, the audit trail, the live feed, and
// calls surviving kill -9 — all against the real server on the demo city.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { BIN, startServer, addUser, login, request, get, post, connectWs, tempDir, sleep } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const HERE = { lon: 7.4246, lat: 43.7384 }; // Monte-Carlo
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const sql = (state, q) => execFileSync('sqlite3', ['-batch', path.join(state, 'citycmd.db'), q], { encoding: 'utf8' }).trim();
// A point d metres north of p.
const north = (p, d) => ({ lon: p.lon, lat: p.lat + d / 110540 });
const iso = (msAgo) => new Date(Date.now() - msAgo).toISOString();

function call(over = {}) {
  return { line: '119', caller: '+377 600 000 001', location: HERE, category: 'fire/structure', text: 'smoke', ...over };
}

describe('intake and fusion', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--city', CITY] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  test('a call opens an incident with the fields integrations rely on', async () => {
    const r = await post(s.url, '/api/v1/calls', call({ received_at: iso(5000), location: north(HERE, 1200) }));
    assert.equal(r.status, 201, r.text);
    assert.match(r.body.call.id, /^C-\d+$/);
    assert.match(r.body.call.incident_id, /^I-\d+$/);
    assert.equal(r.headers.get('location'), `/api/v1/incidents/${r.body.call.incident_id}`);
    assert.equal(r.body.joined, false);
    const inc = r.body.incident;
    assert.equal(inc.id, r.body.call.incident_id);
    assert.equal(inc.type, 'fire/structure');
    assert.equal(inc.priority, 1);
    assert.equal(inc.status, 'new');
    assert.equal(inc.agency, 'fire');
    assert.deepEqual(inc.joint, ['ems']);
    assert.equal(inc.callers, 1);
    assert.ok(inc.districts.some((d) => d.kind === 'fire'), 'the fire district from the GIS layer');
    assert.match(inc.address, /^near /);
    assert.ok(Math.abs(Date.parse(r.body.call.received_at) - (Date.now() - 5000)) < 2000);
  });

  test('same family, within the radius and the window: joins; outside either, or another family: new', async () => {
    const base = north(HERE, -3000);
    const first = await post(s.url, '/api/v1/calls', call({ location: base, received_at: iso(1000) }));
    const id = first.body.incident.id;
    // fire/structure: 300 m, 3600 s.
    const near = await post(s.url, '/api/v1/calls', call({ location: north(base, 290), caller: '2' }));
    assert.equal(near.body.joined, true);
    assert.equal(near.body.incident.id, id);
    assert.equal(near.body.incident.callers, 2);
    const far = await post(s.url, '/api/v1/calls', call({ location: north(base, 320), caller: '3' }));
    assert.equal(far.body.joined, false, 'just outside the distance');
    assert.notEqual(far.body.incident.id, id);
    const other = await post(s.url, '/api/v1/calls', call({ location: base, category: 'medical/cardiac', line: '120', caller: '4' }));
    assert.equal(other.body.joined, false, 'another family');
    const vehicle = await post(s.url, '/api/v1/calls', call({ location: north(base, 100), category: 'fire/vehicle', caller: '5' }));
    assert.equal(vehicle.body.incident.id, id, 'same family, another category: joins (within the new call\'s radius)');

    // The time window: a call 3,700 s after the last one of an incident is new, 3,500 s joins.
    const p = north(HERE, -6000);
    const old = await post(s.url, '/api/v1/calls', call({ location: p, received_at: iso(3700 * 1000) }));
    const late = await post(s.url, '/api/v1/calls', call({ location: p, caller: '6' }));
    assert.notEqual(late.body.incident.id, old.body.incident.id, 'just outside the window');
    const q = north(HERE, -7000);
    const recent = await post(s.url, '/api/v1/calls', call({ location: q, received_at: iso(3500 * 1000) }));
    const inTime = await post(s.url, '/api/v1/calls', call({ location: q, caller: '7' }));
    assert.equal(inTime.body.incident.id, recent.body.incident.id, 'just inside the window');

    // The timeline records every call.
    const full = await get(s.url, `/api/v1/incidents/${id}`);
    assert.equal(full.status, 200);
    assert.equal(full.body.incident.calls.length, 3);
    assert.deepEqual(full.body.incident.timeline.map((e) => e.type), ['incident.opened', 'call.received', 'call.received', 'call.received']);
  });

  test('concurrent calls for the same fire join one incident, every caller counted', async () => {
    const p = north(HERE, 2500);
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => post(s.url, '/api/v1/calls', call({ location: p, caller: `c${i}` }))));
    assert.ok(rs.every((r) => r.status === 201));
    const ids = new Set(rs.map((r) => r.body.incident.id));
    assert.equal(ids.size, 1, `one incident, got ${[...ids]}`);
    const inc = await get(s.url, `/api/v1/incidents/${[...ids][0]}`);
    assert.equal(inc.body.incident.callers, 30);
    assert.equal(rs.filter((r) => !r.body.joined).length, 1);
  });

  test('every validation error names its field', async () => {
    const cases = [
      [{ line: '999' }, 'line'], [{ line: undefined }, 'line'], [{ line: ['119'] }, 'line'],
      [{ caller: '' }, 'caller'], [{ caller: 5 }, 'caller'], [{ caller: 'x'.repeat(33) }, 'caller'], [{ caller: undefined }, 'caller'],
      [{ received_at: 'yesterday' }, 'received_at'], [{ received_at: '2026-11-21T10:00:00' }, 'received_at'],
      [{ received_at: new Date(Date.now() + 3600e3).toISOString() }, 'received_at'], [{ received_at: 12 }, 'received_at'],
      [{ category: 'fire/dragon' }, 'category'], [{ category: undefined }, 'category'],
      [{ text: 'x'.repeat(8001) }, 'text'], [{ text: 5 }, 'text'],
      [{ location: undefined }, 'location'], [{ location: 'here' }, 'location'],
      [{ location: { lon: 7.42 } }, 'location'], [{ location: { lon: 'a', lat: 43 } }, 'location'],
      [{ location: { lon: 181, lat: 43 } }, 'location'], [{ location: { lon: 2.35, lat: 48.85 } }, 'location'],
      [{ location: { text: '' } }, 'location.text'], [{ location: { text: 'Rue qui nexiste pas du tout' } }, 'location.text'],
      [{ location: { text: 'y'.repeat(201) } }, 'location.text'],
    ];
    for (const [change, field] of cases) {
      const r = await post(s.url, '/api/v1/calls', call(change));
      assert.equal(r.status, 400, `${JSON.stringify(change).slice(0, 80)}: ${r.status}`);
      assert.equal(r.body.error.code, 'invalid_field');
      assert.equal(r.body.error.field, field, JSON.stringify(change).slice(0, 80));
    }
    assert.match((await post(s.url, '/api/v1/calls', call({ location: { lon: 2.35, lat: 48.85 } }))).body.error.message, /outside Monaco/);
    // A 1 MB text field: refused before it is read.
    const big = await post(s.url, '/api/v1/calls', call({ text: 'x'.repeat(1 << 20) }));
    assert.equal(big.status, 413);
    assert.equal((await post(s.url, '/api/v1/calls', '{"line":')).status, 400);
    // A place text resolved by the GIS search, with its confidence.
    const byText = await post(s.url, '/api/v1/calls', call({ location: { text: 'Avenue Princesse Grace' }, category: 'medical/cardiac', line: '120' }));
    assert.equal(byText.status, 201);
    assert.ok(byText.body.call.location.confidence > 0.5);
    assert.match(byText.body.incident.address, /Princesse Grace/);
  });

  test('the lifecycle moves forward only; priority only rises; notes go to the timeline', async () => {
    const r = await post(s.url, '/api/v1/calls', call({ location: north(HERE, 8000), category: 'fire/vehicle' }));
    const id = r.body.incident.id;
    const patch = (body) => request(s.url, 'PATCH', `/api/v1/incidents/${id}`, body);
    assert.equal((await patch({ status: 'on_scene' })).body.incident.status, 'on_scene');
    const back = await patch({ status: 'dispatched' });
    assert.equal(back.status, 409);
    assert.match(back.body.error.message, /on_scene cannot become dispatched/);
    assert.equal((await patch({ priority: 1 })).body.incident.priority, 1);
    assert.equal((await patch({ priority: 3 })).status, 409);
    assert.equal((await patch({ level: 'II', note: 'Second alarm requested' })).status, 200);
    assert.equal((await patch({ status: 'flying' })).status, 400);
    assert.equal((await patch({})).status, 400);
    assert.equal((await patch({ status: 'closed' })).body.incident.status, 'closed');
    assert.equal((await patch({ status: 'cancelled' })).status, 409, 'closed is final');
    const full = (await get(s.url, `/api/v1/incidents/${id}`)).body.incident;
    assert.ok(full.closed_at);
    assert.deepEqual(full.timeline.map((e) => e.type).slice(2),
      ['incident.status', 'incident.priority', 'incident.level', 'incident.note', 'incident.status']);
    const open = (await get(s.url, '/api/v1/incidents')).body.incidents;
    assert.ok(!open.some((x) => x.id === id), 'closed incidents leave the queue');
    assert.ok((await get(s.url, '/api/v1/incidents?all=true')).body.incidents.some((x) => x.id === id));
    assert.equal((await get(s.url, '/api/v1/incidents/I-999999')).status, 404);
    assert.equal((await get(s.url, '/api/v1/incidents/nonsense')).status, 400);
  });
});

describe('merge and split', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--city', CITY] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  const strip = (inc) => { const { updated_at, timeline, links, ...rest } = inc; return rest; };

  test('merge moves every call and links the two; split restores the originals exactly', async () => {
    const a1 = await post(s.url, '/api/v1/calls', call({ location: north(HERE, 400), caller: 'a1' }));
    const a2 = await post(s.url, '/api/v1/calls', call({ location: north(HERE, 420), caller: 'a2' }));
    const b1 = await post(s.url, '/api/v1/calls', call({ location: north(HERE, 1400), caller: 'b1', category: 'fire/alarm' }));
    const A = a1.body.incident.id, B = b1.body.incident.id;
    assert.equal(a2.body.incident.id, A);
    await request(s.url, 'PATCH', `/api/v1/incidents/${A}`, { status: 'dispatched', note: 'E1 assigned' });
    const before = { A: (await get(s.url, `/api/v1/incidents/${A}`)).body.incident, B: (await get(s.url, `/api/v1/incidents/${B}`)).body.incident };

    const m = await post(s.url, `/api/v1/incidents/${A}/merge`, { into: B });
    assert.equal(m.status, 200, m.text);
    assert.equal(m.body.incident.id, B);
    assert.equal(m.body.incident.callers, 3);
    const mergedA = (await get(s.url, `/api/v1/incidents/${A}`)).body.incident;
    assert.equal(mergedA.status, 'merged');
    assert.equal(mergedA.replaced_by, B);
    assert.deepEqual(mergedA.calls, [], 'the calls moved');
    assert.deepEqual(mergedA.links, [{ kind: 'replaced_by', incident: B }]);
    const mergedB = (await get(s.url, `/api/v1/incidents/${B}`)).body.incident;
    assert.deepEqual(mergedB.calls.map((c) => c.caller).sort(), ['a1', 'a2', 'b1'], 'nothing lost');
    assert.deepEqual(mergedB.links, [{ kind: 'replaces', incident: A }]);
    assert.ok(!(await get(s.url, '/api/v1/incidents')).body.incidents.some((x) => x.id === A), 'a merged incident leaves the queue');
    assert.equal((await post(s.url, `/api/v1/incidents/${A}/merge`, { into: B })).status, 409, 'already merged');
    assert.equal((await post(s.url, `/api/v1/incidents/${B}/merge`, { into: B })).status, 409);

    const split = await post(s.url, `/api/v1/incidents/${B}/split`, { calls: [a1.body.call.id, a2.body.call.id] });
    assert.equal(split.status, 200, split.text);
    assert.equal(split.body.incident.id, A, 'back into the incident they came from');
    const after = { A: (await get(s.url, `/api/v1/incidents/${A}`)).body.incident, B: (await get(s.url, `/api/v1/incidents/${B}`)).body.incident };
    assert.deepEqual(strip(after.A), strip(before.A));
    assert.deepEqual(strip(after.B), strip(before.B));
    assert.deepEqual(after.A.links, []);
    const types = after.A.timeline.map((e) => e.type);
    assert.deepEqual(types.slice(-2), ['incident.merged', 'incident.restored'], 'the timeline keeps the history');
  });

  test('splitting a call that arrived on its own opens a new incident linked as split', async () => {
    const x = await post(s.url, '/api/v1/calls', call({ location: north(HERE, -1400), caller: 'x1' }));
    const y = await post(s.url, '/api/v1/calls', call({ location: north(HERE, -1350), caller: 'x2' }));
    const X = x.body.incident.id;
    assert.equal(y.body.incident.id, X);
    const r = await post(s.url, `/api/v1/incidents/${X}/split`, { calls: [y.body.call.id] });
    assert.equal(r.status, 200, r.text);
    const N = r.body.incident.id;
    assert.notEqual(N, X);
    assert.equal(r.body.incident.callers, 1);
    assert.equal((await get(s.url, `/api/v1/incidents/${X}`)).body.incident.callers, 1);
    assert.deepEqual((await get(s.url, `/api/v1/incidents/${N}`)).body.incident.links, [{ kind: 'split_from', incident: X }]);
    // Refusals: the last call stays; calls of other incidents; bad bodies.
    assert.equal((await post(s.url, `/api/v1/incidents/${X}/split`, { calls: [x.body.call.id] })).status, 409);
    assert.equal((await post(s.url, `/api/v1/incidents/${X}/split`, { calls: [y.body.call.id] })).status, 409);
    assert.equal((await post(s.url, `/api/v1/incidents/${X}/split`, { calls: [] })).status, 400);
    assert.equal((await post(s.url, `/api/v1/incidents/${X}/merge`, { into: 'nope' })).status, 400);
    assert.equal((await post(s.url, `/api/v1/incidents/${X}/merge`, { into: 'I-999999' })).status, 404);
  });
});

test('priority-1 timers: an alarm when no unit is assigned, and when none arrives, each once', async () => {
  const s = await startServer({ args: ['--city', CITY, '--alarm-unassigned', '1', '--alarm-arrival', '3'] });
  try {
    const ws = await connectWs(s.wsUrl);
    await ws.next((m) => m.type === 'hello');
    ws.send({ type: 'subscribe', id: 's', data: { topics: ['events'] } });
    await ws.next((m) => m.type === 'subscribed');
    const p1 = (await post(s.url, '/api/v1/calls', call())).body.incident.id;
    const handled = (await post(s.url, '/api/v1/calls', call({ location: north(HERE, 2000), category: 'medical/cardiac', line: '120' }))).body.incident.id;
    await request(s.url, 'PATCH', `/api/v1/incidents/${handled}`, { status: 'dispatched' });
    const p2 = (await post(s.url, '/api/v1/calls', call({ location: north(HERE, -2000), category: 'fire/vehicle' }))).body.incident.id;
    const t0 = Date.now();
    const first = await ws.next((m) => m.type === 'event' && m.data.type === 'incident.alarm', 5000);
    const ms = Date.now() - t0;
    assert.equal(first.data.subject, `incident/${p1.slice(2)}`);
    assert.equal(first.data.data.kind, 'unassigned');
    assert.ok(ms >= 500 && ms < 3000, `unassigned alarm after ${ms} ms (threshold 1 s)`);
    await sleep(3500);
    const alarms = (id) => get(s.url, `/api/v1/incidents/${id}`).then((r) => r.body.incident);
    const a = await alarms(p1);
    assert.deepEqual(a.alarms.sort(), ['no_arrival', 'unassigned']);
    assert.equal(a.timeline.filter((e) => e.type === 'incident.alarm').length, 2, 'each alarm once');
    assert.deepEqual((await alarms(handled)).alarms, ['no_arrival'], 'dispatched in time: only the arrival alarm');
    assert.deepEqual((await alarms(p2)).alarms, [], 'priority 2: no timers');
    // A restart raises nothing again.
    await ws.close();
    await s.stop();
    const s2 = await startServer({ state: s.stateDir, args: ['--city', CITY, '--alarm-unassigned', '1', '--alarm-arrival', '3'] });
    try {
      await sleep(1500);
      const again = await get(s2.url, `/api/v1/incidents/${p1}`);
      assert.equal(again.body.incident.timeline.filter((e) => e.type === 'incident.alarm').length, 2);
    } finally {
      await s2.stop();
    }
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('an incident exports as NENA EIDO JSON and a public warning as a CAP 1.2 alert', async () => {
  const s = await startServer({ args: ['--city', CITY] });
  try {
    const a = await post(s.url, '/api/v1/calls', call({ caller: '+377 1' }));
    await post(s.url, '/api/v1/calls', call({ caller: '+377 2', text: 'flames visible' }));
    const other = await post(s.url, '/api/v1/calls', call({ location: north(HERE, 1000), caller: '+377 3' }));
    const id = a.body.incident.id;
    await request(s.url, 'PATCH', `/api/v1/incidents/${id}`, { status: 'dispatched', note: 'Evacuate floors 3-5' });
    await post(s.url, `/api/v1/incidents/${other.body.incident.id}/merge`, { into: id });

    const e = await get(s.url, `/api/v1/incidents/${id}/eido`);
    assert.equal(e.status, 200);
    const ic = e.body.incidentComponent;
    assert.equal(ic.componentIdentifier, id);
    assert.match(ic.incidentTrackingIdentifier, new RegExp(`^urn:emergency:uid:incidentid:${id}:monaco$`));
    assert.deepEqual(ic.incidentTypeCommonRegistryText, ['fire/structure']);
    assert.equal(ic.incidentStatusCommonRegistryText, 'Active');
    assert.equal(ic.incidentCommonPriorityNumber, 1);
    assert.deepEqual(ic.incidentLinks.map((l) => l.linkType), ['REPLACING']);
    assert.equal(e.body.callComponent.length, 3);
    assert.ok(e.body.callComponent.every((c) => /^C-\d+$/.test(c.componentIdentifier) && c.callbackNumber && c.callStartTimeStamp));
    assert.deepEqual(e.body.agencyComponent.map((x) => x.agencyIdentifier), ['fire', 'ems']);
    assert.equal(e.body.locationComponent[0].geoLocation.latitude, HERE.lat);
    assert.equal(e.body.notesComponent[0].notesText, 'Evacuate floors 3-5');
    const replaced = await get(s.url, `/api/v1/incidents/${other.body.incident.id}/eido`);
    assert.equal(replaced.body.incidentComponent.incidentStatusCommonRegistryText, 'Closed');
    assert.deepEqual(replaced.body.incidentComponent.incidentLinks.map((l) => l.linkType), ['REPLACED_BY']);

    const c = await get(s.url, `/api/v1/incidents/${id}/cap?headline=${encodeURIComponent('Fire & smoke <Monte-Carlo>')}&instruction=${encodeURIComponent('Keep windows closed')}&radius_km=0.8`);
    assert.equal(c.status, 200);
    assert.match(c.headers.get('content-type'), /^application\/cap\+xml/);
    const file = path.join(tempDir(), 'alert.xml');
    writeFileSync(file, c.text);
    execFileSync('xmllint', ['--noout', file]); // well-formed, or it throws
    const xp = (q) => execFileSync('xmllint', ['--xpath', `string(${q})`, file], { encoding: 'utf8' }).replace(/\n$/, '');
    const ns = "/*[local-name()='alert' and namespace-uri()='urn:oasis:names:tc:emergency:cap:1.2']";
    for (const [el, want] of [['status', 'Actual'], ['msgType', 'Alert'], ['scope', 'Public']]) {
      assert.equal(xp(`${ns}/*[local-name()='${el}']`), want);
    }
    assert.match(xp(`${ns}/*[local-name()='sent']`), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const info = `${ns}/*[local-name()='info']`;
    assert.equal(xp(`${info}/*[local-name()='category']`), 'Fire');
    assert.equal(xp(`${info}/*[local-name()='urgency']`), 'Immediate');
    assert.equal(xp(`${info}/*[local-name()='severity']`), 'Severe');
    assert.equal(xp(`${info}/*[local-name()='certainty']`), 'Observed');
    assert.equal(xp(`${info}/*[local-name()='headline']`), 'Fire & smoke <Monte-Carlo>', 'escaped, not broken');
    assert.match(xp(`${info}/*[local-name()='area']/*[local-name()='circle']`), /^43\.738400,7\.424600 0\.800$/);
    // The order CAP 1.2 requires inside <alert>.
    const order = ['identifier', 'sender', 'sent', 'status', 'msgType', 'scope', 'info'];
    const seen = [...c.text.matchAll(/^ {2}<(\w+)/gm)].map((m) => m[1]);
    assert.deepEqual(seen, order);
    assert.equal((await get(s.url, `/api/v1/incidents/${id}/cap?radius_km=0`)).status, 400);
    assert.equal((await get(s.url, '/api/v1/incidents/I-999999/eido')).status, 404);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('hazards recorded at an address show on every incident near it until removed', async () => {
  const s = await startServer({ args: ['--city', CITY] });
  try {
    const place = north(HERE, 3000);
    const h = await post(s.url, '/api/v1/hazards', { location: place, radius_m: 30, kind: 'gas-cylinders', text: 'Welding shop: 20 acetylene cylinders in the back' });
    assert.equal(h.status, 201, h.text);
    assert.match(h.body.hazard.id, /^H-\d+$/);
    const near = await post(s.url, '/api/v1/calls', call({ location: north(place, 40) }));
    const far = await post(s.url, '/api/v1/calls', call({ location: north(place, 400), caller: 'x' }));
    assert.notEqual(near.body.incident.id, far.body.incident.id);
    const nearInc = (await get(s.url, `/api/v1/incidents/${near.body.incident.id}`)).body.incident;
    assert.deepEqual(nearInc.hazards.map((x) => [x.id, x.kind]), [[h.body.hazard.id, 'gas-cylinders']]);
    assert.ok(Math.abs(nearInc.hazards[0].distance_m - 40) < 1);
    assert.deepEqual((await get(s.url, `/api/v1/incidents/${far.body.incident.id}`)).body.incident.hazards, []);
    const list = await get(s.url, `/api/v1/hazards?lon=${place.lon}&lat=${place.lat}&within=10`);
    assert.equal(list.body.hazards.length, 1);
    for (const [body, field] of [[{ location: place }, 'kind'], [{ location: place, kind: 'x', radius_m: 0 }, 'radius_m'],
      [{ location: place, kind: 'x', radius_m: 600 }, 'radius_m'], [{ location: { lon: 2.35, lat: 48.85 }, kind: 'x' }, 'location'],
      [{ location: place, kind: 'x', text: 'y'.repeat(1001) }, 'text']]) {
      const r = await post(s.url, '/api/v1/hazards', body);
      assert.equal(r.status, 400);
      assert.equal(r.body.error.field, field);
    }
    assert.equal((await request(s.url, 'DELETE', `/api/v1/hazards/${h.body.hazard.id}`)).status, 204);
    assert.equal((await request(s.url, 'DELETE', `/api/v1/hazards/${h.body.hazard.id}`)).status, 404);
    assert.deepEqual((await get(s.url, `/api/v1/incidents/${near.body.incident.id}`)).body.incident.hazards, []);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

describe('who sees which incident', () => {
  let s;
  const users = {
    policeCT: { username: 'ct.police', roles: 'call_taker', agency: 'police' },
    emsDisp: { username: 'disp.ems', roles: 'dispatcher', agency: 'ems' },
    fireDisp: { username: 'disp.fire', roles: 'dispatcher', agency: 'fire' },
    auditor: { username: 'aud.gov', roles: 'auditor', agency: 'government' },
  };
  before(async () => {
    const state = tempDir();
    for (const u of Object.values(users)) addUser(state, { ...u, password: 'incident password 1' });
    s = await startServer({ state, args: ['--city', CITY] });
    for (const u of Object.values(users)) u.token = await login(s.url, u.username, 'incident password 1');
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('an agency sees its own and joint incidents, not another agency\'s; refusals and changes are audited', async () => {
    const medical = await post(s.url, '/api/v1/calls', call({ category: 'medical/cardiac', line: '120', location: north(HERE, 1000) }), bearer(users.policeCT.token));
    assert.equal(medical.status, 201, 'a police call taker takes any call');
    assert.deepEqual(medical.body.incident, { id: medical.body.call.incident_id }, 'but is not shown the medical incident');
    const fire = await post(s.url, '/api/v1/calls', call({ location: north(HERE, -1000) }), bearer(users.policeCT.token));
    const mid = medical.body.incident.id, fid = fire.body.incident.id;
    // The police call taker: neither is police's.
    assert.equal((await get(s.url, `/api/v1/incidents/${mid}`, bearer(users.policeCT.token))).status, 403);
    assert.deepEqual((await get(s.url, '/api/v1/incidents', bearer(users.policeCT.token))).body.incidents, []);
    // EMS: its own, and the fire (joint with ems).
    assert.equal((await get(s.url, `/api/v1/incidents/${mid}`, bearer(users.emsDisp.token))).status, 200);
    assert.equal((await get(s.url, `/api/v1/incidents/${fid}`, bearer(users.emsDisp.token))).status, 200);
    // Fire: not the medical one, not even to change it.
    assert.equal((await get(s.url, `/api/v1/incidents/${mid}`, bearer(users.fireDisp.token))).status, 403);
    assert.equal((await request(s.url, 'PATCH', `/api/v1/incidents/${mid}`, { status: 'dispatched' }, bearer(users.fireDisp.token))).status, 403);
    assert.equal((await request(s.url, 'PATCH', `/api/v1/incidents/${fid}`, { status: 'dispatched' }, bearer(users.fireDisp.token))).status, 200);
    // Roles: a call taker does not change incidents; an auditor neither reads nor creates them.
    assert.equal((await request(s.url, 'PATCH', `/api/v1/incidents/${fid}`, { note: 'x' }, bearer(users.policeCT.token))).status, 403);
    assert.equal((await get(s.url, '/api/v1/incidents', bearer(users.auditor.token))).status, 403);
    assert.equal((await post(s.url, '/api/v1/calls', call(), bearer(users.auditor.token))).status, 403);
    assert.equal((await post(s.url, '/api/v1/hazards', { location: HERE, kind: 'dog' }, bearer(users.policeCT.token))).status, 403);
    // The audit trail holds every change and every refusal.
    const audit = (await get(s.url, '/api/v1/audit?limit=1000', bearer(users.auditor.token))).body.entries;
    const has = (pred) => audit.some(pred);
    assert.ok(has((e) => e.action === 'incident.opened' && e.object === `incident/${mid.slice(2)}` && e.actor === 'ct.police'));
    assert.ok(has((e) => e.action === 'call.received' && e.actor === 'ct.police'));
    assert.ok(has((e) => e.action === 'incident.status' && e.actor === 'disp.fire'));
    assert.ok(has((e) => e.action === 'incidents.read' && e.outcome === 'denied' && e.actor === 'ct.police'));
    assert.ok(has((e) => e.action === 'incidents.update' && e.outcome === 'denied' && e.actor === 'disp.fire'));
    assert.ok(has((e) => e.action === 'calls.create' && e.outcome === 'denied' && e.actor === 'aud.gov'));
  });

  test('the live feed carries incident events only to those who may see them', async () => {
    const fireWs = await connectWs(s.wsUrl, { token: users.fireDisp.token });
    const emsWs = await connectWs(s.wsUrl, { token: users.emsDisp.token });
    for (const c of [fireWs, emsWs]) {
      await c.next((m) => m.type === 'hello');
      c.send({ type: 'subscribe', id: 's', data: { topics: ['events'] } });
      await c.next((m) => m.type === 'subscribed');
    }
    const t0 = Date.now();
    const medical = await post(s.url, '/api/v1/calls', call({ category: 'medical/cardiac', line: '120', location: north(HERE, 1500) }));
    const subject = `incident/${medical.body.incident.id.slice(2)}`;
    const opened = await emsWs.next((m) => m.type === 'event' && m.data.subject === subject && m.data.type === 'incident.opened');
    console.log(`# incident.opened reached the console ${Date.now() - t0} ms after the POST was sent`);
    assert.equal(opened.data.data.type, 'medical/cardiac');
    await emsWs.next((m) => m.type === 'event' && m.data.subject === subject && m.data.type === 'call.received');
    await sleep(300);
    assert.ok(!fireWs.messages.some((m) => m.type === 'event' && m.data.subject === subject), 'fire does not see a medical incident');
    await fireWs.close();
    await emsWs.close();
  });
});

test('calls acknowledged before kill -9 are all there afterwards', async () => {
  const state = tempDir();
  let s = await startServer({ state, args: ['--city', CITY] });
  const acked = [];
  let stop = false;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const r = await post(s.url, '/api/v1/calls', call({ caller: `w${w}-${i}`, location: north(HERE, (w * 1000) + (i % 5) * 400 - 4000) })).catch(() => null);
      if (r?.status === 201) acked.push(r.body.call.id);
    }
  });
  await sleep(1500);
  await s.kill9();
  stop = true;
  await Promise.all(writers);
  assert.ok(acked.length > 50, `${acked.length} calls acknowledged`);
  s = await startServer({ state, args: ['--city', CITY] });
  try {
    const ids = new Set(sql(state, "SELECT 'C-' || id FROM calls").split('\n'));
    const missing = acked.filter((id) => !ids.has(id));
    console.log(`# ${acked.length} calls acknowledged before kill -9, ${missing.length} missing after restart`);
    assert.deepEqual(missing, []);
    const callers = Number(sql(state, 'SELECT sum(callers) FROM incidents'));
    assert.equal(callers, ids.size, 'every call counted on its incident');
  } finally {
    await s.stop();
    s.cleanup();
  }
});
