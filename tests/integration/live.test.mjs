// The "incidents" topic of the WebSocket: a snapshot of the open incidents a
// screen may see inside its viewport, then every change, removals when one
// ends or leaves the view, viewport changes, agencies, batching, and the
// board surviving a restart — against the real server on the demo city.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, addUser, login, post, request, connectWs, tempDir } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const EAST = { lon: 7.4265, lat: 43.7395 }; // Monte-Carlo
const WEST = { lon: 7.4175, lat: 43.7312 }; // Monaco-Ville
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const around = (p, d = 0.002) => [p.lon - d, p.lat - d, p.lon + d, p.lat + d];
const call = (over = {}) => ({ line: '119', caller: '+377 600 000 009', location: EAST, category: 'fire/structure', text: 'smoke', ...over });

// A client subscribed to the incidents topic, with its snapshot.
async function subscribe(url, data = {}, token) {
  const c = await connectWs(url, token === undefined ? {} : { token });
  await c.next((m) => m.type === 'hello');
  c.send({ type: 'subscribe', id: 's', data: { topics: ['incidents'], ...data } });
  const sub = await c.next((m) => m.type === 'subscribed' || m.type === 'error');
  if (sub.type === 'error') return { c, error: sub.error };
  const snap = await c.next((m) => m.type === 'incidents.snapshot');
  return { c, snap: snap.data };
}

