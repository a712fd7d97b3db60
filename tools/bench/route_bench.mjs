#!/usr/bin/env node
// Road routing: ETAs from 500 units to an incident with citycmd's travel-time
// engine (dispatch/roads.h, through build/bench/route_bench) against
// pgRouting's pgr_dijkstraCost on a real PostgreSQL 15, on the demo city, on
// Andorra, and on a generated grid city of a million road edges.
//
// For each city, route_bench builds the graph (turn restrictions ignored:
// pgRouting gets none), times disp_roads_times_to for --incidents incidents
// from --units units placed at graph nodes, and writes the edge table
// (disp_roads_export_csv) and the queries with its answers. This script
// starts a throwaway PostgreSQL cluster (Debian's binaries in
// /usr/lib/postgresql/15/bin, a temporary data directory, a free loopback
// port, its Unix socket in the same directory), creates the pgrouting
// extension, COPYs the edge table in, and asks
//   pgr_dijkstraCost('SELECT id, source, target, cost, reverse_cost FROM edges',
//                    ARRAY[sources], target, directed => true)
// for the same incidents. pgRouting's time is measured in the server:
// clock_timestamp() around the call inside a PL/pgSQL function, so it has
// no client round trip but does include pgRouting reading the edge table
// through SQL, which it does on every call. Every cost must agree with
// citycmd's to the millisecond (|seconds × 1000 − ms| ≤ 1, unreachable on
// both sides alike), or the script exits 1. On the grid pgRouting answers
// only the first --grid-pg-incidents incidents (5), as each takes seconds.
//
//   node tools/bench/route_bench.mjs [--incidents 50] [--units 500] [--grid 1000000]
//        [--grid-pg-incidents 5] [--only monaco,andorra,grid]
// ROUTE_BENCH_BIN overrides build/bench/route_bench, CITYCMD_BIN build/citycmd
// (used to import Andorra into build/city/andorra when it is missing).
//
// Needs the Debian packages postgresql-15 and postgresql-15-pgrouting
// (apt-get install postgresql-15 postgresql-15-pgrouting); the test suite
// does not.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, chownSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BENCH = process.env.ROUTE_BENCH_BIN || path.join(ROOT, 'build/bench/route_bench');
const CITYCMD = process.env.CITYCMD_BIN || path.join(ROOT, 'build/citycmd');
const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_EXT = '/usr/share/postgresql/15/extension/pgrouting.control';
const OSM_ANDORRA = path.resolve(ROOT, '../shared/data/osm/andorra.osm.pbf');

const opt = { incidents: '50', units: '500', grid: '1000000', 'grid-pg-incidents': '5', only: 'monaco,andorra,grid' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opt) || argv[i + 1] === undefined) {
    console.error(`usage: node tools/bench/route_bench.mjs ${Object.keys(opt).map((o) => `[--${o} ${opt[o]}]`).join(' ')}`);
    process.exit(2);
  }
  opt[k] = argv[i + 1];
}

// ---- prerequisites ----

function need(ok, what) {
  if (ok) return;
  console.error(`route_bench: ${what}`);
  process.exit(2);
}
need(existsSync(`${PG_BIN}/initdb`), `${PG_BIN}/initdb is missing: install PostgreSQL 15 and pgRouting with ` +
  'apt-get install postgresql-15 postgresql-15-pgrouting');
need(existsSync(PG_EXT), `the pgrouting extension is missing (${PG_EXT}): install it with ` +
  'apt-get install postgresql-15-pgrouting');
need(existsSync(BENCH), `${BENCH} is missing: build it with cmake --build build --target route_bench`);

// The cities, each as route_bench's arguments and the pgRouting incidents.
const cities = [];
const only = opt.only.split(',');
if (only.includes('monaco')) cities.push({ name: 'monaco (demo)', args: ['--city', path.join(ROOT, 'build/city/monaco')] });
if (only.includes('andorra')) cities.push({ name: 'andorra', args: ['--city', path.join(ROOT, 'build/city/andorra')], andorra: true });
if (only.includes('grid')) {
  cities.push({ name: `grid ${opt.grid}`, args: ['--grid', opt.grid], pgIncidents: Number(opt['grid-pg-incidents']) });
}

