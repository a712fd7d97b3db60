// ONVIF against the real server and a MOCK ONVIF camera (tools/onvif-mock.c,
// build/onvif-mock beside the citycmd binary: no real camera is available
// where the tests run). Discovery (WS-Discovery to the mock's UDP port,
// then each device described: its make, profiles and stream URIs), a
// network sweep that finds the same camera twice and reports it once, a
// network too large refused, wrong credentials reported per device, a
// discovered camera registered and then shown as registered, PTZ moves and
// stops that reach the camera with the exact values sent (the mock prints
// each command it takes), who may point which camera (403, audited), a
// fixed camera or one without an ONVIF address refused (409), a camera
// that refuses the credentials (502 camera_error), every PTZ command in
// the audit trail, and the credentials in no reply and no log line.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { BIN, startServer, addUser, login, request, tempDir, waitFor, sleep } from '../lib/harness.mjs';

const MOCK = process.env.ONVIF_MOCK_BIN || path.join(path.dirname(BIN), 'onvif-mock');
const PW = 'onvif test password 1';
const CAM_USER = 'onvif-admin';
const CAM_PW = 'Cam3ra-s3cret!';
const MAIN_URI = 'rtsp://127.0.0.1:8554/cam1';
const SUB_URI = 'rtsp://127.0.0.1:8554/cam1_sub';
// The mock takes this long over each move (a slow camera), and prints it
// only then: a stop sent meanwhile that overtook it would print first.
const MOVE_DELAY_MS = 150;
const USERS = {
  polSup: { username: 'sup.police', roles: 'supervisor', agency: 'police' },
  polDisp: { username: 'disp.police', roles: 'dispatcher', agency: 'police' },
  fireDisp: { username: 'disp.fire', roles: 'dispatcher', agency: 'fire' },
  polTaker: { username: 'taker.police', roles: 'call_taker', agency: 'police' },
  auditor: { username: 'aud.gov', roles: 'auditor', agency: 'government' },
};

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

// Starts the mock; resolves with its ready line, its JSON lines so far and a stop().
function startMock(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(MOCK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    const lines = [];
    let buf = '', err = '';
    const exited = new Promise((r) => proc.on('exit', (code, signal) => { children.delete(proc); r({ code, signal }); }));
    const timer = setTimeout(() => reject(new Error(`onvif-mock not ready in 5 s: ${err}`)), 5000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.event === 'ready') {
          clearTimeout(timer);
          resolve({ ...line, lines, async stop() { proc.kill('SIGTERM'); return exited; } });
        }
      }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`onvif-mock exited (${code}): ${err}`)); });
  });
}

