#!/usr/bin/env node
// The live video relay end to end, and ffmpeg as the peer.
//
// For each resolution (720p, 1080p; H.264 at 4 Mbit/s, 24 fps, a keyframe at
// least every 2 s) build/camera-sim serves N cameras looping the same file
// without re-encoding. For 1 and for 4 viewers: a fresh build/citycmd with
// the N cameras registered, and the viewers (WebSocket clients in this
// process, as the console's tabs: one /ws each, one tile per camera) watching
// every camera; after the streams settle, the CPU of citycmd over --seconds
// (utime + stime from /proc, over wall time) and what each tile received:
// fragments per second (one frame each), bytes, frames the server skipped.
// Then citycmd is stopped and the peer runs on the same RTSP sources for the
// same time: one ffmpeg per camera (`-c copy` to fragmented MP4, one fragment
// per frame, flushed at once) with one output per viewer, each a loopback
// TCP connection to a reader in this process, as the WebSocket viewers read
// citycmd. camera-sim and this process run on the same machine: their CPU
// is printed too. With --pin yes (the default on 2 cores or more) the
// measured process gets CPU 0 to itself, and camera-sim (at nice 10) and the
// viewers the other CPUs, so "streams per core" is what fits on one core.
//
// Then the latency: the server's citycmd_video_relay_seconds histogram over
// each measured window (from an access unit leaving the RTSP depayloader to
// its WebSocket write), the viewers' own view (arrival − decode time of each
// fragment, above the tile's fastest: the jitter everything before the
// viewer adds); the time to the first frame of a camera already watched
// (warm: init segment, first keyframe fragment, live edge) and of a camera
// whose stream is not running (cold); and glass-to-glass in Chromium
// (tools/bench/video_glass.mjs).
//
//   node tools/bench/video_bench.mjs [--streams 50] [--seconds 20] [--settle 5]
//        [--only 720p|1080p] [--viewers 1,4] [--parts relay,ffmpeg,ttff,glass]
//        [--tries 20] [--frames 300] [--pin yes|no] [--ffmpeg-frag frame|keyframe]
//        [--ffmpeg-out tcp|null] [--stagger yes|no]
import net from 'node:net';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import {
  ROOT, startSim, startCitycmd, sourceFile, spawnChild, parseArgs, openViewers, snapshotTiles, Viewer,
  scrape, counter, histogram, histogramDelta, cpuMeter, cpuSeconds, machine, quantiles, fmt, boxCounter, sleep, waitFor,
  RESOLUTIONS, pin, niceAll,
} from './video_lib.mjs';
import { measureGlass } from './video_glass.mjs';

const opt = parseArgs('tools/bench/video_bench.mjs', {
  streams: '50', seconds: '20', settle: '5', only: '', viewers: '1,4', parts: 'relay,ffmpeg,ttff,glass', tries: '20', frames: '300',
  'ffmpeg-frag': 'frame', 'ffmpeg-out': 'tcp', pin: os.cpus().length >= 2 ? 'yes' : 'no', stagger: 'yes',
});
const N = Number(opt.streams), SECONDS = Number(opt.seconds), SETTLE = Number(opt.settle);
const VIEWERS = opt.viewers.split(',').map(Number);
const PARTS = new Set(opt.parts.split(','));
const RES = opt.only ? opt.only.split(',') : Object.keys(RESOLUTIONS);
const FPS = 24; // the source's frame rate
// --pin yes: what is measured (citycmd, or the ffmpeg processes) runs on
// CPU 0 alone; camera-sim and the viewers (this process) on the others,
// camera-sim at nice +10. They stand in for cameras and screens, which are
// other machines: this way they neither take the measured process' core nor
// starve the viewers, whose sockets must be drained for the server to write.
const PIN = opt.pin === 'yes';
// --stagger yes: camera i starts i × (2 s / N) into the file, so the
// cameras' keyframes (one at least every 2 s) fall at different moments, as
// real cameras' do; --stagger no starts them all at the same point, and all
// 50 keyframes (8–10 times a P frame) arrive within a millisecond.
const STAGGER_MS = opt.stagger === 'yes' ? Math.floor(2000 / Math.max(1, Number(opt.streams))) : 0;
const MEASURED_CPU = '0', OTHER_CPUS = `1-${Math.max(1, os.cpus().length - 1)}`;
if (!(N >= 1 && N <= 64) || RES.some((r) => !RESOLUTIONS[r]) || VIEWERS.some((v) => !(v >= 1 && v <= 16)) ||
    [...PARTS].some((p) => !['relay', 'ffmpeg', 'ttff', 'glass'].includes(p)) ||
    !['frame', 'keyframe'].includes(opt['ffmpeg-frag']) || !['tcp', 'null'].includes(opt['ffmpeg-out']) ||
    !['yes', 'no'].includes(opt.pin) || !['yes', 'no'].includes(opt.stagger) || (PIN && os.cpus().length < 2)) {
  console.error('--streams 1..64 (camera-sim serves up to 64), --only 720p|1080p, --viewers 1..16 each, --parts of relay,ffmpeg,ttff,glass, ' +
    '--ffmpeg-frag frame|keyframe, --ffmpeg-out tcp|null, --pin yes|no (yes needs 2 cores), --stagger yes|no');
  process.exit(2);
}

