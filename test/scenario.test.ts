// Scenario tests on generated traffic: every labelled incident is found in time and
// resolved, and nothing else alerts (not the steady-12% property, not the short bursts,
// not the title with 3 failures out of 4 views).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const MIN = 60_000;

interface Label { kind: string; expect: 'alert' | 'none'; scope: string; property_id: string; video_title: string | null; error_type: string; start: string; end: string }
interface Rec { type: string; incident_id: number; scope: string; property_id: string; video_title?: string; error_type: string; at: string }

/** How late an incident may open, and resolve after its cause ends, per kind of injected incident. */
const LIMITS: Record<string, { openMs: number; resolveMs: number }> = {
  'property-outage': { openMs: 5 * MIN, resolveMs: 15 * MIN },
  'small-property-outage': { openMs: 10 * MIN, resolveMs: 20 * MIN },
  'bad-title': { openMs: 10 * MIN, resolveMs: 30 * MIN },
  'rare-title': { openMs: 90 * MIN, resolveMs: 60 * MIN },
};

function run(args: string[]): string {
  const r = spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, env: { PATH: process.env.PATH } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function scenario(seed: number) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-scenario-'));
  const data = join(dir, 'views.ndjson');
  const labelsFile = join(dir, 'labels.ndjson');
  run(['generate', '--seed', String(seed), '--hours', '10', '--scale', '0.05', '--out', data, '--labels', labelsFile]);
  const labels: Label[] = readFileSync(labelsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const recs: Rec[] = run(['replay', data]).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { labels, recs };
}

const sameKey = (l: Label, r: Rec) => l.scope === r.scope && l.property_id === r.property_id && l.error_type === r.error_type
  && (l.scope === 'property' || l.video_title === r.video_title);

for (const seed of [1, 2]) {
  test(`seed ${seed}: every labelled incident opens in time and resolves; nothing else alerts`, () => {
    const { labels, recs } = scenario(seed);
    const alerts = labels.filter((l) => l.expect === 'alert');
    assert.deepEqual(alerts.map((l) => l.kind).sort(), ['bad-title', 'property-outage', 'rare-title', 'small-property-outage']);
    const explained = new Set<number>();
    for (const l of alerts) {
      const start = Date.parse(l.start);
      const end = Date.parse(l.end);
      const limit = LIMITS[l.kind];
      const opened = recs.find((r) => r.type === 'opened' && sameKey(l, r) && Date.parse(r.at) >= start && Date.parse(r.at) <= start + limit.openMs);
      assert.ok(opened, `${l.kind} ${l.property_id} ${l.video_title ?? ''} not opened within ${limit.openMs / MIN} min of ${l.start}`);
      const closed = recs.find((r) => r.incident_id === opened.incident_id && (r.type === 'resolved' || r.type === 'expired'));
      assert.ok(closed, `${l.kind}: incident ${opened.incident_id} never closed`);
      assert.equal(closed.type, 'resolved', `${l.kind} expired instead of resolving`);
      const closedAt = Date.parse(closed.at);
      assert.ok(closedAt >= end && closedAt <= end + limit.resolveMs, `${l.kind} resolved at ${closed.at}, cause ended ${l.end}`);
      explained.add(opened.incident_id);
    }
    const unexplained = recs.filter((r) => r.type === 'opened' && !explained.has(r.incident_id));
    assert.deepEqual(unexplained, [], 'incidents no label explains (false alerts)');
    // The must-not-alert labels, named: none of their keys ever opened.
    for (const l of labels.filter((x) => x.expect === 'none')) {
      const from = Date.parse(l.start);
      const to = Date.parse(l.end) + 30 * MIN;
      const hit = recs.find((r) => r.type === 'opened' && sameKey(l, r) && Date.parse(r.at) >= from && Date.parse(r.at) <= to);
      assert.equal(hit, undefined, `${l.kind} ${l.property_id} ${l.video_title ?? ''} alerted`);
    }
    assert.ok(labels.some((l) => l.kind === 'steady-baseline') && labels.some((l) => l.kind === 'burst') && labels.some((l) => l.kind === 'three-of-four'));
  });
}
