// tools/replay-calls.mjs feeds the San Francisco Fire Department sample
// into a running server: every call accepted, placed on the demo city's
// streets, and fused where they repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BIN, ROOT, startServer, addUser, get, tempDir, sharedData, waitFor } from '../lib/harness.mjs';
import { loadCalls } from '../../tools/replay-calls.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const CSV = sharedData('calls', 'sf-fire-calls-sample.csv');

test('the CSV is read as 961 calls of the 1,000 unit rows, each mapped to the catalogue', () => {
  const calls = loadCalls(CSV);
  assert.equal(calls.length, 961, 'one call per CallNumber');
  const cats = new Set(calls.map((c) => c.category));
  for (const c of ['medical/other', 'fire/structure', 'fire/alarm']) assert.ok(cats.has(c), c);
  assert.ok(calls.every((c, i) => i === 0 || calls[i - 1].t <= c.t), 'in time order');
});

test("replaying 150 calls at 100 a second: all accepted, on the city's roads, repeats fused", async () => {
  const state = tempDir();
  addUser(state, { username: 'replay.ct', password: 'replay password 1', roles: 'call_taker', agency: 'command' });
  const s = await startServer({ state, args: ['--city', CITY] });
  try {
    const r = spawnSync('node', [path.join(ROOT, 'tools/replay-calls.mjs'), '--url', s.url, '--user', 'replay.ct',
      '--csv', CSV, '--rate', '100', '--limit', '150'], { encoding: 'utf8', input: 'replay password 1\n', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const m = r.stdout.match(/replayed (\d+) calls .*: (\d+) opened an incident, (\d+) joined one, 0 refused, 0 failed/);
    assert.ok(m, r.stdout);
    console.log(`# ${r.stdout.trim()}`);
    assert.equal(Number(m[1]), 150);
    assert.equal(Number(m[2]) + Number(m[3]), 150);
    const incidents = (await get(s.url, '/api/v1/incidents?all=true&limit=5000')).body.incidents;
    assert.equal(incidents.length, Number(m[2]));
    assert.equal(incidents.reduce((n, i) => n + i.callers, 0), 150);
    // Placed on the streets: every incident is described by a nearby road.
    assert.ok(incidents.every((i) => /^near /.test(i.address)), 'every call near a road of the city');
    const [w, s2, e, n] = (await get(s.url, '/api/v1/city')).body.bbox;
    assert.ok(incidents.every((i) => i.location.lon >= w && i.location.lon <= e && i.location.lat >= s2 && i.location.lat <= n));
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('with --bursts-every, simulated water-main bursts propose their isolations on the demo network', async () => {
  const state = tempDir();
  addUser(state, { username: 'replay.ct', password: 'replay password 1', roles: 'call_taker', agency: 'command' });
  const s = await startServer({ state, args: ['--city', CITY] });
  try {
    const r = spawnSync('node', [path.join(ROOT, 'tools/replay-calls.mjs'), '--url', s.url, '--user', 'replay.ct',
      '--csv', CSV, '--rate', '50', '--limit', '30', '--bursts-every', '10'], { encoding: 'utf8', input: 'replay password 1\n', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const incidents = (await get(s.url, '/api/v1/incidents?all=true&limit=5000')).body.incidents;
    const bursts = incidents.filter((i) => i.type === 'utility/water-main-burst');
    assert.ok(bursts.length >= 2 && bursts.length <= 3, `${bursts.length} burst incidents (3 calls, nearby ones may fuse)`);
    const isolations = await waitFor(async () => {
      const l = (await get(s.url, '/api/v1/pipes/isolations')).body.isolations;
      return bursts.every((b) => l.some((x) => x.incident === b.id)) && l;
    }, { what: 'an isolation proposed for every burst' });
    for (const b of bursts) {
      const iso = isolations.find((x) => x.incident === b.id);
      assert.equal(iso.status, 'proposed');
      assert.equal(iso.network, 'water');
      assert.ok(iso.summary.valves >= 1, JSON.stringify(iso.summary));
    }
  } finally {
    await s.stop();
    s.cleanup();
  }
});
