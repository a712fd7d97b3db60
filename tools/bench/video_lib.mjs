// What tools/bench/video_bench.mjs and tools/bench/video_glass.mjs share:
// the simulated cameras (build/camera-sim), the source files they loop, a
// citycmd with the cameras registered, a /ws viewer that speaks the live
// video protocol (docs/API.md, "Live video") and keeps figures per tile,
// CPU accounting from /proc, and the Prometheus histogram of the server.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.CITYCMD_BIN ||= path.join(ROOT, 'build', 'citycmd');
const harness = await import(path.join(ROOT, 'tests/lib/harness.mjs'));
export const { startServer, addUser, login, tempDir, waitFor, freePort, sleep, sharedData } = harness;
// The test suite's npm packages (tools/install-deps.sh --test installs them).
export const requireTests = createRequire(path.join(ROOT, 'tests', 'package.json'));
const WebSocket = requireTests('ws');

export const SIM_BIN = process.env.CAMERA_SIM_BIN || path.join(path.dirname(harness.BIN), 'camera-sim');
export const SOURCES = path.join(ROOT, 'build', 'bench', 'video');

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// Spawns a child that dies with this process; resolves `exited` with { code, signal }.
export function spawnChild(cmd, args, opts = {}) {
  const proc = spawn(cmd, args, opts);
  children.add(proc);
  proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => { children.delete(proc); resolve({ code, signal }); }));
  return proc;
}

// Parses --name value pairs into a copy of defaults; exits with usage on a stranger.
export function parseArgs(script, defaults, argv = process.argv.slice(2)) {
  const opt = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in opt) || argv[i + 1] === undefined) {
      console.error(`usage: node ${script} ${Object.keys(opt).map((o) => `[--${o} ${opt[o] || '…'}]`).join(' ')}`);
      process.exit(2);
    }
    opt[k] = argv[i + 1];
  }
  return opt;
}

// ---- source files -------------------------------------------------------

export const RESOLUTIONS = { '720p': [1280, 720], '1080p': [1920, 1080] };

// The looped source of one resolution: the shared Big Buck Bunny clip (10 s,
// 24 fps; © Blender Foundation, CC BY 3.0) played twice, scaled and encoded
// once as H.264 at 4 Mbit/s (x264 in CBR mode, a keyframe at least every
// 2 s, no B-frames, as IP cameras send), 20 s. Cached under build/bench/video.
export function sourceFile(name) {
  const [w, h] = RESOLUTIONS[name];
  const file = path.join(SOURCES, `bbb-${name}-4mbit.mp4`);
  if (existsSync(file)) return file;
  mkdirSync(SOURCES, { recursive: true });
  const clip = sharedData('video', 'big_buck_bunny_10s.mp4');
  const part = `${file}.part`;
  const decode = ['filesrc', `location=${clip}`, '!', 'qtdemux', '!', 'h264parse', '!', 'avdec_h264', '!', 'c.'];
  const args = ['-q', '-e', 'concat', 'name=c', '!', 'videoconvert', '!', 'videoscale', '!',
    `video/x-raw,width=${w},height=${h},format=I420`, '!',
    'x264enc', 'bitrate=4000', 'pass=cbr', 'vbv-buf-capacity=1000', 'key-int-max=48', 'bframes=0',
    'speed-preset=faster', 'threads=2', '!', 'video/x-h264,profile=high', '!', 'h264parse', '!',
    'mp4mux', 'faststart=true', '!', 'filesink', `location=${part}`, ...decode, ...decode];
  console.log(`  encoding ${path.relative(ROOT, file)} (once; gst-launch-1.0, x264 at 4 Mbit/s)…`);
  const r = spawnSync('gst-launch-1.0', args, { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0) {
    rmSync(part, { force: true });
    throw new Error(`gst-launch-1.0 could not encode ${file}: ${r.stderr || r.error}`);
  }
  renameSync(part, file);
  return file;
}

// ---- camera-sim ---------------------------------------------------------

// Starts build/camera-sim; resolves once it printed every mount's URL:
// { proc, urls, port, stop() }.
export async function startSim(args, mounts) {
  if (!existsSync(SIM_BIN)) throw new Error(`${SIM_BIN} is missing: build the camera-sim target`);
  const port = await freePort();
  const proc = spawnChild(SIM_BIN, ['--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const urls = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`camera-sim not ready in 30 s:\n${out}${err}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const found = out.match(/rtsp:\/\/\S+/g) || [];
      if (found.length === mounts) { clearTimeout(timer); resolve(found); }
    });
    proc.exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`camera-sim exited (${code ?? signal}):\n${out}${err}`)); });
  });
  return {
    proc, urls, port, pid: proc.pid,
    async stop() { proc.kill('SIGTERM'); await Promise.race([proc.exited, sleep(5000)]); proc.kill('SIGKILL'); },
  };
}

