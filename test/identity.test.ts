// Incident ids restart at 1 in every data directory; what a receiver sees must not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTraffic } from './support/traffic.ts';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { startReceiver } from './support/http-receiver.ts';
import { waitUntil } from './support/services-env.ts';

after(killLeftoverDaemons);

test('two data directories notifying one receiver never share an identity (idempotency keys, delivery ids, PagerDuty dedup keys)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-identity-'));
  const traffic = join(dir, 'traffic.ndjson');
  writeFileSync(traffic, buildTraffic({
    startMs: Date.UTC(2026, 10, 27, 6), minutes: 130, viewsPerSecond: 12, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }],
  }).join('\n') + '\n');
  const receiver = await startReceiver('ok');
  after(() => receiver.close());
  const run = (name: string) => {
    const audit = join(dir, `${name}.audit.ndjson`);
    const d = startDaemon({
      VIGIL_DATA_DIR: join(dir, name), VIGIL_WORKERS: '1', VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: traffic, VIGIL_TRANSITIONS_FILE: audit,
      VIGIL_NOTIFY_RECEIVERS: JSON.stringify([
        { name: 'hook', type: 'webhook', url: `${receiver.url}/${name}/hook` },
        { name: 'pd', type: 'pagerduty', url: `${receiver.url}/${name}/pd`, routing_key: 'R0UTINGKEY' },
      ]),
    });
    return { d, audit };
  };
  const a = run('a');
  const b = run('b');
  const closed = (audit: string) => existsSync(audit) && /"type":"resolved"/.test(readFileSync(audit, 'utf8'));
  await waitUntil('both installations to open and resolve the incident', () => closed(a.audit) && closed(b.audit), 120_000);
  // opened + resolved to two receivers, from each installation.
  await waitUntil('every notification delivered', () => receiver.requests.length >= 8, 60_000);
  for (const x of [a, b]) {
    x.d.child.kill('SIGTERM');
    assert.equal(await x.d.exit, 0, x.d.stderr());
  }
  const of = (name: string, kind: string) => receiver.requests.filter((r) => r.path === `/${name}/${kind}`);
  // The same incident number in both data directories...
  assert.deepEqual(of('a', 'hook').map((r) => r.json.incident.id), of('b', 'hook').map((r) => r.json.incident.id));
  assert.equal(of('a', 'hook')[0].json.incident.id, 1);
  // ...but no identity in common.
  const ids = (name: string) => new Set([
    ...of(name, 'hook').flatMap((r) => [String(r.headers['idempotency-key']), String(r.headers['x-vigil-delivery']), r.json.delivery_id]),
    ...of(name, 'pd').map((r) => r.json.dedup_key),
  ]);
  const ia = ids('a');
  const ib = ids('b');
  assert.ok(ia.size >= 3 && ib.size >= 3, `${[...ia]} / ${[...ib]}`);
  assert.deepEqual([...ia].filter((k) => ib.has(k)), [], 'no identity shared');
  for (const k of [...ia, ...ib]) assert.match(k, /^vigil:[0-9a-f-]{36}:1(:|$)/);
});
