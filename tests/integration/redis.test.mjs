// Integration tests of the Redis stream publisher: every committed event is
// XADDed as <seq>-0 to the stream; Redis outages degrade readiness but never
// writes; a Redis that comes back (empty) is refilled without gaps, and a
// restarted server publishes no duplicates.
//
// Run: cd /work/main && node --test tests/integration/redis.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  BIN, startServer, startRedis, redisCli, connectWs, post, get, waitFor, freePort, tempDir, sleep,
} from '../lib/harness.mjs';

const STREAM = 'citycmd:events';
// Reconnect backoff starts at 250 ms and caps at 10 s (+ up to 25 % jitter).
const RECONNECT_MS = 20000;

// ---------------------------------------------------------------- helpers

async function metric(base, name) {
  const { status, text } = await get(base, '/metrics');
  assert.equal(status, 200);
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ')) return Number(line.slice(name.length + 1));
  }
  throw new Error(`metric ${name} not in /metrics`);
}

async function readyz(base) {
  const r = await get(base, '/readyz');
  assert.equal(r.status, 200, `readyz ${r.status}: ${r.text}`);
  return r.body;
}

// Waits until readyz reports Redis live with nothing left to publish.
async function waitLive(base, what = 'redis live with lag 0') {
  return waitFor(async () => {
    const b = await readyz(base);
    return b.status === 'ready' && b.redis.state === 'live' && b.redis.lag === 0 && b.redis.connected && b;
  }, { timeout: RECONNECT_MS, interval: 50, what });
}

async function addEntry(base, text, kind = 'note') {
  const r = await post(base, '/api/v1/journal', { text, kind });
  assert.equal(r.status, 201, `POST /api/v1/journal: ${r.status} ${r.text.slice(0, 200)}`);
  return r.body.entry;
}

async function addEntriesConcurrently(base, n, concurrency) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      await addEntry(base, `bulk ${i}`);
    }
  }));
}

const KINDS = ['note', 'handover', 'instruction'];
// Sequential, so entry i has seq first+i.
async function addEntries(base, n, label) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(await addEntry(base, `${label} #${i}: "quoted", ünïcode, tab\tand\nnewline`, KINDS[i % 3]));
  }
  return out;
}

async function xlen(port, key = STREAM) {
  return Number((await redisCli(port, 'XLEN', key)).trim());
}

// XRANGE key - + as [{id, fields}]. Every field value is one line: the data
// field is compact JSON, which escapes newlines.
async function xrange(port, key = STREAM) {
  const lines = (await redisCli(port, 'XRANGE', key, '-', '+')).split('\n');
  if (lines.at(-1) === '') lines.pop();
  const out = [];
  for (let i = 0; i < lines.length;) {
    const id = lines[i++];
    assert.match(id, /^\d+-\d+$/, `unexpected XRANGE line ${JSON.stringify(id)}`);
    const fields = {};
    for (let k = 0; k < 5; k++) {
      fields[lines[i]] = lines[i + 1];
      i += 2;
    }
    out.push({ id, fields });
  }
  return out;
}

