#!/usr/bin/env node
// Sustained call intake: posts calls at a target rate (open loop, bounded
// concurrency, keep-alive connections) to a citycmd it starts on the demo
// city, with fusion on and 100 consoles connected to the WebSocket feed, and
// reports the acknowledged calls per second and the p50/p99 latency from
// sending a call to its 201, and to its effect reaching every console.
//
//   node tools/bench/calls_bench.mjs [--rate 2000] [--seconds 10] [--consoles 100]
//                                    [--concurrency 64] [--topic incidents|events]
//
// The consoles run in two worker threads, so the posting thread is not slowed
// by the 100 copies of every event. Uses build/citycmd and build/city/monaco.
import { Worker } from 'node:worker_threads';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.CITYCMD_BIN ||= path.join(ROOT, 'build', 'citycmd');
const { startServer, addUser, login, tempDir } = await import(path.join(ROOT, 'tests/lib/harness.mjs'));

const opt = { rate: 2000, seconds: 10, consoles: 100, concurrency: 64, topic: 'incidents' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  opt[k] = k === 'topic' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
if (!['incidents', 'events'].includes(opt.topic)) throw new Error('--topic incidents|events');

// Consoles: each worker holds half of them and reports when each call's
// effect reached each console. On the "incidents" topic (what the console's
// queue and map run on) a call has reached a console when the console holds
// its incident with at least the callers the call's 201 reported (a slow
// console may get only the newest state of an incident: that counts); on the
// "events" topic, when its call.received event arrived. Frames are scanned,
// not parsed, so the consoles cost the shared CPU as little as they can.
const consoleSource = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.wsPath);
const topic = workerData.topic;
const seen = new Map(); // events: tag -> [count, last arrival]; incidents: "id/console" -> [[callers, t], ...]
let ready = 0;
if (workerData.n === 0) parentPort.postMessage({ ready: true });
const INC = '{"type":"incident","data":{"id":"I-';
for (let i = 0; i < workerData.n; i++) {
  const ws = new WebSocket(workerData.url, ['citycmd.v1', 'bearer.' + workerData.token]);
  ws.on('message', (d) => {
    const s = d.toString();
    const now = performance.timeOrigin + performance.now();
    if (s.startsWith('{"type":"hello"')) { ws.send(JSON.stringify({ type: 'subscribe', id: 's', data: { topics: [topic] } })); return; }
    if (s.includes('{"type":"subscribed"')) { if (++ready === workerData.n) parentPort.postMessage({ ready: true }); return; }
    if (topic === 'incidents') {
      for (let k = s.indexOf(INC); k >= 0; k = s.indexOf(INC, k + 1)) {
        const id = s.slice(k + INC.length, s.indexOf('"', k + INC.length));
        const c = s.indexOf('"callers":', k);
        const callers = parseInt(s.slice(c + 10, c + 20), 10);
        const key = id + '/' + i;
        const e = seen.get(key);
        if (e) e.push([callers, now]); else seen.set(key, [[callers, now]]);
      }
      return;
    }
    for (let k = s.indexOf('"caller":"bench-'); k >= 0; k = s.indexOf('"caller":"bench-', k + 1)) {
      const tag = s.slice(k + 16, s.indexOf('"', k + 16));
      const e = seen.get(tag);
      if (e) { e[0]++; e[1] = now; } else seen.set(tag, [1, now]);
    }
  });
  ws.on('error', () => {});
}
parentPort.on('message', () => parentPort.postMessage({ seen: [...seen] }));
`;

function startConsoles(url, token, n) {
  const w = new Worker(consoleSource, { eval: true, workerData: { url, token, n, topic: opt.topic, wsPath: createRequire(path.join(ROOT, 'tests/package.json')).resolve('ws') } });
  const ready = new Promise((r) => w.on('message', (m) => m.ready && r()));
  return { w, ready, collect: () => new Promise((r) => { w.on('message', (m) => m.seen && r(new Map(m.seen))); w.postMessage('collect'); }) };
}

const pct = (a, q) => (a.length ? a[Math.min(a.length - 1, Math.floor(q * a.length))] : NaN);

const state = tempDir();
addUser(state, { username: 'bench.ct', password: 'bench password 1', roles: 'call_taker', agency: 'command' });
const s = await startServer({ state, users: false, args: ['--city', path.join(ROOT, 'build/city/monaco'), '--ws-queue-max', '4194304', '--ws-max-clients', '1000', '--ws-rate', '100000'] });
const token = await login(s.url, 'bench.ct', 'bench password 1');
const city = await (await fetch(`${s.url}/api/v1/city`, { headers: { authorization: `Bearer ${token}` } })).json();
const [w, south, e, n] = city.bbox;
const half = Math.floor(opt.consoles / 2);
const consoles = [startConsoles(s.wsUrl, token, half), startConsoles(s.wsUrl, token, opt.consoles - half)];
await Promise.all(consoles.map((c) => c.ready));

const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency });
const { port } = new URL(s.url);
const categories = ['fire/structure', 'medical/cardiac', 'traffic/collision', 'police/disturbance', 'hotline/noise'];
const lines = { fire: '119', medical: '120', traffic: '122', police: '110', hotline: '12345' };
let seq = 0;
function postCall() {
  const tag = String(seq++);
  const cat = categories[seq % categories.length];
  // Clustered: a tenth of the calls repeat one of a few hundred places, so fusion has work.
  const r = seq % 10 === 0 ? (seq % 300) / 300 : Math.random();
  const body = JSON.stringify({
    line: lines[cat.split('/')[0]], caller: `bench-${tag}`, category: cat, text: 'benchmark call',
    location: { lon: w + (e - w) * (0.2 + 0.6 * r), lat: south + (n - south) * (0.2 + 0.6 * ((r * 7.31) % 1)) },
  });
  const t0 = performance.timeOrigin + performance.now();
  return new Promise((resolve) => {
    const req = http.request({ agent, host: '127.0.0.1', port, method: 'POST', path: '/api/v1/calls',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const ack = performance.timeOrigin + performance.now();
        // The incident and its callers after this call, from the 201.
        const m = /"incident":\{"id":"I-(\d+)"/.exec(text) || /"incident_id":"I-(\d+)"/.exec(text);
        const c = text.lastIndexOf('"callers":');
        resolve({ tag, t0, ack, status: res.statusCode, incident: m && m[1], callers: c >= 0 ? parseInt(text.slice(c + 10, c + 20), 10) : 0 });
      });
    });
    req.on('error', () => resolve({ tag, t0, status: 0 }));
    req.end(body);
  });
}

const results = [];
let inflight = 0, dropped = 0;
const start = performance.now(), total = opt.rate * opt.seconds;
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / opt.rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  if (inflight >= opt.concurrency) { dropped++; continue; } // open loop: a call that cannot go now is counted as missed
  inflight++;
  postCall().then((r) => { inflight--; results.push(r); });
}
while (inflight > 0) await new Promise((r) => setTimeout(r, 10));
const elapsed = (performance.now() - start) / 1000;
await new Promise((r) => setTimeout(r, 1000)); // the last events
const seen = await Promise.all(consoles.map((c) => c.collect()));

const ok = results.filter((r) => r.status === 201);
const ack = ok.map((r) => r.ack - r.t0).sort((a, b) => a - b);
const ev = [];
let complete = 0;
// When the call reached console i: its event (events), or the first state of
// its incident with at least its callers (incidents).
function reached(r) {
  if (opt.topic === 'events') {
    const a = seen[0].get(r.tag), b = seen[1].get(r.tag);
    if ((a?.[0] || 0) !== half || (b?.[0] || 0) !== opt.consoles - half) return null;
    return Math.max(a ? a[1] : 0, b ? b[1] : 0);
  }
  let last = 0;
  for (let i = 0; i < opt.consoles; i++) {
    const list = seen[i < half ? 0 : 1].get(`${r.incident}/${i < half ? i : i - half}`);
    const hit = list && list.find(([callers]) => callers >= r.callers);
    if (!hit) return null;
    last = Math.max(last, hit[1]);
  }
  return last;
}
for (const r of ok) {
  const t = opt.consoles > 0 ? reached(r) : null;
  if (t !== null) {
    complete++;
    ev.push(t - r.t0);
  }
}
ev.sort((a, b) => a - b);
const incidents = (await (await fetch(`${s.url}/api/v1/incidents?limit=5000`, { headers: { authorization: `Bearer ${token}` } })).json()).incidents.length;
console.log(`calls_bench: target ${opt.rate} calls/s for ${opt.seconds} s, ${opt.concurrency} connections, ${opt.consoles} consoles on \"${opt.topic}\"`);
console.log(`  acknowledged   ${ok.length} of ${total} (${(ok.length / elapsed).toFixed(0)} calls/s), ${results.length - ok.length} errors, ${dropped} not sent (all connections busy)`);
console.log(`  open incidents ${incidents} after fusion`);
console.log(`  to 201         p50 ${pct(ack, 0.5).toFixed(1)} ms   p99 ${pct(ack, 0.99).toFixed(1)} ms`);
console.log(`  to every console p50 ${pct(ev, 0.5).toFixed(1)} ms   p99 ${pct(ev, 0.99).toFixed(1)} ms   (${complete} of ${ok.length} calls reached all ${opt.consoles})`);
for (const c of consoles) await c.w.terminate();
agent.destroy();
await s.stop();
s.cleanup();
