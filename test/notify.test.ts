import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver, type TestReceiver } from './support/http-receiver.ts';
import { MIN, T0, notifyConfig, startNotify, verdict, type NotifyHarness } from './support/notify-harness.ts';
import { waitUntil } from './support/services-env.ts';
import { webhookSignature } from '../src/notify/webhook-notifier.ts';
import { backoffMs, parseRetryAfter } from '../src/notify/retry-policy.ts';
import { CommandHandler } from '../src/control/command-handler.ts';
import { registerNotifyCommands } from '../src/notify/notify-commands.ts';
import { silentLogger } from '../src/log/logger.ts';
import { loadConfig } from '../src/config/config.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function receiver(mode: Parameters<typeof startReceiver>[0] = 'ok'): Promise<TestReceiver> {
  const r = await startReceiver(mode);
  cleanups.push(() => r.close());
  return r;
}

function harness(env: Record<string, string>, dir?: string): NotifyHarness {
  const h = startNotify(notifyConfig(env), dir);
  cleanups.push(() => h.close());
  return h;
}

const receivers = (list: unknown[]) => ({ VIGIL_NOTIFY_RECEIVERS: JSON.stringify(list) });

test('Slack: the reference message on open ("Open: Incident #1", Video Title, Error, Error Percentage, Rate, link), and on resolve', async () => {
  const slack = await receiver();
  const h = harness({ VIGIL_SLACK_WEBHOOK_URL: `${slack.url}/hook` });
  h.manager.applyBatch([verdict('open', T0)]);
  await waitUntil('the open message', () => slack.requests.length === 1, 10_000, 10);
  const open = slack.requests[0].json;
  assert.equal(open.blocks[0].text.text, '*<https://vigil.example/incidents/1|Open: Incident #1>*  ·  property 177');
  assert.deepEqual(open.blocks[1].fields.map((f: { text: string }) => f.text), [
    '*Video Title*\nGrupo Formula 104.1', '*Error*\nnetworkError', '*Error Percentage*\n86.0%', '*Rate*\n11908 / hour',
  ]);
  assert.match(open.text, /^Open: Incident #1: Video Title Grupo Formula 104\.1 is failing at a significant rate \(86\.0%\)/);
  h.manager.applyBatch([verdict('resolve', T0 + 6 * MIN, { errorRatio: 0.01 })]);
  await waitUntil('the resolve message', () => slack.requests.length === 2, 10_000, 10);
  const resolved = slack.requests[1].json;
  assert.equal(resolved.blocks[0].text.text, '*<https://vigil.example/incidents/1|Resolved: Incident #1>*  ·  property 177');
  assert.ok(resolved.blocks[1].fields.some((f: { text: string }) => f.text === '*Duration*\n6 minutes'));
  // A property incident has no Video Title field.
  h.manager.applyBatch([verdict('open', T0 + 10 * MIN, { scope: 'property', errorRatio: 0.224, viewsPerHour: 5486 })]);
  await waitUntil('the property message', () => slack.requests.length === 3, 10_000, 10);
  assert.deepEqual(slack.requests[2].json.blocks[1].fields.map((f: { text: string }) => f.text), ['*Error*\nnetworkError', '*Error Percentage*\n22.4%', '*Rate*\n5486 / hour']);
});

test('webhook: JSON with incident and transition, HMAC-SHA256 signature, the same idempotency key on every attempt', async () => {
  const hook = await receiver('fail500');
  const h = harness({ VIGIL_WEBHOOK_URL: hook.url, VIGIL_WEBHOOK_SECRET: 's3cret' });
  h.manager.applyBatch([verdict('open', T0)]);
  await waitUntil('two failed attempts', () => hook.requests.length >= 2, 10_000, 10);
  hook.mode = 'ok';
  await waitUntil('delivery', () => h.pipeline.notificationState(1)[0]?.state === 'delivered', 10_000, 10);
  const keys = new Set(hook.requests.map((r) => r.headers['idempotency-key']));
  assert.deepEqual([...keys], [`vigil:${h.store.installationId}:1:opened:1`]);
  for (const r of hook.requests) {
    assert.equal(r.headers['x-vigil-signature'], webhookSignature('s3cret', String(r.headers['x-vigil-timestamp']), r.body));
  }
  const body = hook.requests.at(-1)!.json;
  assert.equal(body.kind, 'opened');
  assert.equal(body.incident.id, 1);
  assert.equal(body.incident.video_title, 'Grupo Formula 104.1');
  assert.equal(body.incident.url, 'https://vigil.example/incidents/1');
  const [row] = h.pipeline.notificationState(1);
  assert.equal(row.state, 'delivered');
  assert.equal(row.attempts, hook.requests.length);
  // The body is identical on every attempt (only the timestamp header and signature change).
  assert.equal(new Set(hook.requests.map((r) => r.body)).size, 1);
});

test('PagerDuty: trigger on open and resolve on close with dedup_key = installation and incident id; severity by scope', async () => {
  const pd = await receiver();
  const h = harness({ VIGIL_PAGERDUTY_ROUTING_KEY: 'R0UTINGKEY', VIGIL_PAGERDUTY_URL: `${pd.url}/v2/enqueue` });
  h.manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'property' })]);
  h.manager.applyBatch([verdict('expire', T0 + 2 * 60 * MIN)]);
  await waitUntil('three events', () => pd.requests.length === 3, 10_000, 10);
  const [a, b, c] = pd.requests.map((r) => r.json);
  assert.equal(a.event_action, 'trigger');
  assert.equal(a.routing_key, 'R0UTINGKEY');
  assert.equal(a.payload.severity, 'error', 'title scope');
  assert.equal(b.payload.severity, 'critical', 'property scope');
  const inst = h.store.installationId;
  assert.equal(a.dedup_key, `vigil:${inst}:1`);
  assert.equal(b.dedup_key, `vigil:${inst}:2`);
  // The title incident expired: resolve, same dedup_key.
  assert.deepEqual(c, { routing_key: 'R0UTINGKEY', event_action: 'resolve', dedup_key: `vigil:${inst}:1` });
  assert.equal(a.links[0].href, 'https://vigil.example/incidents/1');
});