const ids = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}-0`);

// Checks that stream entry e is the journal.created event of `entry`.
function assertStreamEntry(e, entry) {
  assert.equal(e.id, `${entry.seq}-0`);
  assert.deepEqual(Object.keys(e.fields).sort(), ['actor', 'at', 'data', 'subject', 'type']);
  assert.equal(e.fields.type, 'journal.created');
  assert.equal(e.fields.actor, entry.author);
  assert.equal(e.fields.subject, `journal/${entry.id}`);
  assert.equal(e.fields.at, entry.at);
  assert.deepEqual(JSON.parse(e.fields.data), { id: entry.id, kind: entry.kind, text: entry.text, agency: entry.agency });
}

// ---------------------------------------------------------------- publishing, outage, return, restart

describe('redis stream: publishing, outage and return, server restart', () => {
  const N = 25;
  const M = 15;
  let redis;
  let redisPort;
  let first; // the first server handle: owns the state dir
  let srv;
  const entries = [];

  before(async () => {
    redis = await startRedis();
    redisPort = redis.port;
    first = srv = await startServer({ args: ['--redis', redis.url] });
  });
  after(async () => {
    await srv?.stop();
    await first?.stop();
    first?.cleanup();
    await redis?.stop();
  });

  test('every committed event is XADDed as <seq>-0 with type, at, actor, subject, data', async () => {
    await waitLive(srv.url);
    entries.push(...await addEntries(srv.url, N, 'live'));
    assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: N }, (_, i) => i + 1));
    await waitFor(async () => (await xlen(redisPort)) === N, { what: `XLEN ${N}` });
    const stream = await xrange(redisPort);
    assert.deepEqual(stream.map((e) => e.id), ids(1, N));
    stream.forEach((e, i) => assertStreamEntry(e, entries[i]));

    const body = await waitLive(srv.url);
    assert.equal(body.redis.configured, true);
    assert.equal(body.redis.published_seq, N);
    assert.equal('error' in body.redis, false);
    assert.equal(await metric(srv.url, 'citycmd_redis_connected'), 1);
    assert.equal(await metric(srv.url, 'citycmd_redis_lag_events'), 0);
  });

  test('Redis down: writes still succeed, readiness is degraded and names the error', async () => {
    await redis.stop(); // SIGKILL
    redis = null;
    const down = await waitFor(async () => {
      const b = await readyz(srv.url);
      return b.status === 'degraded' && !b.redis.connected && b;
    }, { timeout: 5000, what: 'readyz degraded' });
    assert.ok(['disconnected', 'connecting'].includes(down.redis.state), down.redis.state);
    assert.equal(typeof down.redis.error, 'string');
    assert.ok(down.redis.error.length > 0);
    assert.equal(down.store.ok, true);
    assert.equal((await get(srv.url, '/healthz')).status, 200);

    const during = await addEntries(srv.url, M, 'outage');
    entries.push(...during);
    assert.deepEqual(during.map((e) => e.seq), Array.from({ length: M }, (_, i) => N + 1 + i));

    const b = await readyz(srv.url);
    assert.equal(b.status, 'degraded');
    assert.equal(b.redis.connected, false);
    assert.equal(b.redis.published_seq, N);
    assert.equal(b.redis.lag, M);
    assert.equal(b.store.last_seq, N + M);
    assert.equal(await metric(srv.url, 'citycmd_redis_connected'), 0);
    assert.equal(await metric(srv.url, 'citycmd_redis_lag_events'), M);
    // reads and WebSockets are unaffected
    const ev = await get(srv.url, `/api/v1/events?after=${N}&limit=100`);
    assert.equal(ev.status, 200);
    assert.deepEqual(ev.body.events.map((e) => e.seq), during.map((e) => e.seq));
    const c = await connectWs(srv.wsUrl);
    assert.equal((await c.next((m) => m.type === 'hello')).data.seq, N + M);
    await c.close();
  });

  test('Redis back (empty, same port): reconnects and republishes everything, contiguous', async () => {
    redis = await startRedis({ port: redisPort });
    // A new redis-server without persistence: whatever its stream holds from
    // here on, citycmd republished (it may already have started: it
    // reconnects on its own, racing this check).
    assert.deepEqual((await redisCli(redisPort, 'CONFIG', 'GET', 'appendonly')).trim().split('\n'), ['appendonly', 'no']);
    assert.deepEqual((await redisCli(redisPort, 'CONFIG', 'GET', 'save')).trim().split('\n'), ['save']);
    const t0 = Date.now();
    const body = await waitLive(srv.url, 'redis live again');
    console.log(`# redis back: live with lag 0 after ${Date.now() - t0} ms`);
    assert.equal(body.redis.published_seq, N + M);
    await waitFor(async () => (await xlen(redisPort)) === N + M, { what: `XLEN ${N + M}` });
    const stream = await xrange(redisPort);
    assert.deepEqual(stream.map((e) => e.id), ids(1, N + M));
    stream.forEach((e, i) => assertStreamEntry(e, entries[i]));
    assert.equal(await metric(srv.url, 'citycmd_redis_connected'), 1);
    assert.equal(await metric(srv.url, 'citycmd_redis_lag_events'), 0);

    // and live publishing carries on
    const e = await addEntry(srv.url, 'after the return', 'handover');
    entries.push(e);
    assert.equal(e.seq, N + M + 1);
    await waitFor(async () => (await xlen(redisPort)) === N + M + 1, { what: 'live XADD after the return' });
    assertStreamEntry((await xrange(redisPort)).at(-1), e);
  });

  test('a restarted server finds the stream complete: no duplicates, next write continues the seq', async () => {
    const total = entries.length;
    assert.equal(await xlen(redisPort), total);
    const stopped = await srv.stop();
    assert.equal(stopped.code, 0);
    srv = await startServer({ state: first.stateDir, args: ['--redis', `redis://127.0.0.1:${redisPort}`] });
    const body = await waitLive(srv.url, 'restarted server live');
    assert.equal(body.redis.published_seq, total);
    assert.equal(body.store.last_seq, total);
    // Nothing was sent: every XADD reply (even a rejected duplicate) counts here.
    assert.equal(await metric(srv.url, 'citycmd_redis_published_total'), 0);
    assert.equal(await xlen(redisPort), total);

    const e = await addEntry(srv.url, 'after the restart');
    assert.equal(e.seq, total + 1);
    await waitFor(async () => (await xlen(redisPort)) === total + 1, { what: 'XADD after restart' });
    const stream = await xrange(redisPort);
    assert.deepEqual(stream.map((x) => x.id), ids(1, total + 1));
    assertStreamEntry(stream.at(-1), e);
    assert.equal(await metric(srv.url, 'citycmd_redis_published_total'), 1);
  });
});

