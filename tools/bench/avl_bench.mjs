#!/usr/bin/env node
// Vehicle positions end to end: starts build/citycmd on the demo city with a
// tracker listener (Teltonika, GT06 or OsmAnd), registers the units (one tracker each) through the
// import API, and runs build/bench/avl_load against it: trackers sending
// Codec 8 packets at a target rate of positions, and WebSocket clients each
// watching a district-sized viewport of the `units` topic. Then, in the same
// run, the design a team would otherwise build: a real redis-server, the same
// positions as pipelined GEOADD + PUBLISH to a channel per map tile, and the
// same viewers as subscribers to the tiles their viewports cover. Prints both
// side by side: positions offered and acknowledged per second, deliveries per
// second, and p50/p99 from the device's packet to a watching client.
//
//   node tools/bench/avl_bench.mjs [--rate 100000] [--seconds 10] [--clients 1000]
//        [--units 2000] [--protocol teltonika] [--packet-ms 1000] [--view 0.0625]
//        [--ws-units-interval 100] [--ws-send-buffer 0] [--zoom 15] [--producers 4] [--only citycmd|redis]
//        [--connections C (osmand: keep-alive connections the units share)]
// GT06 stamps fixes in whole seconds, so with --protocol gt06 each unit sends
// one location a second and --units must be at least --rate.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.CITYCMD_BIN ||= path.join(ROOT, 'build', 'citycmd');
const { startServer, startRedis, addUser, login, tempDir, waitFor } = await import(path.join(ROOT, 'tests/lib/harness.mjs'));

const opt = { rate: '100000', seconds: '10', clients: '1000', units: '2000', protocol: 'teltonika',
  'packet-ms': '1000', view: '0.0625', 'ws-units-interval': '100', 'ws-send-buffer': '0', zoom: '15', producers: '4', only: '',
  connections: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opt) || argv[i + 1] === undefined) {
    console.error(`usage: node tools/bench/avl_bench.mjs ${Object.keys(opt).map((o) => `[--${o} ${opt[o] || '…'}]`).join(' ')}`);
    process.exit(2);
  }
  opt[k] = argv[i + 1];
}
if (!['teltonika', 'gt06', 'osmand'].includes(opt.protocol)) {
  console.error(`--protocol ${opt.protocol}: teltonika, gt06 or osmand`);
  process.exit(2);
}
const units = Number(opt.units);
const loadArgs = ['--units', opt.units, '--rate', opt.rate, '--seconds', opt.seconds, '--clients', opt.clients,
  '--protocol', opt.protocol, '--packet-ms', opt['packet-ms'], '--view', opt.view,
  ...(opt.connections ? ['--connections', opt.connections] : [])];
const imei = (i) => `87${String(i).padStart(13, '0')}`;