// Andorra's package, imported from the shared OSM extract the first time.
function ensureAndorra() {
  const dir = path.join(ROOT, 'build/city/andorra');
  if (existsSync(path.join(dir, 'city.gpkg'))) return;
  need(existsSync(OSM_ANDORRA), `${OSM_ANDORRA} is missing: the Andorra city is imported from it`);
  console.log(`importing ${OSM_ANDORRA} into ${dir}`);
  const r = spawnSync(CITYCMD, ['import-city', '--osm', OSM_ANDORRA, '--out', dir], { stdio: 'inherit' });
  need(r.status === 0, `import-city of Andorra failed (exit ${r.status})`);
}

// ---- the throwaway PostgreSQL ----

const tmp = mkdtempSync(path.join(tmpdir(), 'route-bench-'));
const data = path.join(tmp, 'data');
let port = 0;
let started = false;

// initdb and postgres refuse to run as root: as root, run them as the
// postgres user, who then owns the temporary directory.
const asRoot = process.getuid() === 0;
function pgTool(tool, args, opts = {}) {
  const cmd = asRoot ? 'runuser' : `${PG_BIN}/${tool}`;
  const full = asRoot ? ['-u', 'postgres', '--', `${PG_BIN}/${tool}`, ...args] : args;
  return spawnSync(cmd, full, { encoding: 'utf8', ...opts });
}

function cleanup() {
  if (started) {
    started = false;
    pgTool('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  }
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function startPostgres() {
  if (asRoot) {
    const id = (f) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout);
    chownSync(tmp, id('-u'), id('-g'));
  }
  let r = pgTool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale']);
  if (r.status !== 0) throw new Error(`initdb: ${r.stderr}`);
  port = await freePort();
  // fsync off: the cluster is thrown away; it only speeds up the COPY.
  const o = `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${tmp} -c fsync=off`;
  r = pgTool('pg_ctl', ['-D', data, '-l', path.join(tmp, 'postgres.log'), '-o', o, '-w', 'start']);
  if (r.status !== 0) throw new Error(`pg_ctl start: ${r.stderr}\n${readFileSync(path.join(tmp, 'postgres.log'), 'utf8')}`);
  started = true;
  psql(`CREATE EXTENSION pgrouting CASCADE;
CREATE FUNCTION bench_q(q int, srcs bigint[], tgt bigint) RETURNS double precision AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  INSERT INTO res SELECT q, start_vid, agg_cost
    FROM pgr_dijkstraCost('SELECT id, source, target, cost, reverse_cost FROM edges', srcs, tgt, directed => true);
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$ LANGUAGE plpgsql;`);
  return psql("SELECT 'PostgreSQL ' || current_setting('server_version'), pgr_version();").trim();
}

// Runs SQL (a string, or a file with file: true); resolves stdout, throws on error.
function psql(sql, { file = false } = {}) {
  const args = ['-h', tmp, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-At',
    '-v', 'ON_ERROR_STOP=1', ...(file ? ['-f', sql] : [])];
  const r = spawnSync(`${PG_BIN}/psql`, args, { input: file ? undefined : sql, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

// ---- one city ----

function runBench(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(BENCH, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`route_bench exited ${code}`))));
  });
}

function figures(out) {
  const num = (re) => { const m = out.match(re); return m ? Number(m[1]) : NaN; };
  return {
    buildMs: num(/^build: ([\d.]+) ms/m),
    nodes: num(/^build: .* (\d+) nodes/m),
    edges: num(/^build: .* (\d+) edges/m),
    memMb: num(/memory ([\d.]+) MB/),
    p50: num(/citycmd ms per incident: .*p50 ([\d.]+)/),
    p99: num(/citycmd ms per incident: .*p99 ([\d.]+)/),
  };
}

// Nearest-rank quantile of an array of numbers.
function quantile(v, q) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

