// Test harness: starts the real citycmd binary and a real redis-server on
// loopback ports, and gives tests small helpers for HTTP, WebSocket and Redis.
// Every process started here is killed when the test process exits.
import { spawn, spawnSync, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const BIN = path.resolve(ROOT, process.env.CITYCMD_BIN || 'build/citycmd');
// The workplace's real data, beside the project (CITYCMD_SHARED_DATA overrides).
export const SHARED_DATA = process.env.CITYCMD_SHARED_DATA || path.resolve(ROOT, '../shared/data');

// The path of a shared data file; throws, naming what is missing, when the
// data is not there (a test never passes without its data).
export function sharedData(...parts) {
  const p = path.join(SHARED_DATA, ...parts);
  if (!existsSync(p)) throw new Error(`${p} is missing: tests read real data from ../shared/data (or CITYCMD_SHARED_DATA)`);
  return p;
}
const execFileP = promisify(execFile);

const children = new Set();
// Bearer tokens of the test user, by server URL and WebSocket URL: request()
// and connectWs() present them unless a test says otherwise.
const tokens = new Map();

// The account every server started here gets (unless users: false).
export const TEST_USER = { username: 'test.dispatcher', password: 'test password 123', roles: 'dispatcher', agency: 'command' };

// Creates a user with `citycmd admin add-user` (the password on stdin).
export function addUser(stateDir, { username, password, roles, agency, displayName, leads }) {
  const args = ['admin', 'add-user', '--state', stateDir, '--username', username, '--role', roles, '--agency', agency];
  if (displayName) args.push('--display-name', displayName);
  if (leads) args.push('--leads', leads);
  const r = spawnSync(BIN, args, { input: `${password}\n`, encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0 && !/already exists/.test(r.stderr)) throw new Error(`add-user ${username}: ${r.stderr}`);
  return r;
}

// Signs in; resolves with the token (throws on failure).
export async function login(base, username, password) {
  const res = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tempDir(prefix = 'citycmd-test-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function waitFor(fn, { timeout = 5000, interval = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts citycmd on 127.0.0.1 with an ephemeral port (unless args name one)
// and resolves once it logs server.ready. Returns a handle.
export async function startServer({ args = [], state, env = {}, readyTimeout = 10000, users = true } = {}) {
  const stateDir = state || tempDir();
  if (users) addUser(stateDir, TEST_USER);
  const full = ['--state', stateDir, ...args];
  if (!args.includes('--http')) full.push('--http', '127.0.0.1:0');
  const startedAt = Date.now();
  const proc = spawn(BIN, full, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const lines = [];
  let buf = '';
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { children.delete(proc); resolve({ code, signal }); });
  });
  const stderrDone = new Promise((resolve) => proc.stderr.on('close', resolve));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`citycmd not ready in ${readyTimeout} ms:\n${lines.join('\n')}`)), readyTimeout);
    proc.stderr.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (process.env.CITYCMD_TEST_VERBOSE) process.stderr.write(`[citycmd] ${line}\n`);
        const m = line.match(/event=server\.ready .*port=(\d+)/);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`citycmd exited (${code ?? signal}) before ready:\n${lines.join('\n')}`));
    });
  });
  const port = await ready;
  const url = `http://127.0.0.1:${port}`;
  let token = null;
  if (users) {
    token = await login(url, TEST_USER.username, TEST_USER.password);
    tokens.set(url, token);
    tokens.set(`ws://127.0.0.1:${port}/ws`, token);
  }
  return {
    token,
    proc, port, url, stateDir, lines, exited, startedAt,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    pid: proc.pid,
    // Sends a signal and resolves with { code, signal, ms }.
    // A sanitizer report (ASan, LSan at exit, UBSan) fails the caller.
    async stop(signal = 'SIGTERM') {
      const t0 = Date.now();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      await Promise.race([stderrDone, sleep(2000)]); // the last stderr lines
      const report = lines.findIndex((l) => /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(l));
      if (report >= 0) throw new Error(`citycmd sanitizer report:\n${lines.slice(report, report + 40).join('\n')}`);
      return { ...r, ms: Date.now() - t0 };
    },
    async kill9() {
      proc.kill('SIGKILL');
      return exited;
    },
    rssKiB() {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
    },
    cleanup() {
      if (!state) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

// The test user's Authorization header for a server started here (or {}).
export function authHeader(url) {
  return tokens.has(url) ? { authorization: `Bearer ${tokens.get(url)}` } : {};
}

// HTTP helpers: resolve { status, headers, body (parsed JSON when possible), text }.
// Sends the test user's token for servers started here; pass
// { authorization: null } to send none, or your own value.
export async function request(base, method, p, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (!('authorization' in init.headers) && tokens.has(base)) init.headers.authorization = `Bearer ${tokens.get(base)}`;
  if (init.headers.authorization === null) delete init.headers.authorization;
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    if (!init.headers['content-type']) init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(base + p, init);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, body: json, text };
}
export const get = (base, p, headers) => request(base, 'GET', p, undefined, headers);
export const post = (base, p, body, headers) => request(base, 'POST', p, body, headers);

// A WebSocket client that records every message; await next(pred) for one.
// Presents the test user's token (as the subprotocol "bearer.TOKEN", as a
// browser would) unless opts.token is given (null: none).
export async function connectWs(url, opts = {}) {
  const { token: given, ...wsOpts } = opts;
  const token = given === undefined ? tokens.get(url) : given;
  const ws = new WebSocket(url, token ? ['citycmd.v1', `bearer.${token}`] : [], wsOpts);
  const messages = [];
  const waiters = [];
  const stats = { frames: 0, batches: 0 };
  const deliver = (msg) => {
    const w = waiters.find((x) => x.pred(msg));
    if (w) {
      waiters.splice(waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve(msg);
    } else {
      messages.push(msg);
    }
  };
  // A batch frame carries several messages: each is delivered on its own.
  ws.on('message', (data, isBinary) => {
    stats.frames++;
    let msg;
    try { msg = JSON.parse(data.toString()); } catch { msg = { raw: data.toString(), isBinary }; }
    if (msg.type === 'batch' && Array.isArray(msg.data)) {
      stats.batches++;
      for (const m of msg.data) deliver(m);
    } else {
      deliver(msg);
    }
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })));
  });
  return {
    ws, messages, closed, stats,
    send(obj) { ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
    // Resolves with the first message (already received or future) matching pred.
    // Resolves with the first unconsumed message (received or future) matching pred.
    next(pred = () => true, timeout = 5000) {
      const seen = messages.find(pred);
      if (seen) { messages.splice(messages.indexOf(seen), 1); return Promise.resolve(seen); }
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching WebSocket message in ${timeout} ms; unconsumed: ${JSON.stringify(messages).slice(0, 500)}`));
        }, timeout);
        waiters.push(w);
      });
    },
    close() { ws.close(); return closed; },
  };
}

// A real redis-server on a free loopback port, without persistence.
export async function startRedis({ port } = {}) {
  const p = port || await freePort();
  const dir = tempDir('citycmd-redis-');
  const proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { children.delete(proc); resolve({ code, signal }); }));
  await waitFor(async () => (await redisCli(p, 'PING')).trim() === 'PONG', { timeout: 10000, what: 'redis-server' });
  return {
    port: p, proc, url: `redis://127.0.0.1:${p}`,
    async stop() { proc.kill('SIGKILL'); await exited; rmSync(dir, { recursive: true, force: true }); },
  };
}

export async function redisCli(port, ...args) {
  const { stdout } = await execFileP('redis-cli', ['-p', String(port), '--raw', ...args]);
  return stdout;
}

export function haveCommand(cmd) {
  return ['/usr/bin', '/usr/local/bin', '/bin'].some((d) => existsSync(path.join(d, cmd)));
}
