// Live video in real headless Chromium (Debian's build, with H.264 in its
// Media Source Extensions) against the real server and the real camera
// simulator (build/camera-sim): synthetic cameras whose every frame carries
// the wall clock, to the millisecond, in a row of black and white blocks.
//  - The video wall (/wall.html): four live tiles, all over the page's one
//    WebSocket; the pictures change from one moment to the next and show
//    the present (the clock read back off the decoded frames is within
//    seconds of now); a tile enlarges and comes back; a snapshot opens; a
//    camera that cannot be reached says so over its tile, as does one in a
//    codec the browser cannot play (H.265 here); the grid grows
//    and shrinks and the server is told which tiles stopped; after a break
//    of the connection the tiles play again on the new one.
//  - The console: the selected incident lists the cameras near it, those
//    that see it first; "Watch" plays one in the panel; a snapshot and a
//    clip are attached to the incident and listed on it; the cameras' map
//    layer opens a live picture from a click on a camera.
// Nothing leaves the machine.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import {
  BIN, startServer, tempDir, addUser, login, post, freePort, waitFor,
} from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const SIM = process.env.CAMERA_SIM_BIN || path.join(path.dirname(BIN), 'camera-sim');
// Wide enough for the simulator's clock blocks (560 px), small enough for
// four encoders and four decoders on a small machine.
const VIDEO = { width: 640, height: 360, fps: 15, bitrate: 400 };
const CLOCK = { block: 16, bits: 32 };
const PW = 'camera wall pass 1';
const OPERATOR = { username: 'cam.operator', password: PW, roles: 'operator', agency: 'command' };
const DISPATCHER = {
  username: 'li.na', password: PW, roles: 'dispatcher', agency: 'command', displayName: 'Li Na',
};
// The scene, and places around it in metres (a degree of latitude is
// 111 195 m, of longitude about 80 340 m here).
const SCENE = { lon: 7.4246, lat: 43.7384 };
const at = (east, north) => ({ lon: SCENE.lon + east / 80340, lat: SCENE.lat + north / 111195 });
const bearer = (t) => ({ authorization: `Bearer ${t}` });

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

// Starts the simulator; resolves once it printed a URL for every mount.
function startSim(args, mounts) {
  return new Promise((resolve, reject) => {
    const proc = spawn(SIM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`camera-sim not ready in 10 s:\n${out}${err}`)), 10000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const urls = out.match(/rtsp:\/\/\S+/g) || [];
      if (urls.length === mounts) { clearTimeout(timer); resolve({ proc, urls }); }
    });
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      clearTimeout(timer);
      reject(new Error(`camera-sim exited (${code ?? signal}):\n${out}${err}`));
    });
  });
}

// In the page: each <video> of the selector drawn into a canvas: its size,
// a small grey copy (to compare two moments), the share of it that is
// bright and the wall clock of the frame (ms mod 2^32, null when the blocks
// do not read).
function sampleVideos({ selector, clock }) {
  return [...document.querySelectorAll(selector)].map((v) => {
    const w = v.videoWidth;
    const h = v.videoHeight;
    if (!w || !h) return { w, h, grey: null, bright: 0, clock: null, now: Date.now() };
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, w, h);
    const px = g.getImageData(0, 0, w, h).data;
    const now = Date.now();
    const lum = (x, y) => {
      const i = (y * w + x) * 4;
      return (px[i] + px[i + 1] + px[i + 2]) / 3;
    };
    // The picture above the clock row, 4x4 blocks averaged.
    const grey = [];
    let bright = 0;
    for (let y = 0; y + 4 <= h - clock.block * 2; y += 4) {
      for (let x = 0; x + 4 <= w; x += 4) {
        let s = 0;
        for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 4; dx++) s += lum(x + dx, y + dy);
        grey.push(Math.round(s / 16));
        if (s / 16 > 128) bright++;
      }
    }
    // The clock blocks: white, black, 32 bits (most significant first), parity.
    const y = ((h - clock.block) & ~1) + clock.block / 2;
    const bit = (i) => (lum(i * clock.block + clock.block / 2, y) > 128 ? 1 : 0);
    let ms = null;
    if (bit(0) === 1 && bit(1) === 0) {
      let value = 0;
      let ones = 0;
      for (let i = 0; i < clock.bits; i++) {
        const b = bit(2 + i);
        value = value * 2 + b;
        ones += b;
      }
      if (bit(2 + clock.bits) === (ones & 1)) ms = value;
    }
    return { w, h, grey, bright: bright / grey.length, clock: ms, now };
  });
}

