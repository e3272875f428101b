import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTraffic } from './support/traffic.ts';
import { connectFeed, waitFor } from './support/http-harness.ts';
import { serviceEnv } from './support/services-env.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const START = Date.UTC(2026, 10, 27, 6);
const children: ChildProcess[] = [];
after(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });

test('vigil run serves the API, metrics and the live feed; kernel figures per property; SIGTERM closes the feed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-http-daemon-'));
  const file = join(dir, 'views.ndjson');
  const lines = buildTraffic({ startMs: START, minutes: 100, viewsPerSecond: 12, properties: ['alpha', 'beta'], outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }] });
  writeFileSync(file, lines.join('\n') + '\n');
  // A real webhook receiver: the incident page reports what was delivered to it.
  const received: string[] = [];
  const receiver = createServer((req, res) => { let body = ''; req.on('data', (d) => { body += d; }); req.on('end', () => { received.push(body); res.end('ok'); }); });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  after(() => receiver.close());
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  let stderr = '';
  // stdin source: the feed client connects before any view arrives, so it sees the incident open live.
  const child = spawn(process.execPath, [VIGIL, 'run'], {
    env: { PATH: process.env.PATH, VIGIL_DATA_DIR: join(dir, 'data'), VIGIL_WORKERS: '2', VIGIL_SOURCE: 'stdin', VIGIL_HTTP_PORT: '0', VIGIL_FEED_UPDATE_MS: '0', VIGIL_WEBHOOK_URL: hookUrl,
      // A chain of one incremental part is due for a merge: the second checkpoint below starts one.
      VIGIL_CHECKPOINT_MAX_DELTAS: '1' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  children.push(child);
  child.stderr!.on('data', (d) => { stderr += d; });
  await waitFor('the http server', () => /"msg":"http listening/.test(stderr), 30_000);
  const port = Number(/"port":(\d+)/.exec(stderr.split('\n').find((l) => l.includes('http listening'))!)![1]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('readiness', async () => (await fetch(`${base}/readyz`)).status === 200, 30_000);

  const feed = await connectFeed(base.replace('http', 'ws'));
  assert.deepEqual(feed.messages[0], { type: 'snapshot', property_id: null, incidents: [] });
  // The whole input is written before SIGTERM below, so shutdown never cuts the pipe mid-write.
  const written = new Promise<void>((r) => child.stdin!.end(lines.join('\n') + '\n', () => r()));
  await waitFor('the incident on the feed', () => feed.messages.some((m) => m.type === 'opened' && m.incident.property_id === 'alpha'), 60_000);
  const opened = feed.messages.find((m) => m.type === 'opened')!.incident;
  assert.equal(opened.summary.startsWith('Overall error-rate is significantly high'), true);

  const list = await (await fetch(`${base}/api/incidents?status=open&property_id=alpha`)).json();
  assert.equal(list.incidents[0].id, opened.id);
  const rates = await (await fetch(`${base}/api/properties/alpha/error-rates`)).json();
  assert.equal(rates.source, 'kernel');
  const net = rates.error_types.find((e: { error_type: string }) => e.error_type === 'networkError');
  assert.ok(net.error_ratio > 0.1, JSON.stringify(net));
  assert.equal(net.incident_id, opened.id);
  assert.ok(rates.worst_titles.length > 0 && rates.worst_titles.every((t: { video_title: string }) => /^T\d$/.test(t.video_title)));
  await waitFor('the webhook delivery', () => received.length > 0, 30_000);
  await waitFor('the delivery on the incident', async () => {
    const detail = await (await fetch(`${base}/api/incidents/${opened.id}`)).json();
    return detail.deliveries.some((d: { receiver: string; kind: string; state: string }) => d.receiver === 'webhook' && d.state === 'delivered');
  }, 30_000);
  // Unknown properties are 404 (documented); a dump without S3 is 503 DUMP_NOT_CONFIGURED, not a 500.
  const unknown = await fetch(`${base}/api/properties/no-such-property/error-rates`);
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.code, 'NOT_FOUND');
  const dump = await fetch(`${base}/api/commands`, { method: 'POST', body: JSON.stringify({ command: 'dump-incidents' }) });
  assert.equal(dump.status, 503);
  assert.equal((await dump.json()).error.code, 'DUMP_NOT_CONFIGURED');
  for (let i = 0; i < 2; i++) {
    const checkpoint = await fetch(`${base}/api/commands`, { method: 'POST', body: JSON.stringify({ command: 'checkpoint' }) });
    assert.equal(checkpoint.status, 200);
  }
  await waitFor('the merge of the chain', async () => /^vigil_checkpoint_merges_total\{outcome="merged"\} 1$/m.test(await (await fetch(`${base}/metrics`)).text()), 30_000);

  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^vigil_events_total [1-9]\d*$/m);
  assert.match(metrics, /^vigil_incidents_open\{scope="property"\} 1$/m);
  assert.match(metrics, /^vigil_feed_clients 1$/m);
  assert.match(metrics, /^vigil_keys [1-9]\d*$/m);
  // The process and runtime metrics of a Node service.
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds_count{kind="minor"}']) {
    assert.match(metrics, new RegExp(`^${name.replace(/[{}]/g, '\\$&')} [\\d.e+-]+$`, 'm'), name);
  }
  // Histograms, each observed by what happened above.
  const count = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(metrics)?.[1] ?? -1);
  assert.ok(count('vigil_chunk_processing_seconds_count') >= 1, 'chunk processing');
  assert.equal(count('vigil_event_to_incident_seconds_count'), 1, 'the one incident opened');
  assert.equal(count('vigil_checkpoint_duration_seconds_count{trigger="command"}'), 2, 'the checkpoint commands');
  assert.equal(count('vigil_checkpoint_merge_seconds_count'), 1, 'the merge of their chain');
  // Each checkpoint's 2 workers: the first checkpoint's parts full, the second's incremental.
  assert.deepEqual([count('vigil_checkpoint_pause_seconds_count{kind="full"}'), count('vigil_checkpoint_pause_seconds_count{kind="delta"}')], [2, 2], 'the workers\' pauses');
  assert.ok(count('vigil_notification_delivery_seconds_count{receiver="webhook"}') >= 1, 'the webhook delivery');
  // Event time is 2026-11-27, the clock is later: the whole backlog delay is in the largest bucket.
  assert.match(metrics, /^vigil_event_to_incident_seconds_bucket\{le="\+Inf"\} 1$/m);
  const promtool = spawnSync(serviceEnv('VIGIL_TEST_PROMTOOL'), ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
  assert.equal(promtool.status, 0, promtool.stdout + promtool.stderr);

  const silenced = await (await fetch(`${base}/api/incidents/${opened.id}/silence`, { method: 'POST' })).json();
  assert.equal(silenced.result.notifications, 'silenced');
  await waitFor('the silenced delta', () => feed.messages.some((m) => m.type === 'silenced'));

  await written;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  await waitFor('the feed to close', () => feed.closed !== null);
  assert.equal(feed.closed!.code, 1001);
});
