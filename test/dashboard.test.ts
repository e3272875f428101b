import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHarness, verdict, T0, MIN, type Harness } from './support/http-harness.ts';
import { serviceEnv } from './support/services-env.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
let h: Harness;
let browser: Browser;
const requests: string[] = [];

before(async () => {
  const executablePath = serviceEnv('VIGIL_TEST_CHROMIUM');
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startHarness({ VIGIL_FEED_UPDATE_MS: '0' });
  // History: an earlier occurrence of the same key, then the open incident with a timeline.
  h.manager.applyBatch([verdict('open', T0 - 180 * MIN)]);
  h.manager.applyBatch([verdict('resolve', T0 - 157 * MIN)]);
  h.manager.applyBatch([verdict('open', T0)]);
  for (let k = 1; k <= 12; k++) {
    h.manager.applyBatch([verdict('update', T0 + k * MIN, { errorRatio: 0.224 + 0.04 * Math.sin(k / 2), impactedViews: 269 + 35 * k })]);
  }
  browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  h?.close();
});

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('request', (r) => requests.push(r.url()));
  return page;
}

test('incidents page: open incidents from the feed snapshot; a new incident appears live; all incidents lists closed ones', async () => {
  const page = await newPage();
  await page.goto(`${h.base}/`);
  await page.locator('tr[data-id="2"]').waitFor();
  assert.equal(await page.locator('#live').getAttribute('data-state'), 'live');
  assert.equal((await page.locator('tr[data-id="2"] td.details').innerText()).trim(), 'Overall error-rate is significantly high (22.4%) due to an error of networkError');
  assert.equal(await page.locator('tr[data-id="2"] td.open-for').innerText(), '12 minutes');
  assert.equal(await page.locator('tbody tr').count(), 1, 'the resolved incident is not open');

  h.manager.applyBatch([verdict('open', T0 + 13 * MIN, { scope: 'title', videoTitle: 'Enlace', errorRatio: 0.86, impactedViews: 97 })]);
  await page.locator('tr[data-id="3"]').waitFor();
  const details = page.locator('tr[data-id="3"] td.details');
  assert.equal((await details.innerText()).trim(), 'Video Title Enlace is failing at a significant rate (86.0%) due to an error of networkError');
  assert.equal(await details.locator('b').first().innerText(), 'Enlace');
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-open-incidents.png'), fullPage: true });

  h.manager.applyBatch([verdict('resolve', T0 + 14 * MIN, { scope: 'title', videoTitle: 'Enlace' })]);
  await page.locator('tr[data-id="3"]').waitFor({ state: 'detached' });

  await page.getByRole('tab', { name: 'All incidents' }).click();
  await page.locator('tr[data-id="1"]').waitFor();
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id)), ['3', '2', '1']);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-all-incidents.png'), fullPage: true });
  await page.close();
});

test('incident page: trigger, current status, timeline chart, other occurrences; the Silence button works', async () => {
  const page = await newPage();
  await page.goto(`${h.base}/properties/177/incidents/2`);
  await page.locator('#incident').waitFor();
  const text = async (id: string) => (await page.locator(`#${id}`).innerText()).trim();
  assert.equal(await text('error-type'), 'networkError');
  assert.equal(await text('initial-pct'), '22.4%');
  assert.equal(await text('initial-rate'), '5486 / hour');
  assert.equal(await text('trigger-pct'), '22.4%');
  assert.equal(await text('threshold'), '14.7%');
  assert.equal(await text('min-window'), '1000 views');
  assert.equal(await text('open-for'), '12 minutes');
  assert.equal(await text('notifications'), 'ON');
  assert.equal(await page.locator('#timeline svg path.rate').count(), 1);
  assert.equal(await page.locator('#timeline svg path.threshold').count(), 1);
  assert.match(await page.locator('#occurrences').innerText(), /3 hours ago\s+Duration: 23 minutes/);

  await page.getByRole('button', { name: 'Silence alert notifications' }).click();
  await page.getByRole('button', { name: 'Turn notifications back on' }).waitFor();
  assert.equal(await text('notifications'), 'OFF');
  assert.equal(h.manager.get(2)!.notifications, 'silenced');

  // Live: a new update moves the current figures without a reload.
  h.manager.applyBatch([verdict('update', T0 + 20 * MIN, { errorRatio: 0.311, impactedViews: 900 })]);
  await page.locator('#impacted', { hasText: '900 views' }).waitFor();
  assert.equal(await text('current-pct'), '31.1%');
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-incident.png'), fullPage: true });
  await page.close();
});

test('the dashboard makes no external requests', () => {
  assert.ok(requests.length > 0);
  const external = requests.filter((u) => !u.startsWith(h.base) && !u.startsWith(h.wsBase));
  assert.deepEqual(external, []);
});
