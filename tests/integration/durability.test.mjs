// Durability: write through the API in a loop, kill -9 the server at random
// moments, restart, and prove every acknowledged write is present and the
// database passes PRAGMA integrity_check. An acknowledgement is a 201
// response the client actually received before the kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer, post, tempDir, sleep } from '../lib/harness.mjs';

const CYCLES = Number(process.env.CITYCMD_DURABILITY_CYCLES || 25);
const WRITERS = 16;

function sql(db, query) {
  return execFileSync('sqlite3', ['-batch', '-noheader', db, query], { encoding: 'utf8' }).trim();
}

test(`every acknowledged write survives ${CYCLES} kill -9s`, { timeout: 300000 }, async () => {
  const state = tempDir();
  const db = path.join(state, 'citycmd.db');
  const acked = new Map(); // text -> seq
  let attempted = 0;
  let kills = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const s = await startServer({ state });
    let running = true;
    let n = 0;
    const writer = async (w) => {
      while (running) {
        const text = `c${cycle}-w${w}-n${n++}`;
        attempted++;
        try {
          const r = await post(s.url, '/api/v1/journal', { text });
          if (r.status === 201) acked.set(text, r.body.entry.seq);
        } catch { return; } // the connection died with the server
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    await sleep(60 + Math.floor(Math.random() * 340));
    await s.kill9();
    kills++;
    running = false;
    await Promise.all(writers);

    // The database as the crash left it: intact, holding everything acknowledged.
    assert.equal(sql(db, 'PRAGMA integrity_check'), 'ok', `cycle ${cycle}`);
    const stored = new Set(sql(db, 'SELECT text FROM journal').split('\n'));
    for (const text of acked.keys()) assert.ok(stored.has(text), `acknowledged "${text}" lost in cycle ${cycle}`);
    // Each entry has its event, and event sequence numbers are dense.
    const [count, max] = sql(db, 'SELECT count(*), coalesce(max(seq),0) FROM events').split('|').map(Number);
    assert.equal(count, max, 'event seqs are dense');
    assert.equal(Number(sql(db, 'SELECT count(*) FROM journal')), count, 'one event per entry');
    assert.equal(Number(sql(db, 'SELECT count(*) FROM journal j JOIN events e ON e.seq = j.seq')), count);
  }
  // A final restart serves what was written.
  const s = await startServer({ state });
  try {
    const r = await fetch(`${s.url}/readyz`).then((x) => x.json());
    assert.equal(r.store.last_seq, Number(sql(db, 'SELECT max(seq) FROM events')));
  } finally { await s.stop(); s.cleanup(); }
  console.log(`durability: ${kills} kill -9s, ${attempted} writes attempted, ${acked.size} acknowledged, none lost`);
  assert.ok(kills >= 20);
  assert.ok(acked.size > CYCLES * 10, 'the test wrote enough to mean something');
});
