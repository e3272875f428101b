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
const RECEIVERS = [
  { name: 'team-slack', type: 'slack', url: 'https://hooks.slack.example/services/T0/B0/SLACKSECRETPATH', match: { property_id: ['177'] }, repeat_interval_ms: 3_600_000 },
  { name: 'oncall', type: 'pagerduty', url: 'https://events.pagerduty.example/v2/enqueue', routing_key: 'ROUTINGKEYSECRET', match: { scope: ['title'] } },
];

before(async () => {
  const executablePath = serviceEnv('VIGIL_TEST_CHROMIUM');
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startHarness({ VIGIL_FEED_UPDATE_MS: '0', VIGIL_NOTIFY_RECEIVERS: JSON.stringify({ receivers: RECEIVERS }) });
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

async function newPage(width = 1280): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
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
  assert.equal(await text('notified'), 'sent for team-slack (slack)');
  assert.equal(await page.locator('#timeline svg path.rate').count(), 1);
  assert.equal(await page.locator('#timeline svg path.threshold').count(), 1);
  assert.match(await page.locator('#occurrences').innerText(), /^Incident #1\s+opened 3 hours ago\s+resolved after 23 minutes$/);
  assert.equal(await page.locator('#occurrences a').getAttribute('href'), '/properties/177/incidents/1');

  await page.getByRole('button', { name: 'Silence alert notifications' }).click();
  await page.getByRole('button', { name: 'Turn notifications back on' }).waitFor();
  assert.equal(await text('notifications'), 'OFF');
  assert.equal(await text('notified'), 'held for team-slack (slack)');
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

// The page is no wider than the screen: nothing scrolls sideways.
const pageWidth = (page: Page) => page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth));

test('list rows name their property; filters (property, scope, error type, status, time range, search) work live and through the API, kept in the address', async () => {
  h.manager.applyBatch([verdict('open', T0 + 15 * MIN, { propertyId: 'pbs', errorType: 'manifestError', errorRatio: 0.31 })]);
  const page = await newPage();
  await page.goto(`${h.base}/`);
  await page.locator('tr[data-id="4"]').waitFor();
  const ids = () => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id));
  assert.equal(await page.locator('tr[data-id="4"] td.property').innerText(), 'pbs');
  assert.equal(await page.locator('tr[data-id="2"] td.property').innerText(), '177');
  assert.equal(await page.locator('#open-count').textContent(), '(2)');

  await page.locator('input[name="property"]').fill('pbs');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.deepEqual(await ids(), ['4']);
  assert.equal(await page.locator('#open-count').textContent(), '(1 of 2)');
  assert.match(page.url(), /\?property=pbs$/);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 2);
  await page.locator('input[name="q"]').fill('MANIFEST');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.deepEqual(await ids(), ['4']);
  await page.locator('input[name="q"]').fill('');
  await page.locator('select[name="scope"]').selectOption('title');
  await page.locator('#empty', { hasText: 'No incidents match these filters.' }).waitFor();
  await page.locator('select[name="scope"]').selectOption('');

  // All incidents: the same filters go to the API (the resolved ones are not in the feed).
  await page.getByRole('tab', { name: 'All incidents' }).click();
  await page.locator('tr[data-id="1"]').waitFor();
  await page.locator('select[name="status"]').selectOption('resolved');
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr')].every((r) => (r as HTMLElement).dataset.id !== '4'));
  assert.deepEqual(await ids(), ['3', '1']);
  await page.locator('input[name="q"]').fill('enl');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.deepEqual(await ids(), ['3']);
  await page.locator('input[name="q"]').fill('');
  await page.locator('select[name="status"]').selectOption('');
  await page.locator('input[name="error_type"]').fill('networkError');
  await page.locator('select[name="range"]').selectOption('custom');
  // Opened in the two hours before T0: only incident 1 (T0 - 180 min is outside, 2 and 3 are later).
  const local = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * MIN).toISOString().slice(0, 16);
  await page.locator('input[name="from"]').fill(local(T0 - 200 * MIN));
  await page.locator('input[name="to"]').fill(local(T0 - 60 * MIN));
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr')].map((r) => (r as HTMLElement).dataset.id).join() === '1');
  const shared = page.url();
  assert.match(shared, /view=all&error_type=networkError&range=custom&from=.*&to=/);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-filters-1280.png'), fullPage: true });

  // The address restores the view and its filters.
  const again = await newPage();
  await again.goto(shared);
  await again.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1 && (document.querySelector('tbody tr') as HTMLElement).dataset.id === '1');
  assert.equal(await again.locator('input[name="error_type"]').inputValue(), 'networkError');
  await again.close();
  await page.close();
});