// ---------------------------------------------------------------- Redis absent at start

describe('redis absent at start', () => {
  let srv;
  let redis;
  let port;
  before(async () => {
    port = await freePort();
    srv = await startServer({ args: ['--redis', `redis://127.0.0.1:${port}`] });
  });
  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await redis?.stop();
  });

  test('the server starts and serves; readyz is degraded with the connection error', async () => {
    const h = await get(srv.url, '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.body, { status: 'ok' });
    const b = await waitFor(async () => {
      const x = await readyz(srv.url);
      return x.redis.error && x;
    }, { what: 'readyz redis.error' });
    assert.equal(b.status, 'degraded');
    assert.equal(b.redis.configured, true);
    assert.equal(b.redis.connected, false);
    assert.ok(['disconnected', 'connecting'].includes(b.redis.state), b.redis.state);
    assert.equal(typeof b.redis.error, 'string');
    assert.ok(b.redis.error.length > 0);

    const e = await addEntries(srv.url, 3, 'no redis');
    assert.deepEqual(e.map((x) => x.seq), [1, 2, 3]);
    const after = await readyz(srv.url);
    assert.equal(after.status, 'degraded');
    assert.equal(after.redis.lag, 3);
    assert.equal(await metric(srv.url, 'citycmd_redis_connected'), 0);
    assert.equal(await metric(srv.url, 'citycmd_redis_lag_events'), 3);
  });

  test('a Redis that appears later receives the backlog', async () => {
    redis = await startRedis({ port });
    await waitLive(srv.url);
    await waitFor(async () => (await xlen(port)) === 3, { what: 'XLEN 3' });
    assert.deepEqual((await xrange(port)).map((e) => e.id), ids(1, 3));
  });
});

// ---------------------------------------------------------------- dropped connections, kept data

describe('redis connection dropped repeatedly while writing (CLIENT KILL; Redis keeps its data)', () => {
  let srv;
  let redis;
  before(async () => {
    redis = await startRedis();
    srv = await startServer({ args: ['--redis', redis.url] });
  });
  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await redis?.stop();
  });

  test('resumes from the stream\'s last id each time: no gaps, no duplicates', async () => {
    await waitLive(srv.url);
    const total = 2000;
    const writing = addEntriesConcurrently(srv.url, total, 8);
    let kills = 0;
    let done = false;
    writing.finally(() => { done = true; }).catch(() => {});
    while (!done) {
      await sleep(150);
      kills += Number((await redisCli(redis.port, 'CLIENT', 'KILL', 'TYPE', 'normal')).trim()) || 0;
    }
    await writing;
    const body = await waitLive(srv.url);
    assert.ok(kills >= 3, `only ${kills} connections killed; the test did not exercise reconnects`);
    assert.ok(await metric(srv.url, 'citycmd_redis_connect_attempts_total') >= kills + 1);
    assert.equal(body.redis.published_seq, total);
    assert.equal(await xlen(redis.port), total);
    assert.deepEqual((await xrange(redis.port)).map((e) => e.id), ids(1, total));
  });
});

// ---------------------------------------------------------------- outage longer than the stream keeps

describe('redis outage longer than --redis-maxlen', () => {
  let srv;
  let redis;
  let port;
  before(async () => {
    port = await freePort();
    srv = await startServer({ args: ['--redis', `redis://127.0.0.1:${port}`, '--redis-maxlen', '1000'] });
  });
  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await redis?.stop();
  });

  test('only the newest --redis-maxlen events are published when Redis arrives', async () => {
    const total = 1200;
    await addEntriesConcurrently(srv.url, total, 16);
    assert.equal((await readyz(srv.url)).redis.lag, total);
    redis = await startRedis({ port });
    const body = await waitLive(srv.url);
    assert.equal(body.redis.published_seq, total);
    await waitFor(async () => (await xlen(port)) >= 1000, { what: 'XLEN 1000' });
    assert.deepEqual((await xrange(port)).map((e) => e.id), ids(total - 1000 + 1, total));
  });
});

