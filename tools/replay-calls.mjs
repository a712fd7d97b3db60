#!/usr/bin/env node
// Replays recorded emergency calls from a CSV into a running citycmd
// through POST /api/v1/calls, at real or accelerated speed.
//
//   node tools/replay-calls.mjs --url http://127.0.0.1:8080 --user calltaker \
//     [--csv ../shared/data/calls/sf-fire-calls-sample.csv] [--speed 60 | --rate 20] [--limit N]
//
// The password is read from CITYCMD_PASSWORD or, if unset, from standard
// input (never from the command line). The San Francisco Fire Department
// sample has one row per responding unit: rows are grouped into calls by
// CallNumber, call types are mapped to the catalogue below, and each call's
// position in San Francisco is carried into the same relative position in
// the city's extent and then moved onto the nearest road, so that calls land
// in the streets of the demo city. The sample has no caller numbers and only
// the time a unit became available; those stand in for the caller and the
// time received (shifted to now, keeping the gaps).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// SFFD call types -> citycmd catalogue categories and lines.
const TYPES = {
  'Medical Incident': ['medical/other', '120'],
  'Structure Fire': ['fire/structure', '119'],
  'Alarms': ['fire/alarm', '119'],
  'Outside Fire': ['fire/other', '119'],
  'Vehicle Fire': ['fire/vehicle', '119'],
  'Smoke Investigation (Outside)': ['fire/other', '119'],
  'Odor (Strange / Unknown)': ['fire/other', '119'],
  'Elevator / Escalator Rescue': ['fire/other', '119'],
  'Water Rescue': ['fire/other', '119'],
  'Aircraft Emergency': ['fire/other', '119'],
  'Gas Leak (Natural and LP Gases)': ['utility/gas-leak', '119'],
  'Electrical Hazard': ['utility/power-outage', '12345'],
  'Citizen Assist / Service Call': ['hotline/other', '12345'],
  'Other': ['hotline/other', '12345'],
};
const FALLBACK = ['hotline/other', '12345'];
// San Francisco's extent in the sample (the source frame of the mapping).
const SF = { w: -122.52, s: 37.70, e: -122.35, n: 37.82 };

function args(argv) {
  const o = { csv: path.resolve(ROOT, '../shared/data/calls/sf-fire-calls-sample.csv'), speed: 60, rate: 0, limit: Infinity };
  for (let i = 2; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) usage(`${k} needs a value`);
    if (k === '--url') o.url = v.replace(/\/$/, '');
    else if (k === '--user') o.user = v;
    else if (k === '--csv') o.csv = v;
    else if (k === '--speed') o.speed = Number(v);
    else if (k === '--rate') o.rate = Number(v);
    else if (k === '--limit') o.limit = Number(v);
    else if (k === '--bursts-every') o.bursts = Number(v);
    else usage(`unknown option ${k}`);
  }
  if (!o.url || !o.user) usage('--url and --user are required');
  if (!(o.speed > 0) || !(o.rate >= 0) || !(o.limit > 0) || !(o.bursts === undefined || o.bursts > 0)) usage('--speed, --rate, --limit and --bursts-every are positive numbers');
  return o;
}

function usage(why) {
  process.stderr.write(`replay-calls: ${why}\nusage: node tools/replay-calls.mjs --url URL --user NAME [--csv FILE] [--speed X | --rate N] [--limit N] [--bursts-every K]\n`);
  process.exit(2);
}

// RFC 4180 fields: quoted fields may hold commas.
function parseCsv(text) {
  const rows = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line) continue;
    const out = [];
    let cur = '', q = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (q) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') q = false; else cur += c;
      } else if (c === '"') q = true;
      else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
    }
    out.push(cur);
    rows.push(out);
  }
  const [head, ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

// "01/11/2002 01:51:44 AM"; rows without it fall back to noon of CallDate.
function parseTime(s, date) {
  const m = /^(\d\d)\/(\d\d)\/(\d{4}) (\d\d):(\d\d):(\d\d) (AM|PM)$/.exec(s || '');
  if (!m) return /^\d{4}-\d\d-\d\d$/.test(date || '') ? Date.parse(`${date}T12:00:00Z`) : NaN;
  let h = Number(m[4]) % 12;
  if (m[7] === 'PM') h += 12;
  return Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2]), h, Number(m[5]), Number(m[6]));
}

