// The field unit's phone page (/field.html) in real headless Chromium with
// a phone's viewport (360×740, touch), against the real server and the demo
// city: a field_unit user of ems signs in, picks their ambulance among the
// ems units (remembered across a reload), shares the phone's position
// (Playwright's emulated geolocation): the server has it on the unit's
// track, fixes that come quicker than one every 5 s wait and only the
// newest is sent; a status the server refuses shows the server's message;
// an incident assigned by the dispatcher appears with its type, address
// and priority; "en route" sets the unit's status on the server (keeping
// the incident); the dispatcher's changes arrive live; Chinese; a browser
// that denies the location says so; nothing leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser, login, post, get, request, waitFor } from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const OPERATOR = { username: 'fleet.op', password: 'operator password 1', roles: 'operator', agency: 'command' };
const MEDIC = {
  username: 'medic.wang', password: 'field unit pass 3', roles: 'field_unit', agency: 'ems', displayName: 'Wang Fang',
};
const bearer = (t) => ({ authorization: `Bearer ${t}` });

// The ambulance moves along Fontvieille, ~30 m a step; the cardiac arrest
// is at the Place du Casino, over a kilometre away (so no position of the
// ambulance puts it on scene by itself).
const P1 = { latitude: 43.7310, longitude: 7.4200, accuracy: 8 };
const P2 = { latitude: 43.7312, longitude: 7.4203, accuracy: 9 };
const P3 = { latitude: 43.7314, longitude: 7.4206, accuracy: 7 };
const SCENE = { lon: 7.4275, lat: 43.7394 };
const near = (p, q) => Math.abs(p.lon - q.longitude) < 1e-6 && Math.abs(p.lat - q.latitude) < 1e-6;

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

// A phone: its own context, every request off this machine blocked and
// recorded, page errors collected.
async function openPhone(extra = {}) {
  const phone = await openPage(browser, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, ...extra });
  phone.page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) phone.errors.push(m.text());
  });
  return phone;
}

async function signIn(page, user) {
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.tap('#login-form button[type=submit]');
}