const pct = (x) => `${fmt(x * 100, x * 100 < 10 ? 2 : 1)}%`;
const loadNow = () => os.loadavg()[0].toFixed(2);
const rssMiB = (pid) => {
  try { return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024; } catch { return null; }
};

// What the tiles of the viewers received between two snapshots.
function delivered(before, after, wall) {
  const fps = [], mbit = [];
  let gaps = 0, tiles = 0, silent = 0;
  after.forEach((tilesAfter, v) => {
    for (const [n, a] of tilesAfter) {
      const b = before[v].get(n) || { frags: 0, bytes: 0, gaps: 0 };
      tiles++;
      const f = (a.frags - b.frags) / wall;
      if (f === 0) silent++;
      fps.push(f);
      mbit.push(((a.bytes - b.bytes) * 8) / wall / 1e6);
      gaps += a.gaps - b.gaps;
    }
  });
  const mean = (xs) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null);
  return { tiles, silent, gaps, fpsMean: mean(fps), fpsMin: fps.length ? Math.min(...fps) : null, mbitMean: mean(mbit) };
}

// The viewers' view of latency: per tile, arrival − decode time above the
// tile's smallest, over every fragment of the window (ms).
function clientJitter(viewers) {
  const all = [];
  for (const v of viewers) {
    for (const t of v.tiles.values()) {
      if (!t.offsets.length) continue;
      const min = Math.min(...t.offsets);
      for (const o of t.offsets) all.push(o - min);
    }
  }
  return { n: all.length, q: quantiles(all) };
}

function sentCounter(text, name) {
  return counter(text, `${name}_total`) ?? counter(text, name);
}

