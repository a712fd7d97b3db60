// A main bursts: pipe networks imported into a city package, valve
// segments, isolations, a failed valve, conflicts between planned works,
// repair orders with approval, a burst call proposing its isolation, and
// who may see what — against the real server and the real importer.
//
// The city is a copy of the demo package with EPANET's Net3 (WNTR's random
// valve layer, a customer on every junction) imported by `citycmd
// import-network`, and the demo's generated water network.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { BIN, startServer, addUser, login, post, get, request, tempDir, sharedData, waitFor } from '../lib/harness.mjs';

const DEMO = path.join(path.dirname(BIN), 'city', 'monaco');
const bearer = (t) => ({ authorization: `Bearer ${t}` });
// Net3's coordinates are abstract units: placed on Monaco, ten metres each.
const NET3_CRS = '+proj=tmerc +lat_0=43.7300 +lon_0=7.4100 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +to_meter=10';

function net3Junctions() {
  const text = readFileSync(sharedData('water', 'Net3.inp'), 'utf8');
  const sec = text.split('[JUNCTIONS]')[1].split('[')[0];
  return sec.split('\n').map((l) => l.split(';')[0].trim().split(/\s+/)[0]).filter(Boolean);
}

function readCsvPartition(file) {
  const m = new Map();
  for (const line of readFileSync(sharedData('water', file), 'utf8').split('\n').slice(1)) {
    const [id, seg] = line.trim().split(',');
    if (id) m.set(id, seg);
  }
  return m;
}

// Two labellings are one partition when labels map one to one.
function samePartition(a, b) {
  const ab = new Map(), ba = new Map();
  for (const [k, x] of a) {
    const y = b.get(k);
    if (y === undefined) return `missing ${k}`;
    if (ab.has(x) && ab.get(x) !== y) return `${k}: ${x} -> ${ab.get(x)} and ${y}`;
    if (ba.has(y) && ba.get(y) !== x) return `${k}: ${y} <- ${ba.get(y)} and ${x}`;
    ab.set(x, y); ba.set(y, x);
  }
  return a.size === b.size ? null : 'sizes differ';
}

// The segment graph as the API gives it, and isolations computed on it
// here, to check the server's conflicts.
function model(segments, valves, nodes, customers) {
  const segOf = (c) => (c.properties.link ? segments.links[c.properties.link] : segments.nodes[c.properties.node]);
  return {
    valves: valves.features.map((f) => ({ ...f.properties, a: segments.links[f.properties.link], b: segments.nodes[f.properties.node] })),
    sources: new Set(nodes.features.filter((f) => f.properties.kind !== 'junction').map((f) => segments.nodes[f.properties.id])),
    customers: customers.features.map((c) => ({ id: c.properties.id, seg: segOf(c) })),
    segOfLink: segments.links,
  };
}

function affected(m, pipes) {
  const iso = new Set(pipes.map((p) => m.segOfLink[p]));
  for (let grew = true; grew;) {
    grew = false;
    for (const v of m.valves) {
      if (v.a === v.b || v.state !== 'inoperable') continue;
      for (const [x, y] of [[v.a, v.b], [v.b, v.a]]) if (iso.has(x) && !iso.has(y)) { iso.add(y); grew = true; }
    }
  }
  const close = new Set(m.valves.filter((v) => v.a !== v.b && v.state === 'open' && iso.has(v.a) !== iso.has(v.b)).map((v) => v.id));
  const reach = (blocked, avoid) => {
    const seen = new Set([...m.sources].filter((s) => !avoid.has(s)));
    for (let grew = true; grew;) {
      grew = false;
      for (const v of m.valves) {
        if (v.a === v.b || v.state === 'closed' || blocked.has(v.id)) continue;
        for (const [x, y] of [[v.a, v.b], [v.b, v.a]]) if (seen.has(x) && !seen.has(y) && !avoid.has(y)) { seen.add(y); grew = true; }
      }
    }
    return seen;
  };
  const before = reach(new Set(), new Set()), after = reach(close, iso);
  return new Set(m.customers.filter((c) => iso.has(c.seg) || (before.has(c.seg) && !after.has(c.seg))).map((c) => c.id));
}

