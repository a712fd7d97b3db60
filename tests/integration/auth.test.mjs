// Who may see and do what, against the running server: the whole role ×
// agency × action matrix (every allowed call succeeds, every other is 403
// and audited), sessions (lockout, expiry, logout, token reuse, disabled
// users cut off on HTTP and WebSocket), and the WebSocket upgrade's checks.
// The expectations below are written from docs/SECURITY.md, not from the code.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  BIN, startServer, addUser, login, request, get, post, connectWs, tempDir, sleep, waitFor,
} from '../lib/harness.mjs';

const PW = 'matrix password 1';
const ROLES = ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader', 'operator', 'auditor'];
const AGENCIES = ['police', 'fire', 'command'];

// docs/SECURITY.md, "The matrix".
const ALLOWED = {
  'journal.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'journal.write': ['call_taker', 'dispatcher', 'supervisor', 'leader'],
  'events.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'audit.read': ['auditor'],
  'users.read': ['supervisor', 'operator'],
  'users.manage': ['operator'],
  'metrics.read': ['operator'],
  'map.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'calls.create': ['call_taker', 'dispatcher', 'supervisor'],
  'incidents.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'incidents.update': ['dispatcher', 'supervisor'],
  'units.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'units.manage': ['supervisor', 'operator'],
  'units.status': ['dispatcher', 'supervisor', 'field_unit', 'crew'],
  'pipes.read': ['dispatcher', 'supervisor', 'crew', 'leader'],
  'pipes.isolate': ['dispatcher', 'supervisor', 'crew'],
  'pipes.manage': ['supervisor'],
  'repairs.approve': ['supervisor', 'leader'],
  'cameras.read': ['call_taker', 'dispatcher', 'supervisor', 'field_unit', 'crew', 'leader'],
  'cameras.manage': ['supervisor', 'operator'],
  'cameras.control': ['dispatcher', 'supervisor'],
};
const may = (u, action) => ALLOWED[action].includes(u.roles);
// Agency-owned records: own agency, the joint "command" records, and for a
// leader the agencies led.
function mayReadAgency(u, agency) {
  if (!may(u, 'journal.read')) return false;
  if (agency === u.agency || agency === 'command') return true;
  return u.roles === 'leader' && (u.leads === '*' || (u.leads || '').split(',').includes(agency));
}

// Units: each agency reads its own (leaders the agencies they lead), the
// command centre all; operators manage all, supervisors their agency's;
// dispatchers and supervisors of the command centre set every unit's
// status, everyone else with units.status their own agency's.
function mayUnit(u, action, agency) {
  if (!may(u, action)) return false;
  if (agency === u.agency) return true;
  if (action === 'units.manage') return u.roles === 'operator';
  if (u.agency === 'command') return action === 'units.read' || ['dispatcher', 'supervisor'].includes(u.roles);
  return u.roles === 'leader' && (u.leads === '*' || (u.leads || '').split(',').includes(agency));
}

const sql = (state, q) => execFileSync('sqlite3', ['-batch', path.join(state, 'citycmd.db'), q], { encoding: 'utf8' }).trim();
const bearer = (token) => ({ authorization: token ? `Bearer ${token}` : null });

