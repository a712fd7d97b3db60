// Trackers to the map: GT06 and Teltonika over TCP and OsmAnd over HTTP,
// each on its own listener, through the position filters to WebSocket
// clients watching a viewport — against the real server on the demo city.
// The frames are built here from the protocols' documentation, CRCs and all.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { BIN, startServer, addUser, login, post, connectWs, tempDir, sleep, waitFor } from '../lib/harness.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const MONACO = [7.40, 43.72, 7.44, 43.76];
const ELSEWHERE = [2.30, 48.80, 2.40, 48.90]; // Paris
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const hex = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// CRC-16/X.25 (GT06's CRC-ITU) and CRC-16/ARC (Teltonika's CRC-16/IBM).
function crcX25(buf) {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0x8408 : crc >>> 1;
  }
  return ~crc & 0xffff;
}
function crcArc(buf) {
  let crc = 0;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

// A GT06 frame 78 78 | len | protocol content serial | crc | 0D 0A.
function gt06(protocol, content, serial) {
  const body = Buffer.concat([Buffer.from([protocol]), content, Buffer.from([serial >> 8, serial & 0xff])]);
  const len = Buffer.from([body.length + 2]);
  const crc = crcX25(Buffer.concat([len, body]));
  return Buffer.concat([hex('7878'), len, body, Buffer.from([crc >> 8, crc & 0xff]), hex('0d0a')]);
}
// A GT06 GPS+LBS location (0x12) at lon/lat, time t, valid fix, north and east.
function gt06Location(lon, lat, t, serial) {
  const d = new Date(t);
  const c = Buffer.alloc(26);
  c.set([d.getUTCFullYear() - 2000, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()], 0);
  c[6] = 0xc9; // 12 bytes of GPS information, 9 satellites
  c.writeUInt32BE(Math.round(lat * 1800000), 7);
  c.writeUInt32BE(Math.round(lon * 1800000), 11);
  c[15] = 42; // km/h
  c.writeUInt16BE((1 << 12) | (1 << 10) | 90, 16); // positioned, north, course 90
  // MCC 208, MNC 1, LAC and cell: what the LBS part carries.
  c.set([0x00, 0xd0, 0x01, 0x00, 0x28, 0x00, 0x1f, 0xb8], 18);
  return gt06(0x12, c, serial);
}
// A Teltonika Codec 8 packet with one record.
function codec8(lon, lat, t) {
  const rec = Buffer.alloc(8 + 1 + 15 + 6);
  rec.writeBigUInt64BE(BigInt(t), 0);
  rec[8] = 0; // priority
  rec.writeInt32BE(Math.round(lon * 1e7), 9);
  rec.writeInt32BE(Math.round(lat * 1e7), 13);
  rec.writeInt16BE(30, 17); // altitude
  rec.writeUInt16BE(180, 19); // angle
  rec[21] = 8; // satellites
  rec.writeUInt16BE(55, 22); // km/h
  rec.set([0, 0, 0, 0, 0, 0], 24); // event IO id, total IO count, and 1/2/4/8-byte counts: none
  const data = Buffer.concat([Buffer.from([0x08, 1]), rec, Buffer.from([1])]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crcArc(data), 0);
  return Buffer.concat([head, data, crc]);
}

// A TCP client that collects what the server sends back.
async function tcp(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let got = Buffer.alloc(0);
  sock.on('data', (d) => { got = Buffer.concat([got, d]); });
  const closed = new Promise((resolve) => sock.on('close', resolve));
  sock.on('error', () => {});
  return {
    sock, closed,
    send(b) { sock.write(b); },
    async read(n, timeout = 3000) {
      await waitFor(() => got.length >= n, { timeout, what: `${n} bytes back` });
      const out = got.subarray(0, n);
      got = got.subarray(n);
      return out;
    },
  };
}

const portOf = (s, proto) => Number(s.lines.map((l) => l.match(new RegExp(`event=gps\\.listening protocol=${proto} .*port=(\\d+)`))).find(Boolean)[1]);

async function unitsClient(url, token, bbox) {
  const c = await connectWs(url, { token });
  await c.next((m) => m.type === 'hello');
  c.send({ type: 'subscribe', id: 's', data: { topics: ['units'], bbox } });
  await c.next((m) => m.type === 'subscribed');
  const snap = await c.next((m) => m.type === 'units.snapshot');
  return { c, snap: snap.data };
}
// The newest state of a unit a client was sent, waiting for pred.
async function unitSeen(c, id, pred = () => true, timeout = 5000) {
  const m = await c.next((x) => x.type === 'units' && x.data.units.some((u) => u.id === id && pred(u)), timeout);
  return m.data.units.find((u) => u.id === id && pred(u));
}

describe('trackers through every protocol to the viewports that hold them', () => {
  let s, token, units, op;
  const IMEI_GT06 = '123456789012345';
  const IMEI_TEL = '356307042441013';
  before(async () => {
    const state = tempDir();
    addUser(state, { username: 'ops.op', password: 'operator password 1', roles: 'operator', agency: 'command' });
    s = await startServer({ state, args: ['--city', CITY, '--gps-gt06', '127.0.0.1:0', '--gps-teltonika', '127.0.0.1:0', '--gps-osmand', '127.0.0.1:0', '--ws-units-interval', '100'] });
    op = await login(s.url, 'ops.op', 'operator password 1');
    units = {};
    for (const [sign, kind, agency, device] of [['P-01', 'patrol_car', 'police', IMEI_GT06], ['E-01', 'engine', 'fire', IMEI_TEL], ['A-01', 'ambulance', 'ems', 'phone-1']]) {
      const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind, agency, device }, bearer(op));
      assert.equal(r.status, 201, r.text);
      units[device] = r.body.unit.id;
    }
    token = s.token;
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('GT06: login and location acknowledged byte for byte; the position reaches the viewport, not elsewhere', async () => {
    const here = await unitsClient(s.wsUrl, token, MONACO);
    const away = await unitsClient(s.wsUrl, token, ELSEWHERE);
    const d = await tcp(portOf(s, 'gt06'));
    d.send(hex('78 78 0D 01 01 23 45 67 89 01 23 45 00 01 8C DD 0D 0A'));
    assert.deepEqual(await d.read(10), hex('78 78 05 01 00 01 D9 DC 0D 0A'), 'the login answer of the manual');
    const t = Date.now() - 2000;
    const frame = gt06Location(7.4246, 43.7384, t, 2);
    d.send(frame);
    const ack = await d.read(10);
    const crc = crcX25(hex('05 12 00 02'));
    assert.deepEqual(ack, Buffer.concat([hex('78 78 05 12 00 02'), Buffer.from([crc >> 8, crc & 0xff]), hex('0d0a')]));
    const u = await unitSeen(here.c, units[IMEI_GT06]);
    assert.ok(Math.abs(u.lon - 7.4246) < 1e-5 && Math.abs(u.lat - 43.7384) < 1e-5, JSON.stringify(u));
    assert.equal(u.call_sign, 'P-01');
    assert.equal(u.speed_kmh, 42);
    assert.equal(u.course, 90);
    assert.equal(Date.parse(u.fix_at), Math.floor(t / 1000) * 1000);
    await sleep(400);
    assert.ok(!away.c.messages.some((m) => m.type === 'units'), 'nothing reaches a viewport elsewhere');
    d.sock.destroy();
    here.c.ws.close();
    away.c.ws.close();
  });

  test('Teltonika: the handshake, a Codec 8 packet answered with its record count', async () => {
    const w = await unitsClient(s.wsUrl, token, MONACO);
    const d = await tcp(portOf(s, 'teltonika'));
    d.send(Buffer.concat([Buffer.from([0, 15]), Buffer.from(IMEI_TEL)]));
    assert.deepEqual(await d.read(1), Buffer.from([1]));
    d.send(codec8(7.4160, 43.7310, Date.now() - 1000));
    assert.deepEqual(await d.read(4), Buffer.from([0, 0, 0, 1]));
    const u = await unitSeen(w.c, units[IMEI_TEL]);
    assert.ok(Math.abs(u.lon - 7.416) < 1e-6 && Math.abs(u.lat - 43.731) < 1e-6);
    assert.equal(u.kind, 'engine');
    // A bad CRC: answered with 0 records (the device sends it again), position not taken.
    const bad = codec8(7.4170, 43.7320, Date.now());
    bad[bad.length - 1] ^= 0xff;
    d.send(bad);
    assert.deepEqual(await d.read(4), Buffer.from([0, 0, 0, 0]));
    // An unknown device is refused at the handshake.
    const x = await tcp(portOf(s, 'teltonika'));
    x.send(Buffer.concat([Buffer.from([0, 15]), Buffer.from('999999999999999')]));
    assert.deepEqual(await x.read(1), Buffer.from([0]));
    await x.closed;
    d.sock.destroy();
    w.c.ws.close();
  });

  test('OsmAnd over HTTP: taken, refused as outdated, unknown device 404, bad parameters 400 naming them', async () => {
    const base = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    // Times from 100 s ago on, so that the tests after this one can go on
    // reporting newer ones without running ahead of the server's clock.
    const t = Math.floor(Date.now() / 1000) - 100;
    let r = await fetch(`${base}/?id=phone-1&lat=43.7402&lon=7.4270&timestamp=${t}&speed=10&bearing=45`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'accepted');
    r = await fetch(`${base}/?id=phone-1&lat=43.7403&lon=7.4271&timestamp=${t - 10}`);
    assert.equal(await r.text(), 'outdated');
    r = await fetch(`${base}/?id=nobody&lat=43.74&lon=7.42&timestamp=${t}`);
    assert.equal(r.status, 404);
    r = await fetch(`${base}/?id=phone-1&lon=7.42&timestamp=${t}`);
    assert.equal(r.status, 400);
    assert.match(await r.text(), /lat/);
    r = await fetch(`${base}/?id=phone-1&lat=95&lon=7.42&timestamp=${t}`);
    assert.equal(r.status, 400);
    // The JSON of the Traccar Client app.
    r = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: 'phone-1', location: { timestamp: new Date((t + 5) * 1000).toISOString(), coords: { latitude: 43.7405, longitude: 7.4275, speed: 5, heading: 90 } } }) });
    assert.equal(r.status, 200, await r.clone().text());
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /citycmd_gps_positions_total\{verdict="outdated"\} [1-9]/);
    assert.match(metrics, /citycmd_gps_positions_total\{verdict="unknown_device"\} [1-9]/);
  });

  test('a viewport that moves gets a new snapshot; a unit leaving the view is removed', async () => {
    const base = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    const t = Math.floor(Date.now() / 1000) - 30; // over a minute after the last: any move is plausible
    assert.equal(await (await fetch(`${base}/?id=phone-1&lat=43.7300&lon=7.4200&timestamp=${t}`)).text(), 'accepted');
    const w = await unitsClient(s.wsUrl, token, [7.415, 43.725, 7.425, 43.735]);
    assert.ok(w.snap.units.some((u) => u.id === units['phone-1']), 'in the snapshot');
    // It drives out of the view (1.1 km in 30 s: plausible).
    assert.equal(await (await fetch(`${base}/?id=phone-1&lat=43.7380&lon=7.4280&timestamp=${t + 30}`)).text(), 'accepted');
    const m = await w.c.next((x) => x.type === 'units' && x.data.removed.includes(units['phone-1']));
    assert.deepEqual(m.data.units.filter((u) => u.id === units['phone-1']), []);
    w.c.send({ type: 'viewport', id: 'v', data: { bbox: MONACO } });
    const snap = await w.c.next((x) => x.type === 'units.snapshot');
    assert.ok(snap.data.units.some((u) => u.id === units['phone-1'] && Math.abs(u.lat - 43.738) < 1e-6));
    await w.c.next((x) => x.type === 'viewport' && x.re === 'v');
    w.c.ws.close();
  });

  test('a client gets at most one units message per tick: fifty positions, a few messages, the newest last', async () => {
    const base = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    const w = await unitsClient(s.wsUrl, token, MONACO);
    const t0 = Math.floor(Date.now() / 1000) + 1;
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${base}/?id=phone-1&lat=${43.7380 + i * 0.0001}&lon=7.4280&timestamp=${t0 + i}`);
      assert.equal(await r.text(), 'accepted');
    }
    const last = await unitSeen(w.c, units['phone-1'], (u) => Math.abs(u.lat - (43.738 + 49 * 0.0001)) < 1e-7);
    assert.ok(last);
    const elapsed = Date.now() - started;
    const got = w.c.messages.filter((m) => m.type === 'units').length + 1;
    assert.ok(got <= Math.ceil(elapsed / 100) + 2, `${got} messages in ${elapsed} ms at a 100 ms tick`);
    assert.ok(got < 50);
    w.c.ws.close();
  });

  test('a field unit\'s phone reports its own position; the track of the last hour comes back in order', async () => {
    const state = s.stateDir;
    addUser(state, { username: 'amb.phone', password: 'field password 1', roles: 'field_unit', agency: 'ems' });
    addUser(state, { username: 'pol.phone', password: 'field password 2', roles: 'field_unit', agency: 'police' });
    // The running server picks the new users up from the store.
    const amb = await waitFor(async () => login(s.url, 'amb.phone', 'field password 1').catch(() => null), { what: 'login' });
    const pol = await login(s.url, 'pol.phone', 'field password 2');
    const id = units['phone-1'];
    const at = new Date(Date.now() + 55000).toISOString(); // after the positions the tests above sent
    let r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.42905, lat: 43.74321, accuracy_m: 8, speed_kmh: 20, course: 10, at }, bearer(amb));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.verdict, 'accepted');
    r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.42906, lat: 43.74322, at }, bearer(amb));
    assert.equal(r.status, 422);
    assert.equal(r.body.verdict, 'outdated');
    // Within a second of the last kept fix: on the live map, not in the history.
    const later = (ms) => new Date(Date.parse(at) + ms).toISOString();
    r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.42907, lat: 43.74323, at: later(300) }, bearer(amb));
    assert.equal(r.body.verdict, 'accepted', r.text);
    r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.42908, lat: 43.74324, speed_kmh: 20, at: later(1200) }, bearer(amb));
    assert.equal(r.body.verdict, 'accepted', r.text);
    r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.4291, lat: 91 }, bearer(amb));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.field, 'lat');
    r = await post(s.url, `/api/v1/units/${id}/position`, { lon: 7.4291, lat: 43.7 }, bearer(pol));
    assert.equal(r.status, 403, 'another agency\'s unit');
    assert.equal((await post(s.url, '/api/v1/units/U-99999/position', { lon: 7.4, lat: 43.7 }, bearer(amb))).status, 404);

    // The track: every accepted position of the unit, oldest first.
    const from = new Date(Date.now() - 3600e3).toISOString(), to = new Date(Date.now() + 3600e3).toISOString();
    const track = await waitFor(async () => {
      const t = await fetch(`${s.url}/api/v1/units/${id}/track?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { headers: bearer(token) });
      const body = await t.json();
      return body.positions && body.positions.some((p) => Math.abs(p.lat - 43.74324) < 1e-9) ? body : null;
    }, { what: 'the phone position in the track' });
    assert.equal(track.unit, id);
    const times = track.positions.map((p) => Date.parse(p.at));
    assert.deepEqual(times, [...times].sort((x, y) => x - y), 'oldest first');
    assert.ok(track.positions.length >= 54, `${track.positions.length} positions`); // 3 + 2 + 50 from the tests above, and this one
    assert.equal(track.positions.at(-1).speed_kmh, 20, JSON.stringify(track.positions.slice(-3)));
    assert.ok(track.positions.some((p) => Math.abs(p.lat - 43.74321) < 1e-9), 'the first fix kept');
    assert.ok(!track.positions.some((p) => Math.abs(p.lat - 43.74323) < 1e-9), 'the fix 300 ms later thinned');
    const few = await (await fetch(`${s.url}/api/v1/units/${id}/track?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&limit=5`, { headers: bearer(token) })).json();
    assert.equal(few.positions.length, 5);
    assert.equal(few.truncated, true);
    const bad = await fetch(`${s.url}/api/v1/units/${id}/track?from=yesterday`, { headers: bearer(token) });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${s.url}/api/v1/units/${id}/track`, { headers: bearer(pol) })).status, 403);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    assert.ok(Number(/^citycmd_history_positions_written (\d+)/m.exec(m)[1]) >= track.positions.length);
    assert.match(m, /^citycmd_history_positions_dropped 0$/m);
    assert.ok(Number(/^citycmd_history_positions_thinned (\d+)/m.exec(m)[1]) >= 1);
  });

  test('a screen subscribed to one district receives none of the units outside it, even inside its box', async () => {
    const base = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    const at = (lon, lat, kind) => fetch(`${s.url}/api/v1/gis/districts?lon=${lon}&lat=${lat}&kind=${kind}`, { headers: bearer(token) }).then((r) => r.json());
    const HERE = { lon: 7.4246, lat: 43.7384 };
    const district = (await at(HERE.lon, HERE.lat, 'police')).districts[0];
    assert.ok(district, 'a police precinct at Monte-Carlo');
    // A point inside the precinct's bounding box but outside the precinct.
    const feature = await (await fetch(`${s.url}/api/v1/gis/layers/districts/${district.id}`, { headers: bearer(token) })).json();
    const ring = (feature.geometry.type === 'Polygon' ? feature.geometry.coordinates : feature.geometry.coordinates[0])[0];
    const xs = ring.map((c) => c[0]), ys = ring.map((c) => c[1]);
    let outside = null;
    for (let i = 1; i < 20 && !outside; i++) {
      for (let j = 1; j < 20 && !outside; j++) {
        const lon = Math.min(...xs) + ((Math.max(...xs) - Math.min(...xs)) * i) / 20, lat = Math.min(...ys) + ((Math.max(...ys) - Math.min(...ys)) * j) / 20;
        if (!(await at(lon, lat, 'police')).districts.some((d) => d.id === district.id)) outside = { lon, lat };
      }
    }
    assert.ok(outside, 'the precinct does not fill its box');
    const w = await unitsClient(s.wsUrl, token, null);
    w.c.send({ type: 'viewport', id: 'd', data: { district: district.id } });
    await w.c.next((m) => m.type === 'viewport' && m.re === 'd');
    const first = await w.c.next((m) => m.type === 'units.snapshot');
    assert.ok(first.data.units.every((u) => u.lon >= Math.min(...xs) && u.lon <= Math.max(...xs)), 'the snapshot is of the precinct');
    // Two new units: one inside the precinct, one in its box but outside it.
    const ids = {};
    for (const dev of ['in-1', 'out-1']) {
      const r = await post(s.url, '/api/v1/units', { call_sign: dev.toUpperCase(), kind: 'patrol_car', agency: 'police', device: dev }, bearer(op));
      assert.equal(r.status, 201, r.text);
      ids[dev] = r.body.unit.id;
    }
    const t = Math.floor(Date.now() / 1000) - 5;
    assert.equal(await (await fetch(`${base}/?id=out-1&lat=${outside.lat}&lon=${outside.lon}&timestamp=${t}`)).text(), 'accepted');
    assert.equal(await (await fetch(`${base}/?id=in-1&lat=${HERE.lat}&lon=${HERE.lon}&timestamp=${t + 1}`)).text(), 'accepted');
    await unitSeen(w.c, ids['in-1']);
    await sleep(400);
    assert.ok(!w.c.messages.some((m) => m.type === 'units' && m.data.units.some((u) => u.id === ids['out-1'])),
      'a unit inside the box but outside the precinct is not sent');
    // A viewport of the box itself does get it.
    w.c.send({ type: 'viewport', id: 'b', data: { bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] } });
    const snap = await w.c.next((m) => m.type === 'units.snapshot');
    assert.ok(snap.data.units.some((u) => u.id === ids['out-1']));
    w.c.send({ type: 'viewport', id: 'x', data: { district: 999999 } });
    assert.equal((await w.c.next((m) => m.type === 'error')).error.code, 'invalid_message');
    w.c.ws.close();
  });

  test('garbage on a tracker port closes that connection and nothing else', async () => {
    const d = await tcp(portOf(s, 'gt06'));
    d.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20)));
    await Promise.race([d.closed, sleep(3000).then(() => assert.fail('not closed'))]);
    // A position before the login is refused too.
    const e = await tcp(portOf(s, 'gt06'));
    e.send(gt06Location(7.42, 43.73, Date.now(), 1));
    await Promise.race([e.closed, sleep(3000).then(() => assert.fail('not closed'))]);
    // Malformed HTTP on the OsmAnd port: an empty head, a short request line.
    for (const head of ['\r\n\r\n', 'GET\r\n\r\n', 'GET /\r\n\r\n', ' \r\nx: y\r\n\r\n']) {
      const h = await tcp(portOf(s, 'osmand'));
      h.send(Buffer.from(head));
      const answer = (await h.read(12)).toString();
      assert.equal(answer, 'HTTP/1.1 400', JSON.stringify(head));
      await Promise.race([h.closed, sleep(3000).then(() => assert.fail('not closed'))]);
    }
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /citycmd_gps_protocol_errors_total [2-9]/);
  });
});

describe('a screen that stops reading gets the newest position of each unit, not a backlog', () => {
  let s, op;
  const N = 80;
  before(async () => {
    const state = tempDir();
    addUser(state, { username: 'ops.op', password: 'operator password 1', roles: 'operator', agency: 'command' });
    // A 4 KiB kernel buffer per WebSocket: a screen that stops reading is
    // slow at once, not after megabytes.
    s = await startServer({ state, args: ['--city', CITY, '--gps-osmand', '127.0.0.1:0', '--ws-units-interval', '50', '--ws-send-buffer', '4096'] });
    op = await login(s.url, 'ops.op', 'operator password 1');
    for (let i = 0; i < N; i++) {
      const r = await post(s.url, '/api/v1/units', { call_sign: `S-${i}`, kind: 'patrol_car', agency: 'police', device: `slow-${i}` }, bearer(op));
      assert.equal(r.status, 201, r.text);
    }
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('paused, then resumed: a few messages, each unit at its last report', async () => {
    const osmand = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    const fast = await unitsClient(s.wsUrl, s.token, MONACO);
    const slow = await unitsClient(s.wsUrl, s.token, MONACO);
    const count = (c) => { const n = { frames: 0 }; c.ws.on('message', () => { n.frames++; }); return n; };
    const fastN = count(fast.c), slowN = count(slow.c);
    const coalesced = async () => Number((await (await fetch(`${s.url}/metrics`)).text()).match(/^citycmd_ws_coalesced_total (\d+)/m)?.[1] ?? 0);
    const before0 = await coalesced();
    slow.c.ws._socket.pause();
    // Every unit reports once a round, a metre or so north each time, a
    // second apart in fix time; the rounds go as fast as the server takes them.
    const ROUNDS = 60;
    const t0 = Math.floor(Date.now() / 1000) - ROUNDS - 5;
    const at = (i, r) => ({ lon: 7.415 + i * 0.0002, lat: 43.730 + r * 0.00001 });
    for (let r = 0; r < ROUNDS; r++) {
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const p = at(i, r);
        const res = await fetch(`${osmand}/?id=slow-${i}&lat=${p.lat}&lon=${p.lon}&timestamp=${t0 + r}&speed=5`);
        assert.equal(await res.text(), 'accepted');
      }));
      await sleep(20);
    }
    const last = (id) => at(id, ROUNDS - 1);
    const holds = (c, seen) => (m) => {
      if (m.type !== 'units') return false;
      for (const u of m.data.units) seen.set(u.call_sign, u);
      return seen.size === N && [...seen.values()].every((u) => Math.abs(u.lat - last(Number(u.call_sign.slice(2))).lat) < 1e-7);
    };
    await fast.c.next(holds(fast.c, new Map()), 10000);
    assert.ok(await coalesced() > before0, 'the paused screen\'s queue was coalesced');
    slow.c.ws._socket.resume();
    await slow.c.next(holds(slow.c, new Map()), 10000);
    // The fast screen got a message nearly every tick; the paused one what
    // the kernel held when it stopped plus the newest state, not the rest.
    assert.ok(fastN.frames >= 10, `fast screen frames ${fastN.frames}`);
    assert.ok(slowN.frames < fastN.frames / 2 && slowN.frames < 30, `paused screen got ${slowN.frames} frames, the reading one ${fastN.frames}`);
    fast.c.ws.close();
    slow.c.ws.close();
  });
  test('a unit driving a few kilometres out of a small view is removed from it', async () => {
    const osmand = `http://127.0.0.1:${portOf(s, 'osmand')}`;
    const r = await post(s.url, '/api/v1/units', { call_sign: 'FAR-1', kind: 'patrol_car', agency: 'police', device: 'far-1' }, bearer(op));
    assert.equal(r.status, 201, r.text);
    const id = r.body.unit.id;
    const t = Math.floor(Date.now() / 1000) - 120;
    assert.equal(await (await fetch(`${osmand}/?id=far-1&lat=43.7300&lon=7.4200&timestamp=${t}`)).text(), 'accepted');
    const w = await unitsClient(s.wsUrl, s.token, [7.418, 43.728, 7.422, 43.732]);
    assert.ok(w.snap.units.some((u) => u.id === id), 'in the snapshot');
    // 1.8 km in a minute, into other cells of the view grid.
    assert.equal(await (await fetch(`${osmand}/?id=far-1&lat=43.7420&lon=7.4350&timestamp=${t + 60}`)).text(), 'accepted');
    const m = await w.c.next((x) => x.type === 'units' && x.data.removed.includes(id));
    assert.deepEqual(m.data.units.filter((u) => u.id === id), []);
    // And back: it is sent again.
    assert.equal(await (await fetch(`${osmand}/?id=far-1&lat=43.7301&lon=7.4201&timestamp=${t + 120}`)).text(), 'accepted');
    await unitSeen(w.c, id, (u) => Math.abs(u.lat - 43.7301) < 1e-7);
    w.c.ws.close();
  });
});

