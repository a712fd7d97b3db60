#!/usr/bin/env node
// A tracker simulator that speaks the protocols real vehicles use, Concox
// GT06 and Teltonika Codec 8 over TCP and OsmAnd over HTTP, to citycmd's
// --gps-* listeners.
//
// Fleet mode: --vehicles drive over the city's roads (GET
// /api/v1/gis/layers/roads as a graph: vertices within 1 m are one node, foot
// and cycle ways left out, one-way streets kept to) at their road class's
// speed with a ±20 % temperament of their own, turn at random at junctions
// (a U-turn only at a dead end), and report position, speed and course every
// --every seconds, each on its own phase. Each GT06 or Teltonika device has
// its own TCP connection (login or handshake first, acknowledgements read,
// reconnected with backoff when closed); OsmAnd goes over HTTP keep-alive.
// Devices: IMEIs 86000000000NNNN (GT06, Teltonika), sim-NNNN (OsmAnd).
// With --units the fleet is the server's own: every unit with a tracker
// drives, a 15-digit device as GT06 or Teltonika, any other over OsmAnd.
//
// Replay mode: a recorded track (a JSON array of {"point":"POINT(lon lat)",
// "time":"YYYY-MM-DD HH:MM:SS+zzzz"}, as ../shared/data/gps/x0001-001.json)
// is sent as one --device at --rate times real speed, moved if asked so that
// its first point lands on --move-to (offsets in metres kept). The fixes keep
// their recorded spacing, so the jump filter sees the recorded speeds, and
// are shifted so none runs ahead of the clock: at rate 1 the first is now,
// faster the last one is (the server refuses fixes over 60 s ahead).
//
// The account needs map.read for the roads (a dispatcher) and, for
// --register, units.manage (an operator): say roles operator,dispatcher.
// The password may also come from CITYCMD_PASSWORD. Every 10 s a line of
// counts: positions sent, acknowledged (OsmAnd: answered "accepted"), refused
// (OsmAnd's answers, refused Teltonika handshakes), skipped while not
// connected, and open connections.
import net from 'node:net';
import { readFileSync } from 'node:fs';

const USAGE = `usage: node tools/gps-sim.mjs --url URL --user NAME --password PW [--vehicles 50] [--every 5]
    [--protocol gt06|teltonika|osmand|mix] [--seconds 0] [--register | --units]
    [--gt06 HOST:PORT] [--teltonika HOST:PORT] [--osmand HOST:PORT]
    [--replay FILE.json --device ID [--move-to LON,LAT] [--rate 1]]`;
const PROTOCOLS = ['gt06', 'teltonika', 'osmand'];
const R = 6371008.8; // mean Earth radius, metres
const RAD = Math.PI / 180;

const die = (msg, code = 2) => { console.error(`gps-sim: ${msg}`); process.exit(code); };

// ---- flags ----