export function loadCalls(file) {
  const byCall = new Map();
  for (const r of parseCsv(readFileSync(file, 'utf8'))) {
    const loc = /\(([-\d.]+), ([-\d.]+)\)/.exec(r.Location || '');
    const t = parseTime(r.AvailableDtTm, r.CallDate);
    if (!loc || Number.isNaN(t)) continue;
    const prev = byCall.get(r.CallNumber);
    if (prev && prev.t <= t) continue; // the first unit's row stands for the call
    const [category, line] = TYPES[r.CallType] || FALLBACK;
    byCall.set(r.CallNumber, {
      id: r.CallNumber, t, category, line, lat: Number(loc[1]), lon: Number(loc[2]),
      text: `${r.CallType}, ${r.Address} (SFFD call ${r.CallNumber})`,
    });
  }
  return [...byCall.values()].sort((a, b) => a.t - b.t);
}

// With --bursts-every K, every Kth call becomes a simulated water-main burst
// at the same place (the sample has none): the demo's isolations at work.
function withBursts(calls, k) {
  if (!k) return calls;
  return calls.map((c, i) => ((i + 1) % k ? c : {
    ...c, category: 'utility/water-main-burst', line: '12345',
    text: `Water gushing from the road (simulated burst, in place of SFFD call ${c.id})`,
  }));
}

async function readPassword() {
  if (process.env.CITYCMD_PASSWORD) return process.env.CITYCMD_PASSWORD;
  let data = '';
  for await (const chunk of process.stdin) data += chunk;
  return data.split('\n')[0];
}

async function main() {
  const o = args(process.argv);
  const calls = withBursts(loadCalls(o.csv).slice(0, o.limit), o.bursts);
  const login = await fetch(`${o.url}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: o.user, password: await readPassword() }),
  });
  if (login.status !== 201) throw new Error(`sign-in refused: ${login.status}`);
  const auth = { authorization: `Bearer ${(await login.json()).token}` };
  const city = await (await fetch(`${o.url}/api/v1/city`, { headers: auth })).json();
  if (!city.loaded) throw new Error('the server has no city loaded (start it with --city or --demo)');
  const [w, s, e, n] = city.bbox;
  const place = async (c) => {
    const lon = w + (c.lon - SF.w) / (SF.e - SF.w) * (e - w);
    const lat = s + (c.lat - SF.s) / (SF.n - SF.s) * (n - s);
    const r = await fetch(`${o.url}/api/v1/gis/reverse?lon=${lon}&lat=${lat}&max_m=5000`, { headers: auth });
    const body = r.ok ? await r.json() : null;
    return body?.road?.at ? { lon: body.road.at[0], lat: body.road.at[1] } : { lon, lat };
  };
  const stats = { sent: 0, created: 0, joined: 0, refused: 0, failed: 0, ms: [] };
  const start = Date.now(), t0 = calls.length ? calls[0].t : 0;
  const inflight = new Set();
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i];
    const due = o.rate > 0 ? start + (i * 1000) / o.rate : start + (c.t - t0) / o.speed;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const p = (async () => {
      const location = await place(c);
      const body = {
        line: c.line, caller: `+1 415 ${String(c.id).slice(-7)}`, category: c.category, text: c.text,
        received_at: new Date(Date.now()).toISOString(), location,
      };
      const sent = performance.now();
      stats.sent++;
      try {
        const r = await fetch(`${o.url}/api/v1/calls`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        stats.ms.push(performance.now() - sent);
        const j = await r.json().catch(() => ({}));
        if (r.status === 201) stats[j.joined ? 'joined' : 'created']++;
        else { stats.refused++; process.stderr.write(`replay-calls: call ${c.id}: ${r.status} ${JSON.stringify(j.error || j)}\n`); }
      } catch (err) {
        stats.failed++;
        process.stderr.write(`replay-calls: call ${c.id}: ${err.message}\n`);
      }
    })();
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  const ms = stats.ms.sort((a, b) => a - b);
  const pct = (q) => (ms.length ? ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(1) : '-');
  console.log(`replayed ${stats.sent} calls in ${((Date.now() - start) / 1000).toFixed(1)} s: ` +
    `${stats.created} opened an incident, ${stats.joined} joined one, ${stats.refused} refused, ${stats.failed} failed; ` +
    `acknowledged in p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
  process.exit(stats.refused || stats.failed ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => { process.stderr.write(`replay-calls: ${err.message}\n`); process.exit(1); });
}