async function relayRun(res, sim, viewersCount) {
  const c = await startCitycmd(sim.urls, ['--ws-max-clients', '64']);
  if (PIN && !pin(c.s.pid, MEASURED_CPU)) throw new Error('taskset could not pin citycmd');
  let viewers = [];
  try {
    const idleMeter = cpuMeter({ citycmd: [c.s.pid] });
    idleMeter.start();
    await sleep(3000);
    const idle = idleMeter.stop().citycmd;
    viewers = await openViewers(c.s, c.viewerToken, c.cameras, viewersCount);
    const everyTile = () => viewers.every((v) => c.cameras.every((_, i) => {
      const t = v.tiles.get(i + 1);
      return t && t.inits > 0 && t.frags >= 2 * FPS;
    }));
    await waitFor(everyTile, { timeout: 60000, interval: 250, what: 'two seconds of video on every tile' })
      .catch((e) => console.log(`  warning: ${e.message}`));
    await sleep(SETTLE * 1000);
    const m0 = await scrape(c.s, c.opToken);
    const before = snapshotTiles(viewers);
    for (const v of viewers) { v.recording = true; for (const t of v.tiles.values()) t.offsets = []; }
    const meter = cpuMeter({ citycmd: [c.s.pid], sim: [sim.pid] });
    meter.start();
    await sleep(SECONDS * 1000);
    const cpu = meter.stop();
    for (const v of viewers) v.recording = false;
    const after = snapshotTiles(viewers);
    const m1 = await scrape(c.s, c.opToken);
    const d = delivered(before, after, cpu.wall);
    const hist = histogramDelta(histogram(m0, 'citycmd_video_relay_seconds'), histogram(m1, 'citycmd_video_relay_seconds'));
    const sent = (sentCounter(m1, 'citycmd_video_fragments_sent') ?? NaN) - (sentCounter(m0, 'citycmd_video_fragments_sent') ?? NaN);
    const skipped = (sentCounter(m1, 'citycmd_video_fragments_skipped') ?? NaN) - (sentCounter(m0, 'citycmd_video_fragments_skipped') ?? NaN);
    const r = { cpu, idle, d, hist, sent, skipped, jitter: clientJitter(viewers), rss: rssMiB(c.s.pid) };
    console.log(`  citycmd: ${pct(cpu.citycmd)} of a core (${pct(cpu.citycmd / N)} per stream; ${pct(idle)} before any watch), RSS ${fmt(r.rss, 0)} MiB; ` +
      `${d.tiles} tiles at ${fmt(d.fpsMean)} fps (lowest ${fmt(d.fpsMin)}), ${fmt(d.mbitMean, 2)} Mbit/s each, ${d.silent} silent, ` +
      `${d.gaps} gaps seen, server: ${sent} fragments sent, ${skipped} skipped; camera-sim ${pct(cpu.sim)}, viewers (node) ${pct(cpu.self)}; ` +
      `load ${cpu.load.map((l) => l.toFixed(2)).join(' → ')}`);
    return r;
  } finally {
    for (const v of viewers) v.ws.terminate();
    await c.stop();
  }
}