test('the field unit page: pick the unit, share the position, statuses, the assignment, Chinese', async () => {
  const state = tempDir();
  addUser(state, OPERATOR);
  addUser(state, MEDIC);
  const s = await startServer({ state, args: ['--city', CITY] });
  const op = await login(s.url, OPERATOR.username, OPERATOR.password);
  const ids = {};
  for (const [sign, kind, agency, device] of [
    ['M-AMB-01', 'ambulance', 'ems', 'phone-amb-01'],
    ['M-AMB-02', 'ambulance', 'ems', null],
    ['F-ENG-09', 'engine', 'fire', null], // another agency's: not offered
  ]) {
    const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind, agency, device }, bearer(op));
    assert.equal(r.status, 201, r.text);
    ids[sign] = r.body.unit.id;
  }
  const U = ids['M-AMB-01'];
  const medic = await login(s.url, MEDIC.username, MEDIC.password);

  const { context, page, blocked, errors } = await openPhone();
  const posts = []; // the position reports the page sent: { at (ms), body }
  const refused = [];
  const assets = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/assets/')) assets.push(u.pathname);
    if (r.method() === 'POST' && u.pathname === `/api/v1/units/${U}/position`) posts.push({ at: Date.now(), body: r.postDataJSON() });
  });
  page.on('response', (res) => {
    if (res.status() >= 400) refused.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  try {
    await context.grantPermissions(['geolocation'], { origin: s.url });
    await context.setGeolocation(P1);
    await page.goto(`${s.url}/field.html`);
    assert.equal(await page.isVisible('#login-form'), true);
    assert.equal(await page.title(), 'citycmd · field');
    await signIn(page, MEDIC);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    assert.equal(await page.textContent('#user-name'), 'Wang Fang');
    assert.equal(await page.textContent('#user-agency'), 'Medical');
    // The small bundle of its own, not the console's.
    assert.ok(assets.includes('/assets/field.js'), `field.js loaded: ${assets}`);
    assert.ok(!assets.includes('/assets/app.js'), 'not the console bundle');

    // 1. The units of ems, by call sign; the fire engine is not offered.
    await page.waitForSelector('#unit-choices button', { timeout: 5000 });
    assert.deepEqual(await page.$$eval('#unit-choices button', (l) => l.map((b) => b.dataset.id)), [U, ids['M-AMB-02']]);
    assert.deepEqual(await page.$$eval('#unit-choices .call', (l) => l.map((b) => b.textContent)), ['M-AMB-01', 'M-AMB-02']);
    assert.equal(await page.textContent(`#unit-choices button[data-id="${U}"] .kind`), 'Ambulance');
    assert.equal(await page.isHidden('#unit-view'), true);
    await page.tap(`#unit-choices button[data-id="${U}"]`);
    await page.waitForSelector('#unit-view:not([hidden])');
    assert.equal(await page.textContent('#unit-call'), 'M-AMB-01');
    assert.equal(await page.textContent('#unit-kind'), 'Ambulance · Medical');
    await page.waitForSelector('#unit-status[data-status="in_station"]');
    assert.equal(await page.textContent('#unit-status'), 'In station');
    assert.equal(await page.getAttribute('#status-buttons [data-status="in_station"]', 'aria-pressed'), 'true');
    assert.equal(await page.isVisible('#no-assignment'), true);
    assert.equal(await page.isHidden('#assignment'), true);
    assert.equal(await page.isHidden('#geo-state'), true, 'a secure context (loopback): nothing to warn about');
    // The choice is remembered: a reload goes straight to the unit.
    assert.equal(JSON.parse(await page.evaluate(() => localStorage.getItem('citycmd.field.unit'))).id, U);
    await page.reload();
    await page.waitForSelector('#unit-view:not([hidden]) #unit-status[data-status="in_station"]', { timeout: 10000 });
    assert.equal(await page.isHidden('#pick'), true);
    assert.equal(await page.textContent('#unit-call'), 'M-AMB-01');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });

    // The phone layout: nothing wider than the screen, large touch targets.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no sideways scrolling at 360 px');
    const heights = await page.$$eval('#status-buttons button, #share', (l) => l.map((b) => b.getBoundingClientRect().height));
    assert.equal(heights.length, 9);
    for (const h of heights) assert.ok(h >= 48, `a touch target ${h} px high`);
    assert.deepEqual(await page.$$eval('#status-buttons button', (l) => l.map((b) => b.textContent)), [
      'En route', 'On scene', 'Transporting', 'At hospital', 'Returning', 'In station', 'Available on radio', 'Out of service']);

    // 2. Sharing the position: the first fix goes at once and the server
    // keeps it on the unit's track.
    assert.equal(await page.getAttribute('#share', 'aria-checked'), 'false');
    assert.equal(await page.textContent('#verdict'), '—');
    await page.tap('#share');
    assert.equal(await page.getAttribute('#share', 'aria-checked'), 'true');
    await page.waitForSelector('#verdict[data-verdict="accepted"]', { timeout: 5000 });
    assert.equal(await page.textContent('#verdict'), 'Accepted');
    assert.match(await page.textContent('#fix-time'), /^\d\d:\d\d:\d\d \(±8 m\)$/);
    assert.equal(posts.length, 1);
    const first = posts[0].body;
    assert.equal(first.lon, P1.longitude);
    assert.equal(first.lat, P1.latitude);
    assert.equal(first.accuracy_m, 8);
    assert.equal(first.speed_kmh, null, 'the emulated fix has no speed');
    assert.equal(first.course, null, 'nor a heading');
    assert.ok(Math.abs(Date.parse(first.at) - posts[0].at) < 5000, `"at" is the fix's time: ${first.at}`);
    assert.match(first.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const track = async () => (await get(s.url, `/api/v1/units/${U}/track`)).body.positions;
    await waitFor(async () => (await track()).some((p) => near(p, P1)), { what: 'the first position on the track' });

    // Two more fixes within a second: nothing is sent before 5 s have
    // passed since the first, then only the newest.
    await context.setGeolocation(P2);
    await page.waitForFunction(() => /±9 m/.test(document.getElementById('fix-time').textContent), null, { timeout: 3000 });
    await context.setGeolocation(P3);
    await page.waitForFunction(() => /±7 m/.test(document.getElementById('fix-time').textContent), null, { timeout: 3000 });
    assert.equal(posts.length, 1, 'nothing sent within 5 s of the last report');
    await waitFor(() => posts.length >= 2, { timeout: 8000, what: 'the second report' });
    const gap = posts[1].at - posts[0].at;
    assert.ok(gap >= 4800 && gap < 7000, `the second report ${gap} ms after the first`);
    assert.equal(posts[1].body.lat, P3.latitude, 'the newest fix, not the one in between');
    assert.equal(posts[1].body.lon, P3.longitude);
    await waitFor(async () => (await track()).some((p) => near(p, P3)), { what: 'the new position on the track' });
    const positions = await track();
    assert.ok(!positions.some((p) => near(p, P2)), 'the fix in between was never sent');
    assert.equal(await page.getAttribute('#verdict', 'data-verdict'), 'accepted');
    await page.waitForTimeout(1000);
    assert.equal(posts.length, 2, 'no fix waiting: nothing more sent');

    // 3. A status the server refuses (en route without an incident): its
    // own message, and the status stays.
    const expected = await request(s.url, 'PATCH', `/api/v1/units/${U}`, { status: 'en_route' }, bearer(medic));
    assert.equal(expected.status, 400, expected.text);
    await page.tap('#status-buttons [data-status="en_route"]');
    await page.waitForSelector('#status-error:not([hidden])', { timeout: 3000 });
    assert.equal(await page.textContent('#status-error'), `Refused: ${expected.body.error.message}`);
    assert.equal(await page.textContent('#unit-status'), 'In station');
    assert.equal((await get(s.url, `/api/v1/units/${U}`)).body.unit.status, 'in_station');

    // 4. The dispatcher assigns it to a cardiac arrest: the page shows the
    // assignment and the new status from the live feed.
    const callRes = await post(s.url, '/api/v1/calls', {
      line: '120', caller: '+377 600 000 042', location: SCENE, category: 'medical/cardiac', text: 'man collapsed, not breathing',
    });
    assert.equal(callRes.status, 201, callRes.text);
    const I = callRes.body.call.incident_id;
    const incident = (await get(s.url, `/api/v1/incidents/${I}`)).body.incident;
    assert.ok(incident && incident.address, `the incident has an address: ${JSON.stringify(incident)}`);
    const dispatched = await request(s.url, 'PATCH', `/api/v1/units/${U}`, { status: 'dispatched', incident: I });
    assert.equal(dispatched.status, 200, dispatched.text);
    await page.waitForSelector('#unit-status[data-status="dispatched"]', { timeout: 3000 });
    assert.equal(await page.textContent('#unit-status'), 'Dispatched');
    await page.waitForSelector(`#assignment:not([hidden])[data-id="${I}"]`, { timeout: 3000 });
    assert.equal(await page.isHidden('#no-assignment'), true);
    assert.equal(await page.textContent('#inc-id'), I);
    assert.equal(await page.textContent('#inc-type'), 'Cardiac emergency');
    assert.equal(await page.textContent('#inc-address'), incident.address);
    assert.equal(await page.textContent('#inc-priority'), `P${incident.priority}`);

    // 5. "En route": the server has it, with the incident kept.
    await page.tap('#status-buttons [data-status="en_route"]');
    await page.waitForSelector('#unit-status[data-status="en_route"]', { timeout: 3000 });
    assert.equal(await page.isHidden('#status-error'), true, 'the old refusal is gone');
    const onServer = (await get(s.url, `/api/v1/units/${U}`)).body.unit;
    assert.equal(onServer.status, 'en_route');
    assert.equal(onServer.incident, I);
    assert.equal(await page.textContent('#unit-status'), 'En route');
    assert.equal(await page.getAttribute('#status-buttons [data-status="en_route"]', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('#status-buttons [data-status="in_station"]', 'aria-pressed'), 'false');
    assert.equal(await page.getAttribute('#unit-status', 'data-primary'), 'not_available');
    await page.screenshot({ path: path.join(OUT, 'field.png'), fullPage: true });

    // 6. In Chinese.
    await page.tap('#lang');
    assert.equal(await page.textContent('#unit-status'), '出动途中');
    assert.equal(await page.textContent('#status-buttons [data-status="on_scene"]'), '已到场');
    assert.equal(await page.textContent('#share .label'), '共享我的位置');
    assert.equal(await page.textContent('#verdict'), '已接收');
    assert.equal(await page.textContent('#inc-type'), '心脏急症');
    // The city's names stay, the words around them are Chinese.
    const zhAddress = await page.textContent('#inc-address');
    assert.match(zhAddress, /附近$/);
    assert.doesNotMatch(zhAddress, /^near /);
    assert.ok(zhAddress.includes(incident.address.replace(/^near /, '').split(', ')[0]), zhAddress);
    assert.equal(await page.textContent('[data-i18n="field.status"]'), '状态：');
    assert.equal(await page.textContent('#assignment-title'), '当前任务');
    assert.equal(await page.textContent('#unit-kind'), '救护车 · 急救');
    assert.equal(await page.textContent('#lang'), 'English');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    // The dispatcher's change arrives in Chinese too.
    const onScene = await request(s.url, 'PATCH', `/api/v1/units/${U}`, { status: 'on_scene' });
    assert.equal(onScene.status, 200, onScene.text);
    await page.waitForSelector('#unit-status[data-status="on_scene"]', { timeout: 3000 });
    assert.equal(await page.textContent('#unit-status'), '已到场');
    await page.screenshot({ path: path.join(OUT, 'field-zh.png'), fullPage: true });
    await page.tap('#lang');
    assert.equal(await page.textContent('#unit-status'), 'On scene');

    // Turning sharing off stops the reports.
    await page.tap('#share');
    assert.equal(await page.getAttribute('#share', 'aria-checked'), 'false');
    const sent = posts.length;
    await context.setGeolocation(P1);
    await page.waitForTimeout(800);
    assert.equal(posts.length, sent, 'nothing sent while not sharing');

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, [], 'no page errors');
    assert.deepEqual(refused, [`400 PATCH /api/v1/units/${U}`], 'only the refused status');
  } finally {
    await context.close();
  }

  // 7. A phone whose browser denies the location says so.
  const denied = await openPhone();
  try {
    await denied.context.clearPermissions();
    await denied.page.goto(`${s.url}/field.html`);
    await signIn(denied.page, MEDIC);
    await denied.page.waitForSelector(`#unit-choices button[data-id="${U}"]`, { timeout: 5000 });
    await denied.page.tap(`#unit-choices button[data-id="${U}"]`);
    await denied.page.waitForSelector('#unit-status[data-status="on_scene"]', { timeout: 5000 });
    await denied.page.tap('#share');
    await denied.page.waitForSelector('#geo-state[data-state="denied"]', { timeout: 5000 });
    assert.match(await denied.page.textContent('#geo-state'), /permission is denied/);
    assert.equal(await denied.page.getAttribute('#share', 'aria-checked'), 'false');
    assert.deepEqual(denied.errors, []);
  } finally {
    await denied.context.close();
    await s.stop();
    s.cleanup();
  }
});
