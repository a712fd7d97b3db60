// Live video through the real server from the real camera simulator
// (build/camera-sim): a viewer's tile gets an init segment with the
// stream's codec string and fragments from a keyframe, several tiles share
// one WebSocket and one ingest per camera, a viewer that stops reading is
// skipped to the next keyframe without the server's memory growing,
// snapshots are JPEGs of the stream's size, a clip saved on an incident
// plays (gst-discoverer-1.0 reads its duration) and starts on a keyframe
// with the pre-roll asked for, a camera that fails shows why and comes back
// when the simulator does, and a stream stops once nobody watches it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { BIN, startServer, addUser, login, request, tempDir, freePort, waitFor, sleep, haveCommand } from '../lib/harness.mjs';

const SIM = process.env.CAMERA_SIM_BIN || path.join(path.dirname(BIN), 'camera-sim');
const PW = 'video password 1';
const SUP = { username: 'sup.police', roles: 'supervisor', agency: 'police' };
const FIRE = { username: 'disp.fire', roles: 'dispatcher', agency: 'fire' };
const HERE = { lon: 7.4265, lat: 43.7395 };
const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

function startSim(port) {
  return new Promise((resolve, reject) => {
    const proc = spawn(SIM, ['--port', String(port), '--cameras', '1', '--synthetic', '1', '--width', '320',
      '--height', '240', '--fps', '25'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`camera-sim not ready:\n${out}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      if ((out.match(/rtsp:\/\/\S+/g) || []).length === 2) { clearTimeout(timer); resolve(proc); }
    });
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('exit', () => { children.delete(proc); clearTimeout(timer); });
  });
}

// ---- ISO BMFF reading ----
const be32 = (b, o) => b.readUInt32BE(o);
function boxes(b, start = 0, end = b.length) {
  const out = [];
  for (let o = start; o + 8 <= end;) {
    const size = be32(b, o);
    if (size < 8 || o + size > end) throw new Error(`bad box at ${o}`);
    out.push({ type: b.toString('latin1', o + 4, o + 8), start: o, body: o + 8, end: o + size });
    o += size;
  }
  return out;
}
const child = (b, box, type) => boxes(b, box.body, box.end).find((x) => x.type === type);
// A media fragment: its decode time, first sample's flags and sample durations.
function fragmentInfo(b, only = true) {
  const top = only ? boxes(b) : boxes(b).slice(0, 2);
  assert.deepEqual(top.map((x) => x.type), ['moof', 'mdat']);
  const traf = child(b, top[0], 'traf');
  const tfdt = child(b, traf, 'tfdt');
  const trun = child(b, traf, 'trun');
  const n = be32(b, trun.body + 4);
  const durations = [];
  for (let i = 0; i < n; i++) durations.push(be32(b, trun.body + 12 + 16 * i));
  return {
    dts: Number(b.readBigUInt64BE(tfdt.body + 4)),
    sync: ((be32(b, trun.body + 12 + 8) >> 16) & 1) === 0,
    durations,
  };
}
// The SOF marker's size of a JPEG.
function jpegSize(b) {
  assert.equal(b.readUInt16BE(0), 0xffd8, 'a JPEG starts with SOI');
  assert.equal(b.readUInt16BE(b.length - 2), 0xffd9, 'and ends with EOI');
  for (let o = 2; o + 9 < b.length;) {
    const marker = b.readUInt16BE(o), len = b.readUInt16BE(o + 2);
    if (marker >= 0xffc0 && marker <= 0xffc3) return { height: b.readUInt16BE(o + 5), width: b.readUInt16BE(o + 7) };
    o += 2 + len;
  }
  throw new Error('no SOF marker');
}

// A viewer: JSON messages, and the binary frames by tile.
async function viewer(wsUrl, token) {
  const ws = new WebSocket(wsUrl, ['citycmd.v1', `bearer.${token}`]);
  const v = { ws, json: [], tiles: new Map(), bytes: 0, waiters: [] };
  const tile = (id) => {
    if (!v.tiles.has(id)) v.tiles.set(id, { inits: [], frags: [] });
    return v.tiles.get(id);
  };
  const wake = () => { for (const w of [...v.waiters]) if (w.pred()) { v.waiters.splice(v.waiters.indexOf(w), 1); w.resolve(); } };
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const m = JSON.parse(data.toString());
      for (const x of m.type === 'batch' ? m.data : [m]) v.json.push(x);
      wake();
      return;
    }
    const b = Buffer.from(data);
    v.bytes += b.length;
    const kind = b[0], id = be32(b, 1);
    if (kind === 1) {
      const l = b[5];
      tile(id).inits.push({ codec: b.toString('latin1', 6, 6 + l), init: b.subarray(6 + l), at: tile(id).frags.length });
    } else {
      assert.equal(kind, 2, 'binary frames are init segments (1) or fragments (2)');
      tile(id).frags.push({ key: (b[5] & 1) === 1, ...fragmentInfo(b.subarray(6)), t: Date.now() });
    }
    wake();
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  v.until = (pred, timeout = 10000, what = 'condition') => pred() ? Promise.resolve() : new Promise((resolve, reject) => {
    const w = { pred, resolve };
    setTimeout(() => {
      if (v.waiters.includes(w)) { v.waiters.splice(v.waiters.indexOf(w), 1); reject(new Error(`timed out waiting for ${what}`)); }
    }, timeout);
    v.waiters.push(w);
  });
  v.reply = async (pred, what) => {
    await v.until(() => v.json.some(pred), 10000, what);
    const m = v.json.find(pred);
    v.json.splice(v.json.indexOf(m), 1);
    return m;
  };
  let n = 0;
  v.call = async (type, data) => {
    const id = `r${++n}`;
    ws.send(JSON.stringify({ type, id, data }));
    return v.reply((m) => m.re === id, `the answer to ${type}`);
  };
  v.tile = tile;
  v.close = () => new Promise((r) => { ws.once('close', r); ws.close(); });
  return v;
}

// Every fragment after a gap in decode time starts with a keyframe, and
// every first fragment after an init segment does.
function checkContinuity(t) {
  let gaps = 0;
  const starts = new Set(t.inits.map((i) => i.at));
  for (let i = 0; i < t.frags.length; i++) {
    const f = t.frags[i];
    if (starts.has(i)) {
      assert.ok(f.key && f.sync, `fragment ${i} follows an init segment and starts with a keyframe`);
      continue;
    }
    const p = t.frags[i - 1];
    // A skip drops frames up to a keyframe (a second or more apart here);
    // a live fragment's duration is an estimate, off by a frame at most.
    if (f.dts - p.dts > 12000) {
      gaps++;
      assert.ok(f.key && f.sync, `fragment ${i} after a skip (dts ${p.dts} → ${f.dts}) starts with a keyframe`);
    }
    assert.equal(f.key, f.sync, 'the keyframe flag says what the trun says');
  }
  return gaps;
}

async function metric(url, name) {
  const r = await request(url, 'GET', '/metrics');
  const m = r.text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

describe('live video', () => {
  let s, simPort, sim, sup, fire;
  const cams = {};
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'citycmd-video-'));
  const as = (tok, method, p, body) => request(s.url, method, p, body, { authorization: `Bearer ${tok}` });

  before(async () => {
    for (const cmd of ['gst-discoverer-1.0']) assert.ok(haveCommand(cmd), `${cmd} is needed (tools/install-deps.sh --test)`);
    simPort = await freePort();
    sim = await startSim(simPort);
    const state = tempDir();
    addUser(state, { ...SUP, password: PW });
    addUser(state, { ...FIRE, password: PW });
    s = await startServer({ state, args: ['--video-idle', '2', '--video-viewer-lag', '400', '--video-max-tiles', '8', '--video-ring', '20'] });
    sup = await login(s.url, SUP.username, PW);
    fire = await login(s.url, FIRE.username, PW);
    const make = async (key, name, url, agency = 'police') => {
      const r = await as(sup, 'POST', '/api/v1/cameras', { name, agency, ...HERE, heading: 0, fov: 90, rtsp_url: url });
      assert.equal(r.status, 201, r.text);
      cams[key] = r.body.camera.id;
    };
    await make('file', 'Harbour (file)', `rtsp://127.0.0.1:${simPort}/cam1`);
    await make('synth', 'Square (clock)', `rtsp://127.0.0.1:${simPort}/synth1`);
    await make('dead', 'Nowhere', `rtsp://127.0.0.1:${await freePort()}/none`);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
    for (const c of children) c.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a tile gets the codec string and an init segment, then fragments from a keyframe; two tiles share one stream', async () => {
    const v = await viewer(s.wsUrl, s.token);
    const r = await v.call('video.watch', { tile: 7, camera: cams.file });
    assert.equal(r.type, 'video.watch', JSON.stringify(r));
    assert.equal(r.data.tile, 7);
    assert.equal(r.data.camera, cams.file);
    await v.until(() => v.tile(7).frags.length >= 50, 15000, '50 fragments');
    const t = v.tile(7);
    assert.equal(t.inits[0].codec, 'avc1.64001f', 'the Big Buck Bunny clip is High profile, level 3.1');
    assert.deepEqual(boxes(t.inits[0].init).map((b) => b.type), ['ftyp', 'moov']);
    assert.ok(t.frags[0].key && t.frags[0].sync, 'the first fragment starts with a keyframe');
    assert.equal(checkContinuity(t), 0, 'a healthy viewer misses nothing');
    for (const f of t.frags) assert.equal(f.durations.length, 1, 'one frame per fragment');
    // A second tile of the same camera starts at once from the kept keyframe group.
    await v.call('video.watch', { tile: 8, camera: cams.file });
    await v.until(() => v.tile(8).frags.length >= 5, 5000, 'the second tile');
    assert.ok(v.tile(8).frags[0].key);
    assert.equal(v.tile(8).inits[0].codec, 'avc1.64001f');
    assert.equal(await metric(s.url, 'citycmd_video_streams'), 1, 'one ingest for both tiles');
    // Unwatching stops the tile's frames.
    await v.call('video.unwatch', { tile: 7 });
    const n = v.tile(7).frags.length;
    await sleep(500);
    assert.ok(v.tile(7).frags.length <= n + 2, 'no more frames for an unwatched tile');
    await v.close();
  });

  test('bad watch requests are refused by name; a camera of another agency is not found', async () => {
    const v = await viewer(s.wsUrl, s.token);
    for (const [data, code] of [
      [{ tile: 0, camera: cams.file }, 'invalid_field'],
      [{ tile: 70000, camera: cams.file }, 'invalid_field'],
      [{ tile: 'a', camera: cams.file }, 'invalid_field'],
      [{ tile: 1, camera: 'C-x' }, 'invalid_field'],
      [{ tile: 1, camera: 'C-999' }, 'not_found'],
      [{ tile: 1 }, 'invalid_field'],
    ]) {
      const r = await v.call('video.watch', data);
      assert.equal(r.type, 'error', JSON.stringify(r));
      assert.equal(r.error.code, code, JSON.stringify(data));
    }
    for (let i = 1; i <= 8; i++) assert.equal((await v.call('video.watch', { tile: i, camera: cams.synth })).type, 'video.watch');
    const over = await v.call('video.watch', { tile: 9, camera: cams.synth });
    assert.equal(over.error.code, 'too_many_tiles');
    assert.equal((await v.call('video.watch', { tile: 3, camera: cams.file })).type, 'video.watch', 'a tile in use may change camera');
    await v.close();
    const f = await viewer(s.wsUrl, fire);
    assert.equal((await f.call('video.watch', { tile: 1, camera: cams.file })).error.code, 'not_found');
    const shot = await as(fire, 'GET', `/api/v1/cameras/${cams.file}/snapshot.jpg`);
    assert.equal(shot.status, 403);
    await f.close();
  });

  test('a viewer that stops reading is skipped to the next keyframe and the server does not grow', async () => {
    const v = await viewer(s.wsUrl, s.token);
    for (let i = 1; i <= 8; i++) await v.call('video.watch', { tile: i, camera: i % 2 ? cams.file : cams.synth });
    await v.until(() => v.tile(1).frags.length >= 10 && v.tile(2).frags.length >= 10, 10000, 'frames on both');
    const skipped0 = await metric(s.url, 'citycmd_video_fragments_skipped_total');
    const rss0 = s.rssKiB();
    v.ws._socket.pause(); // stop reading: the kernel buffers fill, then the server's queue would
    let peak = rss0;
    for (let i = 0; i < 24; i++) { await sleep(500); peak = Math.max(peak, s.rssKiB()); }
    const skipped = await metric(s.url, 'citycmd_video_fragments_skipped_total') - skipped0;
    v.ws._socket.resume();
    await sleep(3000);
    const n1 = v.tile(1).frags.length;
    await v.until(() => v.tile(1).frags.length > n1 + 25, 10000, 'frames again after resuming');
    assert.ok(skipped > 100, `fragments were skipped (${skipped})`);
    assert.ok(peak - rss0 < 48 * 1024, `the server grew ${(peak - rss0) / 1024} MiB while a viewer stalled`);
    let gaps = 0;
    for (let i = 1; i <= 8; i++) gaps += checkContinuity(v.tile(i));
    assert.ok(gaps >= 1, 'the viewer saw a skip');
    await v.close();
  });

  test('a snapshot is a JPEG of the stream\'s size, for a watched and an idle camera', async () => {
    for (const [cam, size] of [[cams.file, { width: 1280, height: 720 }], [cams.synth, { width: 320, height: 240 }]]) {
      const r = await fetch(`${s.url}/api/v1/cameras/${cam}/snapshot.jpg`, { headers: { authorization: `Bearer ${s.token}` } });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get('content-type'), 'image/jpeg');
      assert.deepEqual(jpegSize(Buffer.from(await r.arrayBuffer())), size);
    }
    const none = await as(s.token, 'GET', '/api/v1/cameras/C-999/snapshot.jpg');
    assert.equal(none.status, 404);
  });

  test('a clip saved on an incident plays, starts on a keyframe and has the pre-roll asked for; a snapshot joins it', async () => {
    const call = await as(s.token, 'POST', '/api/v1/calls', {
      line: '110', caller: '+377 600 000 009', location: HERE, category: 'police/robbery', text: 'shop robbed',
    });
    assert.equal(call.status, 201, call.text);
    const inc = call.body.call.incident_id;
    // The camera runs for a while first, so the ring holds the pre-roll.
    const v = await viewer(s.wsUrl, s.token);
    await v.call('video.watch', { tile: 1, camera: cams.synth });
    await sleep(5000);
    const asked = await as(s.token, 'POST', `/api/v1/incidents/${inc}/clips`, { camera: cams.synth, before: 3, after: 2 });
    assert.equal(asked.status, 202, asked.text);
    const shot = await as(s.token, 'POST', `/api/v1/incidents/${inc}/snapshots`, { camera: cams.synth });
    assert.equal(shot.status, 201, shot.text);
    assert.equal(shot.body.media.kind, 'snapshot');
    let clip;
    await waitFor(async () => {
      const r = await as(s.token, 'GET', `/api/v1/incidents/${inc}`);
      clip = r.body.incident.media.find((m) => m.kind === 'clip');
      return clip;
    }, { timeout: 10000, what: 'the clip on the incident' });
    assert.ok(!clip.error, JSON.stringify(clip));
    assert.ok(clip.before_s >= 3 && clip.before_s < 3 + 1.1, `pre-roll ${clip.before_s} s: from the keyframe at or before 3 s (1 s apart)`);
    // From that keyframe to the end asked for, less a frame or two in flight.
    assert.ok(Math.abs(clip.duration_s - (clip.before_s + 2)) < 0.3, `duration ${clip.duration_s}, pre-roll ${clip.before_s}`);
    const file = await fetch(`${s.url}${clip.url}`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('content-type'), 'video/mp4');
    const mp4 = Buffer.from(await file.arrayBuffer());
    const first = boxes(mp4).find((b) => b.type === 'moof');
    assert.ok(fragmentInfo(mp4.subarray(first.start), false).sync, 'the clip starts with a keyframe');
    const where = path.join(scratch, 'clip.mp4');
    writeFileSync(where, mp4);
    const d = spawnSync('gst-discoverer-1.0', [where], { encoding: 'utf8', timeout: 20000 });
    const m = d.stdout.match(/Duration: (\d+):(\d\d):(\d\d\.\d+)/);
    assert.ok(m, d.stdout + d.stderr);
    const secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
    assert.ok(Math.abs(secs - clip.duration_s) < 0.2, `gst-discoverer reads ${secs} s, the record says ${clip.duration_s}`);
    // The snapshot on the record is there too, and both are on the timeline.
    const rec = (await as(s.token, 'GET', `/api/v1/incidents/${inc}`)).body.incident;
    const snap = rec.media.find((x) => x.kind === 'snapshot');
    const jpg = await fetch(`${s.url}${snap.url}`, { headers: { authorization: `Bearer ${s.token}` } });
    assert.deepEqual(jpegSize(Buffer.from(await jpg.arrayBuffer())), { width: 320, height: 240 });
    assert.equal(rec.timeline.filter((e) => e.type === 'incident.media').length, 2);
    // Bad input, and media of another incident's name.
    for (const [body, field] of [[{ camera: cams.synth, before: -1 }, 'before'], [{ camera: cams.synth, before: 21 }, 'before'],
      [{ camera: cams.synth, before: 10, after: 200 }, 'after'], [{}, 'camera']]) {
      const r = await as(s.token, 'POST', `/api/v1/incidents/${inc}/clips`, body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.field, field);
    }
    assert.equal((await as(s.token, 'GET', `/api/v1/incidents/${inc}/media/..%2Fstate.db`)).status, 404);
    assert.equal((await as(s.token, 'POST', '/api/v1/incidents/I-999999/clips', { camera: cams.synth })).status, 404);
    await v.close();
  });

  test('a camera that cannot be reached says so; the simulator stopped and restarted brings the stream back', async () => {
    const v = await viewer(s.wsUrl, s.token);
    await v.call('video.watch', { tile: 1, camera: cams.dead });
    const dead = await v.reply((m) => m.type === 'video.state' && m.data.tile === 1 && m.data.state === 'retrying', 'retrying');
    assert.equal(dead.data.reason, 'unreachable');
    await v.call('video.watch', { tile: 2, camera: cams.synth });
    await v.until(() => v.tile(2).frags.length >= 10, 10000, 'frames');
    sim.kill('SIGKILL');
    const down = await v.reply((m) => m.type === 'video.state' && m.data.tile === 2 && m.data.state === 'retrying', 'the stream failing');
    assert.match(down.data.reason, /ended|stalled|unreachable|error/);
    const inits = v.tile(2).inits.length;
    sim = await startSim(simPort);
    await v.reply((m) => m.type === 'video.state' && m.data.tile === 2 && m.data.state === 'playing', 'playing again');
    await v.until(() => v.tile(2).inits.length > inits && v.tile(2).frags.length > v.tile(2).inits.at(-1).at + 10, 40000, 'a new init segment and frames');
    checkContinuity(v.tile(2));
    await v.close();
  });

  test('a watched camera moved to another source starts again from it; a removed one says so and sends nothing more', async () => {
    const r = await as(sup, 'POST', '/api/v1/cameras', { name: 'Moving', agency: 'police', ...HERE, heading: 0, fov: 90, rtsp_url: `rtsp://127.0.0.1:${simPort}/cam1` });
    assert.equal(r.status, 201, r.text);
    const id = r.body.camera.id;
    const v = await viewer(s.wsUrl, s.token);
    await v.call('video.watch', { tile: 5, camera: id });
    await v.until(() => v.tile(5).frags.length >= 5, 10000, 'frames from /cam1');
    const moved = await as(sup, 'PATCH', `/api/v1/cameras/${id}`, { rtsp_url: `rtsp://127.0.0.1:${simPort}/synth1` });
    assert.equal(moved.status, 200, moved.text);
    await v.reply((m) => m.type === 'video.state' && m.data.tile === 5 && m.data.state === 'connecting', 'connecting to the new source');
    await v.until(() => v.tile(5).inits.length >= 2 && v.tile(5).frags.length > v.tile(5).inits[1].at + 5, 15000, 'frames from /synth1');
    const t = v.tile(5);
    assert.notDeepEqual(t.inits[1].init, t.inits[0].init, 'another encoder, another init segment');
    assert.ok(t.frags[t.inits[1].at].key, 'the new source starts on a keyframe');
    const del = await as(sup, 'DELETE', `/api/v1/cameras/${id}`);
    assert.equal(del.status, 204, del.text);
    const gone = await v.reply((m) => m.type === 'video.state' && m.data.tile === 5 && m.data.state === 'idle', 'the removal');
    assert.equal(gone.data.reason, 'removed');
    await sleep(300);
    const n = t.frags.length;
    await sleep(1000);
    assert.equal(t.frags.length, n, 'nothing more from a removed camera');
    const again = await v.call('video.watch', { tile: 6, camera: id });
    assert.equal(again.type, 'error', JSON.stringify(again));
    assert.equal(again.error.code, 'not_found');
    await v.close();
  });

  test('a stream stops a while after its last viewer', async () => {
    await waitFor(async () => (await metric(s.url, 'citycmd_video_streams')) === 0, { timeout: 8000, what: 'every stream stopped' });
  });
});