describe('the incidents topic', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--city', CITY] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  test('a snapshot of the open incidents, then each change as the new state, then the removal', async () => {
    const before1 = await post(s.url, '/api/v1/calls', call({ location: WEST, caller: 'before' }));
    assert.equal(before1.status, 201, before1.text);
    const closed = await post(s.url, '/api/v1/calls', call({ location: WEST, category: 'medical/cardiac', line: '120' }));
    await request(s.url, 'PATCH', `/api/v1/incidents/${closed.body.incident.id}`, { status: 'cancelled' });

    const { c, snap } = await subscribe(s.wsUrl);
    const ids = snap.incidents.map((i) => i.id);
    assert.ok(ids.includes(before1.body.incident.id), 'an open incident is in the snapshot');
    assert.ok(!ids.includes(closed.body.incident.id), 'a cancelled one is not');
    assert.equal(snap.bbox, null);
    const shown = snap.incidents.find((i) => i.id === before1.body.incident.id);
    assert.deepEqual(shown, (await request(s.url, 'GET', `/api/v1/incidents?limit=5000`)).body.incidents.find((i) => i.id === shown.id),
      'the snapshot has the incident as the API lists it');

    const first = await post(s.url, '/api/v1/calls', call());
    const id = first.body.incident.id;
    const opened = await c.next((m) => m.type === 'incident' && m.data.id === id);
    assert.equal(opened.data.callers, 1);
    assert.equal(opened.data.status, 'new');
    // A screen that holds an incident gets only what changed.
    await post(s.url, '/api/v1/calls', call({ caller: 'second' }));
    const joined = await c.next((m) => m.type === 'incident.changed' && m.data.id === id);
    assert.equal(joined.data.callers, 2, 'a joined call raises callers');
    assert.equal(joined.data.status, undefined, 'what did not change is not sent');
    assert.ok(joined.data.updated_at > opened.data.updated_at);
    await request(s.url, 'PATCH', `/api/v1/incidents/${id}`, { status: 'dispatched', priority: 1 });
    const upd = await c.next((m) => m.type === 'incident.changed' && m.data.id === id && m.data.status === 'dispatched');
    assert.equal(upd.data.callers, undefined);
    // Applying the changes to the snapshot gives what the API has.
    const held = { ...opened.data, ...joined.data, ...upd.data };
    for (const m of c.messages.filter((x) => x.type === 'incident.changed' && x.data.id === id)) Object.assign(held, m.data);
    assert.deepEqual(held, (await request(s.url, 'GET', '/api/v1/incidents?limit=5000')).body.incidents.find((i) => i.id === id));
    await request(s.url, 'PATCH', `/api/v1/incidents/${id}`, { status: 'closed' });
    const gone = await c.next((m) => m.type === 'incident.removed' && m.data.id === id);
    assert.equal(gone.data.reason, 'ended');
    assert.equal(gone.data.incident.status, 'closed');
    c.ws.close();
  });

  test('a viewport sees only what lies in it; moving it brings some in and takes others out', async () => {
    const west = (await post(s.url, '/api/v1/calls', call({ location: WEST, category: 'police/robbery', line: '110', caller: 'w' }))).body.incident.id;
    const { c, snap } = await subscribe(s.wsUrl, { bbox: around(EAST) });
    assert.deepEqual(snap.bbox, around(EAST));
    assert.ok(snap.incidents.every((i) => Math.abs(i.location.lon - EAST.lon) <= 0.002 && Math.abs(i.location.lat - EAST.lat) <= 0.002),
      'only incidents inside the viewport');
    assert.ok(!snap.incidents.some((i) => i.id === west));

    // A new incident outside the viewport is not sent; one inside is.
    const out = (await post(s.url, '/api/v1/calls', call({ location: WEST, category: 'traffic/collision', line: '122', caller: 'o' }))).body.incident.id;
    const inside = (await post(s.url, '/api/v1/calls', call({ category: 'police/robbery', line: '110', caller: 'i' }))).body.incident.id;
    await c.next((m) => m.type.startsWith('incident') && m.data.id === inside);
    assert.ok(!c.messages.some((m) => m.data && m.data.id === out), 'nothing about an incident outside the view');

    c.send({ type: 'viewport', id: 'v', data: { bbox: around(WEST) } });
    const reply = await c.next((m) => m.type === 'viewport');
    assert.equal(reply.re, 'v');
    assert.ok(reply.data.entered >= 2 && reply.data.left >= 1, JSON.stringify(reply.data));
    const entered = c.messages.filter((m) => m.type === 'incident').map((m) => m.data.id);
    assert.ok(entered.includes(west) && entered.includes(out), 'the ones now in view arrive');
    const left = c.messages.filter((m) => m.type === 'incident.removed');
    assert.ok(left.some((m) => m.data.id === inside && m.data.reason === 'hidden'), 'the ones out of view are removed');
    const [w, so, e, n] = around(WEST);
    const listed = (await request(s.url, 'GET', '/api/v1/incidents?limit=5000')).body.incidents
      .filter((i) => i.location.lon >= w && i.location.lon <= e && i.location.lat >= so && i.location.lat <= n);
    assert.equal(reply.data.shown, listed.length, 'as many shown as the API lists in the viewport');

    // null: the whole city again.
    c.send({ type: 'viewport', id: 'all', data: { bbox: null } });
    const all = await c.next((m) => m.type === 'viewport' && m.re === 'all');
    assert.ok(all.data.shown >= reply.data.shown + 1);
    c.ws.close();
  });

  test('bad viewports and unknown topics get clear errors and change nothing', async () => {
    for (const bbox of [[1, 2, 3], [7.43, 43.73, 7.41, 43.74], [0, 0, 'x', 1], [-200, 0, 0, 1], { w: 1 }]) {
      const r = await subscribe(s.wsUrl, { bbox });
      assert.equal(r.error.code, 'invalid_message', JSON.stringify(bbox));
      assert.match(r.error.message, /bbox/);
      r.c.ws.close();
    }
    const c = await connectWs(s.wsUrl);
    await c.next((m) => m.type === 'hello');
    c.send({ type: 'viewport', id: 1, data: { bbox: around(EAST) } });
    assert.equal((await c.next((m) => m.type === 'error')).error.code, 'not_subscribed');
    c.send({ type: 'subscribe', id: 2, data: { topics: ['incidents', 'bogus'] } });
    const e = await c.next((m) => m.type === 'error');
    assert.equal(e.error.code, 'unknown_topic');
    assert.match(e.error.message, /incidents/);
    c.send({ type: 'viewport', id: 3, data: { bbox: [NaN, 0, 1, 1] } });
    assert.equal((await c.next((m) => m.type === 'error')).error.code, 'invalid_message');
    c.ws.close();
  });

  test('several messages waiting go out as one batch frame', async () => {
    const { c } = await subscribe(s.wsUrl);
    c.send({ type: 'subscribe', id: 'e', data: { topics: ['events'] } });
    await c.next((m) => m.type === 'subscribed' && m.re === 'e');
    const framesBefore = c.stats.frames;
    const n = 40;
    const rs = await Promise.all(Array.from({ length: n }, (_, i) =>
      post(s.url, '/api/v1/calls', call({ location: { lon: WEST.lon + i * 0.0001, lat: WEST.lat + 0.003 }, category: 'hotline/noise', line: '12345', caller: `b${i}` }))));
    assert.ok(rs.every((r) => r.status === 201));
    for (const r of rs) await c.next((m) => m.type === 'event' && m.data.type === 'call.received' && m.data.data.call.id === r.body.call.id);
    const messages = 2 * n; // an event and an incident change per call at least
    assert.ok(c.stats.batches > 0, 'at least one batch frame');
    assert.ok(c.stats.frames - framesBefore < messages, `${c.stats.frames - framesBefore} frames for ${messages}+ messages`);
    c.ws.close();
  });
});