describe('the role × agency × action matrix', () => {
  let s;
  const users = [];
  const entries = {}; // agency -> journal entry id
  const units = {}; // agency -> unit id
  let auditorToken;

  before(async () => {
    const state = tempDir();
    // The first operator comes from the command line; the rest through the API.
    addUser(state, { username: 'root.operator', password: PW, roles: 'operator', agency: 'command' });
    s = await startServer({ state, args: ['--no-metrics-public'], users: false });
    const opToken = await login(s.url, 'root.operator', PW);
    for (const roles of ROLES) {
      for (const agency of AGENCIES) {
        users.push({ username: `${roles.replace('_', '-')}.${agency}`, roles, agency, leads: roles === 'leader' ? `${agency},ems` : '' });
      }
    }
    users.push({ username: 'leader.all', roles: 'leader', agency: 'government', leads: '*' });
    users.push({ username: 'dispatcher.ems', roles: 'dispatcher', agency: 'ems', leads: '' });
    await Promise.all(users.map(async (u) => {
      const r = await post(s.url, '/api/v1/users', { username: u.username, display_name: `User ${u.username}`,
        agency: u.agency, roles: [u.roles], leads: u.leads, password: PW }, bearer(opToken));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.user.roles, u.roles);
      u.id = r.body.user.id;
    }));
    for (const u of users) u.token = await login(s.url, u.username, PW);
    for (const agency of ['police', 'fire', 'ems', 'command', 'government']) {
      const r = await post(s.url, '/api/v1/units', { call_sign: `${agency}-01`, kind: 'command_car', agency }, bearer(opToken));
      assert.equal(r.status, 201, r.text);
      units[agency] = r.body.unit.id;
    }
    auditorToken = users.find((u) => u.username === 'auditor.command').token;
    for (const agency of ['police', 'fire', 'ems', 'command']) {
      const author = users.find((u) => u.username === `dispatcher.${agency}`);
      const r = await post(s.url, '/api/v1/journal', { text: `${agency} entry` }, bearer(author.token));
      assert.equal(r.status, 201);
      assert.equal(r.body.entry.agency, agency);
      entries[agency] = r.body.entry.id;
    }
  });
  after(async () => { await s?.stop(); s?.cleanup(); });

  test('every allowed call succeeds, every other is 403 and audited with actor, action and object', async () => {
    let allowed = 0, denied = 0;
    for (const u of users) {
      const h = bearer(u.token);
      const denials = [];
      const check = (what, action, r, okStatus) => {
        if (may(u, action)) {
          assert.equal(r.status, okStatus, `${u.username} ${what}: ${r.status} ${r.text.slice(0, 200)}`);
          allowed++;
        } else {
          assert.equal(r.status, 403, `${u.username} ${what} must be refused: ${r.status}`);
          assert.equal(r.body.error.code, 'forbidden');
          denials.push(action);
          denied++;
        }
        return r;
      };
      // Reads and writes by role.
      const list = check('GET /api/v1/journal', 'journal.read', await get(s.url, '/api/v1/journal', h), 200);
      check('POST /api/v1/journal', 'journal.write', await post(s.url, '/api/v1/journal', { text: `by ${u.username}` }, h), 201);
      const ev = check('GET /api/v1/events', 'events.read', await get(s.url, '/api/v1/events?limit=1000', h), 200);
      check('GET /api/v1/audit', 'audit.read', await get(s.url, '/api/v1/audit', h), 200);
      const ul = check('GET /api/v1/users', 'users.read', await get(s.url, '/api/v1/users', h), 200);
      check('GET /metrics', 'metrics.read', await get(s.url, '/metrics', h), 200);
      check('GET /api/v1/city', 'map.read', await get(s.url, '/api/v1/city', h), 200);
      check('POST /api/v1/calls', 'calls.create', await post(s.url, '/api/v1/calls',
        { line: '110', caller: '1', location: { lon: 7.42 + u.id / 1000, lat: 43.73 }, category: 'police/disturbance' }, h), 201);
      check('GET /api/v1/incidents', 'incidents.read', await get(s.url, '/api/v1/incidents', h), 200);
      check('GET /tiles/base/0/0/0.mvt', 'map.read', await get(s.url, '/tiles/base/0/0/0.mvt', h), 404);
      // Pipe networks (this server has none: allowed calls find nothing).
      check('GET /api/v1/pipes/networks', 'pipes.read', await get(s.url, '/api/v1/pipes/networks', h), 200);
      check('GET /api/v1/pipes/isolations', 'pipes.read', await get(s.url, '/api/v1/pipes/isolations', h), 200);
      check('GET /api/v1/repair-orders', 'pipes.read', await get(s.url, '/api/v1/repair-orders', h), 200);
      check('POST /api/v1/pipes/isolations', 'pipes.isolate', await post(s.url, '/api/v1/pipes/isolations', { pipe: 'P1' }, h), 404);
      check('POST /api/v1/pipes/networks/{name}/valves', 'pipes.manage', await post(s.url, '/api/v1/pipes/networks/water/valves', { link: 'P1', node: 'N1' }, h), 404);
      check('POST /api/v1/repair-orders/{id}/approve', 'repairs.approve', await post(s.url, '/api/v1/repair-orders/1/approve', {}, h), 404);
      // Cameras: the registry by role (each camera by its agency: cameras.test.mjs).
      check('GET /api/v1/cameras', 'cameras.read', await get(s.url, '/api/v1/cameras', h), 200);
      check('POST /api/v1/cameras', 'cameras.manage', await post(s.url, '/api/v1/cameras', { name: `cam-${u.id}`, agency: u.agency,
        lon: 7.42, lat: 43.73, heading: 90, fov: 60, rtsp_url: 'rtsp://127.0.0.1:8554/cam1' }, h), 201);
      const created = check('POST /api/v1/users', 'users.manage', await post(s.url, '/api/v1/users',
        { username: `new.${u.id}`, agency: 'fire', roles: 'crew', password: PW }, h), 201);
      check('PATCH /api/v1/users/{id}', 'users.manage', await request(s.url, 'PATCH',
        `/api/v1/users/${created.status === 201 ? created.body.user.id : 1}`, { disabled: true }, h), 200);

      // Units: the registry by role, each unit by its agency.
      const ul2 = check('GET /api/v1/units', 'units.read', await get(s.url, '/api/v1/units', h), 200);
      if (ul2.status === 200) {
        for (const agency of Object.keys(units)) {
          assert.equal(ul2.body.units.some((x) => x.agency === agency), mayUnit(u, 'units.read', agency), `${u.username} lists ${agency} units`);
        }
      }
      const own = { call_sign: `own-${u.id}`, kind: 'patrol_car', agency: u.agency };
      check('POST /api/v1/units', 'units.manage', await post(s.url, '/api/v1/units', own, h), 201);
      for (const [agency, id] of Object.entries(units)) {
        for (const [action, body] of [['units.read'], ['units.status', { status: 'on_patrol' }], ['units.manage', { station: `by ${u.username}` }]]) {
          const r = body ? await request(s.url, 'PATCH', `/api/v1/units/${id}`, body, h) : await get(s.url, `/api/v1/units/${id}`, h);
          if (mayUnit(u, action, agency)) {
            assert.equal(r.status, 200, `${u.username} ${action} on the ${agency} unit: ${r.status} ${r.text.slice(0, 200)}`);
            allowed++;
          } else {
            assert.equal(r.status, 403, `${u.username} must not ${action} the ${agency} unit (${r.status})`);
            denials.push(action);
            denied++;
          }
        }
      }

      // Agency-owned records: each entry is readable by its agency, the
      // joint ones by all, led agencies by their leaders.
      for (const [agency, id] of Object.entries(entries)) {
        const r = await get(s.url, `/api/v1/journal/${id}`, h);
        if (mayReadAgency(u, agency)) {
          assert.equal(r.status, 200, `${u.username} reads the ${agency} entry`);
          allowed++;
        } else {
          assert.equal(r.status, 403, `${u.username} must not read the ${agency} entry (${r.status})`);
          denials.push('journal.read');
          denied++;
        }
      }
      if (list.status === 200) {
        const seen = new Set(list.body.entries.map((e) => e.agency));
        for (const agency of Object.keys(entries)) {
          assert.equal(seen.has(agency), mayReadAgency(u, agency), `${u.username} lists ${agency} entries`);
        }
      }
      if (ev.status === 200) {
        const journalAgencies = new Set(ev.body.events.filter((e) => e.type === 'journal.created').map((e) => e.data.agency));
        for (const agency of Object.keys(entries)) {
          assert.equal(journalAgencies.has(agency), mayReadAgency(u, agency), `${u.username} sees ${agency} events`);
        }
      }
      if (ul.status === 200) {
        const agencies = new Set(ul.body.users.map((x) => x.agency));
        if (u.roles === 'operator') assert.ok(agencies.has('police') && agencies.has('fire') && agencies.has('government'));
        else assert.deepEqual([...agencies], [u.agency], 'a supervisor lists the users of their own agency only');
        assert.ok(ul.body.users.every((x) => !('password_hash' in x)));
      }

      // Every refusal is in the audit trail under this user's name.
      const audit = await get(s.url, `/api/v1/audit?actor=${u.username}&outcome=denied&limit=1000`, bearer(auditorToken));
      assert.equal(audit.status, 200);
      assert.deepEqual(audit.body.entries.map((e) => e.action).sort(), denials.sort(), `${u.username}'s denials audited`);
      for (const e of audit.body.entries) {
        assert.match(e.object, /^\/(api\/v1\/|metrics|tiles\/)/);
        assert.equal(e.source, '127.0.0.1');
      }
    }
    console.log(`# matrix: ${users.length} users, ${allowed} allowed and ${denied} refused calls checked`);
    assert.ok(allowed > 100 && denied > 100);
  });

  test('paging the event log past events hidden from the viewer: next_after moves on', async () => {
    const police = users.find((u) => u.username === 'dispatcher.police');
    const fire = users.find((u) => u.username === 'dispatcher.fire');
    for (let i = 0; i < 5; i++) await post(s.url, '/api/v1/journal', { text: `fire only ${i}` }, bearer(fire.token));
    const mine = await post(s.url, '/api/v1/journal', { text: 'police after the fire run' }, bearer(police.token));
    let after = 0, pages = 0, emptyPages = 0;
    const seen = [];
    for (;;) {
      const r = await get(s.url, `/api/v1/events?after=${after}&limit=2`, bearer(police.token));
      assert.equal(r.status, 200);
      pages++;
      if (r.body.events.length === 0 && r.body.next_after > after) emptyPages++;
      seen.push(...r.body.events);
      assert.ok(r.body.next_after >= after);
      if (r.body.next_after === after) break;
      after = r.body.next_after;
    }
    assert.ok(emptyPages >= 1, 'a page of hidden events came back empty and paging went on');
    assert.ok(seen.some((e) => e.subject === `journal/${mine.body.entry.id}`), 'the police entry after the fire run is reached');
    assert.ok(seen.every((e) => e.type !== 'journal.created' || e.data.agency !== 'fire'));
    assert.ok(pages > 3);
  });

  test('every WebSocket message is authorized: subscribing needs events.read, events are filtered by agency', async () => {
    for (const name of ['dispatcher.police', 'auditor.police', 'operator.fire']) {
      const u = users.find((x) => x.username === name);
      const c = await connectWs(s.wsUrl, { token: u.token });
      try {
        await c.next((m) => m.type === 'hello');
        c.send({ type: 'subscribe', id: 's', data: { topics: ['events'] } });
        if (may(u, 'events.read')) {
          await c.next((m) => m.type === 'subscribed');
          const fire = users.find((x) => x.username === 'dispatcher.fire');
          const cmd = users.find((x) => x.username === 'dispatcher.command');
          const hidden = await post(s.url, '/api/v1/journal', { text: 'fire only' }, bearer(fire.token));
          const joint = await post(s.url, '/api/v1/journal', { text: 'for everyone' }, bearer(cmd.token));
          const got = await c.next((m) => m.type === 'event' && m.data.subject === `journal/${joint.body.entry.id}`);
          assert.equal(got.data.data.agency, 'command');
          assert.ok(!c.messages.some((m) => m.type === 'event' && m.data.subject === `journal/${hidden.body.entry.id}`),
            'a police dispatcher does not receive a fire-only entry');
        } else {
          const err = await c.next((m) => m.type === 'error');
          assert.equal(err.re, 's');
          assert.equal(err.error.code, 'forbidden');
          await waitFor(async () => {
            const audit = await get(s.url, `/api/v1/audit?actor=${name}&action=events.read&outcome=denied`, bearer(auditorToken));
            return audit.body.entries.some((e) => e.object === 'ws/subscribe');
          }, { what: 'the refused message in the audit trail' });
        }
      } finally { await c.close(); }
    }
  });
});