test('429 honours Retry-After; other 4xx fail for good with the body logged; a dead receiver blocks nobody', async () => {
  const throttled = await receiver('throttle429');
  const rejecting = await receiver('reject400');
  const dead = await receiver('never');
  const healthy = await receiver();
  const h = harness(receivers([
    { name: 'throttled', type: 'webhook', url: throttled.url },
    { name: 'rejecting', type: 'webhook', url: rejecting.url },
    { name: 'dead', type: 'webhook', url: dead.url },
    { name: 'healthy', type: 'slack', url: healthy.url },
  ]));
  const t = h.manager.applyBatch([verdict('open', T0)]);
  await waitUntil('the healthy receiver', () => healthy.requests.length === 1, 10_000, 10);
  await waitUntil('the 400 to be recorded', () => h.pipeline.notificationState(1).some((r) => r.receiver === 'rejecting' && r.state === 'failed'), 10_000, 10);
  await waitUntil('the 429 to be recorded', () => h.pipeline.notificationState(1).some((r) => r.receiver === 'throttled' && r.lastStatus === 429), 10_000, 10);
  assert.equal(t.length, 1);
  const rows = new Map(h.pipeline.notificationState(1).map((r) => [r.receiver, r]));
  assert.equal(rows.get('rejecting')!.lastError, 'HTTP 400: invalid_payload: no such channel');
  assert.equal(rows.get('rejecting')!.attempts, 1);
  assert.equal(h.pipeline.stats.of('rejecting').failed, 1);
  const th = rows.get('throttled')!;
  assert.equal(th.state, 'pending');
  assert.ok(th.nextAttemptAtMs - th.lastAttemptAtMs! >= 1000, 'Retry-After: 1 holds the retry back a second');
  assert.equal(rows.get('dead')!.state, 'pending');
  assert.equal(dead.requests.length, 1);
  throttled.mode = 'ok';
  await waitUntil('the throttled receiver after Retry-After', () => throttled.requests.some((r) => r.answered === 200), 10_000, 20);
  assert.equal(rejecting.requests.length, 1, 'a permanent failure is not retried');
  const text = (await h.metrics.render()).body;
  assert.match(text, /vigil_notifications_total\{receiver="rejecting",outcome="failed"\} 1/);
  assert.match(text, /vigil_notifications_total\{receiver="healthy",outcome="delivered"\} 1/);
  assert.match(text, /vigil_notifications_pending\{receiver="dead"\} 1/);
});

