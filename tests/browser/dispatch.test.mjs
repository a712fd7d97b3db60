// Who goes, in real headless Chromium against the real server and the demo
// city: fire engines, a ladder and an ambulance placed on streets around a
// structure fire; the dispatcher selects the incident and sees the plan's
// slots with the units ranked by travel time by road, the plan's choice
// ticked and its routes drawn on the map; "Send the plan" dispatches
// exactly those units (the server has them dispatched, the board says so,
// their routes stay drawn); the firefighter's phone shows the assignment
// and the route with its travel time; "Release" returns a unit to
// "returning" and the plan offers another engine; a unit the server
// refuses is named; Chinese; an incident off the roads says why there is no
// recommendation; nothing leaves the machine.
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
const FIREFIGHTER = {
  username: 'ff.chen', password: 'field unit pass 4', roles: 'field_unit', agency: 'fire', displayName: 'Chen Jie',
};
const bearer = (t) => ({ authorization: `Bearer ${t}` });

// The fire in Monte-Carlo; places on streets around it, nearer to farther.
const SCENE = { lon: 7.4265, lat: 43.7395 };
const NEAR = { lon: 7.4252, lat: 43.7398 };
const MID = { lon: 7.4205, lat: 43.7365 };
const FAR = { lon: 7.4120, lat: 43.7310 };
// At sea: no road within reach.
const OFFSHORE = { lon: 7.44, lat: 43.70 };

const mmss = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function signIn(page, user) {
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.click('#login-form button[type=submit]');
}

const slot = (kind) => `#rec-slots li.slot[data-kind="${kind}"]`;

