#!/usr/bin/env node
// Glass-to-glass latency of live video through citycmd, measured in a real
// browser: build/camera-sim's synthetic camera (/synth1) paints the wall
// clock into every frame before encoding it, as a row of black and white
// blocks (tools/camera-sim.c, "The clock blocks"); citycmd relays the camera
// over /ws; headless Chromium (Debian's chromium through playwright-core)
// plays it with Media Source Extensions as the console's player does (keep
// to the live edge: more than 0.5 s behind, jump to 0.1 s before the end),
// and on every frame it presents (requestVideoFrameCallback) draws the
// frame to a canvas, reads the blocks back and subtracts the painted time
// from the time the frame is due on screen. Both clocks are this machine's.
//
//   node tools/bench/video_glass.mjs [--frames 300] [--width 1280] [--height 720]
//        [--fps 25] [--bitrate 4000] [--skip 50]
//
// What it covers: capture → x264 (ultrafast, zerolatency) → RTP over RTSP/TCP
// → citycmd (depayload, parse, fMP4, WebSocket) → the browser's MSE buffer →
// software decode → composition. It misses the camera's sensor and a real
// monitor's scan-out.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startSim, startCitycmd, requireTests, parseArgs, quantiles, fmt, scrape, counter,
} from './video_lib.mjs';

const CHROMIUM = process.env.CITYCMD_CHROMIUM || '/usr/bin/chromium';