test('routes: receivers get only the properties, scopes and error types they match', async () => {
  const titles = await receiver();
  const pbs = await receiver();
  const h = harness(receivers([
    { name: 'titles', type: 'webhook', url: titles.url, match: { scope: ['title'] } },
    { name: 'pbs', type: 'webhook', url: pbs.url, match: { property_id: ['pbs'], error_type: ['networkError'] } },
  ]));
  h.manager.applyBatch([
    verdict('open', T0), verdict('open', T0, { scope: 'property', propertyId: 'pbs' }), verdict('open', T0, { scope: 'property', propertyId: 'pbs', errorType: 'decodeError' }),
  ]);
  await waitUntil('deliveries', () => titles.requests.length === 1 && pbs.requests.length === 1, 10_000, 10);
  assert.equal(titles.requests[0].json.incident.scope, 'title');
  assert.equal(pbs.requests[0].json.incident.property_id, 'pbs');
  assert.equal(pbs.requests[0].json.incident.error_type, 'networkError');
  assert.equal(h.pipeline.notificationState(3).length, 0);
});

test('silences: per incident and by matcher hold notifications; unsilencing an open incident sends its state once', async () => {
  const hook = await receiver();
  const h = harness({ VIGIL_WEBHOOK_URL: hook.url });
  const commands = new CommandHandler(silentLogger());
  registerNotifyCommands(commands, h.pipeline);
  const created = await commands.handle({ id: 'c1', command: 'silence-matching', args: { property_id: '177', scope: 'title', duration_ms: 3_600_000, comment: 'known bad encode' } });
  assert.ok(created.ok, JSON.stringify(created));
  h.manager.applyBatch([verdict('open', T0)]);
  assert.equal(h.manager.get(1)!.notifications, 'silenced', 'still tracked, shown as silenced');
  assert.equal(h.pipeline.notificationState(1)[0].state, 'held');
  const ended = await commands.handle({ id: 'c2', command: 'unsilence-matching', args: { silence_id: 1 } });
  assert.ok(ended.ok && (ended.result as { unsilenced_now: number[] }).unsilenced_now[0] === 1, JSON.stringify(ended));
  await waitUntil('the current state', () => hook.requests.length === 1, 10_000, 10);
  assert.equal(hook.requests[0].json.kind, 'unsilenced');
  const inst = h.store.installationId;
  assert.equal(hook.requests[0].headers['idempotency-key'], `vigil:${inst}:1:unsilenced:1`);

  // Per incident (the dashboard's Silence button): the resolve still closes what the receiver was told.
  h.manager.silence(1);
  h.manager.applyBatch([verdict('open', T0 + MIN, { scope: 'property' })]);
  await waitUntil('the property open', () => hook.requests.length === 2, 10_000, 10);
  h.manager.applyBatch([verdict('resolve', T0 + 30 * MIN)]);
  await waitUntil('the resolve of the silenced incident', () => hook.requests.length === 3, 10_000, 10);
  assert.deepEqual(hook.requests.map((r) => r.headers['idempotency-key']), [`vigil:${inst}:1:unsilenced:1`, `vigil:${inst}:2:opened:1`, `vigil:${inst}:1:resolved:1`]);

  // A matcher silence that expires turns its incidents back on by itself.
  const ex = await commands.handle({ id: 'c3', command: 'silence-matching', args: { error_type: 'networkError', duration_ms: 300 } });
  assert.ok(ex.ok);
  assert.deepEqual((ex.result as { silenced_now: number[] }).silenced_now, [2]);
  assert.equal(h.manager.get(2)!.notifications, 'silenced');
  await waitUntil('the expiry to unsilence #2', () => hook.requests.length === 4, 10_000, 10);
  assert.equal(hook.requests[3].headers['idempotency-key'], `vigil:${inst}:2:unsilenced:1`);
  assert.equal(h.manager.get(2)!.notifications, 'on');
  const bad = await commands.handle({ id: 'c4', command: 'silence-matching', args: { duration_ms: 5 } });
  assert.ok(!bad.ok && bad.error.code === 'INVALID_ARGS' && /at least one of/.test(bad.error.message));
});