// ---------------------------------------------------------------- --redis-stream

describe('redis --redis-stream', () => {
  let srv;
  let redis;
  before(async () => {
    redis = await startRedis();
    srv = await startServer({ args: ['--redis', redis.url, '--redis-stream', 'ops:feed'] });
  });
  after(async () => {
    await srv?.stop();
    srv?.cleanup();
    await redis?.stop();
  });

  test('events go to the named stream and nowhere else', async () => {
    await waitLive(srv.url);
    const e = await addEntries(srv.url, 2, 'custom');
    await waitFor(async () => (await xlen(redis.port, 'ops:feed')) === 2, { what: 'XLEN ops:feed 2' });
    const stream = await xrange(redis.port, 'ops:feed');
    stream.forEach((x, i) => assertStreamEntry(x, e[i]));
    assert.equal((await redisCli(redis.port, 'EXISTS', STREAM)).trim(), '0');
  });
});

// ---------------------------------------------------------------- bad --redis values

describe('malformed --redis', () => {
  for (const url of ['http://x', 'redis://', 'redis://127.0.0.1:99999', 'redis://localhost:abc']) {
    test(`--redis ${url} exits with status 2 and says why`, () => {
      const state = tempDir();
      try {
        const dir = path.join(state, 'st');
        const r = spawnSync(BIN, ['--state', dir, '--http', '127.0.0.1:0', '--redis', url],
          { encoding: 'utf8', timeout: 10000, killSignal: 'SIGKILL' });
        assert.equal(r.error, undefined, `spawn failed or timed out: ${r.error}`);
        assert.equal(r.status, 2, `exit status ${r.status} (${r.signal}); stderr:\n${r.stderr}`);
        assert.match(r.stderr, /^citycmd: --redis: .+/m);
        assert.doesNotMatch(r.stderr, /server\.ready/);
        assert.ok(!existsSync(dir), 'a bad flag is refused before the state directory is touched');
      } finally {
        rmSync(state, { recursive: true, force: true });
      }
    });
  }
});

// ---------------------------------------------------------------- peers that do not answer

describe('a Redis address that accepts connections but never answers', () => {
  let silent;
  let s;
  const sockets = new Set();
  before(async () => {
    silent = net.createServer((sock) => { sockets.add(sock); sock.on('error', () => {}); });
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    s = await startServer({ args: ['--redis', `redis://127.0.0.1:${silent.address().port}`] });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
    for (const sock of sockets) sock.destroy();
    silent.close();
  });

  test('the handshake times out, readiness says why, and the server retries', async () => {
    const r = await waitFor(async () => {
      const body = (await get(s.url, '/readyz')).body;
      return body.redis.error && /no answer/.test(body.redis.error) ? body : null;
    }, { timeout: 9000, what: 'a handshake timeout' });
    assert.equal(r.status, 'degraded');
    assert.equal(r.redis.connected, false);
    assert.equal((await post(s.url, '/api/v1/journal', { text: 'still writing' })).status, 201);
    await waitFor(() => sockets.size >= 2, { timeout: 15000, what: 'a second connection attempt' });
  });
});

describe('a frozen Redis (SIGSTOP)', () => {
  let redis;
  let s;
  before(async () => {
    redis = await startRedis();
    s = await startServer({ args: ['--redis', redis.url] });
    await waitLive(s.url);
  });
  after(async () => {
    redis.proc.kill('SIGCONT');
    await s.stop();
    s.cleanup();
    await redis.stop();
  });

  test('is reported as stalled while frozen and catches up when it thaws', async () => {
    redis.proc.kill('SIGSTOP');
    for (let i = 0; i < 20; i++) assert.equal((await post(s.url, '/api/v1/journal', { text: `frozen ${i}` })).status, 201);
    const r = await waitFor(async () => {
      const body = (await get(s.url, '/readyz')).body;
      return body.redis.state === 'stalled' ? body : null;
    }, { timeout: 10000, what: 'state stalled' });
    assert.equal(r.status, 'degraded');
    assert.equal(r.redis.connected, false);
    assert.ok(r.redis.lag >= 20, `lag ${r.redis.lag}`);
    redis.proc.kill('SIGCONT');
    await waitLive(s.url);
    assert.equal(Number(await xlen(redis.port)), 20);
  });
});
