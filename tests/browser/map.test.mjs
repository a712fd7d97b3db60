// The map in real headless Chromium: vector tiles from the server drawn by
// OpenLayers with nothing fetched from beyond localhost, roads and labels on
// the canvas, a click that says where the point is, and the search box.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BIN, startServer, tempDir, addUser } from '../lib/harness.mjs';
import { launchChromium, openPage, OUT } from '../lib/browser.mjs';

const CITY = path.join(path.dirname(BIN), 'city', 'monaco');
const USER = { username: 'map.viewer', password: 'map viewer pass', roles: 'dispatcher', agency: 'fire', displayName: 'Map Viewer' };

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

// Pixels of the map canvas: how many differ from the background, and how
// many have exactly the place-label colour of the theme.
async function canvasStats(page, label) {
  return page.evaluate((labelRgb) => {
    let drawn = 0, labelled = 0, total = 0;
    for (const c of document.querySelectorAll('#map canvas')) {
      const ctx = c.getContext('2d', { willReadFrequently: true });
      if (!ctx || !c.width) continue;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) {
        total++;
        if (d[i + 3] > 0) drawn++;
        if (d[i] === labelRgb[0] && d[i + 1] === labelRgb[1] && d[i + 2] === labelRgb[2] && d[i + 3] === 255) labelled++;
      }
    }
    return { drawn, labelled, total };
  }, label);
}

test('the map draws tiles of the city offline, with roads and labels; a click and a search say where', async () => {
  assert.ok(existsSync(path.join(CITY, 'city.gpkg')), `the build makes ${CITY}`);
  const state = tempDir();
  addUser(state, USER);
  const s = await startServer({ state, args: ['--city', CITY] });
  const { context, page, blocked, errors } = await openPage(browser);
  const tiles = [];
  page.on('response', (res) => { if (new URL(res.url()).pathname.startsWith('/tiles/')) tiles.push(res.status()); });
  try {
    await page.goto(s.url);
    await page.fill('#login-username', USER.username);
    await page.fill('#login-password', USER.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#map:not([hidden]) canvas', { timeout: 15000 });
    // Wait until the tiles are in and drawn.
    let stats;
    const t0 = Date.now();
    do {
      await page.waitForTimeout(500);
      stats = await canvasStats(page, [0xff, 0xd1, 0x66]);
    } while ((stats.drawn < stats.total * 0.5 || stats.labelled < 30) && Date.now() - t0 < 20000);
    console.log(`# map: ${tiles.length} tiles (${tiles.filter((x) => x === 200).length} ok), ${(100 * stats.drawn / stats.total).toFixed(0)}% drawn, ${stats.labelled} label pixels`);
    assert.ok(tiles.length >= 4 && tiles.every((x) => x === 200), `tiles: ${tiles}`);
    assert.ok(stats.drawn > stats.total * 0.5, 'roads, buildings and districts cover the canvas');
    assert.ok(stats.labelled >= 30, 'place labels are drawn');
    assert.match(await page.textContent('.ol-attribution'), /OpenStreetMap contributors/);
    await page.screenshot({ path: path.join(OUT, 'map-dark.png') });

    // A click in the middle: the nearest address and the districts.
    const box = await page.locator('#map').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForSelector('.map-popup .where', { timeout: 5000 });
    assert.match(await page.textContent('.map-popup .where'), /^near .+/);
    assert.match(await page.textContent('.map-popup ul'), /Fire district/);

    // Search, pick a result: the map goes there.
    await page.fill('#map-search', 'princesse grace');
    await page.waitForSelector('#map-results li >> text=Avenue Princesse Grace');
    await page.click('#map-results li >> text=Avenue Princesse Grace');
    await page.waitForFunction(() => Math.round(window.citycmdMap.map.getView().getZoom()) === 17, null, { timeout: 5000 });

    // The daytime style.
    await page.click('#map-theme');
    await page.waitForTimeout(1000);
    await page.screenshot({ path: path.join(OUT, 'map-light.png') });
    const light = await canvasStats(page, [0x7a, 0x2e, 0x00]);
    assert.ok(light.drawn > light.total * 0.5);

    assert.deepEqual(blocked, [], 'no request left the machine');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await s.stop();
    s.cleanup();
  }
});
