// Starting, configuring, draining, stopping and restarting the real binary.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, startServer, get, post, tempDir, freePort, sleep, connectWs } from '../lib/harness.mjs';

function run(args) {
  return spawnSync(BIN, args, { encoding: 'utf8', timeout: 10000 });
}

describe('command line', () => {
  test('--version and --help', () => {
    const v = run(['--version']);
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^citycmd \d+\.\d+\.\d+/);
    assert.match(v.stdout, /libwebsockets .*GDAL .*GStreamer/s);
    const h = run(['--help']);
    assert.equal(h.status, 0);
    for (const flag of ['--http', '--state', '--city', '--redis', '--config', '--demo']) {
      assert.match(h.stdout, new RegExp(`\\s${flag}\\b`), flag);
    }
  });

  test('bad flags exit 2 with a message naming the problem', () => {
    const cases = [
      [['--http', 'nonsense'], /--http: expected HOST:PORT/],
      [['--workers', '0'], /--workers: expected an integer from 1 to 64/],
      [['--frobnicate'], /unknown option '--frobnicate'/],
      [['serve'], /unknown command 'serve'/],
      [['--city', '/nonexistent/city'], /--city \/nonexistent\/city: no such file/],
      [['--log-level', 'chatty'], /--log-level/],
      [['--redis', 'http://example'], /--redis/],
    ];
    for (const [args, re] of cases) {
      const r = run([...args, '--state', tempDir()]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  test('a port already in use exits 1 with a message', async () => {
    const blocker = net.createServer();
    await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address();
    const r = run(['--state', tempDir(), '--http', `127.0.0.1:${port}`]);
    blocker.close();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
  });

  test('the config file is read and flags override it', async () => {
    const dir = tempDir();
    const port = await freePort();
    const conf = path.join(dir, 'citycmd.conf');
    writeFileSync(conf, `[citycmd]\nhttp = 127.0.0.1:${port}\nws-max-message = 2048\nstate = ${dir}/from-file\n`);
    const s = await startServer({ args: ['--config', conf, '--http', `127.0.0.1:${port}`], state: path.join(dir, 'from-flag') });
    try {
      assert.equal(s.port, port, 'port from the file');
      const c = await connectWs(s.wsUrl);
      const hello = await c.next((m) => m.type === 'hello');
      assert.equal(hello.data.max_message, 2048, 'key from the file applies');
      c.close();
      assert.ok(existsSync(path.join(dir, 'from-flag', 'citycmd.db')), '--state flag beats the key');
      assert.ok(!existsSync(path.join(dir, 'from-file')));
    } finally { await s.stop(); }
    writeFileSync(conf, '[citycmd]\nhtpp = 127.0.0.1:1\n');
    const bad = run(['--config', conf]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown key 'htpp'/);
  });

  test('listens only on the address it is given (loopback by default)', async () => {
    // /proc/net/tcp{,6}: local address as hex IP:PORT, state 0A = LISTEN.
    function listeners(port) {
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      return ['tcp', 'tcp6'].flatMap((f) => readFileSync(`/proc/net/${f}`, 'utf8').split('\n').slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((c) => c.length > 3 && c[3] === '0A' && c[1].endsWith(`:${hexPort}`))
        .map((c) => `${f} ${c[1]}`));
    }
    const s = await startServer();
    try {
      const hexPort = s.port.toString(16).toUpperCase().padStart(4, '0');
      assert.deepEqual(listeners(s.port), [`tcp 0100007F:${hexPort}`]);
    } finally { await s.stop(); }
  });

  test('the first WebSocket right after start is served (no start-up race)', async () => {
    for (let i = 0; i < 10; i++) {
      const s = await startServer();
      try {
        const c = await connectWs(s.wsUrl);
        const hello = await c.next((m) => m.type === 'hello', 2000);
        assert.equal(hello.data.server, 'citycmd');
        c.close();
      } finally { await s.stop(); s.cleanup(); }
    }
  });

  test('the state directory is created, nested, when missing', async () => {
    const state = path.join(tempDir(), 'a', 'b', 'c');
    const s = await startServer({ state });
    try {
      assert.ok(existsSync(path.join(state, 'citycmd.db')));
    } finally { await s.stop(); }
  });
});

describe('signals and restart', () => {
  test('SIGTERM during a write burst exits 0 within 5 s and loses no acknowledged write', async () => {
    const state = tempDir();
    const s = await startServer({ state });
    const acked = [];
    const writes = Array.from({ length: 100 }, (_, i) =>
      post(s.url, '/api/v1/journal', { text: `drain ${i}` })
        .then((r) => { if (r.status === 201) acked.push(r.body.entry.id); })
        .catch(() => {}));
    await sleep(5);
    const stopped = await s.stop('SIGTERM');
    await Promise.all(writes);
    assert.equal(stopped.code, 0);
    assert.ok(stopped.ms < 5000, `stopped in ${stopped.ms} ms`);
    assert.match(s.lines.join('\n'), /event=server\.draining/);
    const s2 = await startServer({ state });
    try {
      for (const id of acked) {
        assert.equal((await get(s2.url, `/api/v1/journal/${id}`)).status, 200, `entry ${id}`);
      }
    } finally { await s2.stop(); }
  });

  test('SIGINT also exits 0, and WebSocket clients are told the server is going away', async () => {
    const s = await startServer();
    const c = await connectWs(s.wsUrl);
    await c.next((m) => m.type === 'hello');
    const stopped = await s.stop('SIGINT');
    assert.equal(stopped.code, 0);
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
  });

  test('a stalled request delays exit only up to the drain timeout; a second signal exits at once', async () => {
    async function stalled(s) {
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write('POST /api/v1/journal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${s.token}\r\nContent-Length: 100\r\n\r\n{"te`);
      await sleep(100);
      return sock;
    }
    const s = await startServer({ args: ['--drain-timeout-ms', '1500'] });
    const sock = await stalled(s);
    const one = await s.stop('SIGTERM');
    sock.destroy();
    assert.equal(one.code, 0);
    assert.ok(one.ms >= 1300 && one.ms < 5000, `single signal: ${one.ms} ms`);
    assert.match(s.lines.join('\n'), /event=server\.drain_timeout pending_requests=1/);

    const s2 = await startServer({ args: ['--drain-timeout-ms', '4000'] });
    const sock2 = await stalled(s2);
    s2.proc.kill('SIGTERM');
    await sleep(300);
    assert.equal(s2.proc.exitCode, null, 'still draining after the first signal');
    const t0 = Date.now();
    s2.proc.kill('SIGTERM');
    const two = await s2.exited;
    sock2.destroy();
    assert.ok(Date.now() - t0 < 500, 'second signal exits at once');
    assert.equal(two.code, 1);
  });

  test('a restart rebuilds state from the store and continues the sequence', async () => {
    const state = tempDir();
    const s = await startServer({ state });
    const first = [];
    for (let i = 0; i < 5; i++) first.push((await post(s.url, '/api/v1/journal', { text: `before restart ${i}` })).body.entry);
    await s.stop();
    const s2 = await startServer({ state });
    try {
      const c = await connectWs(s2.wsUrl);
      const hello = await c.next((m) => m.type === 'hello');
      assert.equal(hello.data.seq, first[4].seq, 'the event sequence survives');
      c.close();
      const list = await get(s2.url, '/api/v1/journal?limit=10');
      assert.deepEqual(list.body.entries.map((e) => e.text).reverse(), first.map((e) => e.text));
      const next = await post(s2.url, '/api/v1/journal', { text: 'after restart' });
      assert.equal(next.body.entry.seq, first[4].seq + 1);
      assert.equal(next.body.entry.id, first[4].id + 1);
      assert.equal((await get(s2.url, '/readyz')).body.store.last_seq, first[4].seq + 1);
    } finally { await s2.stop(); }
  });
});
