// The dispatcher's console in real headless Chromium against the real
// server and the demo city: a call posted to the API is in the incident
// queue and on the map within a second; an unassigned P1 turns into an
// alarm after the (shortened) threshold; a second call at the same place
// fuses into the same incident; the detail shows the calls and moves the
// status on, which ends the alarm; the call form geocodes a typed place
// and opens an incident, and takes its location from the map too;
// nothing leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser, post, get, request } from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const DISPATCHER = {
  username: 'wang.fang', password: 'dispatcher pass 1', roles: 'dispatcher', agency: 'command', displayName: 'Wang Fang',
};
const ALARM_S = 2;
const FIRE = { lon: 7.4246, lat: 43.7384 };

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const item = (id) => `#incident-queue li[data-id="${id}"]`;

test('calls reach the queue and the map within a second; alarm, fusion, detail, dispatch and the call form work', async () => {
  const state = tempDir();
  addUser(state, DISPATCHER);
  const s = await startServer({ state, args: ['--city', CITY] });
  const { context, page, blocked, errors } = await openPage(browser);
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  const refused = [];
  page.on('response', (res) => {
    if (res.status() >= 400) refused.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  // The alarm after 2 s instead of 60, set before the app reads it.
  await page.addInitScript((s) => localStorage.setItem('citycmd.alarm.unassigned_s', s), String(ALARM_S));
  try {
    await page.goto(s.url);
    await page.fill('#login-username', DISPATCHER.username);
    await page.fill('#login-password', DISPATCHER.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 10000 });
    await page.waitForSelector('#map:not([hidden]) canvas', { timeout: 15000 });
    await page.waitForFunction(() => window.citycmdMap && window.citycmdMap.incidentCount() === 0);
    assert.equal(await page.isVisible('#incident-queue-empty'), true, 'an empty queue says so');
    // The category list is filled from the catalogue.
    await page.waitForSelector('#call-category option[value="medical/cardiac"]', { state: 'attached' });

    // When each queue item first appears, each symbol is added to the map
    // and each item turns into an alarm, by the page's clock (the same
    // machine's clock as this process's).
    await page.evaluate(() => {
      window.seenAt = {};
      window.mappedAt = {};
      window.alarmAt = {};
      const queue = document.getElementById('incident-queue');
      new MutationObserver(() => {
        for (const li of queue.querySelectorAll('li[data-id]')) {
          window.seenAt[li.dataset.id] ??= Date.now();
          if (li.classList.contains('alarm')) window.alarmAt[li.dataset.id] ??= Date.now();
        }
      }).observe(queue, { childList: true, subtree: true, attributes: true, attributeFilter: ['class'] });
      window.citycmdMap.incidentSource.on('addfeature', (e) => { window.mappedAt[e.feature.getId()] ??= Date.now(); });
    });

    // 1. A priority-1 call through the API: in the queue and on the map.
    const sent = Date.now();
    const r1 = await post(s.url, '/api/v1/calls', {
      line: '119', caller: '+37793000001', location: FIRE, category: 'fire/structure', text: 'Smoke from the third floor',
    });
    const returned = Date.now();
    assert.equal(r1.status, 201, r1.text);
    assert.equal(r1.body.joined, false);
    const id = r1.body.incident.id;
    await page.waitForSelector(item(id), { timeout: 3000 });
    const seen = await page.evaluate((i) => window.seenAt[i], id);
    const rel = (ms) => (ms >= 0 ? `${ms} ms after` : `${-ms} ms before`);
    console.log(`# time to queue: ${rel(seen - returned)} the POST returned (${seen - sent} ms after it was sent; the POST took ${returned - sent} ms)`);
    assert.ok(seen - returned <= 1000, `in the queue ${seen - returned} ms after the POST returned`);
    await page.waitForFunction(() => window.citycmdMap.incidentCount() === 1, null, { timeout: 1000 });
    const mapped = await page.evaluate((i) => window.mappedAt[i], id);
    console.log(`# time to map: ${rel(mapped - returned)} the POST returned`);
    assert.ok(mapped - returned <= 1000, `on the map ${mapped - returned} ms after the POST returned`);

    const li = page.locator(item(id));
    assert.equal(await li.locator('.prio').textContent(), 'P1');
    assert.match(await li.locator('.prio').getAttribute('class'), /\bp1\b/);
    assert.equal(await li.locator('.type').textContent(), 'Structure fire');
    assert.match(await li.locator('.addr').textContent(), /^near .+/);
    assert.equal(await li.locator('.callers').getAttribute('data-count'), '1');
    assert.equal(await li.locator('.status').textContent(), 'New');
    assert.match(await li.locator('.age').textContent(), /^0:0\d$/);
    assert.equal(await page.isHidden('#incident-queue-empty'), true);

    // 2. Still new after the threshold: the alarm, with its words.
    const opened = Date.parse(r1.body.incident.opened_at);
    if (Date.now() - opened < (ALARM_S - 0.5) * 1000) {
      assert.doesNotMatch(await li.getAttribute('class'), /\balarm\b/, 'no alarm before the threshold');
    }
    await page.waitForSelector(`${item(id)}.alarm`, { timeout: (ALARM_S + 3) * 1000 });
    const alarmAfter = (await page.evaluate((i) => window.alarmAt[i], id)) - opened;
    console.log(`# alarm shown ${alarmAfter} ms after the incident opened (threshold ${ALARM_S} s)`);
    assert.ok(alarmAfter >= ALARM_S * 1000 - 50 && alarmAfter <= ALARM_S * 1000 + 1000, 'at the threshold');
    assert.equal(await li.locator('.alarm-text').isVisible(), true);
    assert.equal(await li.locator('.alarm-text').textContent(), 'No unit assigned');
    assert.match(await li.locator('.age').textContent(), /^0:0[2-9]$/);

    // 3. A second caller at the same place: the same incident, two callers.
    const r2 = await post(s.url, '/api/v1/calls', {
      line: '119', caller: '+37793000002', location: { lon: FIRE.lon + 0.0002, lat: FIRE.lat }, category: 'fire/structure', text: 'Flames at the windows',
    });
    assert.equal(r2.status, 201, r2.text);
    assert.equal(r2.body.joined, true);
    assert.equal(r2.body.call.incident_id, id);
    await page.waitForSelector(`${item(id)} .callers[data-count="2"]`, { timeout: 2000 });
    assert.equal(await li.locator('.callers').textContent(), '2 callers');
    assert.equal(await page.locator('#incident-queue li').count(), 1, 'fused: still one item');
    assert.equal(await page.evaluate(() => window.citycmdMap.incidentCount()), 1);

    // 4. The detail: both calls, the districts, the agencies, the timeline.
    await li.click();
    await page.waitForSelector(`#incident-detail[data-id="${id}"]:not([hidden]) .calls li >> nth=1`, { timeout: 3000 });
    assert.equal(await page.locator('#incident-detail .calls li').count(), 2);
    assert.match(await page.textContent('#incident-detail .calls'), /\+37793000001[\s\S]*\+37793000002/);
    assert.match(await page.textContent('#incident-detail .calls'), /Flames at the windows/);
    assert.match(await page.textContent('#incident-detail .detail-head'), new RegExp(`P1${id}Structure fireNew`));
    assert.match(await page.textContent('#incident-detail .facts'), /Fire district: Caserne/);
    assert.equal(await page.textContent('#incident-detail .facts .agencies'), 'Fire, Medical');
    assert.ok(await page.locator('#incident-detail .timeline li').count() >= 3, 'opened and two calls');
    assert.equal(await li.getAttribute('aria-selected'), 'true');
    await page.waitForFunction((i) => window.citycmdMap.incidentSource.getFeatureById(i).get('selected'), id);

    // 5. Dispatched through the detail: the status changes, the alarm ends.
    await page.click('#incident-detail button[data-status="dispatched"]');
    await page.waitForSelector(`${item(id)}[data-status="dispatched"]:not(.alarm)`, { timeout: 3000 });
    assert.equal(await li.locator('.status').textContent(), 'Dispatched');
    assert.equal(await li.locator('.alarm-text').isHidden(), true);
    await page.waitForSelector('#incident-detail .timeline li >> text=New → Dispatched', { timeout: 3000 });
    assert.equal((await get(s.url, `/api/v1/incidents/${id}`)).body.incident.status, 'dispatched');
    // Back to "new" is not offered; a note goes into the timeline.
    assert.equal(await page.locator('#incident-detail button[data-status="new"]').count(), 0);
    await page.fill('#incident-note', 'Ladder 1 and ambulance 3 rolling');
    await page.click('#incident-note-form button[type=submit]');
    await page.waitForSelector('#incident-detail .timeline li >> text=Ladder 1 and ambulance 3 rolling', { timeout: 3000 });

    // 6. The call form: a typed place, a suggestion, a category.
    await page.click('#tab-call');
    await page.selectOption('#call-line', '120');
    await page.fill('#call-caller', '+37793000003');
    await page.locator('#call-location').pressSequentially('Princesse Grace', { delay: 20 });
    await page.waitForSelector('#call-suggestions li >> text=Avenue Princesse Grace', { timeout: 3000 });
    await page.click('#call-suggestions li >> text=Avenue Princesse Grace');
    assert.equal(await page.inputValue('#call-location'), 'Avenue Princesse Grace');
    assert.match(await page.textContent('#call-coords'), /43\.7\d+, 7\.4\d+/);
    await page.selectOption('#call-category', 'medical/cardiac');
    await page.fill('#call-text', 'Man collapsed on the pavement, not breathing');
    await page.click('#call-form button[type=submit]');
    await page.waitForSelector('#call-result:not([hidden])', { timeout: 3000 });
    const id2 = await page.getAttribute('#call-result', 'data-id');
    assert.match(id2, /^I-\d+$/);
    assert.notEqual(id2, id);
    assert.equal(await page.textContent('#call-result span'), `Incident ${id2} opened.`);
    await page.waitForSelector(item(id2), { timeout: 1000 });
    await page.waitForFunction(() => window.citycmdMap.incidentCount() === 2, null, { timeout: 1000 });
    assert.equal(await page.locator(`${item(id2)} .type`).textContent(), 'Cardiac emergency');
    // Both P1: the older first.
    assert.deepEqual(await page.$$eval('#incident-queue li', (l) => l.map((x) => x.dataset.id)), [id, id2]);
    const call2 = (await get(s.url, `/api/v1/incidents/${id2}`)).body.incident;
    assert.equal(call2.calls[0].line, '120');
    assert.equal(call2.calls[0].location.text, 'Avenue Princesse Grace');
    assert.match(call2.address, /Princesse Grace/);

    // A call the server refuses: its message, naming the field.
    await page.selectOption('#call-category', 'fire/other');
    await page.click('#call-form button[type=submit]');
    await page.waitForSelector('#call-error:not([hidden])');
    assert.equal(await page.getAttribute('#call-error', 'data-field'), 'caller');
    assert.match(await page.textContent('#call-error'), /caller/);
    assert.equal(await page.getAttribute('#call-caller', 'aria-invalid'), 'true');

    // 7. A click on an incident on the map selects it in the queue.
    const at = await page.evaluate((i) => {
      const m = window.citycmdMap;
      const c = m.incidentSource.getFeatureById(i).getGeometry().getCoordinates();
      m.map.getView().setCenter(c);
      m.map.renderSync();
      return m.map.getPixelFromCoordinate(c);
    }, id2);
    const box = await page.locator('#map').boundingBox();
    await page.mouse.click(box.x + at[0], box.y + at[1]);
    await page.waitForSelector(`${item(id2)}.selected`, { timeout: 3000 });
    await page.waitForSelector(`#incident-detail[data-id="${id2}"]:not([hidden])`);
    await page.waitForSelector(`${item(id2)}.alarm`, { timeout: (ALARM_S + 3) * 1000 });
    await page.screenshot({ path: path.join(OUT, 'console.png') });

    // 8. In Chinese.
    await page.click('#lang');
    assert.equal(await page.locator(`${item(id2)} .alarm-text`).textContent(), '未派车');
    assert.equal(await page.locator(`${item(id2)} .type`).textContent(), '心脏急症');
    assert.equal(await page.locator(`${item(id)} .status`).textContent(), '已派车');
    assert.equal(await page.textContent('#tab-call'), '新接警');
    // The place in Chinese words around the city's own names.
    const zhAddr = await page.locator(`${item(id2)} .addr`).textContent();
    assert.match(zhAddr, /附近$/);
    assert.doesNotMatch(zhAddr, /^near /);
    await page.screenshot({ path: path.join(OUT, 'console-zh.png') });
    await page.click('#lang');

    // 9. Closed or cancelled: out of the queue and off the map.
    await page.click('#incident-detail button[data-status="cancelled"]');
    await page.waitForSelector(item(id2), { state: 'detached', timeout: 3000 });
    await page.waitForFunction(() => window.citycmdMap.incidentCount() === 1);
    assert.match(await page.textContent('#incident-detail .actions'), /This incident is Cancelled/);
    const closed = await request(s.url, 'PATCH', `/api/v1/incidents/${id}`, { status: 'closed' });
    assert.equal(closed.status, 200);
    await page.waitForSelector(item(id), { state: 'detached', timeout: 3000 });
    await page.waitForFunction(() => window.citycmdMap.incidentCount() === 0);
    assert.equal(await page.isVisible('#incident-queue-empty'), true);

    // 10. The call's location from the map: armed by "Pick on map", or
    // from the popup of a plain click.
    await page.click('#tab-call');
    await page.click('#call-pick');
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForSelector('#call-coords:not([hidden])', { timeout: 3000 });
    assert.match(await page.inputValue('#call-location'), /^near .+/);
    assert.equal(await page.isVisible('.map-popup .where'), false, 'a pick is not a question about the place');
    await page.fill('#call-location', '');
    assert.equal(await page.isHidden('#call-coords'), true, 'typing drops the picked point');
    await page.mouse.click(box.x + box.width / 2 + 40, box.y + box.height / 2 + 40);
    await page.click('.map-popup .use-location', { timeout: 3000 });
    await page.waitForSelector('#call-coords:not([hidden])', { timeout: 3000 });
    assert.match(await page.inputValue('#call-location'), /^near .+/);

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, [], 'no page errors');
    assert.deepEqual(refused, ['400 POST /api/v1/calls'], 'the one refusal is the call without a caller');
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