// ---- citycmd with cameras --------------------------------------------------

const OP = { username: 'bench.op', password: 'bench password 1', roles: 'operator', agency: 'command' };
const VIEWER = { username: 'bench.viewer', password: 'bench password 1', roles: 'dispatcher', agency: 'command' };

// A fresh citycmd with one camera per URL (named "Bench n", agency police):
// { s, viewerToken, opToken, cameras: [id …] in the order of urls }.
export async function startCitycmd(urls, args = []) {
  const state = tempDir('citycmd-vbench-');
  addUser(state, OP);
  addUser(state, VIEWER);
  const s = await harness.startServer({ state, users: false, readyTimeout: 30000, args });
  const opToken = await login(s.url, OP.username, OP.password);
  const viewerToken = await login(s.url, VIEWER.username, VIEWER.password);
  const rows = ['name,agency,lon,lat,heading,fov,rtsp_url,codec'];
  urls.forEach((u, i) => rows.push(`Bench ${i + 1},police,${(7.42 + i * 0.0001).toFixed(4)},43.7395,90,60,${u},h264`));
  const auth = { authorization: `Bearer ${opToken}` };
  const imp = await fetch(`${s.url}/api/v1/cameras/import`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: rows.join('\n') + '\n' });
  if (imp.status !== 200) throw new Error(`camera import: ${imp.status} ${await imp.text()}`);
  const listed = await fetch(`${s.url}/api/v1/cameras`, { headers: { authorization: `Bearer ${viewerToken}` } });
  if (listed.status !== 200) throw new Error(`camera list: ${listed.status} ${await listed.text()}`);
  const list = (await listed.json()).cameras;
  const byName = new Map(list.map((c) => [c.name, c.id]));
  const cameras = urls.map((u, i) => byName.get(`Bench ${i + 1}`));
  if (cameras.some((c) => !c)) throw new Error('a camera of the import is missing from the list');
  const stop = async () => {
    try { await s.stop(); } finally { rmSync(state, { recursive: true, force: true }); }
  };
  return { s, opToken, viewerToken, cameras, stop };
}

// The server's /metrics text.
export async function scrape(s, token) {
  const r = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
  return r.text();
}

// A counter's value (summed over its label sets), or null when absent.
export function counter(text, name) {
  let sum = null;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum = (sum ?? 0) + Number(m[1]);
  return sum;
}

// A histogram's cumulative buckets, le → count (summed over other labels).
export function histogram(text, name) {
  const b = new Map();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const le = m[1].match(/le="([^"]+)"/);
    if (!le) continue;
    const k = le[1] === '+Inf' ? Infinity : Number(le[1]);
    b.set(k, (b.get(k) || 0) + Number(m[2]));
  }
  return b;
}

