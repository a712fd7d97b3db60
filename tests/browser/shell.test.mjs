// The web shell in real headless Chromium (Debian's chromium, driven by
// playwright-core) with every request to anything but the server blocked:
// the page must load, connect its WebSocket, show live events, and recover
// from a server restart; a user signs in, sees who they are, and signs out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';
import { startServer, post, get, request, login, tempDir, addUser } from '../lib/harness.mjs';

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function openShell(url) {
  const { context, page, blocked, errors } = await openPage(browser);
  // Failed loads are tracked as responses below; other console errors count.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('response', (res) => {
    const u = new URL(res.url());
    const expected = u.pathname === '/api/v1/journal' || u.pathname === '/api/v1/sessions';
    if (res.status() >= 400 && !expected) errors.push(`${res.status()} ${u.pathname}`);
  });
  await page.goto(url);
  return { context, page, blocked, errors };
}

const LI_NA = { username: 'li.na', password: 'correct horse battery', roles: 'dispatcher', agency: 'fire', displayName: 'Li Na' };

async function signIn(page, user) {
  await page.waitForSelector('#login-form');
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#main:not([hidden])', { timeout: 10000 });
}

test('the shell signs in, loads offline, connects, shows live journal entries, signs out', async () => {
  const state = tempDir();
  addUser(state, LI_NA);
  const s = await startServer({ state });
  const { context, page, blocked, errors } = await openShell(s.url);
  try {
    // Signed out: only the login page, nothing of the console.
    await page.waitForSelector('#login:not([hidden])');
    assert.equal(await page.isHidden('#main'), true);
    await page.fill('#login-username', LI_NA.username);
    await page.fill('#login-password', 'not the password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await page.textContent('#login-error'), /Wrong username or password/);
    assert.equal(await page.isHidden('#main'), true);

    await signIn(page, LI_NA);
    assert.equal(await page.textContent('#user-name'), 'Li Na');
    assert.equal(await page.textContent('#user-agency'), 'Fire');
    assert.equal(await page.textContent('#user-roles'), 'Dispatcher');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    assert.equal(await page.textContent('#conn-state .label'), 'Live');
    assert.match(await page.textContent('#server-version'), /citycmd \d/);

    // Written through the form: saved, listed, and echoed by the live feed.
    await page.fill('#journal-text', 'Shift start: all consoles staffed');
    await page.selectOption('#journal-kind', 'handover');
    await page.click('#journal-form button[type=submit]');
    await page.waitForSelector('#journal-list li.kind-handover >> text=Shift start: all consoles staffed');
    await page.waitForSelector('#feed li code >> text=journal.created');

    // Written by someone else: arrives over the WebSocket.
    const r = await post(s.url, '/api/v1/journal', { text: 'Pumps staged at the underpass', kind: 'instruction' });
    assert.equal(r.status, 201);
    await page.waitForSelector(`#journal-list li[data-id="${r.body.entry.id}"]`);
    assert.equal(await page.$$eval('#feed li', (l) => l.length), 2);

    // A refused entry shows the server's reason.
    await page.fill('#journal-text', 'x'.repeat(10));
    await page.evaluate(() => { document.getElementById('journal-text').value = '   '; });
    await page.evaluate(() => document.getElementById('journal-form').requestSubmit());
    await page.waitForSelector('#journal-error:not([hidden])');
    assert.match(await page.textContent('#journal-error'), /text/);

    // Chinese on request.
    await page.click('#lang');
    assert.equal(await page.textContent('#journal-title'), '值班日志');
    assert.equal(await page.textContent('#conn-state .label'), '实时');
    assert.equal(await page.textContent('#user-agency'), '消防');
    assert.equal(await page.textContent('#user-roles'), '调度员');
    await page.screenshot({ path: path.join(OUT, 'shell.png') });

    // Signing out ends the session on the server, not only in the page.
    const token = await page.evaluate(() => sessionStorage.getItem('citycmd.token'));
    assert.ok(token && token.length >= 22);
    assert.equal((await get(s.url, '/api/v1/sessions/current', { authorization: `Bearer ${token}` })).status, 200);
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    assert.equal(await page.isHidden('#main'), true);
    assert.equal(await page.$$eval('#journal-list li', (l) => l.length), 0, 'nothing of the console stays on screen');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('citycmd.token')), null);
    assert.equal((await get(s.url, '/api/v1/sessions/current', { authorization: `Bearer ${token}` })).status, 401);
    await page.click('#lang');
    assert.equal(await page.textContent('#login-title'), 'Sign in to the command centre');
    await page.screenshot({ path: path.join(OUT, 'login.png') });

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});

test('the shell shows a lost connection and catches up after the server returns', async () => {
  const state = tempDir();
  addUser(state, LI_NA);
  const s = await startServer({ state });
  const { context, page, blocked } = await openShell(s.url);
  let s2;
  try {
    await signIn(page, LI_NA);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await post(s.url, '/api/v1/journal', { text: 'before the outage' });
    await page.waitForSelector('#journal-list >> text=before the outage');
    await s.stop();
    await page.waitForSelector('#conn-state:not([data-state="connected"])', { timeout: 5000 });
    // Same port, same state: written while the page is disconnected.
    s2 = await startServer({ state, args: ['--http', `127.0.0.1:${s.port}`] });
    const missed = await post(s2.url, '/api/v1/journal', { text: 'written while the screen was away' });
    assert.equal(missed.status, 201);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 20000 });
    await page.waitForSelector('#journal-list >> text=written while the screen was away', { timeout: 5000 });
    const seqs = await page.$$eval('#feed li', (l) => l.map((x) => Number(x.dataset.seq)));
    assert.ok(seqs.includes(missed.body.entry.seq), 'the missed event was replayed into the feed');
    assert.equal(await page.textContent('#user-name'), 'Li Na', 'the session outlived the restart');
    assert.deepEqual(blocked, []);
  } finally {
    await context.close();
    if (s2) { await s2.stop(); }
  }
});

test('a session ended on the server sends the shell back to the login page, saying why', async () => {
  const state = tempDir();
  addUser(state, LI_NA);
  addUser(state, { username: 'ops.admin', password: 'operator password 1', roles: 'operator', agency: 'command' });
  const s = await startServer({ state });
  const { context, page, blocked, errors } = await openShell(s.url);
  try {
    await page.click('#lang');
    assert.equal(await page.textContent('#login-title'), '登录指挥中心');
    await signIn(page, LI_NA);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await post(s.url, '/api/v1/journal', { text: 'seen before the account was disabled' });
    await page.waitForSelector('#journal-list li');
    // An operator disables the account: the WebSocket closes with 1008 and
    // the shell finds the session over.
    const op = await login(s.url, 'ops.admin', 'operator password 1');
    const users = await get(s.url, '/api/v1/users', { authorization: `Bearer ${op}` });
    const id = users.body.users.find((u) => u.username === LI_NA.username).id;
    const r = await request(s.url, 'PATCH', `/api/v1/users/${id}`, { disabled: true }, { authorization: `Bearer ${op}` });
    assert.equal(r.status, 200);
    await page.waitForSelector('#login:not([hidden])', { timeout: 5000 });
    assert.equal(await page.textContent('#login-error'), '会话已结束，请重新登录。');
    assert.equal(await page.$$eval('#journal-list li', (l) => l.length), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('citycmd.token')), null);
    assert.deepEqual(blocked, []);
    assert.deepEqual(errors.filter((e) => !/401/.test(e)), []);
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