function parseFlags(argv) {
  const o = { url: 'http://127.0.0.1:8080', vehicles: 50, every: 5, seconds: 0, rate: 1, register: false };
  for (let i = 0; i < argv.length; i++) {
    let [k, v] = argv[i].split(/=(.*)/s);
    if (k === '--help' || k === '-h') { console.log(USAGE); process.exit(0); }
    if (k === '--register') { o.register = true; continue; }
    if (k === '--units') { o.units = true; continue; }
    if (!/^--(url|user|password|vehicles|every|protocol|seconds|gt06|teltonika|osmand|replay|device|move-to|rate)$/.test(k)) die(`unknown option ${argv[i]}\n${USAGE}`);
    if (v === undefined) v = argv[++i];
    if (v === undefined) die(`${k} needs a value`);
    o[k.slice(2).replace('-to', 'To')] = v;
  }
  const num = (k, ok, what) => { const n = Number(o[k]); if (!ok(n)) die(`--${k} must be ${what}, not "${o[k]}"`); o[k] = n; };
  num('vehicles', (n) => Number.isInteger(n) && n >= 1 && n <= 9999, 'an integer 1–9999');
  num('every', (n) => n >= 1 && n <= 3600, 'a number of seconds, 1–3600');
  num('seconds', (n) => n >= 0, 'a number of seconds ≥ 0 (0: forever)');
  num('rate', (n) => n > 0 && n <= 1000, 'a speed-up factor > 0');
  try { o.base = new URL(o.url); } catch { die(`--url "${o.url}" is not a URL`); }
  if (!/^https?:$/.test(o.base.protocol)) die(`--url must be http:// or https://, not ${o.url}`);
  o.url = o.url.replace(/\/+$/, '');
  const host = o.base.hostname.replace(/^\[|\]$/g, '');
  for (const [p, port] of [['gt06', 5023], ['teltonika', 5027], ['osmand', 5055]]) {
    const a = o[p] || `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const m = a.match(/^\[?([^\]]*?)\]?:(\d{1,5})$/);
    if (!m || !m[1] || Number(m[2]) < 1 || Number(m[2]) > 65535) die(`--${p} must be HOST:PORT, not "${a}"`);
    o[p] = { host: m[1], port: Number(m[2]), text: a };
  }
  o.protocol ??= o.replay ? 'gt06' : 'mix';
  if (![...PROTOCOLS, 'mix'].includes(o.protocol)) die(`--protocol must be gt06, teltonika, osmand or mix, not "${o.protocol}"`);
  o.password ??= process.env.CITYCMD_PASSWORD;
  if (o.replay) {
    if (o.protocol === 'mix') die('--replay sends one device: --protocol gt06, teltonika or osmand');
    if (!o.device) die('--replay needs --device ID');
    if (o.protocol !== 'osmand' && !/^\d{15}$/.test(o.device)) die(`--device for ${o.protocol} must be a 15-digit IMEI, not "${o.device}"`);
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(o.device)) die(`--device must be 1–64 of A-Z a-z 0-9 . _ : -, not "${o.device}"`);
    if (o.moveTo) {
      const m = o.moveTo.split(',').map(Number);
      if (m.length !== 2 || !(Math.abs(m[0]) <= 180) || !(Math.abs(m[1]) <= 90)) die(`--move-to must be LON,LAT in degrees, not "${o.moveTo}"`);
      o.moveTo = m;
    }
  } else if (o.device || o.moveTo) die('--device and --move-to go with --replay');
  if ((!o.replay || o.register) && (!o.user || !o.password)) die(`${o.replay ? '--register' : 'fleet mode'} needs --user and --password (or CITYCMD_PASSWORD)\n${USAGE}`);
  return o;
}

// ---- the protocols ----

// CRC-16/X.25 (GT06's CRC-ITU) and CRC-16/ARC (Teltonika's CRC-16/IBM).
function crc16(buf, poly, init, xorOut) {
  let crc = init;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ poly : crc >>> 1;
  }
  return (crc ^ xorOut) & 0xffff;
}
const crcX25 = (b) => crc16(b, 0x8408, 0xffff, 0xffff);
const crcArc = (b) => crc16(b, 0xa001, 0, 0);

// A GT06 frame: 78 78 | len | protocol content serial | crc | 0D 0A.
function gt06Frame(protocol, content, serial) {
  const body = Buffer.concat([Buffer.from([protocol]), content, Buffer.from([(serial >> 8) & 0xff, serial & 0xff])]);
  const head = Buffer.from([body.length + 2]);
  const crc = crcX25(Buffer.concat([head, body]));
  return Buffer.concat([Buffer.from([0x78, 0x78]), head, body, Buffer.from([crc >> 8, crc & 0xff, 0x0d, 0x0a])]);
}
// Login (0x01): the IMEI as 8 bytes of BCD with a leading 0.
const gt06Login = (imei, serial) => gt06Frame(0x01, Buffer.from(`0${imei}`, 'hex'), serial);
// GPS+LBS location (0x12): UTC time, satellites, lat/lon in minutes × 30000,
// km/h, status (bit 12 positioned, 11 west, 10 north) and course, then the cell.
function gt06Location(f, serial) {
  const d = new Date(f.t);
  const c = Buffer.alloc(26);
  c.set([d.getUTCFullYear() - 2000, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()], 0);
  c[6] = 0xc9; // 12 bytes of GPS information, 9 satellites
  c.writeUInt32BE(Math.round(Math.abs(f.lat) * 1800000), 7);
  c.writeUInt32BE(Math.round(Math.abs(f.lon) * 1800000), 11);
  c[15] = Math.min(255, Math.round(f.speed));
  c.writeUInt16BE((1 << 12) | (f.lon < 0 ? 1 << 11 : 0) | (f.lat >= 0 ? 1 << 10 : 0) | (Math.round(f.course) % 360), 16);
  c.set([0x00, 0xd0, 0x01, 0x00, 0x28, 0x00, 0x1f, 0xb8], 18); // MCC 208, MNC 1, LAC, cell
  return gt06Frame(0x12, c, serial);
}
// Teltonika: the handshake (2-byte length, IMEI) and a Codec 8 packet of one record.
const teltonikaHello = (imei) => Buffer.concat([Buffer.from([0, imei.length]), Buffer.from(imei)]);
function codec8(f) {
  const rec = Buffer.alloc(30);
  rec.writeBigUInt64BE(BigInt(f.t), 0);
  rec.writeInt32BE(Math.round(f.lon * 1e7), 9); // [8]: priority 0
  rec.writeInt32BE(Math.round(f.lat * 1e7), 13);
  rec.writeInt16BE(30, 17); // altitude
  rec.writeUInt16BE(Math.round(f.course) % 360, 19);
  rec[21] = 9; // satellites
  rec.writeUInt16BE(Math.round(f.speed), 22); // then no IO elements: six zero bytes
  const data = Buffer.concat([Buffer.from([0x08, 1]), rec, Buffer.from([1])]); // codec, count, record, count
  const out = Buffer.alloc(data.length + 12); // 4 zero bytes, the length, the data, the CRC
  out.writeUInt32BE(data.length, 4);
  data.copy(out, 8);
  out.writeUInt32BE(crcArc(data), 8 + data.length);
  return out;
}

// ---- counts ----

const stats = { sent: 0, acked: 0, skipped: 0, refused: {}, open: { gt06: 0, teltonika: 0 }, devices: { gt06: 0, teltonika: 0 } };
const refuse = (why) => {
  if (/no unit|unknown device/.test(why) && !stats.refused[why]) console.log(`gps-sim: ${why}: register the devices (--register) to have them taken`);
  stats.refused[why] = (stats.refused[why] || 0) + 1;
};
function report(prefix) {
  const n = Object.values(stats.refused).reduce((a, b) => a + b, 0);
  const why = n ? ` (${Object.entries(stats.refused).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
  const conns = ['gt06', 'teltonika'].filter((p) => stats.devices[p]).map((p) => ` ${p} ${stats.open[p]}/${stats.devices[p]}`).join('');
  console.log(`${new Date().toISOString().slice(11, 19)} ${prefix}sent ${stats.sent} acked ${stats.acked} refused ${n}${why} skipped ${stats.skipped}${conns ? ` connections${conns}` : ''}`);
}

// ---- devices ----

// A GT06 or Teltonika tracker on its own TCP connection.
class TcpDevice {
  constructor(proto, imei, addr) {
    Object.assign(this, { proto, imei, addr, backoff: 1000, serial: 0, ready: false, stopped: false, unacked: 0 });
    stats.devices[proto]++;
    this.connect();
  }
  connect() {
    const sock = net.connect(this.addr.port, this.addr.host);
    Object.assign(this, { sock, buf: Buffer.alloc(0), ready: false, open: false, unacked: 0 });
    sock.setNoDelay(true);
    sock.on('connect', () => {
      this.open = true;
      stats.open[this.proto]++;
      sock.write(this.proto === 'gt06' ? gt06Login(this.imei, this.nextSerial()) : teltonikaHello(this.imei));
    });
    sock.on('data', (d) => this.onData(d));
    sock.on('error', (e) => { this.error = e.code || e.message; });
    sock.on('close', () => {
      if (this.open) stats.open[this.proto]--;
      this.open = this.ready = false;
      if (this.stopped) return;
      setTimeout(() => this.stopped || this.connect(), this.backoff * (0.75 + Math.random() / 2)).unref();
      this.backoff = Math.min(this.backoff * 2, 30000);
    });
  }
  nextSerial() { this.serial = (this.serial + 1) & 0xffff; return this.serial; }
  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    if (this.proto === 'teltonika') {
      if (!this.ready && this.buf.length >= 1) {
        if (this.buf[0] !== 1) { refuse('handshake refused: no unit has the IMEI'); return; }
        this.ready = true;
        this.backoff = 1000;
        this.buf = this.buf.subarray(1);
      }
      for (; this.buf.length >= 4; this.buf = this.buf.subarray(4)) {
        const n = this.buf.readUInt32BE(0);
        if (n) { stats.acked += n; this.unacked -= n; } else refuse('packet refused (CRC)');
      }
      return;
    }
    while (this.buf.length >= 5) {
      if (this.buf[0] !== 0x78 || this.buf[1] !== 0x78) { this.buf = this.buf.subarray(1); continue; }
      const len = this.buf[2] + 5;
      if (this.buf.length < len) break;
      if (this.buf[3] === 0x01) { this.ready = true; this.backoff = 1000; }
      if (this.buf[3] === 0x12) { stats.acked++; this.unacked--; }
      this.buf = this.buf.subarray(len);
    }
  }
  send(f) {
    if (!this.ready) { stats.skipped++; return; }
    this.sock.write(this.proto === 'gt06' ? gt06Location(f, this.nextSerial()) : codec8(f));
    stats.sent++;
    this.unacked++;
  }
  stop() { this.stopped = true; this.sock.end(); }
}

// An OsmAnd client: one request at a time per device, in order.
class OsmandDevice {
  constructor(id, addr) {
    Object.assign(this, { id, base: `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}/`, chain: Promise.resolve(), queued: 0, ready: true, unacked: 0 });
  }
  send(f) {
    if (this.queued > 5) { stats.skipped++; return; }
    const q = new URLSearchParams({ id: this.id, lat: f.lat.toFixed(7), lon: f.lon.toFixed(7), timestamp: String(Math.floor(f.t / 1000)),
      speed: (f.speed / 1.852).toFixed(1), bearing: f.course.toFixed(0) });
    this.queued++;
    stats.sent++;
    this.chain = this.chain.then(async () => {
      try {
        const r = await fetch(`${this.base}?${q}`);
        const text = (await r.text()).trim();
        if (r.status === 200 && text === 'accepted') stats.acked++;
        else refuse(r.status === 200 ? text : r.status === 404 ? 'unknown device' : `${r.status} ${text.slice(0, 60)}`);
      } catch (e) { refuse(`no answer (${e.cause?.code || e.message})`); }
      this.queued--;
    });
  }
  get pending() { return this.queued; }
  stop() {}
}

const deviceId = (proto, n) => (proto === 'osmand' ? `sim-${String(n).padStart(4, '0')}` : `86000000000${String(n).padStart(4, '0')}`);
const newDevice = (proto, id, o) => (proto === 'osmand' ? new OsmandDevice(id, o.osmand) : new TcpDevice(proto, id, o[proto]));

// Whether a listener takes connections at all: a clear error beats retries.
function probe(proto, a) {
  return new Promise((resolve) => {
    const s = net.connect(a.port, a.host);
    s.setTimeout(5000, () => s.destroy(new Error('timed out')));
    s.once('connect', () => { s.destroy(); resolve(); });
    s.once('error', (e) => die(`cannot connect to the ${proto} listener at ${a.text} (${e.code || e.message}): is citycmd running with --gps-${proto} (or --demo)? Otherwise pass --${proto} HOST:PORT`, 1));
  });
}

// ---- the server's API ----

async function api(o, method, path, body) {
  let r;
  try {
    r = await fetch(o.url + path, { method, headers: { 'content-type': 'application/json', ...(o.token && { authorization: `Bearer ${o.token}` }) },
      body: body && JSON.stringify(body) });
  } catch (e) { die(`cannot reach the server at ${o.url} (${e.cause?.code || e.cause?.message || e.message})`, 1); }
  const text = await r.text();
  try { return { status: r.status, body: JSON.parse(text), text }; } catch { return { status: r.status, body: {}, text }; }
}
const apiError = (r) => r.body.error?.message || r.text.slice(0, 200);

async function signIn(o) {
  const r = await api(o, 'POST', '/api/v1/sessions', { username: o.user, password: o.password });
  if (r.status !== 201) die(`login as ${o.user} failed: ${r.status} ${apiError(r)}`, 1);
  o.token = r.body.token;
}

// A unit for each device no unit has yet: kinds by protocol and agency.
const KINDS = {
  gt06: [['patrol_car', 'police'], ['traffic_car', 'traffic'], ['motorcycle', 'police'], ['tow_truck', 'traffic']],
  teltonika: [['engine', 'fire'], ['water_crew', 'water'], ['ladder', 'fire'], ['gas_crew', 'gas'], ['tanker', 'fire']],
  osmand: [['ambulance', 'ems'], ['command_car', 'command'], ['ambulance', 'ems'], ['patrol_car', 'police']],
};
async function register(o, fleet) {
  let created = 0;
  for (const [i, { proto, id }] of fleet.entries()) {
    const [kind, agency] = KINDS[proto][Math.floor(i / 3) % KINDS[proto].length];
    for (let attempt = 0; ; attempt++) {
      const call_sign = `SIM-${id.replace(/^86000000000|^sim-/, '').slice(0, 24)}${attempt ? `-${attempt + 1}` : ''}`;
      const r = await api(o, 'POST', '/api/v1/units', { call_sign, kind, agency, device: id });
      if (r.status === 201) { created++; break; }
      if (r.status === 409 && r.body.error?.field === 'device') break; // some unit has it already
      if (r.status === 409 && r.body.error?.field === 'call_sign' && attempt < 5) continue;
      die(`registering ${id} as ${call_sign} (${kind}, ${agency}) failed: ${r.status} ${apiError(r)}${r.status === 403 ? ' (--register needs units.manage: an operator)' : ''}`, 1);
    }
  }
  console.log(`registered ${created} new unit(s); ${fleet.length - created} device(s) already had one`);
}

// ---- the road graph ----

const SKIP = new Set(['footway', 'steps', 'path', 'pedestrian', 'cycleway', 'bridleway', 'track', 'raceway', 'escape', 'corridor']);
const SPEED = { motorway: 80, trunk: 65, primary: 50, secondary: 45, tertiary: 40, unclassified: 35, residential: 30, living_street: 15, service: 20, road: 30 };
const speedOf = (p) => { // km/h: the class's (links a fifth slower), at most the signed limit
  const link = /_link$/.test(p.class), base = (SPEED[String(p.class).replace(/_link$/, '')] || 30) * (link ? 0.8 : 1);
  const max = parseFloat(p.maxspeed);
  return max > 0 ? Math.min(base, max) : base;
};

// The roads (a box split in four while it comes back full), deduplicated.
async function fetchRoads(o, bbox, depth = 0) {
  const r = await api(o, 'GET', `/api/v1/gis/layers/roads?limit=10000${bbox ? `&bbox=${bbox.join(',')}` : ''}`);
  if (r.status === 403) die(`${o.user} may not read the map (${apiError(r)}): fleet mode needs an account with map.read, e.g. roles operator,dispatcher`, 1);
  if (r.status === 404) die(`the server has no city loaded (${apiError(r)}): start it with --city or --demo`, 1);
  if (r.status !== 200) die(`GET roads: ${r.status} ${apiError(r)}`, 1);
  if (r.body.features.length < 10000 || depth >= 4) return r.body.features;
  if (!bbox) bbox = (await api(o, 'GET', '/api/v1/city')).body.bbox;
  const [w, s, e, n] = bbox, mx = (w + e) / 2, my = (s + n) / 2;
  const parts = await Promise.all([[w, s, mx, my], [mx, s, e, my], [w, my, mx, n], [mx, my, e, n]].map((b) => fetchRoads(o, b, depth + 1)));
  return [...new Map(parts.flat().map((f) => [f.id, f])).values()];
}

// Nodes are the roads' vertices (those within 1 m joined), edges the
// segments between them, in a local equirectangular frame (metres).
const linesOf = (f) => (f.geometry?.type === 'LineString' ? [f.geometry.coordinates] : f.geometry?.type === 'MultiLineString' ? f.geometry.coordinates : []);
function buildGraph(features) {
  const first = features.flatMap(linesOf)[0]?.[0];
  if (!first) die('the city has no roads', 1);
  const [lon0, lat0] = first, kx = R * RAD * Math.cos(lat0 * RAD), ky = R * RAD;
  const g = { nodes: [], adj: [], edges: [], grid: new Map(),
    toLonLat: (x, y) => [lon0 + x / kx, lat0 + y / ky] };
  const node = (lon, lat) => {
    const x = (lon - lon0) * kx, y = (lat - lat0) * ky, gx = Math.round(x), gy = Math.round(y);
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++)
      for (const id of g.grid.get(`${gx + dx},${gy + dy}`) || []) if (Math.hypot(g.nodes[id].x - x, g.nodes[id].y - y) <= 1) return id;
    const id = g.nodes.push({ x, y }) - 1;
    g.adj.push([]);
    g.grid.set(`${gx},${gy}`, [...(g.grid.get(`${gx},${gy}`) || []), id]);
    return id;
  };
  for (const f of features) {
    const p = f.properties || {};
    if (p.drivable === 0 || SKIP.has(p.class)) continue;
    const oneway = ['yes', 'true', '1'].includes(p.oneway) ? 1 : p.oneway === '-1' ? -1 : 0;
    for (const line of linesOf(f)) {
      let prev = -1;
      for (const [lon, lat] of line) {
        const id = node(lon, lat);
        if (prev >= 0 && prev !== id) {
          const a = g.nodes[prev], b = g.nodes[id];
          const e = { a: prev, b: id, len: Math.hypot(b.x - a.x, b.y - a.y), kmh: speedOf(p), oneway };
          g.edges.push(e);
          g.adj[prev].push(e);
          g.adj[id].push(e);
        }
        prev = id;
      }
    }
  }
  // Vehicles start in the largest connected part, so they do not pace a car park.
  const part = new Int32Array(g.nodes.length).fill(-1), sizes = [];
  for (let s = 0; s < g.nodes.length; s++) {
    if (part[s] >= 0 || !g.adj[s].length) continue;
    const stack = [s], k = (part[s] = sizes.length);
    for (sizes.push(0); stack.length; sizes[k]++)
      for (const e of g.adj[stack.pop()]) for (const v of [e.a, e.b]) if (part[v] < 0) { part[v] = k; stack.push(v); }
  }
  const big = sizes.indexOf(Math.max(...sizes));
  g.start = g.edges.filter((e) => part[e.a] === big);
  if (!g.start.length) die('the city has no drivable roads', 1);
  return g;
}

// A vehicle on an edge, from node `from` to node `to`, `at` metres along.
class Vehicle {
  constructor(g) {
    const e = g.start[Math.floor(Math.random() * g.start.length)];
    const fwd = e.oneway === 1 || (e.oneway === 0 && Math.random() < 0.5);
    Object.assign(this, { g, e, from: fwd ? e.a : e.b, to: fwd ? e.b : e.a, at: Math.random() * e.len, mood: 0.8 + Math.random() * 0.4 });
  }
  get kmh() { return this.e.kmh * this.mood; }
  drive(seconds) {
    this.mood = Math.min(1.2, Math.max(0.8, this.mood + (Math.random() - 0.5) * 0.05 * seconds));
    let left = (seconds * this.kmh) / 3.6;
    while (left > this.e.len - this.at) {
      left -= this.e.len - this.at;
      const here = this.to, adj = this.g.adj[here];
      const may = (e) => (e.oneway === 0 || (e.oneway === 1 ? e.a === here : e.b === here));
      const ahead = adj.filter((e) => e !== this.e && may(e));
      const pick = ahead.length ? ahead : adj.filter((e) => e !== this.e).length ? adj.filter((e) => e !== this.e) : adj;
      this.e = pick[Math.floor(Math.random() * pick.length)];
      this.from = here;
      this.to = this.e.a === here ? this.e.b : this.e.a;
      this.at = 0;
    }
    this.at += left;
  }
  fix(t) {
    const a = this.g.nodes[this.from], b = this.g.nodes[this.to], k = this.at / this.e.len;
    const [lon, lat] = this.g.toLonLat(a.x + (b.x - a.x) * k, a.y + (b.y - a.y) * k);
    return { lon, lat, t, speed: this.kmh, course: (Math.atan2(b.x - a.x, b.y - a.y) / RAD + 360) % 360 };
  }
}

// ---- the modes ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const devices = [];
let stopping = false;
async function finish(code = 0) {
  if (stopping) return;
  stopping = true; // no more reports; wait up to 2 s for the last answers
  const end = Date.now() + 2000;
  while (Date.now() < end && devices.some((d) => (d.ready && d.unacked > 0) || d.pending > 0)) await sleep(50);
  for (const d of devices) d.stop();
  report('done: ');
  process.exit(code);
}

async function fleet(o) {
  await signIn(o);
  const roads = await fetchRoads(o);
  const g = buildGraph(roads);
  const protoOf = (i) => (o.protocol === 'mix' ? PROTOCOLS[i % 3] : o.protocol);
  let list = Array.from({ length: o.vehicles }, (_, i) => ({ proto: protoOf(i), id: deviceId(protoOf(i), i + 1) }));
  if (o.units) {
    // The registry's own fleet: every unit with a tracker drives. A 15-digit
    // device is an IMEI (GT06 or Teltonika in turn), anything else OsmAnd.
    const r = await api(o, 'GET', '/api/v1/units');
    if (r.status !== 200) die(`reading the units failed: ${r.status} ${apiError(r)}`, 1);
    list = r.body.units.filter((u) => u.device).map((u, i) => ({ proto: /^\d{15}$/.test(u.device) ? PROTOCOLS[i % 2] : 'osmand', id: u.device }));
    if (!list.length) die('no unit has a tracker device', 1);
    o.vehicles = list.length;
  }
  if (o.register) await register(o, list);
  for (const p of new Set(list.map((v) => v.proto))) await probe(p, o[p]);
  console.log(`${roads.length} roads, ${g.edges.length} segments; ${o.vehicles} vehicles reporting every ${o.every} s`);
  for (const { proto, id } of list) {
    const v = new Vehicle(g), d = newDevice(proto, id, o);
    devices.push(d);
    let last = Date.now(), lastFix = 0;
    const tick = () => {
      if (stopping) return;
      const now = Date.now();
      v.drive((now - last) / 1000);
      last = now;
      lastFix = Math.max(Math.floor(now / 1000) * 1000, lastFix + 1000); // whole seconds, always newer
      d.send(v.fix(lastFix));
    };
    setTimeout(() => { tick(); setInterval(tick, o.every * 1000); }, Math.random() * o.every * 1000);
  }
}

// "2014-09-10 06:54:07+0200" → ms.
const parseTime = (s) => Date.parse(String(s).replace(' ', 'T').replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));