test('375 px wide: list rows become cards, the incident page stacks its cards, nothing is wider than the screen, the chart keeps its text size', async () => {
  const page = await newPage(375);
  await page.goto(`${h.base}/`);
  await page.locator('tr[data-id="2"]').waitFor();
  assert.ok(await pageWidth(page) <= 375, `list page ${await pageWidth(page)} px wide`);
  assert.equal(await page.locator('thead').isVisible(), false, 'no table header: each row is a card');
  const row = await page.locator('tr[data-id="2"]').boundingBox();
  const detailsBox = await page.locator('tr[data-id="2"] td.details').boundingBox();
  assert.ok(detailsBox!.width > row!.width * 0.8, 'the details take the card\'s width');
  assert.equal(await page.locator('input[name="property"]').isVisible(), false, 'filters folded');
  await page.getByRole('button', { name: 'Filters' }).click();
  assert.equal(await page.locator('input[name="property"]').isVisible(), true);
  assert.ok(await pageWidth(page) <= 375);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-list-375.png'), fullPage: true });

  await page.goto(`${h.base}/properties/177/incidents/2`);
  await page.locator('#incident').waitFor();
  assert.ok(await pageWidth(page) <= 375, `incident page ${await pageWidth(page)} px wide`);
  const cards = await page.locator('.cards .card').evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => ({ top: r.top, bottom: r.bottom, width: r.width })));
  assert.ok(cards[1].top >= cards[0].bottom, 'the two cards are stacked');
  const chart = await page.locator('#timeline svg').evaluate((svg) => ({ width: Number(svg.getAttribute('width')), box: svg.parentElement!.clientWidth, labels: svg.querySelectorAll('.x-axis text').length, font: getComputedStyle(svg.querySelector('text')!).fontSize, scale: svg.getBoundingClientRect().width / Number(svg.getAttribute('width')) }));
  assert.equal(chart.width, chart.box, 'drawn at the width it is shown');
  assert.equal(chart.scale, 1, 'not scaled: text keeps its size');
  assert.equal(chart.font, '11px');
  assert.ok(chart.labels >= 3, `${chart.labels} time labels`);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-incident-375.png'), fullPage: true });
  await page.close();
});

test('the chart: a legend for both lines, enough time labels, the values of the nearest sample on hover', async () => {
  const page = await newPage();
  await page.goto(`${h.base}/incidents/2`);
  await page.locator('#timeline svg').waitFor();
  assert.equal((await page.locator('#legend').innerText()).replace(/\s+/g, ' ').trim(), 'Error rate Alert threshold (14.7%)');
  const labels = await page.locator('#timeline .x-axis text').evaluateAll((els) => els.map((e) => e.textContent ?? ''));
  assert.ok(labels.length >= 5, labels.join(', '));
  for (const l of labels) assert.match(l, /^\d{1,2}:\d\d [AP]M$/);
  assert.equal(await page.locator('#timeline .readout').isVisible(), false);
  const svg = page.locator('#timeline svg');
  await svg.scrollIntoViewIfNeeded();
  const box = (await svg.boundingBox())!;
  // Samples are a minute apart from T0 (7:25); the one at 7:30 is the 6th (k = 5). Its tick's label is
  // formatted by the browser, as the page does.
  const x = await svg.evaluate((e, t) => {
    const label = new Date(t).toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
    return Number([...e.querySelectorAll('.x-axis text')].find((n) => n.textContent === label)!.getAttribute('x'));
  }, T0 + 5 * MIN);
  await page.mouse.move(box.x + x + 3, box.y + box.height / 2);
  const readout = page.locator('#timeline .readout');
  await readout.waitFor();
  const expected = (0.224 + 0.04 * Math.sin(5 / 2)) * 100;
  assert.match(await readout.innerText(), new RegExp(`Error rate ${(Math.round(expected * 10) / 10).toFixed(1)}%\\s+Threshold 14\\.7%\\s+1,200 views in the window`));
  await page.locator('#timeline').screenshot({ path: join(ARTIFACTS, 'dashboard-chart-hover-1280.png') });
  await page.mouse.move(box.x - 20, box.y - 20);
  await readout.waitFor({ state: 'hidden' });
  await page.close();
});

