#!/usr/bin/env node
// Sustained call intake: starts build/citycmd on the demo city, signs in a
// call taker, and runs build/bench/calls_load against it — calls posted at a
// target rate (open loop, bounded concurrency, keep-alive connections) with
// fusion on, and 100 consoles on the WebSocket — which reports acknowledged
// calls per second and the p50/p99 latency from sending a call to its 201,
// and to its effect reaching every console. The load generator is C (epoll,
// no JSON parser) so that it takes as little as it can of the two cores it
// shares with the server.
//
//   node tools/bench/calls_bench.mjs [--rate 2000] [--seconds 10] [--consoles 100]
//                                    [--connections 64] [--topic incidents|events]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.CITYCMD_BIN ||= path.join(ROOT, 'build', 'citycmd');
const { startServer, addUser, login, tempDir } = await import(path.join(ROOT, 'tests/lib/harness.mjs'));

const pass = process.argv.slice(2);
const state = tempDir();
addUser(state, { username: 'bench.ct', password: 'bench password 1', roles: 'call_taker', agency: 'command' });
const s = await startServer({ state, users: false, args: ['--city', path.join(ROOT, 'build/city/monaco'), '--ws-queue-max', '4194304', '--ws-max-clients', '1000', '--ws-rate', '100000'] });
let code = 1;
try {
  const token = await login(s.url, 'bench.ct', 'bench password 1');
  const auth = { headers: { authorization: `Bearer ${token}` } };
  const city = await (await fetch(`${s.url}/api/v1/city`, auth)).json();
  const { port } = new URL(s.url);
  const load = spawn(path.join(ROOT, 'build/bench/calls_load'),
    ['--port', port, '--token', token, '--bbox', city.bbox.join(','), ...pass], { stdio: ['ignore', 'inherit', 'inherit'] });
  code = await new Promise((resolve) => load.on('exit', (c) => resolve(c ?? 1)));
  const incidents = (await (await fetch(`${s.url}/api/v1/incidents?limit=5000`, auth)).json()).incidents.length;
  console.log(`  open incidents ${incidents} after fusion`);
} finally {
  await s.stop();
  s.cleanup();
}
process.exit(code);