async function replay(o) {
  let track;
  try { track = JSON.parse(readFileSync(o.replay, 'utf8')); } catch (e) { die(`cannot read ${o.replay}: ${e.message}`, 1); }
  const pts = (Array.isArray(track) ? track : []).map((r) => {
    const m = String(r.point).match(/POINT\s*\(\s*(-?[\d.]+)\s+(-?[\d.]+)\s*\)/);
    return m && { lon: Number(m[1]), lat: Number(m[2]), t0: parseTime(r.time) };
  }).filter((p) => p && Number.isFinite(p.t0)).sort((a, b) => a.t0 - b.t0);
  if (pts.length < 2) die(`${o.replay} holds no track of {"point":"POINT(lon lat)","time":…}`, 1);
  if (o.moveTo) { // the same offsets in metres around the new first point
    const [lon1, lat1] = o.moveTo, { lon: lon0, lat: lat0 } = pts[0];
    for (const p of pts) [p.lon, p.lat] = [lon1 + ((p.lon - lon0) * Math.cos(lat0 * RAD)) / Math.cos(lat1 * RAD), lat1 + p.lat - lat0];
  }
  for (const [i, p] of pts.entries()) { // speed and course from the original movement
    const s = pts[i ? i - 1 : 0], r = pts[i ? i : 1];
    const dx = (r.lon - s.lon) * Math.cos(s.lat * RAD) * R * RAD, dy = (r.lat - s.lat) * R * RAD;
    p.speed = (r.t0 > s.t0 ? Math.hypot(dx, dy) / ((r.t0 - s.t0) / 1000) : 0) * 3.6;
    p.course = Math.hypot(dx, dy) > 0.5 ? (Math.atan2(dx, dy) / RAD + 360) % 360 : i ? pts[i - 1].course : 0;
  }
  const span = (p) => (p.t0 - pts[0].t0) / o.rate; // real ms after the start
  const sent = o.seconds ? pts.filter((p) => span(p) <= o.seconds * 1000) : pts;
  if (o.register) { await signIn(o); await register(o, [{ proto: o.protocol, id: o.device }]); }
  await probe(o.protocol, o[o.protocol]);
  const d = newDevice(o.protocol, o.device, o);
  devices.push(d);
  for (const end = Date.now() + 10000; !d.ready; await sleep(20))
    if (Date.now() > end) die(`${o.device} was not let in by the ${o.protocol} listener (${Object.keys(stats.refused)[0] || d.error || 'no answer'})`, 1);
  const virt = sent[sent.length - 1].t0 - pts[0].t0; // ms of track time
  const start = Date.now(), base = start - Math.max(0, virt - virt / o.rate) - pts[0].t0;
  console.log(`replaying ${sent.length} of ${pts.length} fixes as ${o.device} over ${o.protocol} at ${o.rate}×: ${new Date(base + sent[0].t0).toISOString()} .. ${new Date(base + virt + pts[0].t0).toISOString()}`);
  for (const p of sent) {
    const wait = start + span(p) - Date.now();
    if (wait > 0) await sleep(wait);
    d.send({ lon: p.lon, lat: p.lat, t: base + p.t0, speed: p.speed, course: p.course });
  }
  await finish(0);
}

const o = parseFlags(process.argv.slice(2));
process.on('SIGINT', () => finish(130));
process.on('SIGTERM', () => finish(143));
setInterval(() => report(''), 10000);
if (o.seconds && !o.replay) setTimeout(() => finish(0), o.seconds * 1000);
await (o.replay ? replay(o) : fleet(o));
