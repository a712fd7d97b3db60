// A main bursts, in real headless Chromium against the real server and the
// demo city's generated water network: the command centre's dispatcher
// turns on the pipes layer, isolates a water pipe by clicking it on the map
// and sees the valves to close (as many as the server's answer has) and the
// isolated area drawn; a repair order is created from the panel; the water
// crew's tablet page (/crew.html) opens the order and reports a valve as
// failed to close; the console's panel, without a reload, shows the larger
// isolated area the server now computes. Nothing leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser, login, post, get, waitFor } from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const DISPATCHER = {
  username: 'wang.fang', password: 'dispatcher pass 7', roles: 'dispatcher', agency: 'command', displayName: 'Wang Fang',
};
const CREW = {
  username: 'crew.zhao', password: 'water crew pass 3', roles: 'crew', agency: 'water', displayName: 'Zhao Lei',
};
const bearer = (t) => ({ authorization: `Bearer ${t}` });

// Web Mercator (EPSG:3857), as OpenLayers draws the map.
const R = 6378137;
const mercator = ([lon, lat]) => [R * (lon * Math.PI) / 180, R * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))];

// The middle of the longest stretch of a pipe: a point on it, away from its ends.
function pointOn(coords) {
  let best = null;
  for (let i = 1; i < coords.length; i++) {
    const [a, b] = [mercator(coords[i - 1]), mercator(coords[i])];
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (!best || len > best.len) best = { len, at: [(coords[i - 1][0] + coords[i][0]) / 2, (coords[i - 1][1] + coords[i][1]) / 2] };
  }
  return best.at;
}

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function signIn(page, user) {
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.click('#login-form button[type=submit]');
}

const isolatedCount = async (page) => {
  const text = await page.textContent('[data-testid="iso-isolated"]');
  const m = /^Isolated: (\d+) pipes/.exec(text || '');
  return m ? Number(m[1]) : null;
};