// Quantiles of the observations between two scrapes (Prometheus'
// histogram_quantile: linear within the bucket; the top finite bound when it
// falls in +Inf): { count, q: {0.5, 0.95, 0.99} } in seconds.
export function histogramDelta(before, after, qs = [0.5, 0.95, 0.99]) {
  const les = [...after.keys()].sort((a, b) => a - b);
  const cum = les.map((le) => after.get(le) - (before.get(le) || 0));
  const count = cum.length ? cum[cum.length - 1] : 0;
  const q = {};
  for (const want of qs) {
    if (!count) { q[want] = null; continue; }
    const rank = want * count;
    let i = cum.findIndex((c) => c >= rank);
    if (les[i] === Infinity) { q[want] = les[i - 1] ?? null; continue; }
    const lo = i > 0 ? les[i - 1] : 0, below = i > 0 ? cum[i - 1] : 0;
    q[want] = cum[i] === below ? les[i] : lo + (les[i] - lo) * (rank - below) / (cum[i] - below);
  }
  return { count, q };
}

// ---- CPU and the machine -----------------------------------------------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

// CPU seconds (user + system) a process has used so far; 0 once it is gone.
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch { return 0; }
}

// A meter over some processes (pids, or a function returning them) and
// this process: start(), then stop() gives each one's share of a core, and
// the load average seen.
export function cpuMeter(groups) {
  let t0, c0, self0, load0;
  const read = () => Object.fromEntries(Object.entries(groups).map(([k, pids]) =>
    [k, (typeof pids === 'function' ? pids() : pids).reduce((a, p) => a + cpuSeconds(p), 0)]));
  return {
    start() { t0 = performance.now(); c0 = read(); self0 = process.cpuUsage(); load0 = os.loadavg()[0]; },
    stop() {
      const wall = (performance.now() - t0) / 1000, c1 = read(), self = process.cpuUsage(self0);
      const out = { wall, load: [load0, os.loadavg()[0]], self: (self.user + self.system) / 1e6 / wall };
      for (const k of Object.keys(c1)) out[k] = (c1[k] - c0[k]) / wall;
      return out;
    },
  };
}