// One ffmpeg per camera, `-c copy` to fragmented MP4 with one output per
// viewer, each a TCP connection to a reader here that counts the fragments
// (--ffmpeg-out null: each to /dev/null, nothing counted). One fragment per
// frame (--ffmpeg-frag keyframe: per keyframe interval, as for recording).
async function ffmpegRun(res, sim, viewersCount) {
  const readers = [];
  const sink = net.createServer((sock) => {
    const counter = boxCounter();
    readers.push(counter);
    sock.on('data', counter.feed);
    sock.on('error', () => {});
  });
  await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const toNull = opt['ffmpeg-out'] === 'null';
  const out = toNull ? 'file:/dev/null' : `tcp://127.0.0.1:${sink.address().port}`;
  const frag = opt['ffmpeg-frag'] === 'frame' ? 'frag_every_frame' : 'frag_keyframe';
  const output = ['-map', '0:v', '-c', 'copy', '-f', 'mp4', '-movflags', `${frag}+empty_moov+default_base_moof`, '-flush_packets', '1', '-y', out];
  const errs = [];
  const procs = sim.urls.map((u) => {
    const p = spawnChild(PIN ? 'taskset' : 'ffmpeg', [...(PIN ? ['-c', MEASURED_CPU, 'ffmpeg'] : []), '-nostdin', '-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', u,
      ...Array.from({ length: viewersCount }, () => output).flat()], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr.on('data', (x) => { if (errs.length < 20) errs.push(String(x).trim()); });
    return p;
  });
  try {
    const enough = toNull ? () => procs.every((p) => cpuSeconds(p.pid) > 0.05)
      : () => readers.length === N * viewersCount && readers.every((r) => (r.count.moof || 0) >= (frag === 'frag_every_frame' ? 2 * FPS : 2));
    await waitFor(enough,
      { timeout: 60000, interval: 250, what: 'two seconds of fragments on every ffmpeg output' })
      .catch((e) => console.log(`  warning: ${e.message} (${readers.length} outputs connected)`));
    await sleep(SETTLE * 1000);
    const snap = () => readers.map((r) => ({ moof: r.count.moof || 0, bytes: r.bytes }));
    const before = snap();
    const meter = cpuMeter({ ffmpeg: procs.map((p) => p.pid), sim: [sim.pid] });
    meter.start();
    await sleep(SECONDS * 1000);
    const cpu = meter.stop();
    const after = snap();
    const fps = after.map((a, i) => (a.moof - (before[i]?.moof || 0)) / cpu.wall);
    const mbit = after.map((a, i) => ((a.bytes - (before[i]?.bytes || 0)) * 8) / cpu.wall / 1e6);
    const d = toNull ? { outputs: N * viewersCount, fpsMean: null, fpsMin: null, mbitMean: null } : {
      outputs: readers.length,
      fpsMean: fps.reduce((s, x) => s + x, 0) / (fps.length || 1),
      fpsMin: fps.length ? Math.min(...fps) : null,
      mbitMean: mbit.reduce((s, x) => s + x, 0) / (mbit.length || 1),
    };
    d.alive = procs.filter((p) => p.exitCode === null && p.signalCode === null).length;
    if (errs.length) console.log(`  ffmpeg said: ${errs.slice(0, 3).join(' | ')}`);
    console.log(`  ffmpeg: ${pct(cpu.ffmpeg)} of a core (${pct(cpu.ffmpeg / N)} per stream), ${d.alive}/${N} processes running; ` +
      `${d.outputs} outputs at ${fmt(d.fpsMean)} fps (lowest ${fmt(d.fpsMin)}), ${fmt(d.mbitMean, 2)} Mbit/s each; ` +
      `camera-sim ${pct(cpu.sim)}, reader (node) ${pct(cpu.self)}; load ${cpu.load.map((l) => l.toFixed(2)).join(' → ')}`);
    return { cpu, d };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    sink.close();
  }
}

// Time to first frame: a tester tab watches a camera another tab already
// watches (warm: its keyframe group is cached), then unwatches, `tries`
// times at random moments in the keyframe interval; then watches cameras
// whose stream is not running (cold: never watched since the start).
async function ttffRun(sim) {
  const c = await startCitycmd(sim.urls, ['--ws-max-clients', '64']);
  if (PIN) pin(c.s.pid, MEASURED_CPU);
  const holder = await new Viewer(c.s.wsUrl, c.viewerToken).open();
  const tester = await new Viewer(c.s.wsUrl, c.viewerToken).open();
  const tries = Number(opt.tries);
  const warm = [], cold = [];
  try {
    await holder.watch(1, c.cameras[0]);
    await holder.next((e) => e.kind === 'frag', 30000, 'fragment for the holder');
    await sleep(3000);
    for (let i = 0; i < tries; i++) {
      warm.push(await firstFrame(tester, 1, c.cameras[0], holder.tile(1).lastDts));
      await tester.unwatch(1);
      await sleep(200 + Math.random() * 1800);
    }
    const coldCams = c.cameras.slice(1, 1 + tries);
    for (const cam of coldCams) {
      cold.push(await firstFrame(tester, 2, cam, null));
      await tester.unwatch(2);
      await sleep(300);
    }
  } finally {
    holder.ws.terminate();
    tester.ws.terminate();
    await c.stop();
  }
  const sum = (xs, k) => quantiles(xs.map((x) => x[k]).filter((x) => x !== null));
  return {
    warm: { n: warm.length, states: [...new Set(warm.map((w) => w.state))], init: sum(warm, 'init'), key: sum(warm, 'key'), live: sum(warm, 'live') },
    cold: { n: cold.length, states: [...new Set(cold.map((w) => w.state))], init: sum(cold, 'init'), key: sum(cold, 'key') },
  };
}

// Watches a camera on a tile; ms from sending video.watch to its reply, the
// init segment, the first keyframe fragment and (warm) the first fragment
// at or past the live edge (the decode time the holder last had).
async function firstFrame(v, tile, camera, liveDts) {
  const t0 = performance.now();
  const init = v.next((e) => e.tile === tile && e.kind === 'init', 20000, 'init segment');
  const key = v.next((e) => e.tile === tile && e.kind === 'frag' && e.key, 20000, 'keyframe fragment');
  const live = liveDts === null ? null : v.next((e) => e.tile === tile && e.kind === 'frag' && e.dts >= liveDts, 20000, 'live fragment');
  const reply = await v.watch(tile, camera);
  const tr = performance.now() - t0;
  const [i, k, l] = await Promise.all([init, key, live]);
  return { state: reply.state, reply: tr, init: i.t - t0, key: k.t - t0, live: l ? l.t - t0 : null };
}

function printMachine() {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.memory}, ${m.kernel}; node ${m.node}, ${m.gstreamer}, ${m.ffmpeg}; load ${loadNow()} at the start`);
}

if (PIN && !pin(process.pid, OTHER_CPUS)) throw new Error('taskset could not pin this process');
console.log(`video_bench: ${N} cameras per run, ${RES.join(' and ')} H.264 at 4 Mbit/s ${FPS} fps, ${VIEWERS.join(' and ')} viewer(s), ` +
  `${SECONDS} s measured after ${SETTLE} s of settling; keyframes ${STAGGER_MS ? `staggered (camera i starts i × ${STAGGER_MS} ms into the file)` : 'all at once (no stagger)'}; ${PIN ? `citycmd and ffmpeg on CPU ${MEASURED_CPU} alone, camera-sim (nice 10) and the viewers on CPU ${OTHER_CPUS}` : 'nothing pinned'}`);
printMachine();
const results = [];
let ttff = null, glass = null;
for (const res of RES) {
  if (!PARTS.has('relay') && !PARTS.has('ffmpeg') && !(PARTS.has('ttff') && !ttff)) continue;
  const file = sourceFile(res);
  const sim = await startSim(['--cameras', String(N), '--synthetic', '0', '--file', file, '--stagger', String(STAGGER_MS)], N);
  if (PIN && !(pin(sim.pid, OTHER_CPUS) && niceAll(sim.pid, 10))) throw new Error('taskset/renice could not place camera-sim');
  try {
    for (const v of VIEWERS) {
      const row = { res, viewers: v };
      if (PARTS.has('relay')) {
        console.log(`\n${res}, ${N} streams, ${v} viewer(s): citycmd`);
        row.relay = await relayRun(res, sim, v);
      }
      if (PARTS.has('ffmpeg')) {
        console.log(`${res}, ${N} streams, ${v} viewer(s): ffmpeg -c copy, a fragment per ${opt['ffmpeg-frag']}, to ${opt['ffmpeg-out'] === 'tcp' ? 'loopback TCP' : '/dev/null'}`);
        row.ffmpeg = await ffmpegRun(res, sim, v);
      }
      results.push(row);
    }
    if (PARTS.has('ttff') && !ttff) {
      console.log(`\ntime to first frame (${res}, ${opt.tries} tries each)`);
      ttff = await ttffRun(sim);
    }
  } finally {
    await sim.stop();
  }
}
if (PARTS.has('glass')) {
  if (PIN) pin(process.pid, `0-${os.cpus().length - 1}`); // the browser and its server get the whole machine
  console.log(`\nglass-to-glass (/synth1 1280x720 25 fps 4 Mbit/s in Chromium, ${opt.frames} frames)`);
  glass = await measureGlass({ frames: Number(opt.frames) });
}

// ---- the figures, as Markdown for docs/BENCHMARKS.md ---------------------

const perCore = (x) => (x > 0 ? fmt(1 / x, 0) : '–');
if (results.some((r) => r.relay || r.ffmpeg)) {
  console.log(`\nCPU (share of one core over ${SECONDS} s; ${os.cpus().length} cores in all), ${N} streams each:\n`);
  console.log('| source | viewers | citycmd CPU (idle) | per stream | streams per core | ffmpeg CPU | per stream | streams per core | delivered fps citycmd / ffmpeg (lowest) | Mbit/s per viewer-stream | skipped | camera-sim CPU | viewers\' CPU (node) citycmd / ffmpeg |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|');
  for (const r of results) {
    const a = r.relay, f = r.ffmpeg;
    const cells = [
      r.res, r.viewers,
      a ? `${pct(a.cpu.citycmd)} (${pct(a.idle)})` : '–', a ? pct(a.cpu.citycmd / N) : '–', a ? perCore(a.cpu.citycmd / N) : '–',
      f ? pct(f.cpu.ffmpeg) : '–', f ? pct(f.cpu.ffmpeg / N) : '–', f ? perCore(f.cpu.ffmpeg / N) : '–',
      `${a ? `${fmt(a.d.fpsMean)} (${fmt(a.d.fpsMin)})` : '–'} / ${f ? `${fmt(f.d.fpsMean)} (${fmt(f.d.fpsMin)})` : '–'}`,
      fmt((a || f).d.mbitMean ?? f?.d.mbitMean, 2),
      a ? `${a.skipped} (${a.d.gaps} gaps)` : '–',
      `${a ? pct(a.cpu.sim) : '–'} / ${f ? pct(f.cpu.sim) : '–'}`,
      `${a ? pct(a.cpu.self) : '–'} / ${f ? pct(f.cpu.self) : '–'}`,
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}
if (results.some((r) => r.relay)) {
  console.log('\nLatency inside citycmd (citycmd_video_relay_seconds: access unit out of the depayloader → WebSocket write) and as the viewers saw it (arrival − decode time, above each tile\'s fastest):\n');
  console.log('| source | viewers | writes | server p50 | p95 | p99 | viewer jitter p50 | p95 | p99 | load during |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results.filter((x) => x.relay)) {
    const h = r.relay.hist, j = r.relay.jitter;
    const ms = (x) => (x === null ? '–' : `${fmt(x * 1000, 2)} ms`);
    console.log(`| ${r.res} | ${r.viewers} | ${h.count} | ${ms(h.q[0.5])} | ${ms(h.q[0.95])} | ${ms(h.q[0.99])} | ` +
      `${fmt(j.q[0.5], 1)} ms | ${fmt(j.q[0.95], 1)} ms | ${fmt(j.q[0.99], 1)} ms | ${r.relay.cpu.load.map((l) => l.toFixed(2)).join(' → ')} |`);
  }
}
if (ttff) {
  const q = (x) => `${fmt(x[0.5], 0)} / ${fmt(x[0.95], 0)} ms`;
  console.log('\nTime to first frame, from sending video.watch (p50 / p95):\n');
  console.log('| camera | tries | reply state | init segment | first keyframe fragment | at the live edge |');
  console.log('|---|---:|---|---:|---:|---:|');
  console.log(`| already watched (keyframe group cached) | ${ttff.warm.n} | ${ttff.warm.states.join(', ')} | ${q(ttff.warm.init)} | ${q(ttff.warm.key)} | ${q(ttff.warm.live)} |`);
  console.log(`| not running (cold: RTSP connect, wait for the camera's keyframe) | ${ttff.cold.n} | ${ttff.cold.states.join(', ')} | ${q(ttff.cold.init)} | ${q(ttff.cold.key)} | – |`);
}
if (glass) {
  console.log(`\nGlass-to-glass in Chromium (${glass.measured} frames, ${glass.unreadable} unreadable of ${glass.frames}; ${glass.jumps} jumps to the live edge): ` +
    `p50 ${fmt(glass.p[0.5], 0)} ms, p95 ${fmt(glass.p[0.95], 0)} ms, p99 ${fmt(glass.p[0.99], 0)} ms (painted → due on screen); ` +
    `painted → fragment at the browser p50 ${fmt(glass.pdoor[0.5], 0)} ms, p95 ${fmt(glass.pdoor[0.95], 0)} ms`);
}
console.log(`\nload at the end: ${loadNow()}`);
process.exit(0);