// Runs in the page: plays a camera through /ws and MSE, decodes the clock
// blocks of every presented frame; resolves with the measurements.
async function player({ wsUrl, token, camera, frames, skip, timeoutMs }) {
  const CATCH_UP_S = 0.5, LIVE_EDGE_S = 0.1, KEEP_S = 10;
  const BLOCKS = 35, BITS = 32;
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  await new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));

  const out = { lat: [], cb: [], door: [], unreadable: 0, frames: 0, appended: 0, jumps: 0, errors: [], codec: null, size: null,
    waiting: 0, maxRanges: 0, ranges: '', dtsJumps: 0 };
  video.addEventListener('waiting', () => { out.waiting++; });
  let sb = null;
  const queue = [];
  const pump = () => {
    if (!sb || sb.updating || !queue.length) return;
    try { sb.appendBuffer(queue.shift()); out.appended++; } catch (e) { out.errors.push(String(e)); }
  };
  const keepLive = () => {
    const b = sb.buffered;
    if (!b.length) return;
    if (b.length > out.maxRanges) {
      out.maxRanges = b.length;
      out.ranges = Array.from({ length: b.length }, (_, i) => `${b.start(i).toFixed(3)}-${b.end(i).toFixed(3)}`).join(' ');
    }
    const start = b.start(b.length - 1), end = b.end(b.length - 1);
    if (video.currentTime < start || end - video.currentTime > CATCH_UP_S) {
      video.currentTime = Math.max(start, end - LIVE_EDGE_S);
      out.jumps++;
    }
    if (video.paused) video.play().catch(() => {});
    if (!sb.updating && video.currentTime - b.start(0) > KEEP_S + 2) sb.remove(0, video.currentTime - KEEP_S);
  };

  // Decode-time steps of more than twice the one before: Media Source
  // Extensions take them for a discontinuity and drop frames up to the
  // next keyframe.
  // When each fragment arrived (wall clock, ms) by its decode time, to
  // split the latency at the browser's door.
  let lastDts = null, lastStep = null, timescale = 90000;
  const arrived = new Map();
  const noteInit = (b) => {
    for (let i = 0; i + 28 < b.length; i++) {
      if (b[i] !== 0x6d || b[i + 1] !== 0x64 || b[i + 2] !== 0x68 || b[i + 3] !== 0x64) continue; // 'mdhd'
      timescale = new DataView(b.buffer, b.byteOffset).getUint32(i + (b[i + 4] === 1 ? 24 : 16));
      return;
    }
  };
  const noteDts = (b) => {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 6; i + 20 < Math.min(b.length, 256); i++) {
      if (b[i] !== 0x74 || b[i + 1] !== 0x66 || b[i + 2] !== 0x64 || b[i + 3] !== 0x74) continue; // 'tfdt'
      const dts = b[i + 4] === 1 ? Number(dv.getBigUint64(i + 8)) : dv.getUint32(i + 8);
      arrived.set(dts, performance.timeOrigin + performance.now());
      if (arrived.size > 500) arrived.delete(arrived.keys().next().value);
      if (lastDts !== null) {
        const step = dts - lastDts;
        if (lastStep !== null && (step > 2 * lastStep || step <= 0)) out.dtsJumps++;
        lastStep = step;
      }
      lastDts = dts;
      return;
    }
  };
  const ws = new WebSocket(wsUrl, ['citycmd.v1', `bearer.${token}`]);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => ws.send(JSON.stringify({ type: 'video.watch', id: 'glass', data: { tile: 1, camera } }));
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const m = JSON.parse(e.data);
      for (const x of m.type === 'batch' ? m.data : [m]) if (x.type === 'error') out.errors.push(JSON.stringify(x));
      return;
    }
    const b = new Uint8Array(e.data);
    if (b[0] === 1) {
      const l = b[5];
      out.codec = new TextDecoder().decode(b.subarray(6, 6 + l));
      if (!sb) {
        sb = ms.addSourceBuffer(`video/mp4; codecs="${out.codec}"`);
        sb.mode = 'segments';
        sb.addEventListener('updateend', () => { keepLive(); pump(); });
      }
      queue.push(b.subarray(6 + l));
      noteInit(b.subarray(6 + l));
    } else if (b[0] === 2) {
      queue.push(b.subarray(6));
      noteDts(b);
    }
    pump();
  };

  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  return new Promise((resolve) => {
    const finish = () => { ws.close(); resolve(out); };
    setTimeout(finish, timeoutMs);
    const onFrame = (now, meta) => {
      const w = meta.width, h = meta.height;
      out.size = `${w}x${h}`;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      // The block geometry of camera-sim's paint_clock().
      const block = Math.max(16, Math.floor(w / 40) & ~1);
      const y = (h - block) & ~1;
      const px = ctx.getImageData(0, y, block * BLOCKS, block).data;
      const bit = (i) => {
        let sum = 0;
        const cx = i * block + (block >> 1), cy = block >> 1;
        for (let dy = -2; dy < 2; dy++) for (let dx = -2; dx < 2; dx++) {
          const o = ((cy + dy) * block * BLOCKS + cx + dx) * 4;
          sum += px[o] + px[o + 1] + px[o + 2];
        }
        return sum / 48 > 128 ? 1 : 0;
      };
      const bits = Array.from({ length: BLOCKS }, (_, i) => bit(i));
      let value = 0, ones = 0;
      for (let i = 0; i < BITS; i++) { value = value * 2 + bits[2 + i]; ones += bits[2 + i]; }
      out.frames++;
      if (bits[0] !== 1 || bits[1] !== 0 || (ones & 1) !== bits[BLOCKS - 1]) {
        out.unreadable++;
      } else if (out.frames > skip) {
        const mod = (x) => ((x % 2 ** 32) + 2 ** 32) % 2 ** 32;
        const signed = (d) => (d >= 2 ** 31 ? d - 2 ** 32 : d);
        // Due on screen, in the wall clock; and when this callback ran.
        const shown = performance.timeOrigin + meta.expectedDisplayTime;
        out.lat.push(signed(mod(Math.round(shown) - value)));
        out.cb.push(signed(mod(Date.now() - value)));
        // No B-frames: a frame's presentation time is its decode time.
        const dts = Math.round(meta.mediaTime * timescale);
        for (const k of [dts, dts - 1, dts + 1]) {
          if (arrived.has(k)) { out.door.push(signed(mod(Math.round(arrived.get(k)) - value))); break; }
        }
      }
      if (out.lat.length >= frames) finish();
      else video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
}

// Starts camera-sim (one synthetic camera) and citycmd, plays the camera in
// Chromium: { frames, unreadable, p: {0.5, 0.95, 0.99} (ms, due on screen),
// cb: the same at the frame callback, jumps, codec, size }.
export async function measureGlass({ frames = 300, width = 1280, height = 720, fps = 25, bitrate = 4000, skip = 50 } = {}) {
  const { chromium } = requireTests('playwright-core');
  const sim = await startSim(['--cameras', '0', '--synthetic', '1', '--width', String(width), '--height', String(height),
    '--fps', String(fps), '--bitrate', String(bitrate)], 1);
  let c = null, browser = null;
  try {
    c = await startCitycmd(sim.urls);
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--autoplay-policy=no-user-gesture-required'],
    });
    const context = await browser.newContext({ viewport: { width: Math.min(width, 1920), height: Math.min(height, 1080) }, bypassCSP: true });
    const page = await context.newPage();
    // A page of the server's own origin, so /ws takes it as the server's.
    await page.goto(`${c.s.url}/healthz`);
    await page.setContent('<!doctype html><title>glass</title><body style="margin:0;background:#000"></body>');
    const timeoutMs = Math.max(30000, ((frames + skip) / fps) * 3000);
    const r = await page.evaluate(player, { wsUrl: c.s.wsUrl, token: c.viewerToken, camera: c.cameras[0], frames, skip, timeoutMs });
    const metrics = await scrape(c.s, c.opToken);
    r.skipped = counter(metrics, 'citycmd_video_fragments_skipped_total') ?? counter(metrics, 'citycmd_video_fragments_skipped');
    if (r.errors.length) throw new Error(`the player failed: ${r.errors.join('; ')}`);
    if (!r.lat.length) throw new Error(`no readable frame (${r.frames} presented, ${r.unreadable} unreadable, ${r.appended} appended)`);
    return { ...r, p: quantiles(r.lat), pcb: quantiles(r.cb), pdoor: quantiles(r.door), measured: r.lat.length };
  } finally {
    await browser?.close();
    await c?.stop();
    await sim.stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const opt = parseArgs('tools/bench/video_glass.mjs', { frames: '300', width: '1280', height: '720', fps: '25', bitrate: '4000', skip: '50' });
  const o = Object.fromEntries(Object.entries(opt).map(([k, v]) => [k, Number(v)]));
  console.log(`video_glass: /synth1 ${o.width}x${o.height} ${o.fps} fps ${o.bitrate} kbit/s through citycmd into Chromium, ${o.frames} frames after ${o.skip}`);
  const g = await measureGlass(o);
  console.log(`  ${g.measured} frames measured (${g.frames} presented, ${g.unreadable} unreadable), ${g.codec} ${g.size}, ${g.jumps} jumps to the live edge, ${g.waiting} stalls, ${g.skipped} fragments the server skipped, ${g.dtsJumps} decode-time jumps, at most ${g.maxRanges} buffered ranges ${g.ranges}`);
  console.log(`  glass-to-glass (painted → due on screen): p50 ${fmt(g.p[0.5], 0)} ms, p95 ${fmt(g.p[0.95], 0)} ms, p99 ${fmt(g.p[0.99], 0)} ms`);
  console.log(`  painted → its fragment at the browser (${g.door.length} matched): p50 ${fmt(g.pdoor[0.5], 0)} ms, p95 ${fmt(g.pdoor[0.95], 0)} ms, p99 ${fmt(g.pdoor[0.99], 0)} ms`);
  console.log(`  painted → the browser's frame callback:   p50 ${fmt(g.pcb[0.5], 0)} ms, p95 ${fmt(g.pcb[0.95], 0)} ms, p99 ${fmt(g.pcb[0.99], 0)} ms`);
  process.exit(0);
}