test('restart: what was delivered is not sent again, what was pending is sent; repeats for incidents still open', async () => {
  const hook = await receiver('fail500');
  const env = receivers([{ name: 'hook', type: 'webhook', url: hook.url, repeat_interval_ms: 1000 }]);
  const first = startNotify(notifyConfig(env));
  const inst = first.store.installationId;
  first.manager.applyBatch([verdict('open', T0)]);
  await waitUntil('an attempt', () => hook.requests.length >= 1, 10_000, 10);
  await first.close();
  const attempts = hook.requests.length;
  hook.mode = 'ok';
  const second = harness(env, first.dir);
  await waitUntil('the pending open after restart', () => second.pipeline.notificationState(1)[0].state === 'delivered', 10_000, 10);
  assert.equal(hook.requests.length, attempts + 1);
  await second.close();
  const third = harness(env, first.dir);
  // A repeat comes after the interval; the opened notification is never sent again.
  await waitUntil('a repeat', () => hook.requests.some((r) => r.json?.kind === 'repeat'), 10_000, 20);
  await third.close();
  const keys = hook.requests.filter((r) => r.answered === 200).map((r) => r.headers['idempotency-key']);
  assert.equal(keys.filter((k) => k === `vigil:${inst}:1:opened:1`).length, 1);
  assert.equal(new Set(keys).size, keys.length, 'no notification delivered twice');
});

test('retry policy: exponential backoff with jitter within bounds; Retry-After in seconds or as a date', () => {
  const p = { baseMs: 1000, maxMs: 8000 };
  assert.equal(backoffMs(p, 1, () => 0), 500);
  assert.equal(backoffMs(p, 1, () => 1), 1000);
  assert.equal(backoffMs(p, 3, () => 1), 4000);
  assert.equal(backoffMs(p, 10, () => 1), 8000);
  assert.equal(parseRetryAfter('7', 0), 7000);
  assert.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60_000);
  assert.equal(parseRetryAfter('soon', 0), null);
  assert.equal(parseRetryAfter('999999', 0), 3_600_000);
});

test('config: receivers from env and file are validated, every problem reported at once', () => {
  assert.throws(() => loadConfig({
    VIGIL_NOTIFY_RECEIVERS: JSON.stringify([{ name: 'a b', type: 'fax', url: 'ftp://x' }, { name: 'pd', type: 'pagerduty', url: 'http://x', match: { scope: ['tv'] } }]),
    VIGIL_WEBHOOK_SECRET: 'x', VIGIL_NOTIFY_FILE: '/nonexistent/receivers.json',
  }), (err: Error & { problems: string[] }) => {
    const text = err.problems.join('\n');
    for (const expected of ['"name" must be', '"type" must be one of slack, webhook, pagerduty, alertmanager', '"url" must be an http(s) URL',
      '"routing_key" is required for pagerduty', '"match.scope" entries must be property or title', 'VIGIL_WEBHOOK_SECRET: set without VIGIL_WEBHOOK_URL', 'VIGIL_NOTIFY_FILE (/nonexistent/receivers.json): ENOENT']) {
      assert.ok(text.includes(expected), `missing ${expected} in\n${text}`);
    }
    return true;
  });
  const c = loadConfig({ VIGIL_SLACK_WEBHOOK_URL: 'https://hooks.slack.example/T/B/x', VIGIL_PUBLIC_URL: 'https://vigil.example/', VIGIL_NOTIFY_REPEAT_MS: '3600000' });
  assert.equal(c.notify.publicUrl, 'https://vigil.example');
  assert.deepEqual(c.notify.receivers.map((r) => [r.name, r.kind, r.repeatIntervalMs]), [['slack', 'slack', 3_600_000]]);
});

test('outbox atomicity: when writing the notifications fails, the transition is rolled back with them', async () => {
  const { openIncidentStore } = await import('../src/incidents/incident-store.ts');
  const { IncidentManager } = await import('../src/incidents/incident-manager.ts');
  const store = openIncidentStore(':memory:');
  let fail = true;
  const manager = new IncidentManager({ store, logger: silentLogger(), beforeCommit: () => { if (fail) throw new Error('disk full'); } });
  assert.throws(() => manager.applyBatch([verdict('open', T0)]), /disk full/);
  assert.equal(manager.openIncidents().length, 0);
  fail = false;
  assert.equal(manager.applyBatch([verdict('open', T0)])[0].incident.id, 1);
  fail = true;
  assert.throws(() => manager.silence(1), /disk full/);
  assert.equal(manager.get(1)!.notifications, 'on');
  store.close();
});