test('units to send: the plan, its routes, send, the board, the field page, release', async () => {
  const state = tempDir();
  addUser(state, OPERATOR);
  addUser(state, DISPATCHER);
  addUser(state, FIREFIGHTER);
  const s = await startServer({ state, args: ['--city', CITY, '--ws-units-interval', '100'] });
  const op = await login(s.url, OPERATOR.username, OPERATOR.password);
  const ids = {};
  for (const [sign, kind, agency, at] of [
    ['E-NEAR', 'engine', 'fire', NEAR], ['E-MID', 'engine', 'fire', MID], ['E-FAR', 'engine', 'fire', FAR],
    ['L-1', 'ladder', 'fire', MID], ['A-1', 'ambulance', 'ems', FAR],
  ]) {
    const r = await post(s.url, '/api/v1/units', { call_sign: sign, kind, agency }, bearer(op));
    assert.equal(r.status, 201, r.text);
    ids[sign] = r.body.unit.id;
    const p = await post(s.url, `/api/v1/units/${ids[sign]}/position`, at); // the test dispatcher
    assert.equal(p.status, 200, p.text);
  }
  const sign = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
  const call = await post(s.url, '/api/v1/calls', {
    line: '119', caller: '+377 600 000 011', location: SCENE, category: 'fire/structure', text: 'smoke from a roof',
  });
  assert.equal(call.status, 201, call.text);
  const I = call.body.call.incident_id;
  // What the server recommends: the test compares the page with it.
  const rec = (await get(s.url, `/api/v1/incidents/${I}/recommendations`)).body;
  assert.deepEqual(rec.slots.map((x) => [x.kind, x.count]), [['engine', 2], ['ladder', 1], ['ambulance', 1]]);
  const chosen = rec.slots.flatMap((x) => x.units.filter((u) => u.recommended).map((u) => u.id));
  assert.deepEqual(chosen.map((id) => sign[id]).sort(), ['A-1', 'E-MID', 'E-NEAR', 'L-1']);
  const engines = rec.slots[0].units;
  assert.deepEqual(engines.map((u) => u.call_sign), ['E-NEAR', 'E-MID', 'E-FAR']);

  const { context, page, blocked, errors } = await openPage(browser);
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  const assigns = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === `/api/v1/incidents/${I}/assign`) assigns.push(r.postDataJSON());
  });
  try {
    await page.goto(s.url);
    await signIn(page, DISPATCHER);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await page.waitForFunction(() => window.citycmdMap && window.citycmdMap.map, null, { timeout: 10000 });

    // 1. Select the incident: the slots of the plan, the units ranked.
    await page.click(`#incident-queue li[data-id="${I}"]`);
    await page.waitForSelector(`#recommend:not([hidden])[data-incident="${I}"][data-state="ready"]`, { timeout: 10000 });
    assert.equal(await page.textContent('#recommend-title'), 'Units to send');
    assert.deepEqual(await page.$$eval('#rec-slots li.slot', (l) => l.map((x) => [x.dataset.kind, x.dataset.count])),
      [['engine', '2'], ['ladder', '1'], ['ambulance', '1']]);
    assert.deepEqual(await page.$$eval('#rec-slots .slot-kind', (l) => l.map((x) => x.textContent)),
      ['Fire engine', 'Ladder', 'Ambulance']);
    assert.equal(await page.textContent(`${slot('engine')} .slot-need`), '2 needed');
    const rows = await page.$$eval(`${slot('engine')} li.cand`, (l) => l.map((li) => ({
      id: li.dataset.id,
      call: li.querySelector('.call').textContent,
      eta: li.querySelector('.eta').textContent,
      dist: li.querySelector('.dist').textContent,
      checked: li.querySelector('input.pick').checked,
      badges: [...li.querySelectorAll('.badge')].map((b) => b.textContent),
    })));
    assert.deepEqual(rows.map((r) => r.call), ['E-NEAR', 'E-MID', 'E-FAR'], 'ranked by travel time');
    assert.deepEqual(rows.map((r) => r.checked), engines.map((u) => u.recommended), 'the plan\'s choice ticked');
    assert.deepEqual(rows.map((r) => r.checked), [true, true, false]);
    assert.deepEqual(rows.map((r) => r.eta), engines.map((u) => mmss(u.eta_ms)), 'ETA in minutes:seconds');
    for (const [i, r] of rows.entries()) {
      const m = engines[i].distance_m;
      assert.equal(r.dist, m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`);
      assert.equal(r.badges.includes('Recommended'), engines[i].recommended);
    }
    assert.equal(await page.isEnabled('#rec-send-plan'), true);

    // E-FAR drives on 50 m: no event, no click; the server pushes the new
    // answer and the panel shows E-FAR's new ETA.
    const farRow = `${slot('engine')} li.cand[data-id="${ids['E-FAR']}"] .eta`;
    const farBefore = await page.textContent(farRow);
    const moved = await post(s.url, `/api/v1/units/${ids['E-FAR']}/position`, { lon: FAR.lon + 0.0005, lat: FAR.lat + 0.0002 });
    assert.equal(moved.status, 200, moved.text);
    const fresh = (await get(s.url, `/api/v1/incidents/${I}/recommendations`)).body.slots[0].units.find((u) => u.id === ids['E-FAR']);
    assert.notEqual(mmss(fresh.eta_ms), farBefore, 'the move changes the ETA shown to the minute:second');
    await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent === want, [farRow, mmss(fresh.eta_ms)], { timeout: 5000 });

    // The recommended units' routes on the map, drawn where they are.
    await page.waitForFunction((n) => window.citycmdMap.routeIds().length === n, chosen.length, { timeout: 5000 });
    assert.deepEqual((await page.evaluate(() => window.citycmdMap.routeIds())).sort(), [...chosen].sort());
    const hit = await page.evaluate((id) => {
      const m = window.citycmdMap;
      const f = m.routeSource.getFeatureById(id);
      m.map.getView().fit(m.routeSource.getExtent(), { padding: [40, 40, 40, 40] });
      m.map.renderSync();
      const c = f.getGeometry().getCoordinates();
      const px = m.map.getPixelFromCoordinate(c[Math.floor(c.length / 2)]);
      const found = m.map.forEachFeatureAtPixel(px, (g) => g, { layerFilter: (l) => l === m.routeLayer, hitTolerance: 2 });
      return { found: found ? found.getId() : null, dashed: f.get('dashed') };
    }, ids['A-1']); // from far away: no other route runs there
    assert.equal(hit.found, ids['A-1'], 'the route is rendered on the map');
    assert.equal(hit.dashed, true, 'a proposed route is dashed');
    await page.screenshot({ path: path.join(OUT, 'dispatch-plan.png') });

    // 2. Send the plan: one click assigns every recommended unit.
    await page.click('#rec-send-plan');
    await waitFor(() => assigns.length === 1, { what: 'the assignment' });
    assert.deepEqual([...assigns[0].units].sort(), [...chosen].sort());
    await page.waitForSelector('#rec-result:not([hidden])', { timeout: 5000 });
    assert.match(await page.textContent('#rec-result'), /^Dispatched: /);
    for (const id of chosen) assert.ok((await page.textContent('#rec-result')).includes(sign[id]));
    for (const id of chosen) {
      const u = (await get(s.url, `/api/v1/units/${id}`)).body.unit;
      assert.equal(u.status, 'dispatched', `${sign[id]} dispatched`);
      assert.equal(u.incident, I);
    }
    assert.equal((await get(s.url, `/api/v1/units/${ids['E-FAR']}`)).body.unit.status, 'in_station', 'the alternative stays');
    // The slots now list them as assigned, each with its Release button.
    await page.waitForFunction((n) => document.querySelectorAll('#rec-slots li.assigned-unit').length === n, chosen.length, { timeout: 5000 });
    assert.deepEqual(await page.$$eval(`${slot('engine')} li.assigned-unit`, (l) => l.map((x) => x.dataset.id)),
      [ids['E-NEAR'], ids['E-MID']]);
    await page.waitForFunction(() => [...document.querySelectorAll('#rec-slots li.assigned-unit .ustatus')].every((x) => x.textContent === 'Dispatched'), null, { timeout: 5000 });
    assert.equal(await page.textContent(`${slot('engine')} .slot-assigned`), '2 assigned');
    assert.equal(await page.isEnabled('#rec-send-plan'), false, 'nothing more to send');
    assert.equal(await page.isHidden('#rec-error'), true);
    // Their routes stay drawn, solid now.
    await page.waitForFunction((n) => window.citycmdMap.routeIds().length === n
      && window.citycmdMap.routeSource.getFeatures().every((f) => !f.get('dashed')), chosen.length, { timeout: 5000 });
    assert.deepEqual((await page.evaluate(() => window.citycmdMap.routeIds())).sort(), [...chosen].sort());
    // The board says so.
    await page.click('#tab-units');
    for (const id of chosen) {
      await page.waitForSelector(`#unit-list li[data-id="${id}"][data-status="dispatched"]`, { timeout: 3000 });
      assert.equal(await page.textContent(`#unit-list li[data-id="${id}"] .ustatus`), 'Dispatched');
      assert.equal(await page.textContent(`#unit-list li[data-id="${id}"] .inc`), I);
    }
    assert.equal(await page.getAttribute(`#unit-list li[data-id="${ids['E-FAR']}"]`, 'data-status'), 'in_station');
    await page.click('#tab-detail');
    await page.screenshot({ path: path.join(OUT, 'dispatch-sent.png') });

    // 3. The firefighter's phone: the assignment, the route, its ETA.
    const phone = await openPage(browser, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    try {
      await phone.page.goto(`${s.url}/field.html`);
      await signIn(phone.page, FIREFIGHTER);
      await phone.page.waitForSelector(`#unit-choices button[data-id="${ids['E-NEAR']}"]`, { timeout: 5000 });
      await phone.page.click(`#unit-choices button[data-id="${ids['E-NEAR']}"]`);
      await phone.page.waitForSelector('#unit-status[data-status="dispatched"]', { timeout: 5000 });
      await phone.page.waitForSelector(`#assignment:not([hidden])[data-id="${I}"]`, { timeout: 5000 });
      assert.equal(await phone.page.textContent('#inc-type'), 'Structure fire');
      await phone.page.waitForSelector('#route[data-state="shown"]', { timeout: 10000 });
      const incident = (await get(s.url, `/api/v1/incidents/${I}`)).body.incident;
      const expected = (await get(s.url,
        `/api/v1/route?from=${NEAR.lon},${NEAR.lat}&to=${incident.location.lon},${incident.location.lat}`)).body;
      assert.equal(await phone.page.textContent('#route-eta'), mmss(expected.eta_ms));
      assert.equal(Number(await phone.page.getAttribute('#route-eta', 'data-ms')), expected.eta_ms, 'from the unit\'s last position');
      assert.match(await phone.page.textContent('#route-distance'), /^\d+ m$|^\d+\.\d km$/);
      assert.equal(await phone.page.textContent('#route-from'), 'From the unit\'s last reported position');
      await phone.page.waitForFunction(() => window.citycmdField.st.routeMap && window.citycmdField.st.routeMap.routeCount() === 1, null, { timeout: 5000 });
      assert.ok(await phone.page.isVisible('#route-map canvas'), 'the map is drawn');
      assert.ok(await phone.page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no sideways scrolling');
      await phone.page.screenshot({ path: path.join(OUT, 'dispatch-field.png'), fullPage: true });
      // In Chinese.
      await phone.page.tap('#lang');
      assert.equal(await phone.page.textContent('#route-from'), '从本车最后上报的位置出发');
      assert.match(await phone.page.textContent('#route-distance'), /^\d+ 米$|^\d+\.\d 公里$/);
      assert.deepEqual(phone.blocked, [], 'no request left the phone');
      assert.deepEqual(phone.errors, []);
    } finally {
      await phone.context.close();
    }

    // 4. Release one engine: it is returning, and the plan offers another.
    await page.click(`${slot('engine')} li.assigned-unit[data-id="${ids['E-MID']}"] .release`);
    await waitFor(async () => (await get(s.url, `/api/v1/units/${ids['E-MID']}`)).body.unit.status === 'returning',
      { what: 'E-MID returning' });
    await page.waitForFunction(() => document.querySelectorAll('#rec-slots li.slot[data-kind="engine"] li.assigned-unit').length === 1,
      null, { timeout: 5000 });
    assert.deepEqual(await page.$$eval(`${slot('engine')} li.assigned-unit`, (l) => l.map((x) => x.dataset.id)), [ids['E-NEAR']]);
    await page.click('#tab-units');
    await page.waitForSelector(`#unit-list li[data-id="${ids['E-MID']}"][data-status="returning"]`, { timeout: 3000 });
    assert.equal(await page.textContent(`#unit-list li[data-id="${ids['E-MID']}"] .ustatus`), 'Returning');
    await page.click('#tab-detail');
    // One engine short again: the server's choice for it is ticked, ready to send.
    const again = (await get(s.url, `/api/v1/incidents/${I}/recommendations`)).body.slots[0].units.filter((u) => u.recommended);
    assert.equal(again.length, 1);
    await page.waitForFunction((id) => {
      const li = document.querySelector(`#rec-slots li.slot[data-kind="engine"] li.cand[data-id="${id}"]`);
      return li && li.dataset.recommended === 'true' && li.querySelector('input.pick').checked;
    }, again[0].id, { timeout: 5000 });
    assert.equal(await page.isEnabled('#rec-send-plan'), true);
    // In Chinese.
    await page.click('#lang');
    assert.equal(await page.textContent('#recommend-title'), '派遣力量');
    assert.equal(await page.textContent(`${slot('engine')} .slot-kind`), '灭火消防车');
    assert.equal(await page.textContent('#rec-send-plan'), '按预案派遣');
    assert.equal(await page.textContent(`${slot('engine')} li.assigned-unit .release`), '解除');
    await page.click('#lang');
    assert.equal(await page.textContent('#rec-send-plan'), 'Send the plan');

    // The unit the page offers is taken out of service while the page's
    // send is on its way (the request waits for the change): the server
    // refuses it, and the page names it. (Taken out before the click, the
    // server's next pushed recommendation would offer another unit.)
    const taken = again[0];
    let oos = null;
    await page.route(`**/api/v1/incidents/${I}/assign`, async (route) => {
      oos = await request(s.url, 'PATCH', `/api/v1/units/${taken.id}`, { status: 'out_of_service' });
      return route.continue();
    });
    assert.equal(await page.isEnabled('#rec-send-plan'), true);
    await page.click('#rec-send-plan');
    await page.waitForSelector('#rec-error:not([hidden])', { timeout: 5000 });
    assert.equal(oos?.status, 200, oos?.text);
    const refusal = await page.textContent('#rec-error');
    assert.ok(refusal.startsWith(`Not sent: ${taken.call_sign} (`), refusal);
    assert.equal((await get(s.url, `/api/v1/units/${taken.id}`)).body.unit.status, 'out_of_service');
    await page.unroute(`**/api/v1/incidents/${I}/assign`);

    // 5. An incident off the roads: the reason, no routes.
    const sea = await post(s.url, '/api/v1/calls', {
      line: '119', caller: '+377 600 000 012', location: OFFSHORE, category: 'fire/structure', text: 'a boat on fire',
    });
    assert.equal(sea.status, 201, sea.text);
    const J = sea.body.call.incident_id;
    await page.waitForSelector(`#incident-queue li[data-id="${J}"]`, { timeout: 5000 });
    await page.click(`#incident-queue li[data-id="${J}"]`);
    await page.waitForSelector('#recommend[data-state="error"] #rec-load-error:not([hidden])', { timeout: 5000 });
    assert.equal(await page.textContent('#rec-load-error'), 'No recommendation: the incident is not near a road of the city.');
    assert.equal(await page.getAttribute('#rec-load-error', 'data-code'), 'not_routable');
    assert.equal(await page.evaluate(() => window.citycmdMap.routeIds().length), 0, 'the other incident\'s routes are gone');
    assert.equal(await page.isEnabled('#rec-send-plan'), false);

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, [], 'no page errors');
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
