// The embedded default (`npm start`): the demo source injects incidents every few minutes and
// the daemon finds them. The demo runs on an injected clock here, 10 s of demo time per 5 ms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { DemoSource } from '../src/ingest/demo-source.ts';
import { silentLogger } from '../src/log/logger.ts';

test('demo traffic opens and resolves the incidents it injects within minutes of demo time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-demo-'));
  const audit = join(dir, 'audit.ndjson');
  const config = loadConfig({ VIGIL_DATA_DIR: dir, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_IDLE_ADVANCE: 'false', VIGIL_CHECKPOINTS: 'false', VIGIL_HTTP_PORT: '0' });
  const start = Date.UTC(2026, 10, 27, 12);
  let now = start;
  const clock = () => now;
  const source = new DemoSource({ seed: 1, logger: silentLogger(), now: clock, intervalMs: 5 });
  const daemon = new Daemon(config, silentLogger(), { source, now: clock });
  await daemon.start();
  const demoMinutes = 25;
  while (now < start + demoMinutes * 60_000) {
    now += 10_000;
    await delay(5);
  }
  await delay(200);
  await daemon.stop();
  const recs = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const opened = recs.filter((r) => r.type === 'opened');
  const resolved = recs.filter((r) => r.type === 'resolved');
  // One injected incident every 5 minutes after a 2-minute warm-up: 4 to 5 in 25 minutes.
  assert.ok(opened.length >= 3, `opened ${opened.length}: ${JSON.stringify(recs)}`);
  assert.ok(resolved.length >= 2, `resolved ${resolved.length}`);
  assert.ok(opened.some((r) => r.scope === 'property') && opened.some((r) => r.scope === 'title'));
  const first = Math.min(...opened.map((r) => Date.parse(r.at)));
  assert.ok(first - start < 10 * 60_000, `first incident after ${(first - start) / 60_000} min`);
  assert.ok(!opened.some((r) => r.property_id === 'wistia' && r.scope === 'property'), 'the steady-12% property alerted');
});

test('a restarted demo goes on with its schedule (kept in the data directory) instead of injecting its first incident again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-demo-restart-'));
  const audit = join(dir, 'audit.ndjson');
  const config = loadConfig({ VIGIL_DATA_DIR: dir, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_IDLE_ADVANCE: 'false', VIGIL_HTTP_PORT: '0' });
  const start = Date.UTC(2026, 10, 27, 12);
  let now = start;
  const clock = () => now;
  const runFor = async (minutes: number) => {
    const daemon = new Daemon(config, silentLogger(), { source: new DemoSource({ seed: 1, logger: silentLogger(), now: clock, intervalMs: 5, dataDir: dir }), now: clock });
    await daemon.start();
    const until = now + minutes * 60_000;
    while (now < until) {
      now += 10_000;
      await delay(5);
    }
    await delay(200);
    await daemon.stop();
  };
  // Incident 1 (2-4 min) and incident 2 (7-11 min) of the schedule, then a restart at minute 12.
  await runFor(12);
  const restartAt = now;
  await runFor(12);
  assert.equal(JSON.parse(readFileSync(join(dir, 'demo-schedule.json'), 'utf8')).schedule_start_ms, start);
  const opened = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'opened');
  const key = (r: { scope: string; property_id: string; video_title?: string; error_type: string }) => `${r.scope} ${r.property_id} ${r.video_title ?? ''} ${r.error_type}`;
  const before = opened.filter((r) => Date.parse(r.at) < restartAt);
  const after = opened.filter((r) => Date.parse(r.at) >= restartAt);
  assert.ok(before.some((r) => key(r) === 'property 177  networkError'), `the schedule's first incident before the restart: ${JSON.stringify(before)}`);
  assert.ok(after.length >= 1, `incidents after the restart: ${JSON.stringify(opened)}`);
  // The next incidents of the schedule (pbs manifestError at minute 12, a title at 17), not the first one again.
  assert.ok(after.some((r) => key(r) === 'property pbs  manifestError'), JSON.stringify(after));
  for (const r of after) assert.ok(!before.some((b) => key(b) === key(r)), `${key(r)} was injected again after the restart`);
});