test('Slack: titles are escaped in the fallback text like in the blocks, and every text is cut to Slack\'s limits after escaping', async () => {
  const slack = await receiver();
  const h = harness({ VIGIL_SLACK_WEBHOOK_URL: `${slack.url}/hook` });
  h.manager.applyBatch([verdict('open', T0, { videoTitle: 'Tom & Jerry <3 > all' })]);
  await waitUntil('the first message', () => slack.requests.length === 1, 10_000, 10);
  const first = slack.requests[0].json;
  assert.equal(first.blocks[1].fields[0].text, '*Video Title*\nTom &amp; Jerry &lt;3 &gt; all');
  assert.match(first.text, /^Open: Incident #1: Video Title Tom &amp; Jerry &lt;3 &gt; all is failing/);
  assert.doesNotMatch(first.text, /[<>]|&(?!amp;|lt;|gt;)/, 'no raw control character in the fallback text');

  // 1024 bytes of '&' escape to 5120 characters: over a field's 2000 and the fallback's 3000.
  const title = '&'.repeat(1024);
  h.manager.applyBatch([verdict('open', T0 + MIN, { propertyId: '<'.repeat(1024), videoTitle: title })]);
  await waitUntil('the second message', () => slack.requests.length === 2, 10_000, 10);
  const big = slack.requests[1].json;
  const texts: string[] = [big.text, big.blocks[0].text.text, ...big.blocks[1].fields.map((f: { text: string }) => f.text),
    ...big.blocks.slice(2).flatMap((b: { elements: { text: string }[] }) => b.elements.map((e) => e.text))];
  const titleField: string = big.blocks[1].fields[0].text;
  assert.ok(titleField.length <= 2000 && titleField.length > 1900, `field ${titleField.length} characters`);
  assert.match(titleField, /^\*Video Title\*\n(&amp;)+…$/, 'cut between escapes, with an ellipsis');
  assert.ok(big.text.length <= 3000 && big.text.length > 2900, `fallback ${big.text.length} characters`);
  assert.match(big.text, /(&amp;)+…$/);
  assert.ok(big.blocks[0].text.text.length <= 3000, `section ${big.blocks[0].text.text.length} characters`);
  assert.match(big.blocks[0].text.text, /property (&lt;)+…$/);
  for (const t of texts) {
    assert.doesNotMatch(t.replace(/<https:\/\/vigil\.example\/incidents\/2(\|[^>]*)?>/g, ''), /[<>]|&(?!amp;|lt;|gt;)/, `unescaped text: ${t.slice(0, 80)}`);
  }
});

test('a batch whose transaction fails after planning (a full disk at commit) is applied again with nothing forgotten: the unsilence and the silence\'s incidents', async () => {
  const hook = await receiver();
  const { openIncidentStore } = await import('../src/incidents/incident-store.ts');
  const { IncidentManager } = await import('../src/incidents/incident-manager.ts');
  const { NotificationPipeline } = await import('../src/notify/notification-pipeline.ts');
  const store = openIncidentStore(':memory:');
  const pipeline = new NotificationPipeline({ config: notifyConfig({ VIGIL_WEBHOOK_URL: hook.url }), store, logger: silentLogger(), tickMs: 50 });
  let failCommit = false;
  // The planner and silences ran; then the commit fails (what SQLITE_FULL does to a WAL commit).
  const beforeCommit = (t: Parameters<typeof pipeline.beforeCommit>[0]) => {
    pipeline.beforeCommit(t);
    if (failCommit) throw new Error('database or disk is full');
  };
  const manager = new IncidentManager({ store, logger: silentLogger(), isSilenced: pipeline.isSilenced, beforeCommit, afterRollback: pipeline.afterRollback });
  pipeline.start(manager);
  after(() => pipeline.stop(100).then(() => store.close()));
  const s = pipeline.silenceMatching({ propertyId: '177', videoTitle: null, errorType: null, scope: null }, Date.now() + 3_600_000, 'test');
  failCommit = true;
  assert.throws(() => manager.applyBatch([verdict('open', T0)]), /disk is full/);
  failCommit = false;
  manager.applyBatch([verdict('open', T0)]);
  assert.equal(manager.get(1)!.notifications, 'silenced');
  const row = store.database.prepare('SELECT silenced_incidents FROM silences WHERE id = ?').pluck().get(s.silence.id);
  assert.equal(row, '[1]', 'the silence remembers, in the store, the incident it silenced');
  failCommit = true;
  assert.throws(() => manager.unsilence(1), /disk is full/);
  failCommit = false;
  manager.unsilence(1);
  await waitUntil('the current state after the unsilence', () => hook.requests.length === 1, 10_000, 10);
  assert.equal(hook.requests[0].json.kind, 'unsilenced');
});