// How far behind the wall clock a frame was shown (ms), from a sample.
const lagMs = (s) => (s.clock === null ? null : ((s.now % 2 ** 32) - s.clock + 2 ** 32) % 2 ** 32);

// The share of the small grey copy that changed between two samples.
function changed(a, b) {
  assert.ok(a.grey && b.grey && a.grey.length === b.grey.length, 'two samples of the same size');
  let n = 0;
  for (let i = 0; i < a.grey.length; i++) if (Math.abs(a.grey[i] - b.grey[i]) > 8) n++;
  return n / a.grey.length;
}

async function signIn(page, user) {
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
}

// What the players in a selector say: [{ state, reason, frames, codec, camera }].
const players = (page, selector) => page.$$eval(selector, (els) => els.map((e) => ({
  state: e.dataset.state, reason: e.dataset.reason, frames: Number(e.dataset.frames || 0),
  codec: e.dataset.codec, camera: e.dataset.camera, text: e.querySelector('.vp-state')?.textContent,
})));

describe('live video in the browser', () => {
  let browser, sim, sim265, s, dispToken, deadPort;
  const cams = {}; // name -> camera

  before(async () => {
    browser = await launchChromium();
    const port = await freePort();
    deadPort = await freePort(); // nothing listens here
    sim = await startSim(['--port', String(port), '--cameras', '0', '--synthetic', '4',
      '--width', String(VIDEO.width), '--height', String(VIDEO.height), '--fps', String(VIDEO.fps),
      '--bitrate', String(VIDEO.bitrate)], 4);
    // One camera in H.265, which many browsers cannot play (tiny: x265 is slow).
    sim265 = await startSim(['--port', String(await freePort()), '--cameras', '0', '--synthetic', '1', '--h265',
      '--width', '192', '--height', '108', '--fps', '5', '--bitrate', '100'], 1);
    const state = tempDir();
    addUser(state, OPERATOR);
    addUser(state, DISPATCHER);
    s = await startServer({ state, args: ['--city', CITY] });
    const op = await login(s.url, OPERATOR.username, OPERATOR.password);
    dispToken = await login(s.url, DISPATCHER.username, DISPATCHER.password);
    // Cameras around the scene: two that see it, one beside it looking
    // away, one far out of range, and one whose address nothing answers.
    const make = async (name, place, fields) => {
      const r = await post(s.url, '/api/v1/cameras', { name, agency: 'police', ...place, fov: 60, ...fields }, bearer(op));
      assert.equal(r.status, 201, r.text);
      cams[name] = r.body.camera;
    };
    await make('Quay west', at(-60, 0), { heading: 90, rtsp_url: sim.urls[0] });
    await make('Avenue south', at(0, -120), { heading: 0, rtsp_url: sim.urls[1] });
    await make('Rooftop north', at(0, 40), { heading: 0, rtsp_url: sim.urls[2] });
    await make('Harbour east', at(320, 0), { heading: 270, range_m: 150, rtsp_url: sim.urls[3] });
    await make('Dead camera', at(-2000, 0), { heading: 0, rtsp_url: `rtsp://127.0.0.1:${deadPort}/none` });
    await make('Pier H.265', at(-3000, 0), { heading: 0, codec: 'h265', rtsp_url: sim265.urls[0] });
  });

  after(async () => {
    await browser?.close();
    if (s) { await s.stop(); s.cleanup(); }
    for (const x of [sim, sim265]) if (x && x.proc.exitCode === null) x.proc.kill('SIGINT');
  });

  test('the video wall: four live tiles over one WebSocket, enlarge, snapshot, a dead camera, grid sizes', async () => {
    const { context, page, blocked, errors } = await openPage(browser, { viewport: { width: 1600, height: 900 } });
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    });
    // A fresh layout: the first four cameras in order.
    await page.addInitScript(() => localStorage.removeItem('citycmd.wall'));
    try {
      await page.goto(`${s.url}/wall.html`);
      const codecs = await page.evaluate(() => ({
        mse: typeof MediaSource !== 'undefined',
        h264: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c01e"'),
      }));
      assert.ok(codecs.mse && codecs.h264,
        `this Chromium cannot play H.264 through Media Source Extensions (${JSON.stringify(codecs)}): `
        + 'the tests need Debian\'s chromium, which has the proprietary codecs (CITYCMD_CHROMIUM names another)');
      await signIn(page, DISPATCHER);
      await page.click('#grid-sizes button[data-size="4"]');
      await page.waitForFunction(() => document.querySelectorAll('#wall-grid .wall-tile').length === 4);
      // The first four cameras, one per tile.
      await page.waitForFunction(() => [...document.querySelectorAll('#wall-grid .wall-tile')].every((t) => t.dataset.camera));
      const shown = await page.$$eval('#wall-grid .wall-tile', (ts) => ts.map((t) => t.dataset.camera));
      const first4 = ['Quay west', 'Avenue south', 'Rooftop north', 'Harbour east'].map((n) => cams[n].id);
      assert.deepEqual(shown, first4);

      // Every tile plays: frames appended and a picture of the camera's size.
      await waitFor(async () => {
        const p = await players(page, '#wall-grid .vplayer');
        return p.length === 4 && p.every((x) => x.state === 'playing' && x.frames >= 15);
      }, { timeout: 30000, interval: 250, what: 'four playing tiles' }).catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify(await players(page, '#wall-grid .vplayer'))}`);
      });
      const p1 = await players(page, '#wall-grid .vplayer');
      for (const p of p1) assert.match(p.codec, /^avc1\.[0-9a-f]{6}$/i, JSON.stringify(p));
      assert.deepEqual(p1.map((p) => p.camera), first4);
      assert.ok(p1.every((p) => p.text === 'LIVE'), `the tiles say they are live: ${JSON.stringify(p1)}`);

      // Two moments apart: every picture changed, and a screenshot of the
      // first tile's video differs too.
      const opts = { selector: '#wall-grid video', clock: CLOCK };
      const shot1 = await page.locator('#wall-grid .wall-tile').first().locator('video').screenshot();
      const a = await page.evaluate(sampleVideos, opts);
      await page.waitForTimeout(700);
      const b = await page.evaluate(sampleVideos, opts);
      const shot2 = await page.locator('#wall-grid .wall-tile').first().locator('video').screenshot({
        path: path.join(OUT, 'video-wall-tile.png'),
      });
      await page.screenshot({ path: path.join(OUT, 'video-wall.png') });
      assert.notDeepEqual(shot1, shot2, 'the first tile\'s picture changed between two screenshots');
      for (let i = 0; i < 4; i++) {
        assert.equal(a[i].w, VIDEO.width, `tile ${i + 1} shows the camera's picture (${a[i].w}x${a[i].h})`);
        assert.equal(a[i].h, VIDEO.height);
        // The test pattern: a white ball and the clock's text on black.
        assert.ok(a[i].bright > 0.005, `tile ${i + 1} is not a black box (${(a[i].bright * 100).toFixed(2)}% bright)`);
        const share = changed(a[i], b[i]);
        assert.ok(share > 0.001, `tile ${i + 1}'s picture changed in 700 ms (${(share * 100).toFixed(2)}% of it)`);
        // The frames carry the time they were made: the wall shows the
        // present, not a backlog.
        assert.notEqual(b[i].clock, null, `tile ${i + 1}'s clock blocks read`);
        assert.ok(b[i].clock !== a[i].clock, `tile ${i + 1}'s clock moved`);
      }
      // Glass to glass, once the players have settled at the live edge.
      await page.waitForTimeout(3000);
      const live = await page.evaluate(sampleVideos, opts);
      const lags = live.map(lagMs);
      const edge = await page.$$eval('#wall-grid video', (vs) => vs.map((v) => {
        const b2 = v.buffered;
        return b2.length ? b2.end(b2.length - 1) - v.currentTime : null;
      }));
      console.log(`video wall: glass-to-glass ${lags.join(', ')} ms; behind the buffered end ${edge.map((x) => x?.toFixed(2)).join(', ')} s`);
      for (let i = 0; i < 4; i++) {
        assert.ok(lags[i] !== null && lags[i] < 2500, `tile ${i + 1} shows live video (${lags[i]} ms behind the clock)`);
        assert.ok(edge[i] !== null && edge[i] < 1.0, `tile ${i + 1} plays at the live edge (${edge[i]} s behind)`);
      }

      // A click makes a tile fill the wall; another puts it back.
      const small = await page.locator('#wall-grid .wall-tile').nth(1).boundingBox();
      await page.locator('#wall-grid .wall-tile').nth(1).locator('.vplayer').click();
      await page.waitForSelector('#wall-grid.has-large .wall-tile.large[data-slot="1"]');
      const large = await page.locator('#wall-grid .wall-tile').nth(1).boundingBox();
      assert.ok(large.width > small.width * 1.8 && large.height > small.height * 1.8,
        `the enlarged tile is larger (${small.width}x${small.height} → ${large.width}x${large.height})`);
      assert.equal(await page.locator('#wall-grid .wall-tile').nth(0).isVisible(), false, 'the others give way');
      await page.locator('#wall-grid .wall-tile.large .vplayer').click();
      await page.waitForSelector('#wall-grid:not(.has-large)');
      assert.equal(await page.locator('#wall-grid .wall-tile').nth(0).isVisible(), true);

      // Snapshot: the camera's latest keyframe as a JPEG of its size.
      await page.locator('#wall-grid .wall-tile').nth(0).locator('.tile-snapshot').click();
      await page.waitForSelector('dialog.media-dialog .media-body[data-state]', { timeout: 15000 });
      const snap = await page.$eval('dialog.media-dialog', (d) => ({
        state: d.querySelector('.media-body').dataset.state, type: d.querySelector('.media-body').dataset.type,
        text: d.textContent, title: d.querySelector('.media-title').textContent,
      }));
      assert.equal(snap.state, 'shown', `the snapshot is shown: ${snap.text}`);
      assert.equal(snap.type, 'image/jpeg');
      assert.match(snap.title, /^Quay west · /);
      await page.waitForFunction(() => document.querySelector('dialog.media-dialog img')?.naturalWidth > 0);
      assert.equal(await page.$eval('dialog.media-dialog img', (i) => i.naturalWidth), VIDEO.width);
      await page.click('dialog.media-dialog .media-close');
      await page.waitForSelector('dialog.media-dialog', { state: 'detached' });

      // Nine tiles: the four cameras stay, the fifth tile gets the camera
      // nobody can reach, which says so over its tile.
      await page.click('#grid-sizes button[data-size="9"]');
      await page.waitForFunction(() => document.querySelectorAll('#wall-grid .wall-tile').length === 9);
      const nine = await page.$$eval('#wall-grid .wall-tile', (ts) => ts.map((t) => t.dataset.camera));
      assert.deepEqual(nine.slice(0, 4), first4, 'the tiles shown go on showing the same cameras');
      assert.deepEqual(nine.slice(4, 6), [cams['Dead camera'].id, cams['Pier H.265'].id],
        'the grid fills with the cameras not yet shown');
      assert.deepEqual(nine.slice(6), ['', '', ''], 'no more cameras: empty tiles');
      await page.waitForSelector('#wall-grid .wall-tile[data-slot="4"] .vplayer[data-state="retrying"][data-reason="unreachable"]', { timeout: 20000 });
      const dead = (await players(page, '#wall-grid .wall-tile[data-slot="4"] .vplayer'))[0];
      assert.equal(dead.text, 'Reconnecting: camera unreachable');
      assert.equal(await page.textContent('#wall-grid .wall-tile[data-slot="4"] .vp-note'), 'Reconnecting: camera unreachable',
        'the reason is said over the middle of the tile, not a black box');
      assert.equal(await page.textContent('#wall-grid .wall-tile[data-slot="4"] .vp-name'), 'Dead camera');
      // The H.265 camera: played where the browser can, else said so
      // (Chromium without H.265 in its Media Source Extensions).
      const hevc = '#wall-grid .wall-tile[data-slot="5"] .vplayer';
      await page.waitForSelector(`${hevc}[data-codec^="hvc1"], ${hevc}[data-codec^="hev1"]`, { timeout: 30000 });
      const hevcCodec = await page.getAttribute(hevc, 'data-codec');
      if (await page.evaluate((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`), hevcCodec)) {
        await page.waitForSelector(`${hevc}[data-state="playing"]`, { timeout: 30000 });
      } else {
        await page.waitForSelector(`${hevc}[data-state="unsupported"]`, { timeout: 5000 });
        assert.equal(await page.textContent(`${hevc} .vp-note`), `This browser cannot play this camera's video (${hevcCodec}).`);
        // It asks the server for nothing more.
        assert.equal(await page.evaluate(() => window.citycmdWall.players()[5].tile), 0);
      }
      await page.screenshot({ path: path.join(OUT, 'video-wall-9.png') });
      // The first four went on playing without a new start.
      const still = await players(page, '#wall-grid .vplayer');
      assert.ok(still.slice(0, 4).every((p, i) => p.state === 'playing' && p.frames > p1[i].frames), JSON.stringify(still));

      // A tile's camera chosen by hand.
      await page.selectOption('#wall-grid .wall-tile[data-slot="5"] select', cams['Quay west'].id);
      await page.waitForSelector('#wall-grid .wall-tile[data-slot="5"] .vplayer[data-state="playing"]', { timeout: 20000 });

      // One tile: the others stop, here and on the server.
      await page.click('#grid-sizes button[data-size="1"]');
      await page.waitForFunction(() => document.querySelectorAll('#wall-grid .wall-tile').length === 1);
      assert.equal(await page.evaluate(() => window.citycmdWall.hub().tiles.size), 1);
      const before1 = (await players(page, '#wall-grid .vplayer'))[0].frames;
      await waitFor(async () => (await players(page, '#wall-grid .vplayer'))[0].frames > before1 + 5,
        { timeout: 10000, what: 'the one tile goes on playing' });
      // The layout is kept for the next time.
      const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('citycmd.wall')));
      assert.equal(kept.size, 1);
      assert.equal(kept.slots[0], cams['Quay west'].id);

      assert.equal(sockets.length, 1, `one WebSocket for every tile: ${sockets.join(', ')}`);
      assert.match(sockets[0], /\/ws$/);

      // The connection breaks: the tile says so, and plays again once the
      // page has reconnected (its tiles watched again on the new socket).
      await page.evaluate(() => window.citycmdWall.hub().conn.ws.close());
      await page.waitForSelector('#wall-grid .vplayer[data-state="offline"]', { timeout: 5000 });
      assert.equal(await page.textContent('#wall-grid .vp-note'), 'Connection to the server lost: reconnecting…');
      await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 15000 });
      await page.waitForSelector('#wall-grid .vplayer[data-state="playing"]', { timeout: 20000 });
      const again = (await players(page, '#wall-grid .vplayer'))[0].frames;
      await waitFor(async () => (await players(page, '#wall-grid .vplayer'))[0].frames > again + 5,
        { timeout: 10000, what: 'frames after the reconnection' });
      assert.equal(sockets.length, 2, 'one new WebSocket after the break, for every tile again');
      assert.deepEqual(blocked, [], 'nothing was fetched from outside the machine');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('the console: cameras near the incident, watch one, snapshot and clip to the incident, the map layer', async () => {
    const call = await post(s.url, '/api/v1/calls', {
      line: '110', caller: '+37793000042', location: SCENE, category: 'fire/structure', text: 'Smoke seen from the quay',
    }, bearer(dispToken));
    assert.equal(call.status, 201, call.text);
    const incident = call.body.incident.id;
    const { context, page, blocked, errors } = await openPage(browser, { viewport: { width: 1600, height: 1000 } });
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    });
    try {
      await page.goto(s.url);
      await signIn(page, DISPATCHER);
      await page.waitForSelector('#map:not([hidden]) canvas', { timeout: 15000 });
      await page.click(`#incident-queue li[data-id="${incident}"]`);

      // The cameras within 500 m, those that see the scene first.
      await page.waitForSelector('#cams-near[data-state="shown"]', { timeout: 10000 });
      assert.equal(await page.getAttribute('#cams-near', 'data-incident'), incident);
      const rows = await page.$$eval('#cams-near-list li.cam', (ls) => ls.map((l) => ({
        camera: l.dataset.camera, sees: l.dataset.sees, name: l.querySelector('.cam-name').textContent,
        badge: l.querySelector('.badge').textContent,
      })));
      assert.deepEqual(rows.map((r) => r.name), ['Quay west', 'Avenue south', 'Rooftop north', 'Harbour east']);
      assert.deepEqual(rows.map((r) => r.sees), ['true', 'true', 'false', 'false']);
      assert.match(rows[0].badge, /sees it/);
      assert.match(rows[2].badge, /faces away/);

      // Watch the second: a small player in the panel, playing.
      const row = `#cams-near-list li.cam[data-camera="${cams['Avenue south'].id}"]`;
      await page.click(`${row} button.cam-watch`);
      await page.waitForSelector(`${row} [data-testid="near-player"][data-state="playing"]`, { timeout: 20000 });
      const f1 = Number(await page.getAttribute(`${row} [data-testid="near-player"]`, 'data-frames'));
      await page.waitForTimeout(1000);
      const f2 = Number(await page.getAttribute(`${row} [data-testid="near-player"]`, 'data-frames'));
      assert.ok(f2 > f1, `the panel's player appends frames (${f1} → ${f2})`);
      const near = await page.evaluate(sampleVideos, { selector: `${row} video`, clock: CLOCK });
      assert.equal(near[0].w, VIDEO.width);
      assert.notEqual(near[0].clock, null, 'the panel shows the camera\'s own frames');
      assert.equal(await page.textContent(`${row} button.cam-watch`), 'Stop');

      // A snapshot of the first camera goes to the incident and is listed on it.
      await page.click(`#cams-near-list li.cam[data-camera="${cams['Quay west'].id}"] button.cam-snapshot`);
      await page.waitForSelector('#cams-near-result:not([hidden])', { timeout: 15000 });
      assert.match(await page.textContent('#cams-near-result'), /Snapshot of Quay west added to the incident/);
      await page.waitForSelector('#incident-media li[data-kind="snapshot"] button.media-open', { timeout: 15000 });
      // A clip of the second: asked at once, listed once written (5 s after).
      await page.click(`${row} button.cam-clip`);
      await page.waitForFunction(() => /Clip of Avenue south asked for/.test(document.getElementById('cams-near-result').textContent));
      await page.waitForSelector('#incident-media li[data-kind="clip"] button.media-open', { timeout: 30000 });
      const media = await page.$$eval('#incident-media li', (ls) => ls.map((l) => ({ kind: l.dataset.kind, text: l.textContent })));
      assert.equal(media.length, 2, JSON.stringify(media));
      assert.match(media.find((m) => m.kind === 'snapshot').text, /Quay west/);
      assert.match(media.find((m) => m.kind === 'clip').text, /Avenue south/);
      // The timeline says so too.
      await page.waitForFunction(() => document.querySelectorAll('#incident-detail .timeline li.incident-media').length === 2);

      // The clip opens and plays from the incident's record.
      await page.click('#incident-media li[data-kind="clip"] button.media-open');
      await page.waitForSelector('dialog.media-dialog .media-body[data-state]', { timeout: 15000 });
      assert.equal(await page.getAttribute('dialog.media-dialog .media-body', 'data-state'), 'shown',
        await page.textContent('dialog.media-dialog'));
      assert.equal(await page.getAttribute('dialog.media-dialog .media-body', 'data-type'), 'video/mp4');
      await page.waitForFunction(() => {
        const v = document.querySelector('dialog.media-dialog video');
        return v && v.readyState >= 2 && v.duration > 5 && v.videoWidth > 0;
      }, null, { timeout: 15000 });
      await page.click('dialog.media-dialog .media-close');

      // The map layer: the cameras and their cones; a click on one opens it live.
      await page.click('.map-layers summary');
      await page.check('#cams-on');
      await page.waitForFunction(() => window.citycmdCameras.layerCount() === 6);
      assert.match(await page.textContent('#cams-summary'), /^6 cameras$/);
      await page.click('.map-layers summary');
      const id = cams['Harbour east'].id;
      await page.waitForTimeout(500); // the map's move to the incident
      const px = await page.evaluate((c) => window.citycmdCameras.pixel(c), id);
      assert.ok(px, 'the camera is on the map');
      const box = await page.locator('#map').boundingBox();
      assert.ok(px[0] > 0 && px[1] > 0 && px[0] < box.width && px[1] < box.height, `the camera is in view: ${px}`);
      await page.mouse.click(box.x + px[0], box.y + px[1]);
      await page.waitForSelector('[data-testid="camera-popup-player"][data-state="playing"]', { timeout: 20000 });
      assert.equal(await page.getAttribute('[data-testid="camera-popup-player"]', 'data-camera'), id);
      assert.match(await page.textContent('.map-popup .content'), /Harbour east/);
      await page.screenshot({ path: path.join(OUT, 'video-console.png') });
      // Closing the popup stops its player (one tile fewer on the connection).
      const tilesBefore = await page.evaluate(() => window.citycmdCameras.hub().tiles.size);
      await page.click('.map-popup .close');
      await page.waitForFunction((n) => window.citycmdCameras.hub().tiles.size === n - 1, tilesBefore);

      assert.equal(sockets.length, 1, `the console's one WebSocket carries the video: ${sockets.join(', ')}`);
      assert.deepEqual(blocked, [], 'nothing was fetched from outside the machine');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});
