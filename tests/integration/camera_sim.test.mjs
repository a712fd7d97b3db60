// tools/camera-sim.c (build/camera-sim, beside the citycmd binary) watched
// by GStreamer's own RTSP client, as the video module will watch it: the file
// cameras serve the shared Big Buck Bunny clip (© Blender Foundation, CC BY
// 3.0) as H.264 1280x720 and loop it seamlessly, the synthetic camera serves
// live video, wrong credentials are refused, and --stop-after and SIGINT end
// the process cleanly. Needs gst-launch-1.0 and gst-discoverer-1.0
// (tools/install-deps.sh --test).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { BIN, freePort, haveCommand, sharedData } from '../lib/harness.mjs';

const SIM = process.env.CAMERA_SIM_BIN || path.join(path.dirname(BIN), 'camera-sim');
const VIDEO = () => sharedData('video', 'big_buck_bunny_10s.mp4');
const FILE_SECONDS = 10; // the clip's length: a longer read crosses a loop point
const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

// Runs a command to its end (or SIGINT after `interrupt` ms counted from the
// first line `startOn` matches; SIGKILL after `timeout` ms): { code, signal, out, ms }.
function run(cmd, args, { timeout = 20000, startOn, interrupt } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    let timer = null;
    const onData = (d) => {
      out += d;
      if (interrupt && !timer && (!startOn || startOn.test(out))) {
        timer = setTimeout(() => p.kill('SIGINT'), interrupt);
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    const killer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('close', (code, signal) => {
      clearTimeout(killer);
      clearTimeout(timer);
      children.delete(p);
      resolve({ code, signal, out, ms: Date.now() - t0 });
    });
  });
}

// Starts the simulator; resolves once it has printed a URL for every mount.
function startSim(args, mounts) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const proc = spawn(SIM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let out = '', err = '';
    const exited = new Promise((r) => proc.on('exit', (code, signal) => {
      children.delete(proc);
      r({ code, signal, ms: Date.now() - t0 });
    }));
    const timer = setTimeout(() => reject(new Error(`camera-sim not ready in 10 s:\n${out}${err}`)), 10000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const urls = out.match(/rtsp:\/\/\S+/g) || [];
      if (urls.length === mounts) { clearTimeout(timer); resolve({ proc, urls, out, exited, startedAt: t0, stderr: () => err }); }
    });
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`camera-sim exited (${code ?? signal}):\n${out}${err}`)); });
  });
}

// Reads H.264 from an RTSP URL for `seconds` from its first frame: the
// presentation times (s) of the access units, in the order they came. With
// buffer-mode=none they come from the server's RTP timestamps alone (the
// default would smooth a jump back into arrival times).
async function readVideo(url, seconds) {
  const r = await run('gst-launch-1.0', ['-e', 'rtspsrc', `location=${url}`, 'protocols=tcp', 'buffer-mode=none',
    '!', 'rtph264depay', '!', 'h264parse', '!', 'fakesink', 'sync=false', 'silent=false', '-v'],
  { startOn: /chain .*pts: \d/, interrupt: seconds * 1000, timeout: (seconds + 15) * 1000 });
  const pts = [...r.out.matchAll(/chain .*?pts: (\d+):(\d\d):(\d\d\.\d+)/g)]
    .map((m) => Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]));
  return { ...r, pts };
}