describe('ONVIF discovery and PTZ', () => {
  let s, mock;
  const tok = {};
  const texts = [];
  const call = async (who, method, p, body) => {
    const r = await request(s.url, method, p, body, { authorization: `Bearer ${tok[who]}` });
    texts.push(r.text);
    return r;
  };
  const ptzLines = () => mock.lines.filter((l) => l.event === 'ptz');
  const camera = (name, extra = {}) => ({
    name, agency: 'police', lon: 7.4265, lat: 43.7395, heading: 90, fov: 60, rtsp_url: MAIN_URI, ...extra,
  });
  let ptzCam;

  before(async () => {
    mock = await startMock(['--rtsp', MAIN_URI, '--rtsp-sub', SUB_URI, '--user', CAM_USER, '--password', CAM_PW,
      '--manufacturer', 'Mock Cameras', '--model', 'MOCK-PTZ-1', '--serial', 'MOCK0001',
      '--move-delay-ms', String(MOVE_DELAY_MS)]);
    const state = tempDir();
    for (const u of Object.values(USERS)) addUser(state, { ...u, password: PW });
    s = await startServer({ state, args: ['--onvif-discovery', `127.0.0.1:${mock.udp_port}`] });
    for (const [k, u] of Object.entries(USERS)) tok[k] = await login(s.url, u.username, PW);
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
    await mock?.stop();
  });

  test('discovery finds the camera and describes it: make, profiles, stream URIs, PTZ', async () => {
    const r = await call('polSup', 'POST', '/api/v1/cameras/discover', { username: CAM_USER, password: CAM_PW, wait_ms: 800 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.devices.length, 1, r.text);
    const d = r.body.devices[0];
    assert.equal(d.address, mock.address);
    assert.deepEqual(d.xaddrs, [mock.device_url]);
    assert.equal(d.onvif_url, mock.device_url);
    assert.equal(d.error, null);
    assert.equal(d.manufacturer, 'Mock Cameras');
    assert.equal(d.model, 'MOCK-PTZ-1');
    assert.equal(d.serial, 'MOCK0001');
    assert.equal(d.ptz, true);
    assert.equal(d.registered, null);
    assert.deepEqual(d.profiles, [
      { token: 'main', name: 'MainStream', stream_uri: MAIN_URI, encoding: 'H264', width: 1920, height: 1080, ptz: true },
      { token: 'sub', name: 'SubStream', stream_uri: SUB_URI, encoding: 'H264', width: 640, height: 360, ptz: false },
    ]);
    // No body at all: discovery without credentials, the camera says it wants them.
    const bare = await request(s.url, 'POST', '/api/v1/cameras/discover', undefined, { authorization: `Bearer ${tok.polSup}` });
    assert.equal(bare.status, 200, bare.text);
    assert.equal(bare.body.devices.length, 1);
    assert.match(bare.body.devices[0].error, /wants credentials and none are set/);
  });

  test('a network sweep reaching the camera twice reports it once; too large a network is refused', async () => {
    const r = await call('polSup', 'POST', '/api/v1/cameras/discover', { network: '127.0.0.1/32', wait_ms: 500, username: CAM_USER, password: CAM_PW });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.devices.length, 1, r.text);
    assert.equal(r.body.devices[0].address, mock.address);
    const big = await call('polSup', 'POST', '/api/v1/cameras/discover', { network: '10.0.0.0/16' });
    assert.equal(big.status, 400, big.text);
    assert.equal(big.body.error.field, 'network');
    assert.match(big.body.error.message, /larger than \/20/);
    for (const [body, field] of [[{ network: 'ten/8' }, 'network'], [{ wait_ms: 50 }, 'wait_ms'],
      [{ wait_ms: 'soon' }, 'wait_ms'], [{ user: 'x' }, 'user'], [{ password: 5 }, 'password']]) {
      const bad = await call('polSup', 'POST', '/api/v1/cameras/discover', body);
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.error.field, field, bad.text);
    }
    const notJson = await call('polSup', 'POST', '/api/v1/cameras/discover', '{nope');
    assert.equal(notJson.status, 400);
  });

  test('wrong credentials: the device is listed with a clear error', async () => {
    const r = await call('polSup', 'POST', '/api/v1/cameras/discover', { username: CAM_USER, password: 'wrong', wait_ms: 500 });
    assert.equal(r.status, 200, r.text);
    const d = r.body.devices[0];
    assert.match(d.error, /refused the credentials.*NotAuthorized/);
    assert.deepEqual(d.profiles, []);
    assert.ok(mock.lines.some((l) => l.event === 'auth_failed' && l.why === 'wrong password digest'));
  });

  test('a discovered camera registered with its ONVIF address shows as registered', async () => {
    const r = await call('polSup', 'POST', '/api/v1/cameras', camera('Harbour PTZ', {
      ptz: true, onvif_url: mock.device_url, onvif_profile: 'main', username: CAM_USER, password: CAM_PW,
    }));
    assert.equal(r.status, 201, r.text);
    ptzCam = r.body.camera;
    assert.equal(ptzCam.onvif_url, mock.device_url);
    assert.equal(ptzCam.onvif_profile, 'main');
    const d = await call('polSup', 'POST', '/api/v1/cameras/discover', { wait_ms: 500 });
    assert.equal(d.body.devices[0].registered, ptzCam.id, d.text);
    // Bad ONVIF fields are refused, naming them.
    const bad = await call('polSup', 'PATCH', `/api/v1/cameras/${ptzCam.id}`, { onvif_url: 'rtsp://127.0.0.1/x' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.field, 'onvif_url');
  });

  test('PTZ moves and stops reach the camera with the exact values sent', async () => {
    const before = ptzLines().length;
    const mv = await call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { pan: 0.5, tilt: -0.25, zoom: 0.125, timeout_ms: 1500 });
    assert.equal(mv.status, 200, mv.text);
    assert.deepEqual(mv.body, { camera: ptzCam.id, command: 'move', pan: 0.5, tilt: -0.25, zoom: 0.125, timeout_ms: 1500 });
    const st = await call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz/stop`);
    assert.equal(st.status, 200, st.text);
    assert.deepEqual(st.body, { camera: ptzCam.id, command: 'stop' });
    // Only pan given: tilt and zoom are 0, no timeout.
    const pan = await call('polSup', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { pan: -1 });
    assert.equal(pan.status, 200, pan.text);
    await waitFor(() => ptzLines().length >= before + 3, { what: 'three PTZ commands at the mock' });
    assert.deepEqual(ptzLines().slice(before), [
      { event: 'ptz', command: 'ContinuousMove', profile: 'main', pan: 0.5, tilt: -0.25, zoom: 0.125, timeout: 'PT1.500S' },
      { event: 'ptz', command: 'Stop', profile: 'main', pan_tilt: true, zoom: true },
      { event: 'ptz', command: 'ContinuousMove', profile: 'main', pan: -1, tilt: 0, zoom: 0, timeout: null },
    ]);
    // Commands sent while the camera is still busy with a move wait their
    // turn: a stop never overtakes the move before it.
    const n = ptzLines().length;
    const pending = [call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { tilt: 0.75 })];
    await sleep(MOVE_DELAY_MS / 3);
    pending.push(call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz/stop`));
    await sleep(MOVE_DELAY_MS / 3);
    pending.push(call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { zoom: -0.5 }));
    const burst = await Promise.all(pending);
    assert.deepEqual(burst.map((r) => r.status), [200, 200, 200]);
    await waitFor(() => ptzLines().length >= n + 3, { what: 'the burst at the mock' });
    assert.deepEqual(ptzLines().slice(n).map((l) => [l.command, l.tilt, l.zoom]),
      [['ContinuousMove', 0.75, 0], ['Stop', undefined, true], ['ContinuousMove', 0, -0.5]]);
    // Without a profile token, the first profile with PTZ is moved.
    const noProfile = await call('polSup', 'PATCH', `/api/v1/cameras/${ptzCam.id}`, { onvif_profile: null });
    assert.equal(noProfile.status, 200, noProfile.text);
    const m = ptzLines().length;
    assert.equal((await call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { pan: 0.25 })).status, 200);
    await waitFor(() => ptzLines().length > m, { what: 'the move at the mock' });
    assert.equal(ptzLines()[m].profile, 'main');
  });

  test('bad PTZ bodies are refused before anything is sent', async () => {
    const n = ptzLines().length;
    for (const [body, field] of [[{ pan: 1.5 }, 'pan'], [{ tilt: -2 }, 'tilt'], [{ zoom: 'in' }, 'zoom'], [{}, 'pan'],
      [{ pan: 0.1, timeout_ms: 10 }, 'timeout_ms'], [{ pan: 0.1, timeout_ms: 1.5 }, 'timeout_ms'], [{ pan: 0.1, speed: 1 }, 'speed']]) {
      const r = await call('polDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.error.field, field, r.text);
    }
    assert.equal((await call('polDisp', 'POST', '/api/v1/cameras/C-9999/ptz', { pan: 0.1 })).status, 404);
    assert.equal((await call('polDisp', 'POST', '/api/v1/cameras/nope/ptz/stop')).status, 400);
    assert.equal(ptzLines().length, n);
  });

  test('who may point which camera: cameras.control for its agency (403, audited)', async () => {
    const n = ptzLines().length;
    const taker = await call('polTaker', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { pan: 0.1 });
    assert.equal(taker.status, 403, taker.text);
    const fire = await call('fireDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz`, { pan: 0.1 });
    assert.equal(fire.status, 403, fire.text);
    assert.equal((await call('fireDisp', 'POST', `/api/v1/cameras/${ptzCam.id}/ptz/stop`)).status, 403);
    // Discovery needs cameras.manage.
    assert.equal((await call('polDisp', 'POST', '/api/v1/cameras/discover', {})).status, 403);
    assert.equal(ptzLines().length, n);
    const audit = await call('auditor', 'GET', '/api/v1/audit?outcome=denied&limit=1000');
    assert.equal(audit.status, 200, audit.text);
    const denied = audit.body.entries.filter((e) => e.action === 'cameras.control');
    assert.ok(denied.some((e) => e.actor === 'taker.police'), audit.text);
    assert.ok(denied.some((e) => e.actor === 'disp.fire' && e.object === `/api/v1/cameras/${ptzCam.id}/ptz`));
  });

  test('a fixed camera, or one without an ONVIF address, is refused with 409', async () => {
    const fixed = await call('polSup', 'POST', '/api/v1/cameras', camera('Fixed', { onvif_url: mock.device_url }));
    assert.equal(fixed.status, 201, fixed.text);
    const r = await call('polDisp', 'POST', `/api/v1/cameras/${fixed.body.camera.id}/ptz`, { pan: 0.1 });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.error.code, 'not_ptz');
    const bare = await call('polSup', 'POST', '/api/v1/cameras', camera('No ONVIF', { ptz: true }));
    const r2 = await call('polDisp', 'POST', `/api/v1/cameras/${bare.body.camera.id}/ptz/stop`);
    assert.equal(r2.status, 409, r2.text);
    assert.equal(r2.body.error.code, 'no_onvif');
  });

  test('a camera that refuses the credentials or does not answer: 502 camera_error', async () => {
    const wrong = await call('polSup', 'POST', '/api/v1/cameras', camera('Wrong creds', {
      ptz: true, onvif_url: mock.device_url, username: CAM_USER, password: 'not-the-password',
    }));
    assert.equal(wrong.status, 201, wrong.text);
    const n = ptzLines().length;
    const r = await call('polDisp', 'POST', `/api/v1/cameras/${wrong.body.camera.id}/ptz`, { pan: 0.3 });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.body.error.code, 'camera_error');
    assert.match(r.body.error.message, /refused the credentials/);
    assert.equal(ptzLines().length, n);
    // Nothing listens there: still a clear 502, quickly.
    const gone = await call('polSup', 'POST', '/api/v1/cameras', camera('Gone', { ptz: true, onvif_url: 'http://127.0.0.1:1/onvif/device_service' }));
    const t0 = Date.now();
    const r2 = await call('polDisp', 'POST', `/api/v1/cameras/${gone.body.camera.id}/ptz/stop`);
    assert.equal(r2.status, 502, r2.text);
    assert.match(r2.body.error.message, /cannot connect to the camera/);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('every PTZ command is in the audit trail; credentials are in no reply and no log line', async () => {
    const audit = await call('auditor', 'GET', '/api/v1/audit?limit=1000');
    assert.equal(audit.status, 200, audit.text);
    const ptz = audit.body.entries.filter((e) => e.action.startsWith('camera.ptz'));
    const ok = ptz.filter((e) => e.outcome === 'ok' && e.object === `camera/${ptzCam.id.slice(2)}`);
    assert.ok(ok.some((e) => e.action === 'camera.ptz' && e.actor === 'disp.police' && e.detail === 'pan=0.5 tilt=-0.25 zoom=0.125 timeout_ms=1500'), JSON.stringify(ok));
    assert.ok(ok.some((e) => e.action === 'camera.ptz.stop' && e.actor === 'disp.police'));
    assert.equal(ok.length, 7, JSON.stringify(ok)); // 5 moves and 2 stops on that camera
    const failed = ptz.filter((e) => e.outcome === 'failed');
    assert.ok(failed.some((e) => /refused the credentials/.test(e.detail)), JSON.stringify(failed));
    assert.ok(audit.body.entries.some((e) => e.action === 'cameras.discover' && e.actor === 'sup.police' && e.outcome === 'ok'));
    for (const t of texts) {
      assert.ok(!t.includes(CAM_PW) && !t.includes('not-the-password'), t);
    }
    assert.ok(!s.lines.some((l) => l.includes(CAM_PW) || l.includes('not-the-password')));
  });
});