export function machine() {
  const cpus = os.cpus();
  const ff = spawnSync('ffmpeg', ['-version'], { encoding: 'utf8' });
  const gst = spawnSync('gst-launch-1.0', ['--version'], { encoding: 'utf8' });
  return {
    cpu: `${cpus[0]?.model?.trim()} × ${cpus.length}`,
    kernel: `${os.type()} ${os.release()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.version,
    ffmpeg: ff.status === 0 ? ff.stdout.split('\n')[0].replace(/ Copyright.*/, '') : 'not installed',
    gstreamer: gst.status === 0 ? (gst.stdout.match(/GStreamer [\d.]+/) || ['?'])[0] : 'not installed',
  };
}

// Binds a process (every thread it has; threads it starts later inherit
// it) to the given CPUs ("0", "1-3"); false when taskset failed.
export function pin(pid, cpus) {
  return spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' }).status === 0;
}

// Lowers the priority of every thread of a process (nice +n): the
// stand-ins for other machines (cameras, screens) yield to what is measured.
export function niceAll(pid, n) {
  let ok = true;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      ok = spawnSync('renice', ['-n', String(n), '-p', tid], { encoding: 'utf8' }).status === 0 && ok;
    }
  } catch { ok = false; }
  return ok;
}

// ---- statistics ----------------------------------------------------------

export function quantiles(values, qs = [0.5, 0.95, 0.99]) {
  const v = [...values].sort((a, b) => a - b);
  const out = {};
  for (const q of qs) out[q] = v.length ? v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))] : null;
  return out;
}

export const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));

// ---- ISO BMFF --------------------------------------------------------------

// The boxes directly inside buf[start, end): [{ type, body, end }].
export function boxes(buf, start = 0, end = buf.length) {
  const out = [];
  for (let p = start; p + 8 <= end;) {
    let size = buf.readUInt32BE(p), hdr = 8;
    const type = buf.toString('latin1', p + 4, p + 8);
    if (size === 1 && p + 16 <= end) { size = Number(buf.readBigUInt64BE(p + 8)); hdr = 16; } else if (size === 0) size = end - p;
    if (size < hdr || p + size > end) break;
    out.push({ type, body: p + hdr, end: p + size });
    p += size;
  }
  return out;
}

// The first box along a path of types (['moof', 'traf', 'tfdt']), or null.
export function findBox(buf, types, start = 0, end = buf.length) {
  let box = null;
  for (const t of types) {
    box = boxes(buf, start, end).find((b) => b.type === t);
    if (!box) return null;
    start = box.body;
    end = box.end;
  }
  return box;
}

// The track timescale of an init segment (moov/trak/mdia/mdhd), or null.
export function initTimescale(buf, start) {
  const mdhd = findBox(buf, ['moov', 'trak', 'mdia', 'mdhd'], start);
  if (!mdhd) return null;
  return buf.readUInt32BE(mdhd.body + (buf[mdhd.body] === 1 ? 20 : 12));
}

// The base media decode time of a media segment (moof/traf/tfdt), or null.
export function fragmentDts(buf, start) {
  const tfdt = findBox(buf, ['moof', 'traf', 'tfdt'], start);
  if (!tfdt) return null;
  return buf[tfdt.body] === 1 ? Number(buf.readBigUInt64BE(tfdt.body + 4)) : buf.readUInt32BE(tfdt.body + 4);
}

// Counts the top-level boxes of a byte stream fed in chunks (an fMP4 file
// as a muxer writes it): { bytes, count: { type: n } }.
export function boxCounter() {
  const st = { bytes: 0, count: {} };
  let skip = 0, head = Buffer.alloc(0);
  st.feed = (chunk) => {
    st.bytes += chunk.length;
    let p = 0;
    while (p < chunk.length) {
      if (skip > 0) { const n = Math.min(skip, chunk.length - p); skip -= n; p += n; continue; }
      const need = 8 - head.length;
      head = Buffer.concat([head, chunk.subarray(p, p + need)]);
      p += Math.min(need, chunk.length - p);
      if (head.length < 8) break;
      const size = head.readUInt32BE(0), type = head.toString('latin1', 4, 8);
      st.count[type] = (st.count[type] || 0) + 1;
      // 64-bit sizes (size 1) only for boxes over 4 GiB: not in live fragments.
      skip = size >= 8 ? size - 8 : Infinity;
      head = Buffer.alloc(0);
    }
  };
  return st;
}

// ---- a /ws viewer of the live video ---------------------------------------

// One WebSocket, as a console tab: JSON requests and the binary frames of
// the tiles it watches, with per-tile figures: inits, fragments, keyframe
// fragments, bytes, decode-time gaps (frames the server skipped for it) and,
// while `recording`, arrival − decode time per fragment (ms).
export class Viewer {
  constructor(wsUrl, token) {
    this.url = wsUrl;
    this.token = token;
    this.tiles = new Map();
    this.pending = new Map();
    this.listeners = new Set();
    this.states = [];
    this.recording = false;
    this.seq = 0;
  }

  async open() {
    this.ws = new WebSocket(this.url, ['citycmd.v1', `bearer.${this.token}`], { perMessageDeflate: false, maxPayload: 256 << 20 });
    this.ws.on('message', (data, isBinary) => (isBinary ? this.onBinary(data, performance.now()) : this.onText(data)));
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`/ws upgrade refused: ${res.statusCode}`)));
    });
    return this;
  }

  close() { this.ws.close(); return this.closed; }

  onText(data) {
    let msg;
    try { msg = JSON.parse(data.toString()); } catch { return; }
    for (const m of msg.type === 'batch' && Array.isArray(msg.data) ? msg.data : [msg]) {
      if (m.re && this.pending.has(m.re)) {
        const p = this.pending.get(m.re);
        this.pending.delete(m.re);
        clearTimeout(p.timer);
        if (m.type === 'error') p.reject(Object.assign(new Error(`${p.type}: ${JSON.stringify(m.error)}`), { error: m.error }));
        else p.resolve(m.data);
      } else if (m.type === 'video.state') {
        this.states.push({ t: performance.now(), ...m.data });
      }
    }
  }

  tile(n) {
    let t = this.tiles.get(n);
    if (!t) {
      t = { inits: 0, frags: 0, keyframes: 0, bytes: 0, gaps: 0, timescale: 90000, lastDts: null, steps: [], step: null, mediaMs: 0, offsets: [] };
      this.tiles.set(n, t);
    }
    return t;
  }

  onBinary(buf, now) {
    if (buf.length < 6) return;
    const kind = buf[0], n = buf.readUInt32BE(1);
    const t = this.tile(n);
    t.bytes += buf.length;
    let ev;
    if (kind === 1) {
      const l = buf[5];
      t.codec = buf.toString('latin1', 6, 6 + l);
      t.timescale = initTimescale(buf, 6 + l) || t.timescale;
      t.inits++;
      t.lastDts = null;
      t.steps = [];
      ev = { kind: 'init', tile: n, t: now, codec: t.codec };
    } else if (kind === 2) {
      const key = (buf[5] & 1) === 1, dts = fragmentDts(buf, 6);
      t.frags++;
      if (key) t.keyframes++;
      if (dts !== null && t.lastDts !== null) {
        const step = dts - t.lastDts;
        // The frame step: the median of the first steps (a source may repeat
        // a time, e.g. where a looped file starts again).
        if (t.steps.length < 15) {
          t.steps.push(step);
          if (t.steps.length === 15) t.step = [...t.steps].sort((a, b) => a - b)[7];
        } else if (step > 2.5 * t.step) {
          t.gaps++; // a hole of more than two and a half frames: skipped frames
        }
      }
      if (dts !== null) {
        // The media clock, in ms: decode time, except that a time repeated
        // (a step under half a frame: a looped file's seam) counts as one
        // frame, so one seam does not read as a frame of delay ever after.
        const step = t.lastDts === null ? 0 : dts - t.lastDts;
        t.mediaMs = t.lastDts === null ? (dts / t.timescale) * 1000
          : t.mediaMs + ((t.step && step < t.step / 2 ? t.step : step) / t.timescale) * 1000;
        t.lastDts = dts;
        if (this.recording) t.offsets.push(now - t.mediaMs);
      }
      ev = { kind: 'frag', tile: n, t: now, key, dts, timescale: t.timescale };
    } else {
      return;
    }
    for (const l of this.listeners) if (l(ev)) this.listeners.delete(l);
  }

  // Resolves with the first binary event pred accepts (timeout: rejects).
  next(pred, timeout = 15000, what = 'a video frame') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.listeners.delete(l); reject(new Error(`no ${what} in ${timeout} ms`)); }, timeout);
      const l = (ev) => {
        if (!pred(ev)) return false;
        clearTimeout(timer);
        resolve(ev);
        return true;
      };
      this.listeners.add(l);
    });
  }

  request(type, data, timeout = 15000) {
    const id = `b${++this.seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${type}: no reply in ${timeout} ms`)); }, timeout);
      this.pending.set(id, { resolve, reject, timer, type });
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  watch(tile, camera) { this.tile(tile).camera = camera; return this.request('video.watch', { tile, camera }); }
  unwatch(tile) { return this.request('video.unwatch', { tile }); }
}

// Opens `count` viewers, each watching every camera on tiles 1..n.
export async function openViewers(s, token, cameras, count) {
  const viewers = [];
  for (let v = 0; v < count; v++) {
    const viewer = await new Viewer(s.wsUrl, token).open();
    await Promise.all(cameras.map((c, i) => viewer.watch(i + 1, c)));
    viewers.push(viewer);
  }
  return viewers;
}

// The figures of every tile of the viewers: a copy of the counters.
export function snapshotTiles(viewers) {
  return viewers.map((v) => new Map([...v.tiles].map(([n, t]) => [n, { frags: t.frags, bytes: t.bytes, gaps: t.gaps, keyframes: t.keyframes, inits: t.inits }])));
}
