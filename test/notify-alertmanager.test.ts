import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MIN, notifyConfig, startNotify, verdict } from './support/notify-harness.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string };
}

async function alertsOf(am: string, property: string): Promise<AmAlert[]> {
  const res = await fetch(`${am}/api/v2/alerts?filter=${encodeURIComponent(`property="${property}"`)}`);
  assert.equal(res.status, 200);
  return (await res.json()) as AmAlert[];
}

test('Alertmanager (real, Debian prometheus-alertmanager) receives Vigil\'s alerts, lists them, refreshes them, and ends them on resolve', async () => {
  const am = serviceEnv('VIGIL_TEST_ALERTMANAGER_URL');
  // Alertmanager keeps alerts across test runs: a property id of this run only.
  const property = `p-${process.pid}-${Date.now()}`;
  const h = startNotify(notifyConfig({ VIGIL_ALERTMANAGER_URL: am, VIGIL_ALERTMANAGER_REFRESH_MS: '200' }));
  cleanups.push(() => h.close());
  const now = Date.now();
  h.manager.applyBatch([verdict('open', now - 5 * MIN, { propertyId: property }), verdict('open', now - 5 * MIN, { propertyId: property, scope: 'property', errorRatio: 0.224 })]);
  await waitUntil('both alerts in Alertmanager', async () => (await alertsOf(am, property)).length === 2, 20_000, 100);
  const alerts = await alertsOf(am, property);
  const title = alerts.find((a) => a.labels.scope === 'title')!;
  assert.deepEqual(title.labels, {
    alertname: 'VigilErrorRate', property, title: 'Grupo Formula 104.1', error_type: 'networkError', scope: 'title', vigil_installation: h.store.installationId,
  });
  assert.equal(title.annotations.incident_url, 'https://vigil.example/incidents/1');
  assert.equal(title.annotations.error_percentage, '86.0%');
  assert.equal(title.status.state, 'active');
  assert.equal(alerts.find((a) => a.labels.scope === 'property')!.labels.title, undefined);

  // While open, the refresh pushes endsAt forward, so Alertmanager never resolves it by timeout.
  const firstEnds = Date.parse(title.endsAt);
  await waitUntil('a refresh', async () => Date.parse((await alertsOf(am, property)).find((a) => a.labels.scope === 'title')!.endsAt) > firstEnds, 20_000, 100);

  h.manager.applyBatch([verdict('resolve', now, { propertyId: property })]);
  await waitUntil('the title alert to end', async () => (await alertsOf(am, property)).every((a) => a.labels.scope !== 'title'), 20_000, 100);
  const left = await alertsOf(am, property);
  assert.deepEqual(left.map((a) => a.labels.scope), ['property']);
  const rows = h.pipeline.notificationState(1);
  assert.deepEqual(rows.map((r) => [r.kind, r.state]), [['opened', 'delivered'], ['resolved', 'delivered']]);
  h.manager.applyBatch([verdict('expire', now + 30 * MIN, { propertyId: property, scope: 'property' })]);
  await waitUntil('the property alert to end', async () => (await alertsOf(am, property)).length === 0, 20_000, 100);
});
