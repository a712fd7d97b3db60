// HTTPS and WSS with --tls-cert/--tls-key (a throwaway certificate made by
// the openssl command), and plain HTTP kept on loopback unless the operator
// says otherwise.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import WebSocket from 'ws';
import { BIN, startServer, addUser, tempDir } from '../lib/harness.mjs';

const dir = tempDir('citycmd-tls-');
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
{ stdio: 'ignore' });
const ca = readFileSync(cert);

function httpsRequest(port, method, p, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : null;
    const hdrs = { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) };
    const req = https.request({ host: '127.0.0.1', port, method, path: p, ca, agent: false, headers: hdrs }, (res) => {
      const protocol = res.socket.getProtocol();
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: json, text, protocol });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

describe('TLS', () => {
  let s;
  const user = { username: 'tls.user', password: 'tls password 123', roles: 'dispatcher', agency: 'fire' };
  before(async () => {
    const state = tempDir();
    addUser(state, user);
    s = await startServer({ state, users: false, args: ['--tls-cert', cert, '--tls-key', key] });
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('serves HTTPS: TLS 1.2 or newer, login, API calls, static files with HSTS', async () => {
    assert.match(s.lines.join('\n'), /event=http\.listen .*scheme=https/);
    const health = await httpsRequest(s.port, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.match(health.protocol, /^TLSv1\.[23]$/);
    const login = await httpsRequest(s.port, 'POST', '/api/v1/sessions', { body: { username: user.username, password: user.password } });
    assert.equal(login.status, 201);
    const me = await httpsRequest(s.port, 'GET', '/api/v1/sessions/current', { headers: { authorization: `Bearer ${login.body.token}` } });
    assert.equal(me.status, 200);
    assert.equal(me.body.user.username, user.username);
    const page = await httpsRequest(s.port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers['strict-transport-security'], /max-age=\d+/);
    s.token = login.body.token;
  });

  test('serves WSS with the token, and refuses plain HTTP on the TLS port', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${s.port}/ws`, ['citycmd.v1', `bearer.${s.token}`], { ca });
    const hello = await new Promise((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      ws.once('error', reject);
    });
    assert.equal(hello.type, 'hello');
    ws.close();
    let plain;
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/healthz`);
      plain = r.status;
    } catch {
      plain = 'refused';
    }
    assert.notEqual(plain, 200, 'no plain HTTP answer from the TLS port');
  });
});

describe('plain HTTP', () => {
  test('off loopback it is refused unless --allow-plain-http, which warns in the log', async () => {
    const r = spawnSync(BIN, ['--state', tempDir(), '--http', '0.0.0.0:0'], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /refusing to serve plain HTTP on 0\.0\.0\.0: give --tls-cert and --tls-key/);
    const s = await startServer({ args: ['--http', '0.0.0.0:0', '--allow-plain-http'], users: false });
    try {
      assert.match(s.lines.join('\n'), /level=warn event=http\.plain addr=0\.0\.0\.0/);
    } finally { await s.stop(); s.cleanup(); }
    const local = await startServer({ users: false });
    try {
      assert.match(local.lines.join('\n'), /event=http\.plain note="plain HTTP on loopback only/);
    } finally { await local.stop(); local.cleanup(); }
  });

  test('a certificate and key that do not match are a clear start-up error', async () => {
    const other = path.join(dir, 'other.pem');
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', other], { stdio: 'ignore' });
    const r = spawnSync(BIN, ['--state', tempDir(), '--http', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', other],
      { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /cannot serve TLS on 127\.0\.0\.1:0: check that --tls-cert .* and --tls-key .* are a matching PEM certificate and key/);
  });
});
