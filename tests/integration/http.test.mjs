// The HTTP surface of the real server: health, readiness, metrics, errors,
// the journal API, the event log and static files.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { BIN, ROOT, startServer, get, post, request, tempDir, freePort, sleep, authHeader } from '../lib/harness.mjs';

test('answers /healthz within 1 s of start', async () => {
  const port = await freePort();
  const state = tempDir();
  const t0 = Date.now();
  const proc = spawn(BIN, ['--state', state, '--http', `127.0.0.1:${port}`], { stdio: 'ignore' });
  let ms = -1;
  try {
    while (Date.now() - t0 < 5000) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.status === 200) {
          assert.deepEqual(await r.json(), { status: 'ok' });
          ms = Date.now() - t0;
          break;
        }
      } catch { /* not listening yet */ }
      await sleep(5);
    }
  } finally {
    proc.kill('SIGKILL');
  }
  console.log(`healthz answered ${ms} ms after spawn`);
  assert.ok(ms >= 0 && ms < 1000, `healthz after ${ms} ms`);
});

describe('HTTP API', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--http-max-body', '4096'] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  test('readyz reports the store', async () => {
    const r = await get(s.url, '/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ready');
    assert.equal(r.body.store.ok, true);
    assert.equal(r.body.redis.configured, false);
  });

  test('unknown routes are 404 with the uniform error body', async () => {
    for (const p of ['/api/v1/nope', '/api/v1/journal/1/extra', '/api/v2/journal']) {
      const r = await get(s.url, p);
      assert.equal(r.status, 404, p);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.body.error.code, 'not_found');
      assert.match(r.body.error.message, /no such resource/);
    }
  });

  test('a known path with the wrong method is 405 with Allow', async () => {
    const r = await request(s.url, 'DELETE', '/api/v1/journal');
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, POST');
    assert.equal(r.body.error.code, 'method_not_allowed');
    const r2 = await request(s.url, 'PUT', '/healthz', {});
    assert.equal(r2.status, 405);
  });

  test('bad bodies are 400 and name the problem', async () => {
    let r = await post(s.url, '/api/v1/journal', '{"text": "unterminated');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'malformed_json');
    assert.match(r.body.error.message, /line 1/);
    r = await post(s.url, '/api/v1/journal', '[1,2,3]');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_body');
    r = await post(s.url, '/api/v1/journal', {});
    assert.equal(r.status, 400);
    assert.equal(r.body.error.field, 'text');
    r = await post(s.url, '/api/v1/journal', { text: 'ok', kind: 'gossip' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.field, 'kind');
    r = await post(s.url, '/api/v1/journal', { text: '   ' });
    assert.equal(r.status, 400);
    r = await post(s.url, '/api/v1/journal', { text: 'a\u0000b' });
    assert.equal(r.status, 400);
    r = await post(s.url, '/api/v1/journal', { text: 'x', text2: 1, text3: [{}] });
    assert.equal(r.status, 201, 'unknown fields are ignored');
    r = await post(s.url, '/api/v1/journal', '{"text":"a","text":"b"}');
    assert.equal(r.status, 400, 'duplicate keys are refused');
  });

  test('oversized bodies are 413', async () => {
    const r = await post(s.url, '/api/v1/journal', { text: 'x'.repeat(5000) });
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'too_large');
    // The server still works afterwards.
    assert.equal((await get(s.url, '/healthz')).status, 200);
  });

  test('a client still sending an oversized body reads its 413, every time', async () => {
    // The body is read and thrown away before the answer (up to 8 times the
    // limit), so the client is never reset while it is still writing.
    const big = await startServer();
    try {
      for (const mb of [1.1, 3, 7]) {
        for (let i = 0; i < 4; i++) {
          const r = await post(big.url, '/api/v1/journal', { text: 'y'.repeat(mb * (1 << 20)) });
          assert.equal(r.status, 413, `${mb} MiB, try ${i}`);
          assert.equal(r.body.error.code, 'too_large');
        }
      }
      assert.equal((await get(big.url, '/healthz')).status, 200);
    } finally { await big.stop(); big.cleanup(); }
  });

  test('a chunked body (no Content-Length) is 411 at once, not left waiting', async () => {
    const t0 = Date.now();
    const r = await new Promise((resolve, reject) => {
      const req = http.request(`${s.url}/api/v1/journal`, { method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...authHeader(s.url) } }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write('{"text":');
      req.end('"chunked"}');
    });
    assert.equal(r.status, 411);
    assert.equal(r.body.error.code, 'length_required');
    assert.ok(Date.now() - t0 < 2000);
  });

  test('bad query parameters are 400 naming the parameter', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'after=-1', 'after=1e3']) {
      const r = await get(s.url, `/api/v1/events?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'invalid_parameter');
      assert.match(r.body.error.message, new RegExp(q.split('=')[0]));
    }
    const r = await get(s.url, '/api/v1/journal/abc');
    assert.equal(r.status, 400);
  });

  test('journal entries are created, read back and paged newest first', async () => {
    const texts = ['交接班：夜班两起供水抢修未完成', 'Pumps staged at the underpass', 'Radio check OK'];
    const ids = [];
    for (const [i, text] of texts.entries()) {
      const r = await post(s.url, '/api/v1/journal', { text, kind: ['handover', 'instruction', 'note'][i] });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('location'), `/api/v1/journal/${r.body.entry.id}`);
      assert.equal(r.body.entry.text, text);
      assert.equal(r.body.entry.author, 'test.dispatcher');
      assert.equal(r.body.entry.agency, 'command');
      assert.ok(r.body.entry.seq > 0);
      assert.ok(!Number.isNaN(Date.parse(r.body.entry.at)));
      ids.push(r.body.entry.id);
    }
    const one = await get(s.url, `/api/v1/journal/${ids[0]}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.entry.text, texts[0]);
    assert.equal(one.body.entry.kind, 'handover');
    const page1 = await get(s.url, '/api/v1/journal?limit=2');
    assert.deepEqual(page1.body.entries.map((e) => e.id), [ids[2], ids[1]]);
    const page2 = await get(s.url, `/api/v1/journal?limit=2&before=${ids[1]}`);
    assert.equal(page2.body.entries[0].id, ids[0]);
    assert.equal((await get(s.url, '/api/v1/journal/999999')).status, 404);
  });

  test('4000 characters are accepted, 4001 are not', async () => {
    assert.equal((await post(s.url, '/api/v1/journal', { text: '火'.repeat(1000) })).status, 201);
    const big = await startServer();
    try {
      assert.equal((await post(big.url, '/api/v1/journal', { text: 'y'.repeat(4000) })).status, 201);
      assert.equal((await post(big.url, '/api/v1/journal', { text: 'y'.repeat(4001) })).status, 400);
    } finally { await big.stop(); big.cleanup(); }
  });

  test('concurrent writes all succeed with distinct, dense sequence numbers', async () => {
    const before = (await get(s.url, '/api/v1/events?limit=1')).body.last_seq;
    const rs = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      post(s.url, '/api/v1/journal', { text: `burst ${i}` })));
    assert.ok(rs.every((r) => r.status === 201));
    const seqs = rs.map((r) => r.body.entry.seq).sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, 200);
    assert.equal(seqs[0], before + 1);
    assert.equal(seqs[199], before + 200);
    const ev = await get(s.url, `/api/v1/events?after=${before}&limit=1000`);
    assert.equal(ev.body.events.length, 200);
    assert.deepEqual(ev.body.events.map((e) => e.seq), seqs);
    assert.ok(ev.body.events.every((e) => e.type === 'journal.created' && e.subject.startsWith('journal/')));
  });

  test('metrics are Prometheus text with the citycmd_ families', async () => {
    const r = await get(s.url, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    for (const name of ['citycmd_http_requests_total', 'citycmd_http_request_seconds_bucket',
      'citycmd_ws_clients', 'citycmd_store_commits_total', 'citycmd_store_queue_depth',
      'citycmd_worker_queue_depth', 'citycmd_store_commit_seconds_count', 'citycmd_events_total']) {
      assert.match(r.text, new RegExp(`^${name}[{ ]`, 'm'), name);
    }
    for (const line of r.text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$/, line);
    }
    const created = r.text.match(/citycmd_http_requests_total\{method="POST",route="\/api\/v1\/journal",code="201"\} (\d+)/);
    assert.ok(created && Number(created[1]) >= 200);
  });

  test('the web shell is served with no reference outside the server', async () => {
    const r = await get(s.url, '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    assert.doesNotMatch(r.text, /(src|href)=["']?(https?:)?\/\//i);
    const js = await get(s.url, '/assets/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /javascript/);
    assert.doesNotMatch(js.text, /(import|fetch)\(["']https?:/);
    assert.equal((await get(s.url, '/assets/missing.js')).status, 404);
    const spa = await get(s.url, '/console');
    assert.equal(spa.status, 200, 'client-side routes get the shell');
    assert.equal(spa.text, r.text);
  });
});