test('an incident under another property\'s address is not shown; /favicon.ico is an icon', async () => {
  const page = await newPage();
  await page.goto(`${h.base}/properties/wrong-prop/incidents/2`);
  await page.locator('#error').waitFor();
  assert.match(await page.locator('#error').innerText(), /^Property wrong-prop has no incident #2\. Incident #2 is one of property 177's\.$/);
  assert.equal(await page.locator('#error a').getAttribute('href'), '/properties/177/incidents/2');
  assert.equal(await page.locator('#incident').isVisible(), false);
  await page.close();
  const icon = await fetch(`${h.base}/favicon.ico`);
  assert.equal(icon.status, 200);
  assert.equal(icon.headers.get('content-type'), 'image/x-icon');
  const bytes = Buffer.from(await icon.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 1, 0], 'an ICO header');
  assert.ok(bytes.readUInt16LE(4) >= 1, 'with at least one image');
});

test('notifications: "none" rather than ON when no receiver would be told, and no Silence button; the read-only notification settings page', async () => {
  const page = await newPage();
  // Incident 4 (pbs, property scope): neither receiver's route takes it.
  await page.goto(`${h.base}/properties/pbs/incidents/4`);
  await page.locator('#incident').waitFor();
  assert.equal(await page.locator('#notifications').innerText(), 'none');
  assert.equal(await page.locator('#notified').innerText(), "no receiver's route takes this incident (notification settings)");
  assert.equal(await page.locator('#silence').isVisible(), false);

  h.silences.add({ propertyId: 'pbs', videoTitle: null, errorType: 'manifestError', scope: null }, Date.now() + 90 * MIN, 'CDN migration', Date.now());
  await page.locator('#notified a').click();
  await page.waitForURL(/\/settings\/notifications$/);
  await page.locator('#receivers tbody tr').first().waitFor();
  const cells = (sel: string) => page.locator(sel).evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText)));
  assert.deepEqual(await cells('#receivers tbody tr'), [
    ['team-slack', 'slack', 'https://hooks.slack.example', 'property 177', 'every hour', 'timeout 10 s'],
    ['oncall', 'pagerduty', 'https://events.pagerduty.example', 'scope title', 'no', 'severity critical (property), error (title), timeout 10 s'],
  ]);
  const silence = (await cells('#silences tbody tr'))[0];
  assert.deepEqual([silence[0], silence[1], silence[2]], ['#1', 'property pbs · error type manifestError', 'CDN migration']);
  assert.match(silence[4], /\(in (an hour|2 hours)\)$/);
  const body = await page.locator('body').innerText();
  for (const secret of ['SLACKSECRETPATH', 'ROUTINGKEYSECRET']) assert.ok(!body.includes(secret));
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-settings-1280.png'), fullPage: true });
  await page.setViewportSize({ width: 375, height: 900 });
  assert.ok(await pageWidth(page) <= 375);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-settings-375.png'), fullPage: true });
  await page.close();

  // A server with no receiver at all.
  const bare = await startHarness({});
  try {
    bare.manager.applyBatch([verdict('open', T0)]);
    const p = await newPage();
    await p.goto(`${bare.base}/incidents/1`);
    await p.locator('#incident').waitFor();
    assert.equal(await p.locator('#notifications').innerText(), 'none');
    assert.equal(await p.locator('#notified').innerText(), 'no receiver is configured (notification settings)');
    await p.goto(`${bare.base}/settings/notifications`);
    await p.locator('#no-receivers').waitFor();
    assert.match(await p.locator('#no-receivers').innerText(), /^No receiver is configured/);
    await p.close();
  } finally {
    bare.close();
  }
});
