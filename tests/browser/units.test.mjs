// Units on the dispatcher's console in real headless Chromium against the
// real server and the demo city: units created by an operator report
// positions over OsmAnd HTTP; the board lists them (by agency, then call
// sign) with their status words, the map draws their symbols (ringed in the
// colour of the primary status, with a heading arrow when the tracker gave
// a course); a new position moves the symbol within a second; a status
// change recolours the board and the map; the filters work; a click on a
// unit draws its track of the last hour, which grows as it moves, and a
// second click clears it; the words are Chinese in Chinese; nothing leaves
// the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser, login, post, get, request, waitFor } from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const OPERATOR = { username: 'fleet.op', password: 'operator password 1', roles: 'operator', agency: 'command' };
const DISPATCHER = {
  username: 'li.na', password: 'dispatcher pass 2', roles: 'dispatcher', agency: 'command', displayName: 'Li Na',
};
const bearer = (t) => ({ authorization: `Bearer ${t}` });
const portOf = (s, proto) => Number(s.lines.map((l) => l.match(new RegExp(`event=gps\\.listening protocol=${proto} .*port=(\\d+)`))).find(Boolean)[1]);

// The ring colours of the primary statuses (map.js PRIMARY_COLORS).
const GREEN = [0x2e, 0xa0, 0x43];
const RED = [0xe5, 0x48, 0x4d];
const hexOf = (rgb) => `#${rgb.map((x) => x.toString(16).padStart(2, '0')).join('')}`;

// The engine drives north-east through Fontvieille, ~80 m every 10 s; the
// ambulance stands still near the Place d'Armes and its tracker gives no
// course.
const ENGINE = [[7.4200, 43.7300], [7.4206, 43.7306], [7.4212, 43.7312], [7.4218, 43.7318]];
const AMBULANCE = [7.4246, 43.7384];

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const row = (id) => `#unit-list li[data-id="${id}"]`;
const near = (a, b, eps = 1e-6) => Math.abs(a[0] - b[0]) < eps && Math.abs(a[1] - b[1]) < eps;

// The colour drawn on the map canvas at a unit's symbol, dx/dy pixels off
// its centre (the topmost layer canvas that has something there).
async function pixelAt(page, id, dx, dy) {
  return page.evaluate(([i, ddx, ddy]) => {
    const m = window.citycmdMap;
    m.map.renderSync();
    const f = m.unitSource.getFeatureById(i);
    const [x, y] = m.map.getPixelFromCoordinate(f.getGeometry().getCoordinates());
    const canvases = [...document.querySelectorAll('#map canvas')].reverse();
    for (const c of canvases) {
      const ctx = c.getContext('2d');
      if (!ctx || !c.width) continue;
      const r = c.width / c.getBoundingClientRect().width;
      const d = ctx.getImageData(Math.round((x + ddx) * r), Math.round((y + ddy) * r), 1, 1).data;
      if (d[3] === 255) return [d[0], d[1], d[2]];
    }
    return null;
  }, [id, dx, dy]);
}
const sameColour = (a, b) => a && a.every((v, i) => Math.abs(v - b[i]) <= 8);