describe('tracker connections are bounded in number and in silence', () => {
  let s;
  before(async () => {
    s = await startServer({ args: ['--city', CITY, '--gps-gt06', '127.0.0.1:0', '--gps-idle-timeout', '5', '--gps-max-connections', '3'] });
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('a fourth connection is refused; a silent one is closed after the idle timeout, a talking one is not', async () => {
    const port = portOf(s, 'gt06');
    const open = [await tcp(port), await tcp(port), await tcp(port)];
    const extra = await tcp(port);
    await Promise.race([extra.closed, sleep(3000).then(() => assert.fail('the fourth connection stayed open'))]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^citycmd_gps_connections_refused_total 1$/m);
    // One of the three keeps talking (a login every second, acknowledged);
    // the other two say nothing.
    const talker = open[0];
    const login = gt06(0x01, hex('0123456789012345'), 1);
    let closedEarly = false;
    talker.closed.then(() => { closedEarly = true; });
    const started = Date.now();
    for (let i = 0; i < 8; i++) {
      talker.send(login);
      assert.equal((await talker.read(10)).toString('hex').slice(0, 8), '78780501');
      await sleep(1000);
    }
    await Promise.race([Promise.all([open[1].closed, open[2].closed]), sleep(3000).then(() => assert.fail('silent connections stayed open'))]);
    assert.ok(Date.now() - started >= 4000, 'closed before the idle timeout');
    assert.equal(closedEarly, false, 'the talking connection was closed');
    talker.sock.destroy();
  });
});
