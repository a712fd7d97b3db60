// tools/gps-sim.mjs against the real server on the demo city: a mixed fleet
// of simulated GT06, Teltonika and OsmAnd trackers driving Monaco's roads,
// watched through a units viewport, and a recorded drive in Munich replayed
// into Monaco over GT06. The simulator runs as a child process, as a user
// would run it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, startServer, addUser, login, get, post, connectWs, tempDir, waitFor, sharedData } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const SIM = path.join(ROOT, 'tools', 'gps-sim.mjs');
const WIDE = [7.2, 43.6, 7.7, 43.9]; // Monaco and well around it
const OPERATOR = { username: 'sim.op', password: 'simulator password 1' };
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const portOf = (s, proto) => Number(s.lines.map((l) => l.match(new RegExp(`event=gps\\.listening protocol=${proto} .*port=(\\d+)`))).find(Boolean)[1]);

// Runs the simulator to its end: { code, out, err }.
function runSim(args, timeout = 40000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SIM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`gps-sim ran over ${timeout} ms:\n${out}\n${err}`)); }, timeout);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}
// The simulator's closing counts.
function done(out) {
  const m = out.match(/done: sent (\d+) acked (\d+) refused (\d+)/);
  assert.ok(m, `no closing line in:\n${out}`);
  return { sent: Number(m[1]), acked: Number(m[2]), refused: Number(m[3]) };
}
async function verdicts(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^citycmd_gps_positions_total\{verdict="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}
async function unitsClient(url, token, bbox) {
  const c = await connectWs(url, { token });
  await c.next((m) => m.type === 'hello');
  c.send({ type: 'subscribe', id: 's', data: { topics: ['units'], bbox } });
  await c.next((m) => m.type === 'subscribed');
  await c.next((m) => m.type === 'units.snapshot');
  return c;
}
// Every state of each unit the client was sent, in order, by unit id.
function tracks(c) {
  const by = new Map();
  for (const m of c.messages) if (m.type === 'units') for (const u of m.data.units) by.set(u.id, [...(by.get(u.id) || []), u]);
  return by;
}
// Metres from a point to the nearest of the segments (local equirectangular frame).
function distanceToRoads(lon, lat, segments) {
  const kx = 111320 * Math.cos(lat * Math.PI / 180), ky = 110574;
  let best = Infinity;
  for (const [[x1, y1], [x2, y2]] of segments) {
    const ax = (x1 - lon) * kx, ay = (y1 - lat) * ky, bx = (x2 - lon) * kx, by = (y2 - lat) * ky;
    const dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    const t = l2 ? Math.max(0, Math.min(1, -(ax * dx + ay * dy) / l2)) : 0;
    best = Math.min(best, Math.hypot(ax + t * dx, ay + t * dy));
  }
  return best;
}

describe('gps-sim: simulated trackers over the real protocols', () => {
  let s, operator, trackers;
  before(async () => {
    const state = tempDir();
    // The simulator reads the roads (map.read, a dispatcher's) and registers
    // units (units.manage, an operator's): an operator who also dispatches.
    addUser(state, { ...OPERATOR, roles: 'operator,dispatcher', agency: 'command' });
    s = await startServer({ state, args: ['--city', CITY, '--gps-gt06', '127.0.0.1:0', '--gps-teltonika', '127.0.0.1:0',
      '--gps-osmand', '127.0.0.1:0', '--ws-units-interval', '100'] });
    operator = await login(s.url, OPERATOR.username, OPERATOR.password);
    trackers = ['gt06', 'teltonika', 'osmand'].flatMap((p) => [`--${p}`, `127.0.0.1:${portOf(s, p)}`]);
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('a mixed fleet of nine drives the roads: every unit moves, on a road, at a plausible speed, no jumps', { timeout: 60000 }, async () => {
    const roads = (await get(s.url, '/api/v1/gis/layers/roads?limit=10000')).body.features;
    const segments = roads.filter((f) => f.properties.drivable !== 0)
      .flatMap((f) => f.geometry.coordinates.slice(1).map((b, i) => [f.geometry.coordinates[i], b]));
    assert.ok(segments.length > 1000);
    const c = await unitsClient(s.wsUrl, s.token, WIDE);
    const before = await verdicts(s.url);
    const r = await runSim(['--url', s.url, '--user', OPERATOR.username, '--password', OPERATOR.password, '--vehicles', '9',
      '--every', '1', '--protocol', 'mix', '--register', '--seconds', '8', ...trackers]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /registered 9 new unit/);
    assert.match(r.out, /connections gt06 3\/3 teltonika 3\/3/);
    const sim = done(r.out);
    assert.equal(sim.refused, 0, r.out);

    // The units the simulator registered: three per protocol.
    const units = (await get(s.url, '/api/v1/units')).body.units;
    const devices = ['860000000000001', '860000000000002', 'sim-0003', '860000000000004', '860000000000005', 'sim-0006',
      '860000000000007', '860000000000008', 'sim-0009'];
    const ids = devices.map((d) => units.find((u) => u.device === d)?.id);
    assert.ok(ids.every(Boolean), JSON.stringify(units.map((u) => [u.call_sign, u.device])));

    const seen = tracks(c);
    let positions = 0;
    for (const [i, id] of ids.entries()) {
      const states = seen.get(id) || [];
      const moves = states.filter((u, j) => j && (u.lon !== states[j - 1].lon || u.lat !== states[j - 1].lat)).length;
      assert.ok(moves >= 2, `${devices[i]} (${id}) moved ${moves} times: ${JSON.stringify(states)}`);
      for (const u of states) {
        const d = distanceToRoads(u.lon, u.lat, segments);
        assert.ok(d < 30, `${devices[i]} at ${u.lon},${u.lat} is ${d.toFixed(1)} m from any road`);
        assert.ok(u.speed_kmh > 0 && u.speed_kmh < 130, `${devices[i]} at ${u.speed_kmh} km/h`);
        assert.ok(u.course >= 0 && u.course < 360, `course ${u.course}`);
        positions++;
      }
    }
    assert.ok(positions >= 27);
    const after = await verdicts(s.url);
    const delta = (v) => (after[v] || 0) - (before[v] || 0);
    assert.equal(delta('jump'), 0, JSON.stringify(after));
    assert.equal(delta('accepted'), sim.sent, `every position sent was taken: ${JSON.stringify(after)}\n${r.out}`);
    c.close();
  });

  test('a recorded drive replayed into Monaco over GT06 at 20×: in order, spaced as recorded, none refused', { timeout: 60000 }, async () => {
    const IMEI = '860000000000777';
    const u = await post(s.url, '/api/v1/units', { call_sign: 'REPLAY-1', kind: 'ambulance', agency: 'ems', device: IMEI }, bearer(operator));
    assert.equal(u.status, 201, u.text);
    const track = sharedData('gps', 'x0001-001.json');
    const c = await unitsClient(s.wsUrl, s.token, WIDE);
    const before = await verdicts(s.url);
    const started = Date.now();
    const r = await runSim(['--url', s.url, '--replay', track, '--device', IMEI, '--move-to', '7.4246,43.7384', '--rate', '20',
      '--seconds', '6', '--protocol', 'gt06', ...trackers]);
    assert.equal(r.code, 0, r.out + r.err);
    const sim = done(r.out);
    assert.ok(sim.sent >= 100 && sim.acked === sim.sent, r.out); // 6 s at 20× of a 1 Hz track

    // Where each recorded point should land: the same offsets in metres from 7.4246,43.7384.
    const rec = JSON.parse(readFileSync(track, 'utf8')).slice(0, sim.sent).map((x) => {
      const [lon, lat] = x.point.match(/-?[\d.]+/g).map(Number);
      return { lon, lat, t: Date.parse(x.time.replace(' ', 'T').replace(/(\d\d)(\d\d)$/, '$1:$2')) };
    });
    const k = Math.cos(rec[0].lat * Math.PI / 180) / Math.cos(43.7384 * Math.PI / 180);
    const want = rec.map((p) => [7.4246 + (p.lon - rec[0].lon) * k, 43.7384 + p.lat - rec[0].lat]);
    const near = (st, [lon, lat]) => Math.abs(lon - st.lon) < 2e-6 && Math.abs(lat - st.lat) < 2e-6;
    const latest = () => tracks(c).get(u.body.unit.id)?.at(-1);
    await waitFor(() => latest() && near(latest(), want.at(-1)), { what: `the last point on the viewport (${JSON.stringify(latest())})` });
    const states = tracks(c).get(u.body.unit.id);
    assert.ok(states.length >= 10, `${states.length} updates`);
    // The times keep the recorded spacing: the newest state is the last point,
    // and each earlier one the point recorded that much earlier, in order.
    const shift = Date.parse(states.at(-1).fix_at) - rec.at(-1).t;
    let prev = -1;
    for (const st of states) {
      const at = Date.parse(st.fix_at), i = rec.findIndex((p) => p.t + shift === at);
      assert.ok(i > prev, `${st.fix_at} is recorded point ${i}, after ${prev}`);
      assert.ok(near(st, want[i]), `point ${i}: ${st.lon},${st.lat}, not ${want[i]}`);
      assert.ok(at <= Date.now() + 1000 && at >= started - 130000, `${st.fix_at}: not ahead of the clock, not long ago`);
      prev = i;
    }
    assert.equal(prev, sim.sent - 1);
    const after = await verdicts(s.url);
    for (const v of Object.keys(after)) assert.equal(after[v] - (before[v] || 0), v === 'accepted' ? sim.sent : 0, `verdict ${v}`);
    c.close();
  });
});
