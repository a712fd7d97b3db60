// Coverage on the console's map, in real headless Chromium against the real
// server and the demo city: a supervisor switches on "Beyond N minutes of
// any available engine"; the streets drawn are the server's answer; more
// minutes draw fewer streets; an engine taken out of service widens the
// gap; switched off, the layer is empty; nothing leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser, login, post, get, request, waitFor } from '../lib/harness.mjs';
import { launchChromium, openPage } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const SUPERVISOR = { username: 'sup.zhao', password: 'supervisor pass 5', roles: 'supervisor', agency: 'command' };
const OPERATOR = { username: 'fleet.op', password: 'operator password 1', roles: 'operator,dispatcher', agency: 'command' };
const bearer = (t) => ({ authorization: `Bearer ${t}` });

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

test('coverage: the streets beyond N minutes of any available engine, as the server computes them', async () => {
  const state = tempDir();
  addUser(state, SUPERVISOR);
  addUser(state, OPERATOR);
  const s = await startServer({ state, args: ['--city', CITY] });
  const op = await login(s.url, OPERATOR.username, OPERATOR.password);
  const ids = [];
  for (const [sign, at] of [['E-1', { lon: 7.4252, lat: 43.7398 }], ['E-2', { lon: 7.4120, lat: 43.7310 }]]) {
    const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind: 'engine', agency: 'fire' }, bearer(op));
    assert.equal(r.status, 201, r.text);
    ids.push(r.body.unit.id);
    assert.equal((await post(s.url, `/api/v1/units/${r.body.unit.id}/position`, at, bearer(op))).status, 200);
  }
  const sup = await login(s.url, SUPERVISOR.username, SUPERVISOR.password);
  const serverLines = async (minutes) => (await get(s.url, `/api/v1/coverage?kind=engine&minutes=${minutes}`, bearer(sup))).body.beyond.geometry.coordinates.length;
  const { context, page, blocked, errors } = await openPage(browser);
  try {
    await page.goto(s.url);
    await page.fill('#login-username', SUPERVISOR.username);
    await page.fill('#login-password', SUPERVISOR.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#map canvas');
    await page.click('.map-layers summary');
    await page.selectOption('#coverage-kind', 'engine');
    await page.fill('#coverage-minutes', '1');
    await page.check('#coverage-on');
    const one = await serverLines(1);
    assert.ok(one > 0);
    await waitFor(async () => (await page.evaluate(() => window.citycmdCoverage())) === one, { timeout: 10000, what: `${one} streets drawn` });
    assert.match(await page.textContent('#coverage-summary'), /km of road beyond 1 min of the 2 available/);
    // More minutes: fewer streets beyond.
    await page.fill('#coverage-minutes', '4');
    await page.dispatchEvent('#coverage-minutes', 'change');
    const four = await serverLines(4);
    assert.ok(four < one, `${four} < ${one}`);
    await waitFor(async () => (await page.evaluate(() => window.citycmdCoverage())) === four, { timeout: 10000, what: `${four} streets drawn` });
    // One engine out of service: the gap widens (read again on the next change).
    const r = await request(s.url, 'PATCH', `/api/v1/units/${ids[0]}`, { status: 'out_of_service' }, bearer(op));
    assert.equal(r.status, 200, r.text);
    const fewer = await serverLines(4);
    assert.ok(fewer > four, `${fewer} > ${four}`);
    await page.dispatchEvent('#coverage-minutes', 'change');
    await waitFor(async () => (await page.evaluate(() => window.citycmdCoverage())) === fewer, { timeout: 10000, what: `${fewer} streets drawn` });
    assert.match(await page.textContent('#coverage-summary'), /1 available/);
    // Off: nothing drawn.
    await page.uncheck('#coverage-on');
    await waitFor(async () => (await page.evaluate(() => window.citycmdCoverage())) === 0, { what: 'layer cleared' });
    assert.deepEqual(blocked, []);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