test('each agency sees only its own and joint incidents on the topic', async () => {
  const state = tempDir();
  for (const [u, agency] of [['fire.d', 'fire'], ['police.d', 'police'], ['cmd.d', 'command']]) {
    addUser(state, { username: u, password: 'live password 1', roles: 'dispatcher', agency });
  }
  const s = await startServer({ state, users: false, args: ['--city', CITY] });
  try {
    const cmd = await login(s.url, 'cmd.d', 'live password 1');
    const fire = await subscribe(s.wsUrl, {}, await login(s.url, 'fire.d', 'live password 1'));
    const police = await subscribe(s.wsUrl, {}, await login(s.url, 'police.d', 'live password 1'));
    const robbery = (await post(s.url, '/api/v1/calls', call({ category: 'police/robbery', line: '110' }), bearer(cmd))).body.incident.id;
    const blaze = (await post(s.url, '/api/v1/calls', call({ location: WEST }), bearer(cmd))).body.incident.id;
    await police.c.next((m) => m.type === 'incident' && m.data.id === robbery);
    await fire.c.next((m) => m.type === 'incident' && m.data.id === blaze);
    // Each saw the other's incident open, or not, by now: the writer commits in order.
    await police.c.next((m) => m.type.startsWith('incident') && m.data && m.data.id === blaze, 1000).then(
      () => assert.fail('police saw a fire incident'), () => {});
    assert.ok(!fire.c.messages.some((m) => m.data && m.data.id === robbery), 'fire saw a police incident');
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('the board is loaded again after a restart: open incidents in the snapshot, ended ones not', async () => {
  const state = tempDir();
  let s = await startServer({ state, args: ['--city', CITY] });
  const open = (await post(s.url, '/api/v1/calls', call())).body.incident.id;
  const ended = (await post(s.url, '/api/v1/calls', call({ location: WEST }))).body.incident.id;
  await request(s.url, 'PATCH', `/api/v1/incidents/${ended}`, { status: 'cancelled' });
  await s.stop();
  s = await startServer({ state, args: ['--city', CITY] });
  try {
    const { c, snap } = await subscribe(s.wsUrl);
    const ids = snap.incidents.map((i) => i.id);
    assert.ok(ids.includes(open));
    assert.ok(!ids.includes(ended));
    assert.equal(snap.incidents.find((i) => i.id === open).callers, 1);
    c.ws.close();
  } finally {
    await s.stop();
    s.cleanup();
  }
});
