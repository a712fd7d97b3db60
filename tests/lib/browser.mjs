// Real headless Chromium (Debian's chromium, driven by playwright-core) for
// the browser tests, with every request to anything but this machine
// blocked and recorded, so a test can assert that nothing left it.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './harness.mjs';

export const OUT = path.join(ROOT, 'build', 'test-output');
const CHROMIUM = process.env.CITYCMD_CHROMIUM || '/usr/bin/chromium';

export async function launchChromium() {
  mkdirSync(OUT, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A new page in its own context: { context, page, blocked, errors }, where
// blocked lists requests that tried to leave the machine and errors the
// page's uncaught exceptions.
// options are the context's (a phone: viewport, isMobile, hasTouch, …).
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const blocked = [];
  const errors = [];
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    blocked.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { context, page, blocked, errors };
}