describe('without a session', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--no-metrics-public'] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  test('every API route is 401 with WWW-Authenticate; health, readiness, login and static files are public', async () => {
    const closed = [
      ['GET', '/api/v1/journal'], ['POST', '/api/v1/journal'], ['GET', '/api/v1/journal/1'],
      ['GET', '/api/v1/events'], ['GET', '/api/v1/audit'], ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users'], ['PATCH', '/api/v1/users/1'], ['GET', '/metrics'],
      ['GET', '/api/v1/city'], ['GET', '/api/v1/gis/reverse?lon=1&lat=1'], ['GET', '/tiles/base/0/0/0.mvt'],
      ['GET', '/api/v1/sessions/current'], ['DELETE', '/api/v1/sessions/current'],
      ['GET', '/api/v1/units'], ['GET', '/api/v1/units/1'], ['POST', '/api/v1/units'], ['PATCH', '/api/v1/units/1'],
      ['DELETE', '/api/v1/units/1'], ['POST', '/api/v1/units/import'],
    ];
    for (const [m, p] of closed) {
      for (const auth of [null, 'Bearer not-a-real-token-at-all', 'Basic dXNlcjpwYXNz']) {
        const r = await request(s.url, m, p, m === 'GET' || m === 'DELETE' ? undefined : { text: 'x' }, { authorization: auth });
        assert.equal(r.status, 401, `${m} ${p} with ${auth}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer');
        assert.equal(r.body.error.code, 'unauthorized');
      }
    }
    for (const p of ['/healthz', '/readyz', '/', '/assets/app.js']) {
      assert.equal((await get(s.url, p, { authorization: null })).status, 200, p);
    }
    // With --metrics-public true (the default) Prometheus scrapes without a session.
    const open = await startServer({});
    try {
      assert.equal((await get(open.url, '/metrics', { authorization: null })).status, 200);
    } finally { await open.stop(); open.cleanup(); }
  });

  test('a presented but unknown token is audited as a denied attempt', async () => {
    const before = Number(sql(s.stateDir, "SELECT count(*) FROM audit WHERE outcome = 'denied'"));
    await get(s.url, '/api/v1/journal', { authorization: 'Bearer forged-token-0123456789abcdef' });
    await waitFor(() => Number(sql(s.stateDir, "SELECT count(*) FROM audit WHERE outcome = 'denied'")) === before + 1,
      { what: 'the audit row' });
    assert.match(sql(s.stateDir, 'SELECT action, object, source, detail FROM audit ORDER BY seq DESC LIMIT 1'),
      /^session\.check\|\/api\/v1\/journal\|127\.0\.0\.1\|unknown or ended session$/);
  });
});

describe('sessions', () => {
  let s;
  const alice = { username: 'alice.police', password: 'alice password 1', roles: 'dispatcher', agency: 'police', displayName: 'Alice' };
  before(async () => {
    const state = tempDir();
    addUser(state, alice);
    s = await startServer({ state, args: ['--lockout-seconds', '3', '--session-idle', '2', '--session-lifetime', '4', '--ws-ping-interval', '1'] });
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('login issues a new random token each time (≥128 bits), stored only as a hash', async () => {
    const r = await post(s.url, '/api/v1/sessions', { username: alice.username, password: alice.password }, { authorization: null });
    assert.equal(r.status, 201);
    assert.equal(r.body.user.display_name, 'Alice');
    assert.equal(r.body.user.agency, 'police');
    assert.equal(r.body.user.roles, 'dispatcher');
    assert.ok(!Number.isNaN(Date.parse(r.body.expires_at)));
    const t1 = r.body.token;
    const t2 = await login(s.url, alice.username, alice.password);
    assert.notEqual(t1, t2);
    for (const t of [t1, t2]) {
      assert.match(t, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
      assert.equal((await get(s.url, '/api/v1/sessions/current', bearer(t))).status, 200);
      assert.equal(sql(s.stateDir, `SELECT count(*) FROM sessions WHERE token_hash = '${t}'`), '0');
    }
    assert.equal(sql(s.stateDir, "SELECT count(*) FROM sessions WHERE length(token_hash) = 64 AND ended_at_ms = 0 AND user_id = (SELECT id FROM users WHERE username = 'alice.police')"), '2');
    const dump = execFileSync('sqlite3', [path.join(s.stateDir, 'citycmd.db'), '.dump'], { encoding: 'utf8' });
    assert.ok(!dump.includes(t1) && !dump.includes(t2), 'no token in the database');
    // Bad bodies are 400 naming the field; no session for them.
    const bad = await post(s.url, '/api/v1/sessions', { username: alice.username }, { authorization: null });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'password');
  });

  test('five failures lock the account for --lockout-seconds, audited; unknown users get the same answer', async () => {
    const bob = { username: 'bob.fire', password: 'bob password 123', roles: 'dispatcher', agency: 'fire' };
    // Create bob through the admin command while the server runs.
    addUser(s.stateDir, bob);
    const wrong = async (username) => post(s.url, '/api/v1/sessions', { username, password: 'wrong password!' }, { authorization: null });
    for (let i = 0; i < 5; i++) {
      const r = await wrong(bob.username);
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'invalid_credentials');
    }
    const unknown = await wrong('nobody.here');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.message, (await wrong(bob.username)).body.error.message);
    // Locked: even the right password is refused.
    const locked = await post(s.url, '/api/v1/sessions', { username: bob.username, password: bob.password }, { authorization: null });
    assert.equal(locked.status, 401);
    const rows = sql(s.stateDir, "SELECT action || ':' || outcome || ':' || detail FROM audit WHERE actor = 'bob.fire' ORDER BY seq").split('\n');
    assert.equal(rows.filter((r) => r.startsWith('session.login:failed')).length, 4);
    assert.equal(rows.filter((r) => r.startsWith('user.locked:failed')).length, 1);
    assert.ok(rows.filter((r) => r === 'session.login:denied:account locked').length >= 2);
    assert.equal(sql(s.stateDir, "SELECT detail FROM audit WHERE actor = 'nobody.here' ORDER BY seq DESC LIMIT 1"), 'unknown user');
    await sleep(3200);
    // The lock ran out: counting starts again, so one more typo does not re-lock.
    assert.equal((await wrong(bob.username)).status, 401);
    assert.equal(typeof await login(s.url, bob.username, bob.password), 'string', 'unlocked after --lockout-seconds');
    // The defaults are the documented ones.
    const help = spawnSync(BIN, ['--help'], { encoding: 'utf8' }).stdout;
    assert.match(help, /--lockout-failures N .*\[5\]/);
    assert.match(help, /--lockout-seconds SECONDS .*\[600\]/);
  });

  test('a session ends after --session-idle unused, and after --session-lifetime however used', async () => {
    const idle = await login(s.url, alice.username, alice.password);
    const busy = await login(s.url, alice.username, alice.password);
    const ws = await connectWs(s.wsUrl, { token: busy });
    await ws.next((m) => m.type === 'hello');
    // A screen that only listens (it answers the server's pings, sends nothing).
    const listenerToken = await login(s.url, alice.username, alice.password);
    const listener = await connectWs(s.wsUrl, { token: listenerToken });
    let listenerClosedAt = 0;
    listener.closed.then(() => { listenerClosedAt = Date.now(); });
    const t0 = Date.now();
    let busyEnded = 0, idleChecked = false;
    while (Date.now() - t0 < 6000) {
      if (!idleChecked && Date.now() - t0 > 2600) {
        const r = await get(s.url, '/api/v1/sessions/current', bearer(idle));
        assert.equal(r.status, 401, 'an idle session ended');
        idleChecked = true;
      }
      const r = await get(s.url, '/api/v1/sessions/current', bearer(busy));
      if (r.status === 401) { busyEnded = Date.now() - t0; break; }
      assert.equal(r.status, 200);
      await sleep(300);
    }
    assert.ok(idleChecked);
    assert.ok(busyEnded >= 3500 && busyEnded < 5500, `a busy session ended ${busyEnded} ms after login (lifetime 4 s)`);
    // Its WebSocket was closed when the lifetime ran out, with no message from the client.
    const closed = await Promise.race([ws.closed, sleep(3000).then(() => null)]);
    assert.equal(closed?.code, 1008);
    // The listening screen outlived the idle time but not the lifetime.
    assert.equal((await Promise.race([listener.closed, sleep(3000).then(() => null)]))?.code, 1008);
    assert.ok(listenerClosedAt - t0 > 3000, `a listening WebSocket closed ${listenerClosedAt - t0} ms in (idle 2 s, lifetime 4 s)`);
    const ended = sql(s.stateDir, "SELECT group_concat(detail) FROM audit WHERE action = 'session.ended'");
    assert.match(ended, /idle/);
    assert.match(ended, /lifetime/);
  });

  test('logout ends that session only; its token is refused after; its WebSocket closes with 1008', async () => {
    const a = await login(s.url, alice.username, alice.password);
    const b = await login(s.url, alice.username, alice.password);
    const ws = await connectWs(s.wsUrl, { token: a });
    await ws.next((m) => m.type === 'hello');
    const out = await request(s.url, 'DELETE', '/api/v1/sessions/current', undefined, bearer(a));
    assert.equal(out.status, 204);
    const closed = await Promise.race([ws.closed, sleep(5000).then(() => null)]);
    assert.ok(closed, 'the WebSocket closed');
    assert.equal(closed.code, 1008);
    for (const p of ['/api/v1/sessions/current', '/api/v1/journal']) {
      assert.equal((await get(s.url, p, bearer(a))).status, 401, `reuse of a logged-out token on ${p}`);
    }
    assert.equal((await request(s.url, 'DELETE', '/api/v1/sessions/current', undefined, bearer(a))).status, 401);
    await assert.rejects(connectWs(s.wsUrl, { token: a }), (e) => e.statusCode === 401);
    assert.equal((await get(s.url, '/api/v1/sessions/current', bearer(b))).status, 200, 'the other session lives on');
  });

  test('a user has at most 32 live sessions: one more sign-in ends the oldest, audited', async () => {
    const bob = { username: 'bob.police', password: 'bob password 12', roles: 'dispatcher', agency: 'police' };
    const state = tempDir();
    addUser(state, bob);
    const t = await startServer({ state });
    try {
      const tokens = [];
      for (let i = 0; i < 33; i++) tokens.push(await login(t.url, bob.username, bob.password));
      assert.equal((await get(t.url, '/api/v1/sessions/current', bearer(tokens[0]))).status, 401, 'the oldest ended');
      for (const k of [1, 16, 32]) assert.equal((await get(t.url, '/api/v1/sessions/current', bearer(tokens[k]))).status, 200);
      assert.equal(sql(t.stateDir, "SELECT count(*) FROM sessions WHERE ended_at_ms = 0 AND user_id = (SELECT id FROM users WHERE username = 'bob.police')"), '32');
      assert.equal(sql(t.stateDir, "SELECT count(*) FROM audit WHERE action = 'session.ended' AND detail = 'too many sessions'"), '1');
    } finally { await t.stop(); t.cleanup(); }
  });
});

describe('disabling a user', () => {
  let s;
  const carol = { username: 'carol.ems', password: 'carol password 1', roles: 'dispatcher', agency: 'ems' };
  const root = { username: 'root.op', password: 'root password 12', roles: 'operator', agency: 'command' };
  before(async () => {
    const state = tempDir();
    addUser(state, carol);
    addUser(state, root);
    s = await startServer({ state });
  });
  after(async () => { await s.stop(); s.cleanup(); });

  async function cutOff(disable) {
    const tokens = [await login(s.url, carol.username, carol.password), await login(s.url, carol.username, carol.password)];
    const sockets = await Promise.all(tokens.map((t) => connectWs(s.wsUrl, { token: t })));
    for (const c of sockets) await c.next((m) => m.type === 'hello');
    const t0 = Date.now();
    await disable();
    const closes = await Promise.all(sockets.map((c) => Promise.race([c.closed, sleep(6000).then(() => null)])));
    const ms = Date.now() - t0;
    for (const cl of closes) { assert.ok(cl, 'closed'); assert.equal(cl.code, 1008); }
    assert.ok(ms < 5000, `WebSockets closed ${ms} ms after the user was disabled`);
    for (const t of tokens) assert.equal((await get(s.url, '/api/v1/journal', bearer(t))).status, 401);
    await assert.rejects(login(s.url, carol.username, carol.password), /401/);
    return ms;
  }

  test('by the admin command (another process): HTTP and WebSocket are cut off within 5 s', async () => {
    const ms = await cutOff(() => {
      const r = spawnSync(BIN, ['admin', 'disable-user', '--state', s.stateDir, '--username', carol.username], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });
    console.log(`# disable-user: sessions cut off in ${ms} ms`);
    const en = spawnSync(BIN, ['admin', 'enable-user', '--state', s.stateDir, '--username', carol.username], { encoding: 'utf8' });
    assert.equal(en.status, 0);
  });

  test('by an operator through the API: cut off at once; the operator cannot disable themselves', async () => {
    const op = await login(s.url, root.username, root.password);
    const list = await get(s.url, '/api/v1/users', bearer(op));
    const id = list.body.users.find((u) => u.username === carol.username).id;
    const self = list.body.users.find((u) => u.username === root.username).id;
    const ms = await cutOff(async () => {
      const r = await request(s.url, 'PATCH', `/api/v1/users/${id}`, { disabled: true }, bearer(op));
      assert.equal(r.status, 200);
      assert.equal(r.body.user.disabled, true);
    });
    console.log(`# PATCH disabled: sessions cut off in ${ms} ms`);
    const after = (await get(s.url, '/api/v1/users', bearer(op))).body.users.find((u) => u.username === carol.username);
    assert.equal(after.state, 'disabled');
    assert.equal(after.disabled, true);
    assert.equal(list.body.users.find((u) => u.username === carol.username).state, 'active');
    assert.ok(ms < 1500);
    const r = await request(s.url, 'PATCH', `/api/v1/users/${self}`, { disabled: true }, bearer(op));
    assert.equal(r.status, 400);
    assert.equal((await request(s.url, 'PATCH', '/api/v1/users/99999', { disabled: true }, bearer(op))).status, 404);
    assert.equal((await request(s.url, 'PATCH', `/api/v1/users/${id}`, { roles: 'operator' }, bearer(op))).status, 400);
    const audit = sql(s.stateDir, `SELECT actor || ':' || action || ':' || object FROM audit WHERE action = 'user.disabled' ORDER BY seq`);
    assert.match(audit, new RegExp(`root\\.op:user\\.disabled:user/${id}`));
  });
});

