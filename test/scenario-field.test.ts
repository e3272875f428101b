// Scenario tests on the field profile (`vigil generate --profile field`): one test per way real player
// data broke the detector before issue 13 (tiny properties never watched, a nightly shift opening an
// incident, moderate incidents found late, a title storm after a long outage of a small property,
// duplicate deliveries counted twice).
// Each run is 24 h of 100 properties of heavy-tailed sizes, replayed by the CLI.
//
// With the previous detector every test here fails; to see it, run this file with
//   SCENARIO_DETECTION='{"dedupHorizonMs":0,"property":{"warmupViews":500,"minFailures":20,"minFailingSlots":0,"baselineZ":0,"fastHalfLifeMs":0,"cusumThreshold":0,"rampZ":0,"zHot":3},"title":{"spanGuard":0}}'
// (PREVIOUS_DETECTION_PARAMS in src/kernel/detection-params.ts), which the replays get as VIGIL_DETECTION.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scoreRun, sameKey, type IncidentLabel, type ScoredOpening } from '../src/generate/index.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const MIN = 60_000;
const SEEDS = [1, 2];

function run(args: string[]): { stdout: string; summary: Record<string, unknown> } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  if (process.env.SCENARIO_DETECTION) env.VIGIL_DETECTION = process.env.SCENARIO_DETECTION;
  const r = spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, env });
  assert.equal(r.status, 0, r.stderr);
  const last = r.stderr.trim().split('\n').filter((l) => l.startsWith('{"summary"')).pop();
  return { stdout: r.stdout, summary: last ? JSON.parse(last) : {} };
}

interface FieldRun {
  seed: number;
  labels: IncidentLabel[];
  recs: ScoredOpening[];
  /** The replay's output (transitions), byte for byte. */
  output: string;
  /** Lines generated, and views the replay dropped as duplicates. */
  lines: number;
  duplicates: number;
}

function fieldRun(seed: number, duplicates = 0): FieldRun {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-field-'));
  try {
    const data = join(dir, 'views.ndjson');
    const labelsFile = join(dir, 'labels.ndjson');
    const gen = run(['generate', '--profile', 'field', '--seed', String(seed), '--hours', '24', '--properties', '100', '--scale', '0.05',
      '--duplicates', String(duplicates), '--out', data, '--labels', labelsFile]);
    const labels: IncidentLabel[] = readFileSync(labelsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const replayed = run(['replay', data]);
    const recs: ScoredOpening[] = replayed.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return { seed, labels, recs, output: replayed.stdout, lines: Number(gen.summary.lines), duplicates: Number(replayed.summary.duplicate_events) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const kind = (r: FieldRun, k: IncidentLabel['kind']) => r.labels.filter((l) => l.kind === k);
const openings = (r: FieldRun, l: IncidentLabel, from: number, to: number) =>
  r.recs.filter((x) => x.type === 'opened' && sameKey(l, x) && Date.parse(x.at) >= from && Date.parse(x.at) <= to);
const sizeOf = (l: IncidentLabel) => Number(/~(\d+) views\/h/.exec(l.note ?? '')?.[1]);

describe('field profile, 24 h, 100 properties', () => {
  const runs: FieldRun[] = [];
  before(() => {
    for (const seed of SEEDS) runs.push(fieldRun(seed));
  });

  test('tiny properties: a total failure opens within the hour; 3 failures in 4 views never page', () => {
    for (const r of runs) {
      const tiny = kind(r, 'tiny-property-outage');
      assert.ok(tiny.length >= 2, `seed ${r.seed}: ${tiny.length} tiny outages`);
      for (const l of tiny) {
        const start = Date.parse(l.start);
        assert.ok(openings(r, l, start, start + 60 * MIN).length === 1, `seed ${r.seed}: ${l.note} at ${l.start} not opened within the hour`);
      }
      for (const l of kind(r, 'tiny-three-of-four')) {
        assert.deepEqual(openings(r, l, Date.parse(l.start), Date.parse(l.end) + 60 * MIN), [], `seed ${r.seed}: ${l.note}`);
      }
    }
  });

  test('a rate that doubles every night opens nothing; steady high rates and bursts neither', () => {
    for (const r of runs) {
      assert.ok(kind(r, 'nightly-shift').length >= 2);
      for (const l of r.labels.filter((x) => x.expect === 'none')) {
        assert.deepEqual(openings(r, l, Date.parse(l.start), Date.parse(l.end) + 60 * MIN), [], `seed ${r.seed}: ${l.kind} ${l.property_id}: ${l.note}`);
      }
    }
  });

  test('moderate incidents: a brand-new error type on 15% of a property with 1k views/h or more opens within 5 minutes, a ramp within 20 minutes of passing the bar', () => {
    for (const r of runs) {
      const fresh = kind(r, 'new-error-type').filter((l) => sizeOf(l) >= 1000);
      assert.ok(fresh.length >= 2, `seed ${r.seed}: ${fresh.length} new error types on 1k views/h or more`);
      for (const l of fresh) {
        const start = Date.parse(l.start);
        assert.equal(openings(r, l, start, start + 5 * MIN).length, 1, `seed ${r.seed}: ${l.note} at ${l.start} not opened within 5 min`);
      }
      const ramps = kind(r, 'ramp');
      assert.ok(ramps.length >= 2);
      for (const l of ramps) {
        const from = Date.parse(l.alert_from!);
        assert.equal(openings(r, l, Date.parse(l.start), from + 20 * MIN).length, 1, `seed ${r.seed}: ramp ${l.note} not opened within 20 min of ${l.alert_from}`);
      }
    }
  });

  test('a long outage of a small property: one property incident and no title incident', () => {
    for (const r of runs) {
      const long = kind(r, 'long-outage');
      assert.ok(long.length >= 1);
      for (const l of long) {
        const start = Date.parse(l.start);
        const end = Date.parse(l.end);
        assert.equal(openings(r, l, start, end + 2 * 60 * MIN).length, 1, `seed ${r.seed}: ${l.property_id}`);
        const titles = r.recs.filter((x) => x.type === 'opened' && x.scope === 'title' && x.property_id === l.property_id);
        assert.deepEqual(titles.map((x) => `${x.video_title} ${x.at}`), [], `seed ${r.seed}: title incidents of ${l.property_id} (outage ${l.start} - ${l.end})`);
      }
    }
  });

  test('3% of the lines delivered twice (1-60 s apart) change nothing: the same output byte for byte', () => {
    const dup = fieldRun(SEEDS[0], 0.03);
    const base = runs[0];
    const repeated = dup.lines - base.lines;
    assert.ok(repeated > base.lines * 0.025 && repeated < base.lines * 0.035, `${repeated} repeated lines of ${base.lines}`);
    // Every repeated line is a view (malformed lines are never repeated) with a view id.
    assert.equal(dup.duplicates, repeated);
    assert.ok(base.output.length > 0);
    assert.equal(dup.output, base.output);
  });

  test('every labelled incident is found, and no opening is left unexplained', () => {
    for (const r of runs) {
      const score = scoreRun(r.labels, r.recs);
      assert.deepEqual(score.outcomes.filter((o) => o.openedAt === null).map((o) => `${o.label.kind} ${o.label.property_id} ${o.label.start}`), [], `seed ${r.seed}: missed`);
      assert.deepEqual(score.falseOpenings.map((x) => `${x.scope} ${x.property_id} ${x.video_title ?? ''} ${x.error_type} ${x.at}`), [], `seed ${r.seed}: false openings`);
    }
  });
});