// CPU seconds a process has used so far (utime + stime from /proc).
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function runLoad(args) {
  return new Promise((resolve) => {
    const p = spawn(process.env.AVL_LOAD_BIN || path.join(ROOT, 'build/bench/avl_load'), args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    p.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

// The figures of one avl_load report.
function figures(out) {
  const num = (re) => { const m = out.match(re); return m ? m[1] : '-'; };
  return {
    offered: num(/positions offered\s+\d+ \((\d+)\/s\)/),
    acked: num(/positions acknowledged\s+\d+ \((\d+)\/s\)/),
    deliveries: num(/deliveries\s+\d+ \((\d+)\/s\)/),
    p50: num(/p50 ([\d.>=-]+) ms/),
    p99: num(/p99 ([\d.>=-]+) ms/),
    closed: num(/clients closed\s+(\d+)/),
  };
}

async function runCitycmd() {
  const state = tempDir();
  addUser(state, { username: 'bench.op', password: 'bench password 1', roles: 'operator,dispatcher', agency: 'command' });
  addUser(state, { username: 'bench.disp', password: 'bench password 1', roles: 'dispatcher', agency: 'command' });
  const s = await startServer({ state, users: false, readyTimeout: 30000, args: ['--city', path.join(ROOT, 'build/city/monaco'),
    `--gps-${opt.protocol}`, '127.0.0.1:0', '--gps-max-connections', String(units + 1000),
    '--ws-max-clients', '2000', '--ws-units-interval', opt['ws-units-interval'], '--ws-send-buffer', opt['ws-send-buffer'], '--http-max-body', '16777216'] });
  try {
    let gpsPort;
    await waitFor(() => {
      const re = new RegExp(`gps\\.listening protocol=${opt.protocol} .*port=(\\d+)`);
      const m = s.lines.map((l) => l.match(re)).find(Boolean);
      gpsPort = m && m[1];
      return gpsPort;
    }, { what: `the ${opt.protocol} listener` });
    const op = await login(s.url, 'bench.op', 'bench password 1');
    const viewer = await login(s.url, 'bench.disp', 'bench password 1');
    const auth = (t) => ({ authorization: `Bearer ${t}` });
    const city = await (await fetch(`${s.url}/api/v1/city`, { headers: auth(op) })).json();
    // The fleet: one patrol car per tracker.
    const rows = ['call_sign,kind,agency,station,device,capabilities'];
    for (let i = 1; i <= units; i++) rows.push(`BENCH-${i},patrol_car,police,,${imei(i)},`);
    const imp = await fetch(`${s.url}/api/v1/units/import`, { method: 'POST', headers: { ...auth(op), 'content-type': 'text/csv' }, body: rows.join('\n') + '\n' });
    if (imp.status !== 200) throw new Error(`import: ${imp.status} ${await imp.text()}`);
    const list = (await (await fetch(`${s.url}/api/v1/units`, { headers: auth(op) })).json()).units;
    const byDevice = new Map(list.map((u) => [u.device, Number(u.id.slice(2))]));
    const base = byDevice.get(imei(1));
    for (let i = 1; i <= units; i++) {
      if (byDevice.get(imei(i)) !== base + i - 1) throw new Error(`unit ids are not contiguous at device ${imei(i)}`);
    }
    // avl_load names device i by IMEI 87<id-base + i>: make the two agree.
    if (base !== 1) throw new Error(`the first unit is U-${base}, expected U-1 on a fresh state`);
    const cpu0 = cpuSeconds(s.pid), t0 = Date.now();
    const r = await runLoad(['--mode', 'citycmd', '--port', gpsPort, '--host', '127.0.0.1', '--token', viewer,
      '--bbox', city.bbox.join(','), '--id-base', String(base), ...loadArgs, ...wsPortArgs(s.url)]);
    const cpu = (cpuSeconds(s.pid) - cpu0) / ((Date.now() - t0) / 1000);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: auth(op) })).text();
    const verdicts = [...metrics.matchAll(/^citycmd_gps_positions_total\{verdict="(\w+)"\} (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    console.log(`  server verdicts: ${verdicts.join(', ') || '(none)'}; server CPU ${(cpu * 100).toFixed(0)}% of one core over the load run`);
    return { code: r.code, fig: figures(r.out), cpu };
  } finally {
    await s.stop();
    s.cleanup();
  }
}

// avl_load reaches the WebSocket on the HTTP port and the trackers on --port.
function wsPortArgs(url) {
  return ['--ws-port', new URL(url).port];
}

async function runRedis() {
  const r = await startRedis();
  try {
    const cpu0 = cpuSeconds(r.proc.pid), t0 = Date.now();
    const res = await runLoad(['--mode', 'redis', '--redis-port', String(r.port), '--bbox', await cityBbox(),
      '--zoom', opt.zoom, '--producers', opt.producers, ...loadArgs]);
    const cpu = (cpuSeconds(r.proc.pid) - cpu0) / ((Date.now() - t0) / 1000);
    console.log(`  redis-server CPU ${(cpu * 100).toFixed(0)}% of one core over the load run`);
    return { code: res.code, fig: figures(res.out), cpu };
  } finally {
    await r.stop();
  }
}

async function cityBbox() {
  const info = JSON.parse(readFileSync(path.join(ROOT, 'build/city/monaco/city.json'), 'utf8'));
  return info.bbox.join(',');
}

console.log(`avl_bench: ${opt.rate} positions/s from ${units} ${opt.protocol} trackers (a packet each every ${opt['packet-ms']} ms), ` +
  `${opt.clients} viewers each on ${(Number(opt.view) * 100).toFixed(2)}% of Monaco, ${opt.seconds} s, --ws-units-interval ${opt['ws-units-interval']} ms, redis tiles at zoom ${opt.zoom}`);
const results = {};
if (opt.only !== 'redis') results.citycmd = await runCitycmd();
if (opt.only !== 'citycmd') results.redis = await runRedis();
console.log('\n| design | offered pos/s | acknowledged pos/s | deliveries/s | p50 ms | p99 ms | clients closed | server CPU |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, r] of Object.entries(results)) {
  const f = r.fig;
  const label = name === 'citycmd' ? `citycmd (${opt.protocol}, WebSocket)` : 'redis-server (GEOADD + PUBLISH per tile)';
  console.log(`| ${label} | ${f.offered} | ${f.acked} | ${f.deliveries} | ${f.p50} | ${f.p99} | ${f.closed} | ${(r.cpu * 100).toFixed(0)}% |`);
}
process.exit(Object.values(results).some((r) => r.code !== 0) ? 1 : 0);