describe('pipe networks, isolations and repair orders', () => {
  let s, city, disp, crew, police, sup, gasCrew;
  let m;
  const H = (t) => bearer(t);

  before(async () => {
    city = tempDir('citycmd-pipes-city-');
    for (const f of ['city.gpkg', 'city.json']) cpSync(path.join(DEMO, f), path.join(city, f));
    if (existsSync(path.join(DEMO, 'networks'))) cpSync(path.join(DEMO, 'networks'), path.join(city, 'networks'), { recursive: true });
    else execFileSync(BIN, ['import-network', '--city', city, '--name', 'water', '--utility', 'water', '--generate', '--quiet']);
    // Customers on every Net3 junction; a hospital and a school among them.
    const juncs = net3Junctions();
    const feats = juncs.map((id, i) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [7.41 + i * 1e-5, 43.73] },
      properties: { id: `C-${id}`, name: `Customer at ${id}`, kind: i === 10 ? 'hospital' : i === 40 ? 'school' : 'residential', units: 4, node: id } }));
    const cust = path.join(city, 'net3-customers.geojson');
    writeFileSync(cust, JSON.stringify({ type: 'FeatureCollection', features: feats }));
    const out = execFileSync(BIN, ['import-network', '--city', city, '--name', 'net3', '--utility', 'water',
      '--inp', sharedData('water', 'Net3.inp'), '--valves', sharedData('water', 'valve_layer_random.csv'),
      '--crs', NET3_CRS, '--customers', cust], { encoding: 'utf8' });
    assert.match(out, /net3/);
    const state = tempDir();
    addUser(state, { username: 'disp.cmd', password: 'dispatch password 1', roles: 'dispatcher', agency: 'command' });
    addUser(state, { username: 'crew.water', password: 'crew password 12', roles: 'crew', agency: 'water' });
    addUser(state, { username: 'crew.gas', password: 'crew password 12', roles: 'crew', agency: 'gas' });
    addUser(state, { username: 'sup.water', password: 'super password 1', roles: 'supervisor', agency: 'water' });
    addUser(state, { username: 'disp.police', password: 'police password 1', roles: 'dispatcher', agency: 'police' });
    s = await startServer({ state, args: ['--city', city, '--repair-approval-customers', '50'] });
    disp = await login(s.url, 'disp.cmd', 'dispatch password 1');
    crew = await login(s.url, 'crew.water', 'crew password 12');
    gasCrew = await login(s.url, 'crew.gas', 'crew password 12');
    sup = await login(s.url, 'sup.water', 'super password 1');
    police = await login(s.url, 'disp.police', 'police password 1');
    const layer = async (l) => (await get(s.url, `/api/v1/pipes/networks/net3/features?layer=${l}`, H(crew))).body;
    const segs = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    m = model(segs, await layer('valves'), await layer('nodes'), await layer('customers'));
  });
  after(async () => { await s?.stop(); s?.cleanup(); });

  test('the imported networks are listed, and Net3\'s segments are WNTR\'s', async () => {
    const r = await get(s.url, '/api/v1/pipes/networks', H(crew));
    assert.equal(r.status, 200, r.text);
    const net3 = r.body.networks.find((n) => n.name === 'net3');
    assert.ok(net3, r.text);
    assert.equal(net3.links, 119);
    assert.equal(net3.valves, 40);
    assert.equal(net3.customers, net3Junctions().length);
    assert.equal(net3.segments, 23);
    assert.ok(r.body.networks.find((n) => n.name === 'water' && n.valves > 50 && n.customers > 100), r.text);
    const segs = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    assert.equal(segs.segments, 23);
    assert.equal(segs.largest, 125);
    const mine = (o) => new Map(Object.entries(o).map(([k, v]) => [k, String(v)]));
    assert.equal(samePartition(mine(segs.nodes), readCsvPartition('node_segments_random.csv')), null);
    assert.equal(samePartition(mine(segs.links), readCsvPartition('link_segments_random.csv')), null);
  });

  test('an isolation by pipe; a valve that fails to close grows it at once', async () => {
    // A pipe next to a valve, so a valve of its isolation is known.
    const v = m.valves.find((x) => x.a !== x.b);
    const pipe = v.link;
    const r = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe }, H(crew));
    assert.equal(r.status, 201, r.text);
    const iso = r.body.isolation;
    assert.equal(iso.pipe, pipe);
    assert.equal(iso.status, 'active');
    const ans = iso.answer;
    assert.ok(ans.valves.length >= 1);
    assert.deepEqual(ans.valves.map((x) => x.order), ans.valves.map((_, i) => i + 1));
    assert.ok(ans.isolated.links.includes(pipe));
    assert.equal(ans.isolated.geometry.type, 'MultiLineString');
    const first = ans.valves[0].id;
    // The crew reports the first valve closed, then the second as failed.
    let u = await post(s.url, `/api/v1/pipes/isolations/${iso.id}/valves/${first}`, { result: 'closed' }, H(crew));
    assert.equal(u.status, 200, u.text);
    assert.equal(u.body.isolation.answer.valves.find((x) => x.id === first).reported, 'closed');
    // A valve that is not this isolation's is refused.
    const other = m.valves.find((x) => !ans.valves.some((y) => y.id === x.id));
    const wrong = await post(s.url, `/api/v1/pipes/isolations/${iso.id}/valves/${other.id}`, { result: 'failed' }, H(crew));
    assert.equal(wrong.status, 400, wrong.text);
    assert.equal(wrong.body.error.field, 'valve');
    const failing = ans.valves[ans.valves.length - 1].id;
    u = await post(s.url, `/api/v1/pipes/isolations/${iso.id}/valves/${failing}`, { result: 'failed' }, H(crew));
    assert.equal(u.status, 200, u.text);
    const grown = u.body.isolation.answer;
    assert.ok(grown.isolated.links.length > ans.isolated.links.length, 'the isolated area grows');
    assert.ok(!grown.valves.some((x) => x.id === failing));
    assert.ok(grown.cannot_close.some((x) => x.id === failing && x.failed));
    // The same as asking afresh with that valve failed.
    const fresh = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe, failed: [failing] }, H(crew));
    assert.equal(fresh.status, 201, fresh.text);
    assert.deepEqual([...fresh.body.isolation.answer.isolated.links].sort(), [...grown.isolated.links].sort());
    assert.deepEqual([...fresh.body.isolation.answer.dry.links].sort(), [...grown.dry.links].sort());
    // The timeline of events carries it, audited with the actor.
    const got = await get(s.url, `/api/v1/pipes/isolations/${iso.id}`, H(disp));
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.isolation.failed, [failing]);
    for (const id of [iso.id, fresh.body.isolation.id]) {
      const c = await post(s.url, `/api/v1/pipes/isolations/${id}/cancel`, {}, H(crew));
      assert.equal(c.status, 200, c.text);
    }
    const again = await post(s.url, `/api/v1/pipes/isolations/${iso.id}/cancel`, {}, H(crew));
    assert.equal(again.status, 409);
  });

  test('a valve marked inoperable changes every answer, and survives a restart', async () => {
    const v = m.valves.find((x) => x.a !== x.b && x.state === 'open');
    const before = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: v.link }, H(crew));
    assert.ok(before.body.isolation.answer.valves.some((x) => x.id === v.id), before.text);
    const r = await post(s.url, `/api/v1/pipes/networks/net3/valves/${v.id}`, { state: 'inoperable', reason: 'seized' }, H(crew));
    assert.equal(r.status, 200, r.text);
    const after = await get(s.url, `/api/v1/pipes/isolations/${before.body.isolation.id}`, H(crew));
    assert.ok(!after.body.isolation.answer.valves.some((x) => x.id === v.id));
    assert.ok(after.body.isolation.answer.isolated.links.length > before.body.isolation.answer.isolated.links.length);
    await s.stop();
    s = await startServer({ state: s.stateDir, users: false, args: ['--city', city, '--repair-approval-customers', '50'] });
    crew = await login(s.url, 'crew.water', 'crew password 12');
    disp = await login(s.url, 'disp.cmd', 'dispatch password 1');
    sup = await login(s.url, 'sup.water', 'super password 1');
    police = await login(s.url, 'disp.police', 'police password 1');
    gasCrew = await login(s.url, 'crew.gas', 'crew password 12');
    const valves = (await get(s.url, '/api/v1/pipes/networks/net3/features?layer=valves', H(crew))).body;
    assert.equal(valves.features.find((f) => f.properties.id === v.id).properties.state, 'inoperable');
    const kept = await get(s.url, `/api/v1/pipes/isolations/${before.body.isolation.id}`, H(crew));
    assert.deepEqual(kept.body.isolation.answer.isolated.links, after.body.isolation.answer.isolated.links);
    assert.equal((await post(s.url, `/api/v1/pipes/networks/net3/valves/${v.id}`, { state: 'open' }, H(crew))).status, 200);
    assert.equal((await post(s.url, `/api/v1/pipes/isolations/${before.body.isolation.id}/cancel`, {}, H(crew))).status, 200);
  });

  test('planned works whose windows overlap are a conflict, with the extra customers of both', async () => {
    // Find two pipes whose isolations together cut off customers neither does alone.
    const links = Object.keys(m.segOfLink);
    let pair = null, extra = 0;
    const single = new Map(links.map((l) => [l, affected(m, [l])]));
    for (let i = 0; i < links.length && !pair; i++) {
      for (let j = i + 1; j < links.length && !pair; j++) {
        const both = affected(m, [links[i], links[j]]);
        const union = new Set([...single.get(links[i]), ...single.get(links[j])]);
        const e = [...both].filter((c) => !union.has(c)).length;
        if (e > 0) { pair = [links[i], links[j]]; extra = e; }
      }
    }
    assert.ok(pair, 'Net3 has two pipes whose isolations together cut off more');
    const day = (h) => new Date(Date.UTC(2030, 0, 1, h)).toISOString();
    const a = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: pair[0], window: { from: day(8), to: day(12) } }, H(crew));
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.isolation.status, 'planned');
    const b = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: pair[1], window: { from: day(10), to: day(14) } }, H(crew));
    assert.equal(b.status, 201, b.text);
    const conflict = b.body.isolation.conflicts.find((c) => c.isolation === a.body.isolation.id);
    assert.ok(conflict, b.text);
    assert.equal(conflict.extra_customers, extra);
    // Not overlapping: no conflict.
    const c = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: pair[1], window: { from: day(13), to: day(16) } }, H(crew));
    assert.ok(!c.body.isolation.conflicts.some((x) => x.isolation === a.body.isolation.id));
    for (const id of [a.body.isolation.id, b.body.isolation.id, c.body.isolation.id]) await post(s.url, `/api/v1/pipes/isolations/${id}/cancel`, {}, H(crew));
  });

  test('a repair order: the nearest crew by road, approval for a priority customer, its lifecycle', async () => {
    const units = {};
    for (const [sign, lon, lat] of [['W-NEAR', 7.4105, 43.7305], ['W-FAR', 7.4300, 43.7450]]) {
      const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind: 'water_crew', agency: 'water' }, H(sup));
      assert.equal(r.status, 201, r.text);
      units[sign] = r.body.unit.id;
      const p = await post(s.url, `/api/v1/units/${r.body.unit.id}/position`, { lon, lat }, H(sup));
      assert.equal(p.status, 200, p.text);
    }
    // The pipe whose isolation cuts off the hospital.
    const hospital = m.customers.find((c) => c.id === `C-${net3Junctions()[10]}`);
    const pipe = Object.keys(m.segOfLink).find((l) => affected(m, [l]).has(hospital.id));
    const iso = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe }, H(crew));
    assert.equal(iso.status, 201, iso.text);
    assert.ok(iso.body.isolation.answer.customers.priority_list.some((c) => c.kind === 'hospital'));
    const r = await post(s.url, '/api/v1/repair-orders', { isolation: iso.body.isolation.id }, H(crew));
    assert.equal(r.status, 201, r.text);
    const order = r.body.order;
    assert.equal(order.crew_id, units['W-NEAR']);
    assert.equal(order.status, 'planned');
    assert.equal(order.needs_approval, true);
    assert.ok(order.isolation_detail.answer.valves.length >= 1);
    // A second order for the same isolation is refused.
    assert.equal((await post(s.url, '/api/v1/repair-orders', { isolation: iso.body.isolation.id }, H(crew))).status, 400);
    // Work cannot start before approval; a crew may not approve.
    let st = await post(s.url, `/api/v1/repair-orders/${order.id}/status`, { status: 'in_progress' }, H(crew));
    assert.equal(st.status, 400, st.text);
    assert.equal((await post(s.url, `/api/v1/repair-orders/${order.id}/approve`, {}, H(crew))).status, 403);
    const ap = await post(s.url, `/api/v1/repair-orders/${order.id}/approve`, {}, H(sup));
    assert.equal(ap.status, 200, ap.text);
    assert.equal(ap.body.order.approved_by, 'sup.water');
    // Skipping a step is refused; each step in turn is accepted.
    assert.equal((await post(s.url, `/api/v1/repair-orders/${order.id}/status`, { status: 'repaired' }, H(crew))).status, 400);
    for (const next of ['in_progress', 'valves_closed', 'repaired', 'restored', 'closed']) {
      st = await post(s.url, `/api/v1/repair-orders/${order.id}/status`, { status: next }, H(crew));
      assert.equal(st.status, 200, `${next}: ${st.text}`);
      assert.equal(st.body.order.status, next);
    }
    const done = await get(s.url, `/api/v1/pipes/isolations/${iso.body.isolation.id}`, H(crew));
    assert.equal(done.body.isolation.status, 'done');
    const list = await get(s.url, '/api/v1/repair-orders?all=true', H(crew));
    assert.ok(list.body.orders.some((o) => o.id === order.id && o.status === 'closed'));
  });

  test('a burst reported as a call proposes its isolation, in the incident\'s timeline', async () => {
    // A point on a pipe of the demo water network.
    const links = (await get(s.url, '/api/v1/pipes/networks/water/features?layer=links', H(crew))).body.features;
    const c = links[Math.floor(links.length / 2)].geometry.coordinates;
    const at = { lon: (c[0][0] + c[1][0]) / 2, lat: (c[0][1] + c[1][1]) / 2 };
    const call = await post(s.url, '/api/v1/calls', { line: '12345', caller: '+377 600 000 099', location: at, category: 'utility/water-main-burst', text: 'water gushing from the road' }, H(disp));
    assert.equal(call.status, 201, call.text);
    const incident = call.body.incident.id;
    const found = await waitFor(async () => {
      const r = await get(s.url, '/api/v1/pipes/isolations', H(crew));
      return r.body.isolations.find((i) => i.incident === incident);
    }, { what: 'a proposed isolation' });
    assert.equal(found.status, 'proposed');
    assert.equal(found.network, 'water');
    const inc = await waitFor(async () => {
      const r = await get(s.url, `/api/v1/incidents/${incident}`, H(disp));
      return r.body.incident.timeline.some((e) => e.type === 'incident.utility') && r.body.incident;
    }, { what: 'the timeline entry' });
    assert.ok(inc.timeline.find((e) => e.type === 'incident.utility').data.summary.valves >= 1);
  });

  test('a clicked point finds the nearest pipe; bad input is refused by field', async () => {
    const links = (await get(s.url, '/api/v1/pipes/networks/water/features?layer=links', H(crew))).body.features;
    const f = links[3];
    const [a, b] = f.geometry.coordinates;
    const r = await post(s.url, '/api/v1/pipes/isolations', { network: 'water', point: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] }, H(crew));
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.isolation.pipe, f.properties.id);
    await post(s.url, `/api/v1/pipes/isolations/${r.body.isolation.id}/cancel`, {}, H(crew));
    const bad = async (body, field) => {
      const x = await post(s.url, '/api/v1/pipes/isolations', body, H(crew));
      assert.equal(x.status, 400, x.text);
      assert.equal(x.body.error.field, field, x.text);
    };
    await bad({ network: 'water', point: [7.0, 43.0] }, 'point');
    await bad({ network: 'water', point: [1e300, 43.0] }, 'pipe');
    await bad({ network: 'water', point: ['x', 1] }, 'pipe');
    await bad({ network: 'nope', pipe: 'P1' }, 'network');
    await bad({ network: 'net3', pipe: 'no-such-pipe' }, 'pipe');
    await bad({ network: 'net3', pipe: '10', failed: ['no-such-valve'] }, 'failed');
    await bad({ network: 'net3', pipe: '10', window: { from: 'yesterday', to: 'today' } }, 'window');
    const raw = await request(s.url, 'POST', '/api/v1/pipes/isolations', '{"network": "net3",', H(crew));
    assert.equal(raw.status, 400);
    assert.equal((await post(s.url, '/api/v1/pipes/networks/net3/valves/nope', { state: 'closed' }, H(crew))).status, 404);
    assert.equal((await post(s.url, `/api/v1/pipes/networks/net3/valves/${m.valves[0].id}`, { state: 'half' }, H(crew))).status, 400);
    assert.equal((await get(s.url, '/api/v1/pipes/isolations/99999', H(crew))).status, 404);
    assert.equal((await get(s.url, '/api/v1/pipes/networks/net3/features?layer=pumps', H(crew))).status, 400);
  });

  test('other agencies may not see or isolate the water networks; the refusal is audited', async () => {
    assert.equal((await get(s.url, '/api/v1/pipes/networks/net3/segments', H(police))).status, 403);
    assert.equal((await get(s.url, '/api/v1/pipes/networks/net3/segments', H(gasCrew))).status, 403);
    const list = await get(s.url, '/api/v1/pipes/networks', H(gasCrew));
    assert.equal(list.status, 200);
    assert.ok(!list.body.networks.some((n) => n.agency === 'water'));
    assert.equal((await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: '10' }, H(gasCrew))).status, 403);
    const polList = await get(s.url, '/api/v1/pipes/isolations?all=true', H(police));
    assert.equal(polList.status, 200);
    assert.deepEqual(polList.body.isolations, []);
    // The command centre's dispatcher reads and isolates every utility's.
    assert.equal((await get(s.url, '/api/v1/pipes/networks/net3/segments', H(disp))).status, 200);
    const visible = await get(s.url, '/api/v1/pipes/isolations?all=true', H(gasCrew));
    assert.ok(!visible.body.isolations.some((i) => i.agency === 'water'));
  });

  test('a valve installed splits a segment, one taken out merges it, a pipe abandoned leaves; kept across a restart', async () => {
    const segs = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    const links = (await get(s.url, '/api/v1/pipes/networks/net3/features?layer=links', H(crew))).body.features;
    const valved = new Set(m.valves.map((v) => v.link));
    const sizes = {};
    for (const x of [...Object.values(segs.nodes), ...Object.values(segs.links)]) sizes[x] = (sizes[x] || 0) + 1;
    const big = Number(Object.entries(sizes).sort((a, b) => b[1] - a[1])[0][0]);
    const L = links.find((f) => f.properties.segment === big && !valved.has(f.properties.id) && f.properties.kind === 'pipe').properties;
    // A crew supervisor records two new valves, one at each end of L.
    assert.equal((await post(s.url, '/api/v1/pipes/networks/net3/valves', { link: L.id, node: L.from, id: 'NEW-A' }, H(crew))).status, 403);
    let r = await post(s.url, '/api/v1/pipes/networks/net3/valves', { link: L.id, node: L.from, id: 'NEW-A' }, H(sup));
    assert.equal(r.status, 201, r.text);
    r = await post(s.url, '/api/v1/pipes/networks/net3/valves', { link: L.id, node: L.to, id: 'NEW-B' }, H(sup));
    assert.equal(r.status, 201, r.text);
    assert.ok(r.body.change.segments > segs.segments, r.text);
    let now = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    assert.notEqual(now.links[L.id], now.nodes[L.from]);
    assert.notEqual(now.links[L.id], now.nodes[L.to]);
    const alone = await post(s.url, '/api/v1/pipes/isolations', { network: 'net3', pipe: L.id }, H(crew));
    assert.deepEqual(alone.body.isolation.answer.valves.map((v) => v.id).sort(), ['NEW-A', 'NEW-B']);
    assert.deepEqual(alone.body.isolation.answer.isolated.links, [L.id]);
    await post(s.url, `/api/v1/pipes/isolations/${alone.body.isolation.id}/cancel`, {}, H(crew));
    // Bad changes are refused by field.
    for (const [body, field] of [[{ link: 'nope', node: L.from }, 'link'], [{ link: L.id, node: 'nope' }, 'node'], [{ link: L.id, node: L.from, id: 'NEW-A' }, 'id']]) {
      const x = await post(s.url, '/api/v1/pipes/networks/net3/valves', body, H(sup));
      assert.equal(x.status, 400, x.text);
      assert.equal(x.body.error.field, field);
    }
    // One taken out: L joins its from end again.
    assert.equal((await request(s.url, 'DELETE', '/api/v1/pipes/networks/net3/valves/NEW-A', undefined, H(sup))).status, 200);
    now = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    assert.equal(now.links[L.id], now.nodes[L.from]);
    assert.equal((await request(s.url, 'DELETE', '/api/v1/pipes/networks/net3/valves/NEW-A', undefined, H(sup))).status, 404);
    // The pipe abandoned: gone from the segments.
    assert.equal((await request(s.url, 'DELETE', `/api/v1/pipes/networks/net3/links/${L.id}`, undefined, H(sup))).status, 200);
    now = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    assert.equal(now.links[L.id], undefined);
    await s.stop();
    s = await startServer({ state: s.stateDir, users: false, args: ['--city', city, '--repair-approval-customers', '50'] });
    crew = await login(s.url, 'crew.water', 'crew password 12');
    disp = await login(s.url, 'disp.cmd', 'dispatch password 1');
    sup = await login(s.url, 'sup.water', 'super password 1');
    police = await login(s.url, 'disp.police', 'police password 1');
    gasCrew = await login(s.url, 'crew.gas', 'crew password 12');
    const after = (await get(s.url, '/api/v1/pipes/networks/net3/segments', H(crew))).body;
    assert.deepEqual(after, now);
    // A valve on an abandoned pipe is refused.
    const back = await post(s.url, '/api/v1/pipes/networks/net3/valves', { link: L.id, node: L.from }, H(sup));
    assert.equal(back.status, 400, 'a valve on an abandoned pipe is refused');
  });
});