describe('accounts through the API', () => {
  let s, op;
  before(async () => {
    const state = tempDir();
    addUser(state, { username: 'root.op', password: 'root password 12', roles: 'operator', agency: 'command' });
    s = await startServer({ state });
    op = await login(s.url, 'root.op', 'root password 12');
  });
  after(async () => { await s.stop(); s.cleanup(); });

  test('bad fields are 400 naming the field; duplicates 409; passwords count characters', async () => {
    const base = { username: 'new.user', agency: 'fire', roles: ['dispatcher'], password: 'long enough pw' };
    const cases = [
      [{ username: 'Bad Name' }, 'username'], [{ username: undefined }, 'username'],
      [{ roles: ['wizard'] }, 'roles'], [{ roles: [] }, 'roles'], [{ roles: 7 }, 'roles'],
      [{ agency: 'navy' }, 'agency'], [{ leads: ['mars'] }, 'leads'],
      [{ display_name: 'x'.repeat(101) }, 'display_name'], [{ display_name: 'a\u0007b' }, 'display_name'],
      [{ password: 'short' }, 'password'], [{ password: '密码密码密码密码密' }, 'password'],
      [{ password: 'x'.repeat(513) }, 'password'],
    ];
    for (const [change, field] of cases) {
      const r = await post(s.url, '/api/v1/users', { ...base, ...change }, bearer(op));
      assert.equal(r.status, 400, JSON.stringify(change));
      assert.equal(r.body.error.field, field, JSON.stringify(change));
    }
    // Ten Chinese characters are thirty bytes: long enough, counted as characters.
    const ok = await post(s.url, '/api/v1/users', { ...base, password: '密码密码密码密码密码' }, bearer(op));
    assert.equal(ok.status, 201);
    assert.equal(typeof await login(s.url, 'new.user', '密码密码密码密码密码'), 'string');
    assert.equal((await post(s.url, '/api/v1/users', base, bearer(op))).status, 409);
    const longName = await post(s.url, '/api/v1/sessions', { username: 'u'.repeat(65), password: 'whatever123' }, { authorization: null });
    assert.equal(longName.status, 400);
    assert.equal(longName.body.error.field, 'username');
  });
});