describe('camera-sim', { concurrency: true }, () => {
  let sim, secured;
  const readers = []; // the clients of `sim`, which the SIGINT test waits for
  const reading = (p) => { readers.push(p); return p; };
  const STOP_AFTER = 8;
  const auth = { user: 'viewer', password: 'camera password 1' };

  before(async () => {
    for (const cmd of ['gst-launch-1.0', 'gst-discoverer-1.0']) {
      assert.ok(haveCommand(cmd), `${cmd} is missing: tools/install-deps.sh --test installs it`);
    }
    const [port, port2] = [await freePort(), await freePort()];
    [sim, secured] = await Promise.all([
      startSim(['--port', String(port), '--file', VIDEO(), '--cameras', '2', '--synthetic', '1',
        '--width', '640', '--height', '360', '--fps', '25', '--bitrate', '800'], 3),
      startSim(['--port', String(port2), '--cameras', '1', '--synthetic', '0',
        '--user', auth.user, '--password', auth.password, '--stop-after', String(STOP_AFTER)], 1),
    ]);
  });
  after(async () => {
    for (const s of [sim, secured]) if (s && s.proc.exitCode === null) s.proc.kill('SIGKILL');
  });

  test('--list prints one URL per mount and exits', () => {
    const r = spawnSync(SIM, ['--list', '--port', '9554', '--cameras', '2', '--synthetic', '3'], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.match(/rtsp:\/\/\S+/g), ['cam1', 'cam2', 'synth1', 'synth2', 'synth3'].map((m) => `rtsp://127.0.0.1:9554/${m}`));
    assert.match(r.stdout, /Big Buck Bunny © Blender Foundation, CC BY 3\.0/);
  });

  test('the mounts are /cam1, /cam2 and /synth1', () => {
    assert.deepEqual(sim.urls.map((u) => new URL(u).pathname), ['/cam1', '/cam2', '/synth1']);
  });

  test('/cam1 delivers H.264 1280x720, live', async () => {
    const r = await reading(run('gst-discoverer-1.0', ['-v', sim.urls[0]], { timeout: 20000 }));
    assert.match(r.out, /video #\d+: video\/x-h264/, r.out);
    assert.match(r.out, /width=\(int\)1280/, r.out);
    assert.match(r.out, /height=\(int\)720/, r.out);
    assert.match(r.out, /Live: yes/, r.out);
  });

  test('a client reading /cam1 for 12 s gets more than 11 s of continuous video across the loop', async () => {
    const { pts, out } = await reading(readVideo(sim.urls[0], 12));
    assert.ok(pts.length >= 11 * 24, `only ${pts.length} frames at 24 fps:\n${out.slice(-2000)}`);
    // Decode order: B-frames reorder by a few frames, a restarted loop would jump back seconds.
    let high = -Infinity;
    for (const t of pts) {
      assert.ok(t > high - 0.5, `presentation time went back from ${high} s to ${t} s`);
      high = Math.max(high, t);
    }
    const sorted = [...pts].sort((a, b) => a - b);
    const span = sorted.at(-1) - sorted[0];
    const gap = Math.max(...sorted.slice(1).map((t, i) => t - sorted[i]));
    assert.ok(span >= 11 && span > FILE_SECONDS, `${span.toFixed(2)} s of video`);
    assert.ok(gap < 0.5, `a ${gap.toFixed(3)} s hole in the video`);
  });

  test('/synth1 delivers live video', async () => {
    const { pts, out } = await reading(readVideo(sim.urls[2], 3));
    assert.ok(pts.length >= 50, `only ${pts.length} frames at 25 fps in 3 s:\n${out.slice(-2000)}`);
    assert.match(out, /width=\(int\)640, height=\(int\)360/);
  });

  test('wrong or missing credentials are refused, the right ones let a client in', async () => {
    const url = secured.urls[0];
    const wrong = await run('gst-launch-1.0', ['rtspsrc', `location=${url}`, 'protocols=tcp',
      `user-id=${auth.user}`, 'user-pw=wrong password', '!', 'fakesink'], { timeout: 15000 });
    assert.notEqual(wrong.code, 0, wrong.out);
    assert.match(wrong.out, /Unauthorized/, wrong.out);
    const none = await run('gst-discoverer-1.0', [url], { timeout: 15000 });
    assert.match(none.out, /Unauthorized/, none.out);
    const right = await run('gst-discoverer-1.0', ['-v', url.replace('rtsp://', `rtsp://${auth.user}:${encodeURIComponent(auth.password)}@`)], { timeout: 15000 });
    assert.match(right.out, /video\/x-h264/, right.out);
    assert.doesNotMatch(right.out, /Unauthorized/);
  });

  test('--stop-after ends the process on time, cleanly', async () => {
    const r = await secured.exited;
    assert.equal(r.code, 0, secured.stderr());
    assert.ok(r.ms >= STOP_AFTER * 1000 && r.ms < STOP_AFTER * 1000 + 4000, `exited after ${r.ms} ms`);
  });

  test('SIGINT stops it cleanly after its clients', { timeout: 30000 }, async () => {
    await Promise.allSettled(readers); // the tests above, which started first
    const t0 = Date.now();
    sim.proc.kill('SIGINT');
    const r = await sim.exited;
    assert.equal(r.code, 0, sim.stderr());
    assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
  });
});