test('units on the board and the map: live positions, status colours, filters, the track, Chinese', async () => {
  const state = tempDir();
  addUser(state, OPERATOR);
  addUser(state, DISPATCHER);
  const s = await startServer({
    state, args: ['--city', CITY, '--gps-osmand', '127.0.0.1:0', '--ws-units-interval', '100'],
  });
  const osmand = `http://127.0.0.1:${portOf(s, 'osmand')}`;
  const op = await login(s.url, OPERATOR.username, OPERATOR.password);
  const ids = {};
  for (const [sign, kind, agency, device] of [
    ['F-ENG-01', 'engine', 'fire', 'trk-eng-01'],
    ['M-AMB-03', 'ambulance', 'ems', 'trk-amb-03'],
    ['F-LAD-02', 'ladder', 'fire', null], // no tracker: on the board, not on the map
  ]) {
    const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind, agency, device }, bearer(op));
    assert.equal(r.status, 201, r.text);
    ids[sign] = r.body.unit.id;
  }
  const E = ids['F-ENG-01'];
  const A = ids['M-AMB-03'];
  const L = ids['F-LAD-02'];

  // Positions from 90 s ago, 10 s apart (plausible speeds, none ahead of
  // the clock).
  const t0 = Math.floor(Date.now() / 1000) - 90;
  const report = async (device, [lon, lat], t, extra = '') => {
    const r = await fetch(`${osmand}/?id=${device}&lat=${lat}&lon=${lon}&timestamp=${t}${extra}`);
    assert.equal(`${r.status} ${await r.text()}`, '200 accepted', `${device} at ${t}`);
  };
  await report('trk-eng-01', ENGINE[0], t0, '&speed=16&bearing=40');
  await report('trk-eng-01', ENGINE[1], t0 + 10, '&speed=16&bearing=45');
  await report('trk-amb-03', AMBULANCE, t0 + 5);

  const { context, page, blocked, errors } = await openPage(browser);
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  const refused = [];
  page.on('response', (res) => {
    if (res.status() >= 400) refused.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  try {
    await page.goto(s.url);
    await page.fill('#login-username', DISPATCHER.username);
    await page.fill('#login-password', DISPATCHER.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await page.waitForSelector('#map:not([hidden]) canvas', { timeout: 15000 });
    // The units' tab, with its count.
    assert.equal(await page.isVisible('#tab-units'), true, 'a dispatcher has the units tab');
    await page.click('#tab-units');
    assert.equal(await page.getAttribute('#tab-units', 'aria-selected'), 'true');
    assert.equal(await page.isVisible('#unit-board'), true);
    assert.equal(await page.isHidden('#call-form'), true);

    // 1. The board: all three, by agency (ems before fire), then call sign.
    await page.waitForFunction(() => document.querySelectorAll('#unit-list li').length === 3, null, { timeout: 5000 });
    assert.deepEqual(await page.$$eval('#unit-list li', (l) => l.map((x) => x.dataset.id)), [A, E, L]);
    assert.equal(await page.textContent('#unit-count'), '3');
    const eRow = page.locator(row(E));
    assert.equal(await eRow.locator('.call').textContent(), 'F-ENG-01');
    assert.equal(await eRow.locator('.kind').textContent(), 'Fire engine');
    assert.equal(await eRow.locator('.agency').textContent(), 'Fire');
    assert.equal(await eRow.locator('.ustatus').textContent(), 'In station');
    assert.equal(await eRow.locator('.sym').textContent(), 'E');
    assert.match(await eRow.locator('.sym').getAttribute('class'), /\bprimary-available\b/);
    assert.match(await eRow.locator('.fix').textContent(), /^(\d+ s|1 min) ago$/);
    assert.equal(await eRow.locator('.inc').isHidden(), true, 'no incident');
    const aRow = page.locator(row(A));
    assert.equal(await aRow.locator('.call').textContent(), 'M-AMB-03');
    assert.equal(await aRow.locator('.kind').textContent(), 'Ambulance');
    assert.equal(await aRow.locator('.agency').textContent(), 'Medical');
    assert.equal(await aRow.locator('.ustatus').textContent(), 'In station');
    const lRow = page.locator(row(L));
    assert.equal(await lRow.locator('.call').textContent(), 'F-LAD-02');
    assert.equal(await lRow.locator('.fix').textContent(), 'No position');
    assert.equal(await page.textContent('#unit-filters [data-filter="available"] .n'), '3');
    assert.equal(await page.textContent('#unit-filters [data-filter="not_available"] .n'), '0');

    // 2. The map: the two with a position, where they reported.
    await page.waitForFunction(() => window.citycmdMap && window.citycmdMap.unitCount() === 2, null, { timeout: 5000 });
    assert.ok(near(await page.evaluate((i) => window.citycmdMap.unitPosition(i), E), ENGINE[1]));
    assert.ok(near(await page.evaluate((i) => window.citycmdMap.unitPosition(i), A), AMBULANCE));
    assert.equal(await page.evaluate((i) => window.citycmdMap.unitPosition(i), L), null);
    const eSym = await page.evaluate((i) => window.citycmdMap.unitSymbol(i), E);
    assert.equal(eSym.label, 'F-ENG-01', 'the call sign at zoom 15');
    assert.equal(eSym.kind, 'engine');
    assert.equal(eSym.primary, 'available');
    assert.equal(eSym.ring, hexOf(GREEN));
    assert.equal(eSym.arrow, 45, 'the heading the tracker gave');
    const aSym = await page.evaluate((i) => window.citycmdMap.unitSymbol(i), A);
    assert.equal(aSym.kind, 'ambulance');
    assert.equal(aSym.fill, '#ffffff', 'an ambulance is white');
    assert.equal(aSym.arrow, null, 'no course, no arrow');
    assert.notEqual(aSym.fill, eSym.fill);
    // Drawn: the ring (13 px left of the centre) is green on the canvas.
    await page.evaluate((i) => window.citycmdMap.map.getView().setCenter(window.citycmdMap.unitSource.getFeatureById(i).getGeometry().getCoordinates()), E);
    await page.waitForTimeout(300);
    const ringBefore = await pixelAt(page, E, -13, 0);
    assert.ok(sameColour(ringBefore, GREEN), `green ring drawn, got ${ringBefore}`);

    // 3. A new position moves the symbol within a second.
    await report('trk-eng-01', ENGINE[2], t0 + 20, '&speed=16&bearing=90');
    const sent = Date.now();
    await page.waitForFunction(([i, p]) => {
      const at = window.citycmdMap.unitPosition(i);
      return at && Math.abs(at[0] - p[0]) < 1e-6 && Math.abs(at[1] - p[1]) < 1e-6;
    }, [E, ENGINE[2]], { timeout: 1000, polling: 20 });
    console.log(`# moved on the map ${Date.now() - sent} ms after the tracker's report was accepted`);
    assert.equal((await page.evaluate((i) => window.citycmdMap.unitSymbol(i), E)).arrow, 90, 'the arrow turned');

    // 4. A status change: the board's words and colours, and the map's ring.
    const patched = await request(s.url, 'PATCH', `/api/v1/units/${E}`, { status: 'out_of_service' });
    assert.equal(patched.status, 200, patched.text);
    await page.waitForSelector(`${row(E)} .sym.primary-not_available`, { timeout: 2000 });
    assert.equal(await eRow.locator('.ustatus').textContent(), 'Out of service');
    assert.equal(await eRow.getAttribute('data-primary'), 'not_available');
    assert.doesNotMatch(await eRow.locator('.sym').getAttribute('class'), /\bprimary-available\b/);
    await page.waitForFunction((i) => window.citycmdMap.unitSymbol(i).primary === 'not_available', E, { timeout: 2000 });
    assert.equal((await page.evaluate((i) => window.citycmdMap.unitSymbol(i), E)).ring, hexOf(RED));
    await page.evaluate((i) => window.citycmdMap.map.getView().setCenter(window.citycmdMap.unitSource.getFeatureById(i).getGeometry().getCoordinates()), E);
    await page.waitForTimeout(300);
    const ringAfter = await pixelAt(page, E, -13, 0);
    assert.ok(sameColour(ringAfter, RED), `red ring drawn, got ${ringAfter}`);
    // A unit without a position changes too (through the feed's events).
    const onPatrol = await request(s.url, 'PATCH', `/api/v1/units/${L}`, { status: 'on_patrol' });
    assert.equal(onPatrol.status, 200, onPatrol.text);
    await page.waitForSelector(`${row(L)}[data-status="on_patrol"]`, { timeout: 2000 });
    assert.equal(await lRow.locator('.ustatus').textContent(), 'On patrol');
    // A unit created now joins the board in its place (police after fire).
    const created = await post(s.url, '/api/v1/units', { call_sign: 'P-MOT-07', kind: 'motorcycle', agency: 'police' }, bearer(op));
    assert.equal(created.status, 201, created.text);
    const P = created.body.unit.id;
    await page.waitForSelector(row(P), { timeout: 2000 });
    assert.deepEqual(await page.$$eval('#unit-list li', (l) => l.map((x) => x.dataset.id)), [A, E, L, P]);
    assert.equal(await page.textContent('#unit-count'), '4');

    // 5. The filters by primary status.
    assert.equal(await page.textContent('#unit-filters [data-filter="not_available"] .n'), '1');
    assert.equal(await page.textContent('#unit-filters [data-filter="available"] .n'), '3');
    await page.click('#unit-filters [data-filter="not_available"]');
    assert.deepEqual(await page.$$eval('#unit-list li:not([hidden])', (l) => l.map((x) => x.dataset.id)), [E]);
    assert.equal(await page.getAttribute('#unit-filters [data-filter="not_available"]', 'aria-pressed'), 'true');
    await page.click('#unit-filters [data-filter="available"]');
    assert.deepEqual(await page.$$eval('#unit-list li:not([hidden])', (l) => l.map((x) => x.dataset.id)), [A, L, P]);
    await page.click('#unit-filters [data-filter="conditionally_available"]');
    assert.equal(await page.locator('#unit-list li:not([hidden])').count(), 0);
    assert.equal(await page.isVisible('#unit-board-empty'), true);
    await page.click('#unit-filters [data-filter="all"]');
    assert.equal(await page.locator('#unit-list li:not([hidden])').count(), 4);

    // 6. The track: once the server has written the three positions, a
    // click on the engine centres the map on it and draws them.
    await waitFor(async () => (await get(s.url, `/api/v1/units/${E}/track`)).body.positions.length === 3, { what: 'the track written' });
    // The map looks at the ambulance, ~1 km away.
    await page.evaluate((i) => window.citycmdMap.map.getView().setCenter(window.citycmdMap.unitSource.getFeatureById(i).getGeometry().getCoordinates()), A);
    await page.click(row(E));
    await page.waitForFunction(() => window.citycmdMap.trackCoordinates().length >= 3, null, { timeout: 3000 });
    const track = await page.evaluate(() => window.citycmdMap.trackCoordinates());
    for (const p of ENGINE.slice(0, 3)) assert.ok(track.some((c) => near(c, p)), `the track has ${p}: ${JSON.stringify(track)}`);
    assert.ok(near(track[track.length - 1], ENGINE[2]), 'oldest first, the newest last');
    assert.equal(await page.textContent('#unit-track'), 'Track of the last hour: 3 positions');
    assert.match(await eRow.getAttribute('class'), /\bselected\b/);
    assert.equal((await page.evaluate((i) => window.citycmdMap.unitSymbol(i), E)).selected, true);
    await page.waitForTimeout(450); // the 300 ms animation
    const off = await page.evaluate((i) => {
      const c = window.citycmdMap.map.getView().getCenter();
      const p = window.citycmdMap.unitSource.getFeatureById(i).getGeometry().getCoordinates();
      return Math.hypot(c[0] - p[0], c[1] - p[1]);
    }, E);
    assert.ok(off < 1, `the map is centred on the unit (${off} m off)`);
    // It moves on: the track grows with it.
    await report('trk-eng-01', ENGINE[3], t0 + 30, '&speed=16&bearing=45');
    await page.waitForFunction(() => window.citycmdMap.trackCoordinates().length === 4, null, { timeout: 2000 });
    assert.ok(near((await page.evaluate(() => window.citycmdMap.trackCoordinates()))[3], ENGINE[3]));
    await page.waitForSelector('#unit-track >> text=Track of the last hour: 4 positions', { timeout: 1000 });
    await page.screenshot({ path: path.join(OUT, 'units.png') });

    // Another unit: its track instead; the same again: none.
    await page.click(row(A));
    await page.waitForFunction(() => window.citycmdMap.trackCoordinates().length === 1, null, { timeout: 3000 });
    assert.ok(near((await page.evaluate(() => window.citycmdMap.trackCoordinates()))[0], AMBULANCE));
    assert.doesNotMatch(await eRow.getAttribute('class'), /\bselected\b/);
    assert.equal(await page.textContent('#unit-track'), 'Track of the last hour: 1 position');
    await page.click(row(A));
    assert.equal(await page.evaluate(() => window.citycmdMap.trackCoordinates().length), 0);
    assert.equal(await page.isHidden('#unit-track'), true);
    assert.doesNotMatch(await aRow.getAttribute('class'), /\bselected\b/);

    // 7. The light map: the same ring colours on the day theme.
    await page.click('#map-theme');
    await page.evaluate((i) => window.citycmdMap.map.getView().setCenter(window.citycmdMap.unitSource.getFeatureById(i).getGeometry().getCoordinates()), E);
    await page.waitForTimeout(300);
    assert.ok(sameColour(await pixelAt(page, E, -13, 0), RED), 'red ring on the light map');
    assert.ok(sameColour(await pixelAt(page, A, -13, 0), GREEN), 'green ring on the light map');
    await page.click('#map-theme');

    // 8. In Chinese.
    await page.click('#lang');
    assert.equal(await page.textContent('#tab-units [data-i18n="tab.units"]'), '力量');
    assert.equal(await eRow.locator('.ustatus').textContent(), '暂停执勤');
    assert.equal(await eRow.locator('.kind').textContent(), '灭火消防车');
    assert.equal(await eRow.locator('.agency').textContent(), '消防');
    assert.equal(await aRow.locator('.kind').textContent(), '救护车');
    assert.equal(await aRow.locator('.ustatus').textContent(), '在站');
    assert.equal(await lRow.locator('.ustatus').textContent(), '巡逻中');
    assert.equal(await lRow.locator('.fix').textContent(), '无定位');
    assert.match(await aRow.locator('.fix').textContent(), /^\d+ (秒|分钟)前$/);
    assert.equal(await page.textContent('#unit-filters [data-filter="not_available"] [data-i18n]'), '不可用');
    assert.equal(await page.textContent('#unit-filters [data-filter="all"] [data-i18n]'), '全部');
    await page.click(row(E));
    await page.waitForFunction(() => /^近一小时轨迹：4 个定位点$/.test(document.getElementById('unit-track').textContent), null, { timeout: 3000 });
    await page.screenshot({ path: path.join(OUT, 'units-zh.png') });
    await page.click('#lang');
    assert.equal(await page.textContent('#unit-track'), 'Track of the last hour: 4 positions');

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, [], 'no page errors');
    assert.deepEqual(refused, [], 'no request refused');
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