describe('the WebSocket upgrade', () => {
  let s;
  before(async () => { s = await startServer({ args: ['--allowed-origins', 'https://wall.example.org'] }); });
  after(async () => { await s.stop(); s.cleanup(); });

  test('is refused with 401 without a token or with a bad one, and with 403 from a foreign Origin', async () => {
    await assert.rejects(connectWs(s.wsUrl, { token: null }), (e) => e.statusCode === 401);
    await assert.rejects(connectWs(s.wsUrl, { token: 'x'.repeat(43) }), (e) => e.statusCode === 401);
    await assert.rejects(connectWs(s.wsUrl, { origin: 'https://evil.example.com' }), (e) => e.statusCode === 403);
    await assert.rejects(connectWs(s.wsUrl, { token: null, origin: 'https://evil.example.com' }), (e) => e.statusCode === 403);
    await waitFor(() => /origin not allowed/.test(sql(s.stateDir, "SELECT group_concat(detail) FROM audit WHERE action = 'ws.connect'")),
      { what: 'the audited refusal' });
  });

  test('is accepted from the server\'s own origin, from an allowed one, and with the token as a header', async () => {
    for (const origin of [`http://127.0.0.1:${s.port}`, 'https://wall.example.org', undefined]) {
      const c = await connectWs(s.wsUrl, origin ? { origin } : {});
      assert.equal((await c.next((m) => m.type === 'hello')).type, 'hello');
      await c.close();
    }
    const c = await connectWs(s.wsUrl, { token: null, headers: { authorization: `Bearer ${s.token}` } });
    await c.next((m) => m.type === 'hello');
    await c.close();
  });
});