test('a burst water main: isolate on the console, a valve fails on the crew\'s tablet, the console follows live', async () => {
  const state = tempDir();
  addUser(state, DISPATCHER);
  addUser(state, CREW);
  const s = await startServer({ state, args: ['--city', CITY] });
  const disp = await login(s.url, DISPATCHER.username, DISPATCHER.password);
  const H = bearer(disp);

  const nets = await get(s.url, '/api/v1/pipes/networks', H);
  assert.equal(nets.status, 200, nets.text);
  const water = nets.body.networks.find((n) => n.name === 'water');
  assert.ok(water && water.utility === 'water', `the demo city has its water network: ${nets.text}`);

  // A pipe whose isolation grows when one of its valves fails to close
  // (asked of the server beforehand, then cancelled): the test needs one.
  const links = (await get(s.url, '/api/v1/pipes/networks/water/features?layer=links', H)).body.features;
  let pick = null;
  for (const f of links.filter((x) => x.properties.length_m >= 60).slice(0, 40)) {
    const pipe = f.properties.id;
    const a = await post(s.url, '/api/v1/pipes/isolations', { network: 'water', pipe }, H);
    assert.equal(a.status, 201, a.text);
    const ans = a.body.isolation.answer;
    const probes = [a.body.isolation.id];
    for (const v of ans.valves) {
      const b = await post(s.url, '/api/v1/pipes/isolations', { network: 'water', pipe, failed: [v.id] }, H);
      assert.equal(b.status, 201, b.text);
      probes.push(b.body.isolation.id);
      if (b.body.isolation.answer.isolated.links.length > ans.isolated.links.length) {
        pick = { pipe, at: pointOn(f.geometry.coordinates), valve: v.id };
        break;
      }
    }
    for (const id of probes) assert.equal((await post(s.url, `/api/v1/pipes/isolations/${id}/cancel`, {}, H)).status, 200);
    if (pick) break;
  }
  assert.ok(pick, 'a water pipe whose isolation grows when a valve fails');
  assert.deepEqual((await get(s.url, '/api/v1/pipes/isolations', H)).body.isolations, [], 'the probes are cancelled');

  const { context, page, blocked, errors } = await openPage(browser);
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  const tablet = await openPage(browser, { viewport: { width: 1024, height: 768 }, isMobile: true, hasTouch: true });
  tablet.page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) tablet.errors.push(m.text());
  });
  try {
    await page.goto(s.url);
    await signIn(page, DISPATCHER);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await page.waitForFunction(() => window.citycmdMap && window.citycmdMap.map && window.citycmdPipes, null, { timeout: 10000 });

    // 1. The pipes layer: the networks the command centre may read.
    await page.click('.map-layers summary');
    await page.waitForSelector('#pipes-ctl:not([hidden])', { timeout: 5000 });
    await page.check('#pipes-on');
    await page.waitForFunction((n) => {
      const c = window.citycmdPipes.network();
      return c && c.water && c.water.links === n.links && c.water.valves === n.valves;
    }, { links: water.links, valves: water.valves }, { timeout: 15000 });
    assert.match(await page.textContent('#pipes-summary'), new RegExp(`water \\(Water\\): ${water.links} pipes, ${water.valves} valves`));
    await page.click('.map-layers summary'); // closed again: the map is free to click
    await page.waitForSelector('#tab-pipes[aria-selected="true"]', { timeout: 5000 });

    // 2. Isolation mode; a click on the water pipe on the map.
    await page.selectOption('#iso-network', 'water');
    await page.click('#iso-arm');
    await page.waitForSelector('#iso-arm[aria-pressed="true"]');
    const px = await page.evaluate((xy) => {
      const m = window.citycmdMap.map;
      m.getView().setCenter(xy);
      m.getView().setZoom(18);
      m.renderSync();
      return m.getPixelFromCoordinate(xy);
    }, mercator(pick.at));
    const box = await page.locator('#map').boundingBox();
    await page.mouse.click(box.x + px[0], box.y + px[1]);
    await page.waitForSelector('#iso-view:not([hidden])[data-isolation]:not([data-isolation=""])', { timeout: 10000 });
    await page.waitForFunction(() => document.querySelectorAll('#iso-valves li').length > 0, null, { timeout: 5000 });
    const isoId = Number(await page.getAttribute('#iso-view', 'data-isolation'));
    assert.equal(await page.getAttribute('#iso-arm', 'aria-pressed'), 'false', 'one click, one isolation');

    // The panel and the map say what the server computed.
    const first = (await get(s.url, `/api/v1/pipes/isolations/${isoId}`, H)).body.isolation;
    assert.equal(first.network, 'water');
    assert.equal(first.pipe, pick.pipe, 'the clicked pipe is isolated');
    const a0 = first.answer;
    assert.equal(await page.locator('#iso-valves li').count(), a0.valves.length, 'as many valves as the answer');
    assert.deepEqual(await page.$$eval('#iso-valves li', (l) => l.map((li) => [Number(li.dataset.order), li.dataset.valve])),
      a0.valves.map((v) => [v.order, v.id]), 'the valves in the crew\'s order');
    assert.equal(await isolatedCount(page), a0.isolated.links.length, '"Isolated: N pipes"');
    assert.equal(await page.getAttribute('[data-testid="iso-isolated"]', 'data-count'), String(a0.isolated.links.length));
    assert.equal(await page.getAttribute('#iso-customers', 'data-count'), String(a0.customers.count));
    const drawn0 = await page.evaluate(() => window.citycmdPipes.drawn());
    assert.equal(drawn0.isolated, a0.isolated.geometry.coordinates.length, 'the isolated pipes drawn');
    assert.equal(drawn0.dry, a0.dry.geometry.coordinates.length, 'the dry pipes drawn');
    assert.deepEqual(drawn0.valves.map((v) => [v.order, v.id]), a0.valves.map((v) => [v.order, v.id]), 'numbered valve markers');
    // The isolated area is rendered where the pipe was clicked.
    const hit = await page.evaluate((p) => {
      const m = window.citycmdMap.map;
      m.renderSync();
      const parts = [];
      m.forEachFeatureAtPixel(p, (f) => { parts.push(f.get('part')); }, { hitTolerance: 3 });
      return parts;
    }, px);
    assert.ok(hit.includes('isolated'), `the isolated pipe is drawn under the click (${hit})`);
    await page.screenshot({ path: path.join(OUT, 'pipes-isolation.png') });

    // 3. A repair order from the panel.
    await page.click('#iso-create-order');
    await page.waitForSelector('#iso-order:not([hidden])[data-order]:not([data-order=""])', { timeout: 5000 });
    const orderId = Number(await page.getAttribute('#iso-order', 'data-order'));
    const order = (await get(s.url, `/api/v1/repair-orders/${orderId}`, H)).body.order;
    assert.equal(order.isolation, isoId);
    assert.equal(order.agency, 'water');
    assert.equal(order.status, 'planned');
    await page.waitForSelector('#iso-create-order', { state: 'hidden', timeout: 5000 });

    // 4. The water crew's tablet: the order, its valves, a valve that fails.
    const crewPage = tablet.page;
    await crewPage.goto(`${s.url}/crew.html`);
    await signIn(crewPage, CREW);
    await crewPage.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await crewPage.waitForSelector(`#order-list button[data-id="${orderId}"]`, { timeout: 5000 });
    await crewPage.click(`#order-list button[data-id="${orderId}"]`);
    await crewPage.waitForSelector(`#order-view:not([hidden])[data-isolation="${isoId}"]`, { timeout: 5000 });
    await crewPage.waitForSelector(`#valve-list li[data-valve="${pick.valve}"]`, { timeout: 5000 });
    assert.equal(await crewPage.textContent('#order-pipe'), pick.pipe);
    assert.equal(await crewPage.getAttribute('#order-status', 'data-status'), 'planned');
    assert.deepEqual(await crewPage.$$eval('#valve-list li', (l) => l.map((li) => li.dataset.valve)), a0.valves.map((v) => v.id));
    assert.equal(await crewPage.getAttribute('#iso-isolated', 'data-count'), String(a0.isolated.links.length));
    // Large touch targets.
    const btn = await crewPage.locator(`#valve-list li[data-valve="${pick.valve}"] button[data-result="failed"]`).boundingBox();
    assert.ok(btn.height >= 48 && btn.width >= 120, `a big "Failed to close" button (${btn.width}×${btn.height})`);
    await crewPage.waitForFunction((n) => window.citycmdCrew.drawn() && window.citycmdCrew.drawn().valves.length === n, a0.valves.length, { timeout: 5000 });

    // The console's page is marked: a reload would lose the mark.
    await page.evaluate(() => { window.notReloaded = true; });
    const before = await isolatedCount(page);
    const t0 = Date.now();
    await crewPage.click(`#valve-list li[data-valve="${pick.valve}"] button[data-result="failed"]`);
    await crewPage.waitForSelector(`#cannot-list li[data-valve="${pick.valve}"][data-reported="failed"]`, { timeout: 5000 });

    // 5. The console follows, live: a larger isolated area, without a reload.
    await page.waitForFunction((n) => {
      const m = /^Isolated: (\d+) pipes/.exec(document.querySelector('[data-testid="iso-isolated"]')?.textContent || '');
      return m && Number(m[1]) > n;
    }, before, { timeout: 5000 });
    const took = Date.now() - t0;
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload');
    const grown = (await get(s.url, `/api/v1/pipes/isolations/${isoId}`, H)).body.isolation;
    assert.deepEqual(grown.failed, [pick.valve]);
    const a1 = grown.answer;
    assert.ok(a1.isolated.links.length > a0.isolated.links.length);
    assert.equal(await isolatedCount(page), a1.isolated.links.length, 'the console shows the server\'s new answer');
    await page.waitForFunction((n) => document.querySelectorAll('#iso-valves li').length === n, a1.valves.length, { timeout: 5000 });
    assert.ok(!(await page.$$eval('#iso-valves li', (l) => l.map((li) => li.dataset.valve))).includes(pick.valve));
    assert.equal(await page.getAttribute(`#iso-cannot li[data-valve="${pick.valve}"]`, 'data-failed'), 'true');
    const drawn1 = await page.evaluate(() => window.citycmdPipes.drawn());
    assert.equal(drawn1.isolated, a1.isolated.geometry.coordinates.length, 'the grown area is drawn');
    assert.ok(drawn1.isolated > drawn0.isolated);
    assert.deepEqual(drawn1.failed, [pick.valve], 'the failed valve is marked on the map');
    // The tablet shows the same.
    assert.equal(await crewPage.getAttribute('#iso-isolated', 'data-count'), String(a1.isolated.links.length));
    await page.screenshot({ path: path.join(OUT, 'pipes-grown.png') });
    await crewPage.screenshot({ path: path.join(OUT, 'pipes-crew.png') });

    // 6. The crew moves the order on when it may; the console follows.
    if (!order.awaiting_approval) {
      await crewPage.click('#step-buttons button[data-status="in_progress"]');
      await crewPage.waitForSelector('#order-status[data-status="in_progress"]', { timeout: 5000 });
      assert.equal((await get(s.url, `/api/v1/repair-orders/${orderId}`, H)).body.order.status, 'in_progress');
      await page.waitForSelector('#iso-order[data-status="in_progress"]', { timeout: 5000 });
    } else {
      assert.equal(await crewPage.isDisabled('#step-buttons button[data-status="in_progress"]'), true);
      assert.equal(await crewPage.getAttribute('#order-approval', 'data-state'), 'awaiting');
    }

    assert.deepEqual(blocked, [], 'no request left the machine (console)');
    assert.deepEqual(tablet.blocked, [], 'no request left the machine (tablet)');
    assert.deepEqual(errors, [], 'no page errors on the console');
    assert.deepEqual(tablet.errors, [], 'no page errors on the tablet');
    console.log(`# the console showed the grown isolation ${took} ms after the tap`);
  } finally {
    await context.close();
    await tablet.context.close();
    await s.stop();
    s.cleanup();
  }
});