// Loads the edge table, asks pgRouting the queries, and compares.
function pgRouting(csv, queries) {
  psql(`DROP TABLE IF EXISTS edges, res;
CREATE TABLE edges (id bigint PRIMARY KEY, source bigint, target bigint, cost float8, reverse_cost float8,
  x1 float8, y1 float8, x2 float8, y2 float8);
CREATE TABLE res (q int, start_vid bigint, agg_cost float8);
\\copy edges FROM '${csv}' WITH (FORMAT csv, HEADER true)
ANALYZE edges;`);
  const call = (k, q) => `SELECT bench_q(${k}, ARRAY[${q.sources.join(',')}]::bigint[], ${q.target});`;
  // A first call, from one source, to load pgRouting's library and warm the
  // table's pages.
  const warm = { target: queries[0].target, sources: queries[0].sources.slice(0, 1) };
  const sql = [call(-1, warm), 'DELETE FROM res;', ...queries.map((q, k) => call(k, q))];
  const script = path.join(tmp, 'queries.sql');
  writeFileSync(script, sql.join('\n') + '\n');
  const times = psql(script, { file: true }).trim().split('\n').map(Number).slice(1);
  const got = queries.map(() => new Map());
  for (const line of psql('SELECT q, start_vid, agg_cost FROM res;').trim().split('\n')) {
    if (!line) continue;
    const [q, s, c] = line.split('|');
    got[Number(q)].set(Number(s), Number(c));
  }
  let pairs = 0, agree = 0;
  queries.forEach((q, k) => q.sources.forEach((s, i) => {
    // pgRouting leaves out a source that is the target itself (cost 0).
    const pg = s === q.target ? 0 : got[k].get(s);
    const ms = q.ms[i];
    const ok = pg === undefined ? ms < 0 : ms >= 0 && Math.abs(pg * 1000 - ms) <= 1;
    pairs++;
    if (ok) agree++;
    else if (pairs - agree <= 5) console.error(`  DISAGREE: incident ${q.target}, source ${s}: citycmd ${ms} ms, pgRouting ${pg === undefined ? 'unreachable' : `${pg} s`}`);
  }));
  return { times, pairs, agree };
}

async function runCity(c) {
  console.log(`\n== ${c.name}`);
  if (c.andorra) ensureAndorra();
  const csv = path.join(tmp, 'edges.csv'), qfile = path.join(tmp, 'queries.jsonl');
  const out = await runBench([...c.args, '--incidents', opt.incidents, '--units', opt.units, '--export', csv, '--queries', qfile]);
  let queries = readFileSync(qfile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  if (c.pgIncidents) queries = queries.slice(0, c.pgIncidents);
  const pg = pgRouting(csv, queries);
  const f = figures(out);
  const pg50 = quantile(pg.times, 0.5), pg99 = quantile(pg.times, 0.99);
  console.log(`pgRouting ms per incident (${queries.length} incident${queries.length === 1 ? '' : 's'}, server-side): p50 ${pg50.toFixed(1)}, ` +
    `p99 ${pg99.toFixed(1)}; costs agree: ${pg.agree} of ${pg.pairs}`);
  rmSync(csv, { force: true });
  return { name: c.name, f, pg50, pg99, pgN: queries.length, ...pg };
}

// ---- the run ----

const rows = [];
let failed = false;
try {
  const version = await startPostgres();
  console.log(`route_bench: ${opt.units} units per incident, ${opt.incidents} incidents per city ` +
    `(pgRouting on the grid: the first ${opt['grid-pg-incidents']}); ${version.replace('|', ', pgRouting ')}`);
  for (const c of cities) rows.push(await runCity(c));
} catch (e) {
  console.error(`route_bench: ${e.message}`);
  failed = true;
}

console.log('\n| city | nodes | edges | build ms | memory MB | citycmd ms p50 / p99 | pgRouting ms p50 / p99 | speed-up (p50) | costs agree |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const f = r.f;
  console.log(`| ${r.name} | ${f.nodes} | ${f.edges} | ${f.buildMs.toFixed(0)} | ${f.memMb.toFixed(1)} | ` +
    `${f.p50.toFixed(3)} / ${f.p99.toFixed(3)} | ${r.pg50.toFixed(1)} / ${r.pg99.toFixed(1)} (${r.pgN} incident${r.pgN === 1 ? '' : 's'}) | ` +
    `${(r.pg50 / f.p50).toFixed(0)}× | ${r.agree} of ${r.pairs} |`);
}
for (const r of rows) {
  const fast = r.pg50 / r.f.p50 >= 100, quick = r.f.p99 < 2;
  console.log(`target ${r.name}: ≥100× pgRouting ${fast ? 'met' : 'NOT met'}, p99 under 2 ms ${quick ? 'met' : 'NOT met'}`);
}
const disagree = rows.some((r) => r.agree !== r.pairs);
if (disagree) console.error('route_bench: COSTS DISAGREE');
process.exit(failed || disagree ? 1 : 0);
