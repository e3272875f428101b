import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buildTraffic } from './support/traffic.ts';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { startReceiver } from './support/http-receiver.ts';
import { waitUntil } from './support/services-env.ts';

after(killLeftoverDaemons);

interface LogRow { incident_id: number; kind: string; seq: number; state: string; attempts: number }

function logRows(dbPath: string): LogRow[] {
  if (!existsSync(dbPath)) return [];
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'notification_log'").get();
    return has ? db.prepare('SELECT incident_id, kind, seq, state, attempts FROM notification_log ORDER BY id').all() as LogRow[] : [];
  } finally {
    db.close();
  }
}

const records = (path: string): Array<Record<string, unknown>> =>
  existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];

test('kill -9 between sending and recording, restart: every transition delivered, the in-flight one at most twice with one idempotency key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-notify-crash-'));
  const traffic = join(dir, 'traffic.ndjson');
  const empty = join(dir, 'empty.ndjson');
  writeFileSync(traffic, buildTraffic({
    startMs: Date.UTC(2026, 10, 27, 6), minutes: 160, viewsPerSecond: 12, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }],
  }).join('\n') + '\n');
  writeFileSync(empty, '');
  const receiver = await startReceiver('never');
  after(() => receiver.close());
  const data = join(dir, 'data');
  const db = join(data, 'incidents.db');
  const audit = join(dir, 'audit.ndjson');
  const base = {
    VIGIL_DATA_DIR: data, VIGIL_WORKERS: '1', VIGIL_SOURCE: 'file', VIGIL_CHECKPOINTS: 'false', VIGIL_TRANSITIONS_FILE: audit,
    VIGIL_WEBHOOK_URL: `${receiver.url}/vigil`, VIGIL_NOTIFY_TIMEOUT_MS: '600000', VIGIL_NOTIFY_RETRY_BASE_MS: '50',
  };

  // 1. The receiver takes the first notification and never answers; the rest wait behind it in the log.
  const first = startDaemon({ ...base, VIGIL_SOURCE_FILE: traffic });
  await waitUntil('the incident to open and resolve', () => ['opened', 'resolved'].every((t) => records(audit).some((r) => r.type === t && r.property_id === 'alpha')), 120_000);
  await waitUntil('the first notification to be in flight', () => receiver.requests.length === 1 && logRows(db).some((r) => r.attempts === 1), 60_000);
  const transitions = records(audit).filter((r) => r.type !== 'updated');
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const atCrash = logRows(db);
  assert.equal(atCrash.length, transitions.length, 'one log row per transition, written with it');
  assert.ok(atCrash.every((r) => r.state === 'pending'), JSON.stringify(atCrash));
  assert.equal(atCrash[0].attempts, 1, 'the in-flight attempt was counted before sending');

  // 2. Restart (no new input): everything pending is delivered.
  receiver.mode = 'ok';
  const second = startDaemon({ ...base, VIGIL_SOURCE_FILE: empty });
  await waitUntil('every notification delivered', () => logRows(db).every((r) => r.state === 'delivered'), 60_000);
  second.child.kill('SIGTERM');
  assert.equal(await new Promise((r) => second.child.once('exit', r)), 0, second.stderr());

  // 3. Another restart sends nothing again.
  const before = receiver.requests.length;
  const third = startDaemon({ ...base, VIGIL_SOURCE_FILE: empty });
  await waitUntil('the third daemon to run', () => /vigil running/.test(third.stderr()), 60_000);
  third.child.kill('SIGTERM');
  assert.equal(await new Promise((r) => third.child.once('exit', r)), 0, third.stderr());
  assert.equal(receiver.requests.length, before);

  // Deliveries per transition: each exactly once, except the one that was in flight at the kill (the
  // documented window), which arrived twice under the same idempotency key.
  const perKey = new Map<string, number>();
  for (const r of receiver.requests) perKey.set(String(r.headers['idempotency-key']), (perKey.get(String(r.headers['idempotency-key'])) ?? 0) + 1);
  const installation = new Database(db, { readonly: true }).prepare("SELECT value FROM meta WHERE key = 'installation_id'").pluck().get() as string;
  const expected = transitions.map((t) => `vigil:${installation}:${t.incident_id}:${t.type}:1`);
  assert.deepEqual([...perKey.keys()].sort(), [...expected].sort());
  const inFlight = String(receiver.requests[0].headers['idempotency-key']);
  for (const [key, n] of perKey) assert.equal(n, key === inFlight ? 2 : 1, key);
});
