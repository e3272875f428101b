import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createGenerator, writeGeneratedFiles, type IncidentLabel, type ViewGenerator } from '../src/generate/index.ts';
import { DemoSchedule } from '../src/generate/demo-schedule.ts';
import { buildPropertyStates } from '../src/generate/property-state.ts';
import { DEMO_PROFILE } from '../src/generate/traffic-profile.ts';

const START_MS = Date.UTC(2026, 10, 27);
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const ERROR_TYPES = ['networkError', 'decodeError', 'manifestError', 'drmError', 'timeoutError'];
// Small enough to keep the suite fast; the 1k/h property, the rare title and injected views are never scaled.
const RUN = { seed: 1, hours: 8, scale: 0.05 } as const;

interface View {
  property: string;
  /** undefined when the line has no video_title key. */
  title: string | null | undefined;
  error: string | null | undefined;
  ts: number;
}

function drain(generator: ViewGenerator, sliceMs: number, startMs = START_MS): string[] {
  const lines: string[] = [];
  for (let untilMs = startMs + sliceMs; !generator.done(); untilMs += sliceMs) {
    for (const line of generator.nextBatch(untilMs)) lines.push(line);
  }
  return lines;
}

function parseView(line: string): View | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (!('property_id' in v)) return null;
  assert.equal(typeof v.view_id, 'string');
  assert.match(v.view_id as string, /^v-[0-9a-z]+-[0-9a-z]+$/);
  const property = v.property_id === 177 ? '177' : v.property_id;
  assert.equal(typeof property, 'string', `property_id ${JSON.stringify(v.property_id)}`);
  assert.ok(!('video_title' in v) || v.video_title === null || typeof v.video_title === 'string');
  assert.ok(!('error_type' in v) || v.error_type === null || ERROR_TYPES.includes(v.error_type as string), `error_type ${String(v.error_type)}`);
  let ts: number;
  if (typeof v.ts === 'number') ts = v.ts;
  else {
    assert.equal(typeof v.ts, 'string');
    assert.match(v.ts as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    ts = Date.parse(v.ts as string);
  }
  assert.ok(Number.isInteger(ts) && ts >= START_MS && ts < START_MS + RUN.hours * HOUR_MS, `ts ${ts}`);
  return { property: property as string, title: v.video_title as string | null | undefined, error: v.error_type as string | null | undefined, ts };
}

const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const ms = (iso: string): number => Date.parse(iso);
const cycle = (atMs: number): number => 1 + 0.5 * Math.cos((2 * Math.PI * ((atMs / HOUR_MS) % 24 - 20)) / 24);

function ratio(views: View[], pred: (v: View) => boolean, error: string): { n: number; failed: number; ratio: number } {
  let n = 0;
  let failed = 0;
  for (const v of views) {
    if (!pred(v)) continue;
    n++;
    if (v.error === error) failed++;
  }
  return { n, failed, ratio: failed / n };
}

describe('generate: realistic 8 h run', () => {
  let lines: string[];
  let views: View[];
  let malformed: string[];
  let labels: IncidentLabel[];
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-generate-'));
    const generator = createGenerator(RUN);
    labels = generator.labels();
    lines = drain(generator, MINUTE_MS);
    views = [];
    malformed = [];
    for (const line of lines) {
      const view = parseView(line);
      if (view === null) malformed.push(line);
      else views.push(view);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the same options give identical bytes, another seed different ones, and the file matches nextBatch', async () => {
    const a = join(dir, 'a.ndjson');
    const b = join(dir, 'b.ndjson');
    const c = join(dir, 'c.ndjson');
    const la = join(dir, 'a.labels.ndjson');
    const ra = await writeGeneratedFiles({ ...RUN, out: a, labelsOut: la });
    await writeGeneratedFiles({ ...RUN, out: b });
    const bytes = readFileSync(a);
    assert.equal(sha(bytes), sha(readFileSync(b)));
    // One hour is enough to tell seeds apart.
    await writeGeneratedFiles({ ...RUN, hours: 1, out: b });
    await writeGeneratedFiles({ ...RUN, hours: 1, seed: 2, out: c });
    assert.notEqual(sha(readFileSync(b)), sha(readFileSync(c)));
    assert.deepEqual(ra, { lines: lines.length, labels: labels.length });
    // The byte formatter used for files and the string formatter behind nextBatch agree exactly.
    assert.equal(sha(bytes), sha(lines.join('\n') + '\n'));
    const writtenLabels = readFileSync(la, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(writtenLabels, labels);
  });

  test('slicing changes only the interleaving: same lines, none from the future', () => {
    const generator = createGenerator(RUN);
    const sliced: string[] = [];
    for (let untilMs = START_MS + 7_000; !generator.done(); untilMs += 7_000) {
      for (const line of generator.nextBatch(untilMs)) {
        const view = parseView(line);
        if (view !== null) assert.ok(view.ts < untilMs, `line at ${view.ts} returned for untilMs ${untilMs}`);
        sliced.push(line);
      }
    }
    assert.equal(sliced.length, lines.length);
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
    for (const line of sliced) counts.set(line, (counts.get(line) ?? 0) - 1);
    assert.ok([...counts.values()].every((c) => c === 0), 'the same multiset of lines');
  });

  test('every line but the deliberately malformed ones has the fields with the right types and forms', () => {
    assert.ok(lines.length > 300_000 && lines.length < 450_000, `${lines.length} lines`);
    // ~1 per 200k lines, deterministic.
    assert.ok(malformed.length >= 1 && malformed.length <= 4, `${malformed.length} malformed`);
    const isoShare = lines.filter((l) => l.includes('"ts":"')).length / lines.length;
    assert.ok(isoShare > 0.02 && isoShare < 0.045, `ISO ts share ${isoShare}`);
    const count = (pred: (v: View) => boolean): number => views.filter(pred).length;
    assert.ok(count((v) => v.title === undefined) > 500);
    assert.ok(count((v) => v.title === null) > 100);
    assert.ok(count((v) => v.error === undefined) > 50_000);
    assert.ok(count((v) => v.error === null) > 200_000);
    assert.ok(lines.some((l) => l.startsWith('{"ts":')), 'some lines have another key order');
    assert.ok(lines.filter((l) => l.includes('"property_id":177')).length > 200_000, '177 is an integer id');
    assert.ok(!lines.some((l) => l.includes('"property_id":"177"')));
    assert.ok(lines.some((l) => /\\u[0-9a-f]{4}/.test(l)), 'some titles are \\u-escaped');
    const titles = new Set(views.map((v) => v.title).filter((t): t is string => typeof t === 'string'));
    const some = (re: RegExp): boolean => [...titles].some((t) => re.test(t));
    assert.ok(some(/[éñ]/) && some(/[\u3040-\u30ff\u4e00-\u9fff]/) && some(/\p{Extended_Pictographic}/u), 'accents, CJK and emoji');
    assert.ok(some(/"/) && some(/\\/), 'quotes and backslashes');
  });

  test('labels cover all 7 kinds on the documented 8 h schedule', () => {
    // Offsets from the start in seconds.
    const offsets = labels.map((l) => `${l.kind} ${l.property_id} ${(ms(l.start) - START_MS) / 1000}-${(ms(l.end) - START_MS) / 1000}`);
    assert.deepEqual(offsets, [
      'steady-baseline wistia 0-28800',
      'rare-title ign 4500-26100',
      'small-property-outage tiny-blog 5400-7800',
      'burst pbs 9000-9003.001',
      'bad-title 177 10800-12600',
      'burst 177 13800-13802.001',
      'three-of-four pbs 15000-15410.001',
      'property-outage pbs 18000-19200',
      'burst tiny-blog 20700-20704.001',
      'burst ign 22800-22802.001',
      'burst 177 25200-25203.001',
    ]);
    assert.equal(new Set(labels.map((l) => l.kind)).size, 7);
    for (const l of labels) {
      assert.equal(typeof l.property_id, 'string');
      assert.equal(l.video_title === null, l.scope === 'property');
      assert.ok(ERROR_TYPES.includes(l.error_type));
      assert.equal(l.expect, ['property-outage', 'bad-title', 'rare-title', 'small-property-outage'].includes(l.kind) ? 'alert' : 'none');
    }
  });

  test('the injected incidents are in the data', () => {
    const label = (kind: string): IncidentLabel => labels.find((l) => l.kind === kind)!;
    const inside = (l: IncidentLabel) => (v: View) => v.ts >= ms(l.start) && v.ts < ms(l.end);
    const onKey = (l: IncidentLabel) => (v: View) => v.property === l.property_id && (l.video_title === null || v.title === l.video_title);

    const bad = label('bad-title');
    const badIn = ratio(views, (v) => onKey(bad)(v) && inside(bad)(v), 'decodeError');
    const badOut = ratio(views, (v) => onKey(bad)(v) && !inside(bad)(v), 'decodeError');
    assert.ok(badIn.ratio > 0.7 && badIn.ratio < 0.95 && badIn.n > 200, `bad title inside ${JSON.stringify(badIn)}`);
    assert.ok(badOut.ratio < 0.02, `bad title outside ${JSON.stringify(badOut)}`);
    const share = views.filter(onKey(bad)).length / views.filter((v) => v.property === '177').length;
    assert.ok(share >= 0.01, `bad title share ${share}`);

    const pbs = label('property-outage');
    const pbsIn = ratio(views, (v) => onKey(pbs)(v) && inside(pbs)(v), 'networkError');
    const pbsOut = ratio(views, (v) => onKey(pbs)(v) && !inside(pbs)(v), 'networkError');
    assert.ok(Math.abs(pbsIn.ratio - 0.25) < 0.04, `pbs inside ${JSON.stringify(pbsIn)}`);
    assert.ok(pbsOut.ratio < 0.02, `pbs outside ${JSON.stringify(pbsOut)}`);
    // Property-wide: the most popular titles fail like the long tail.
    const topTitles = new Set(Object.entries(countBy(views.filter(onKey(pbs)), (v) => String(v.title))).sort((a, b) => b[1] - a[1]).slice(0, 20).map(([t]) => t));
    const head = ratio(views, (v) => onKey(pbs)(v) && inside(pbs)(v) && topTitles.has(String(v.title)), 'networkError');
    const tail = ratio(views, (v) => onKey(pbs)(v) && inside(pbs)(v) && !topTitles.has(String(v.title)), 'networkError');
    assert.ok(Math.abs(head.ratio - tail.ratio) < 0.06, `head ${JSON.stringify(head)} tail ${JSON.stringify(tail)}`);

    const rare = label('rare-title');
    const rareViews = views.filter(onKey(rare));
    assert.ok(rareViews.length > 110 && rareViews.length < 210, `rare title ${rareViews.length} views in 8 h`);
    const rareIn = ratio(rareViews, inside(rare), 'manifestError');
    const rareOut = ratio(rareViews, (v) => !inside(rare)(v), 'manifestError');
    assert.ok(rareIn.ratio > 0.55 && rareIn.ratio < 0.85, `rare inside ${JSON.stringify(rareIn)}`);
    assert.ok(rareOut.ratio < 0.1, `rare outside ${JSON.stringify(rareOut)}`);

    const tiny = label('small-property-outage');
    const tinyIn = ratio(views, (v) => onKey(tiny)(v) && inside(tiny)(v), 'networkError');
    const tinyOut = ratio(views, (v) => onKey(tiny)(v) && !inside(tiny)(v), 'networkError');
    assert.ok(Math.abs(tinyIn.ratio - 0.6) < 0.08 && tinyIn.n > 400, `tiny-blog inside ${JSON.stringify(tinyIn)}`);
    assert.ok(tinyOut.ratio < 0.04, `tiny-blog outside ${JSON.stringify(tinyOut)}`);

    for (const burst of labels.filter((l) => l.kind === 'burst')) {
      const failures = views.filter((v) => onKey(burst)(v) && inside(burst)(v) && v.error === burst.error_type).length;
      const injected = Number(/^(\d+) extra/.exec(burst.note ?? '')?.[1]);
      assert.ok(injected >= 3 && injected <= 6);
      assert.ok(failures >= injected && failures <= injected + 1, `burst ${burst.start}: ${failures} failures for ${injected} injected`);
    }

    const three = label('three-of-four');
    const threeViews = views.filter(onKey(three));
    assert.equal(threeViews.length, 4);
    assert.equal(threeViews.filter((v) => v.error === three.error_type).length, 3);
    assert.ok(threeViews.every(inside(three)));

    const wistia = label('steady-baseline');
    const steady = ratio(views, onKey(wistia), 'networkError');
    assert.ok(Math.abs(steady.ratio - 0.12) < 0.01, `wistia ${JSON.stringify(steady)}`);
    for (let h = 0; h < RUN.hours; h++) {
      const hour = ratio(views, (v) => v.property === 'wistia' && Math.floor((v.ts - START_MS) / HOUR_MS) === h, 'networkError');
      assert.ok(Math.abs(hour.ratio - 0.12) < 0.03, `wistia hour ${h}: ${JSON.stringify(hour)}`);
    }
  });

  test('property rates follow their base rate, the scale and the daily cycle', () => {
    const base: Record<string, number> = { '177': 1_000_000 * RUN.scale, pbs: 100_000 * RUN.scale, wistia: 50_000 * RUN.scale, ign: 10_000 * RUN.scale, 'tiny-blog': 1_000 };
    const perHour = new Map<string, number[]>();
    for (const v of views) {
      const row = perHour.get(v.property) ?? perHour.set(v.property, new Array(RUN.hours).fill(0)).get(v.property)!;
      row[Math.floor((v.ts - START_MS) / HOUR_MS)]++;
    }
    assert.deepEqual([...perHour.keys()].sort(), Object.keys(base).sort());
    for (const [property, rate] of Object.entries(base)) {
      for (let h = 0; h < RUN.hours; h++) {
        let m = 0;
        for (let s = 0; s < 60; s++) m += cycle(START_MS + h * HOUR_MS + (s + 0.5) * MINUTE_MS) / 60;
        // ign also carries the rare title (20 views/h, not cycled); tolerance ~4 standard deviations.
        const expected = rate * m + (property === 'ign' ? 20 : 0);
        const got = perHour.get(property)![h];
        assert.ok(Math.abs(got - expected) < 4 * Math.sqrt(expected) + 0.02 * expected, `${property} hour ${h}: ${got} views, expected ${expected.toFixed(0)}`);
      }
    }
    // 00:00-01:00 UTC runs at ~1.2x the mean, 07:00-08:00 at ~0.5x.
    const row = perHour.get('177')!;
    assert.ok(row[0] / row[7] > 2.1 && row[0] / row[7] < 2.6, `daily cycle ${row[0]} / ${row[7]}`);
  });

  test('events are out of order by a few seconds, a few are late by 20-40 s, none later', () => {
    let maxTs = -Infinity;
    let outOfOrder = 0;
    let late = 0;
    let maxLateness = 0;
    for (const v of views) {
      if (v.ts < maxTs) {
        outOfOrder++;
        const lateness = maxTs - v.ts;
        maxLateness = Math.max(maxLateness, lateness);
        if (lateness >= 20_000) late++;
      }
      maxTs = Math.max(maxTs, v.ts);
    }
    assert.ok(outOfOrder > views.length * 0.2, `${outOfOrder} out of order`);
    assert.ok(maxLateness <= 40_000, `max lateness ${maxLateness}`);
    // ~1 in 20k.
    assert.ok(late >= 5 && late <= 45, `${late} late events`);
  });
});

describe('generate: schedule for other run lengths', () => {
  test('a short run keeps the incidents that fit and names the others', () => {
    const labels = createGenerator({ seed: 1, hours: 3 }).labels();
    assert.deepEqual(labels.map((l) => l.kind), ['steady-baseline', 'small-property-outage', 'burst']);
    assert.match(labels[0].note ?? '', /left out: rare-title, bad-title, property-outage, burst, burst, burst, burst, three-of-four/);
    assert.equal(labels[0].end, '2026-11-27T03:00:00.000Z');
  });

  test('a long run spreads the same incidents over its length', () => {
    const labels = createGenerator({ seed: 1, hours: 24 }).labels();
    assert.equal(labels.length, 11);
    const ends = labels.filter((l) => l.kind !== 'steady-baseline').map((l) => ms(l.end) - START_MS);
    assert.ok(Math.max(...ends) > 20 * HOUR_MS && Math.max(...ends) <= 24 * HOUR_MS - 10 * MINUTE_MS);
    assert.equal(ms(labels.find((l) => l.kind === 'bad-title')!.end) - ms(labels.find((l) => l.kind === 'bad-title')!.start), 30 * MINUTE_MS);
  });

  test('invalid options are rejected with every problem at once', () => {
    assert.throws(
      () => createGenerator({ seed: 1.5, hours: -1, scale: 0, profile: 'nope' as 'demo' }),
      (err: Error) =>
        err instanceof RangeError && /profile/.test(err.message) && /seed/.test(err.message) && /scale/.test(err.message) && /hours/.test(err.message),
    );
  });
});

describe('generate: field profile', () => {
  // 12 h of 60 properties: a 2 h warm-up, then every kind of situation, and a 1 h tail.
  const FIELD = { seed: 4, hours: 12, profile: 'field', properties: 60, scale: 0.05 } as const;
  interface FieldView { property: string; title: string | null; error: string | null; ts: number; line: string }
  let lines: string[];
  let views: FieldView[];
  let labels: IncidentLabel[];

  const parseField = (line: string): FieldView | null => {
    let v: Record<string, unknown>;
    try { v = JSON.parse(line); } catch { return null; }
    if (v === null || typeof v !== 'object' || !('property_id' in v)) return null;
    const ts = typeof v.ts === 'number' ? v.ts : Date.parse(v.ts as string);
    return { property: String(v.property_id), title: (v.video_title as string | null | undefined) ?? null, error: (v.error_type as string | null | undefined) ?? null, ts, line };
  };
  const rate = (vs: FieldView[], error: string) => vs.filter((v) => v.error === error).length / Math.max(1, vs.length);
  const within = (l: IncidentLabel, from = Date.parse(l.start), to = Date.parse(l.end)) =>
    views.filter((v) => v.property === l.property_id && (l.video_title === null || v.title === l.video_title) && v.ts >= from && v.ts < to);

  before(() => {
    const generator = createGenerator(FIELD);
    labels = generator.labels();
    lines = drain(generator, MINUTE_MS);
    views = lines.map(parseField).filter((v): v is FieldView => v !== null);
  });

  test('the same options give the same lines; duplicates are the same run plus repeated lines', () => {
    const small = { seed: 9, hours: 3, profile: 'field', properties: 30, scale: 0.05 } as const;
    const a = drain(createGenerator(small), MINUTE_MS);
    assert.deepEqual(drain(createGenerator(small), 7 * MINUTE_MS).sort(), [...a].sort());
    const b = drain(createGenerator({ ...small, duplicates: 0.03 }), MINUTE_MS);
    const extra = b.length - a.length;
    assert.ok(extra > a.length * 0.025 && extra < a.length * 0.035, `${extra} repeated of ${a.length}`);
    // The original lines keep their order; every extra line repeats one that came 1-60 s (of arrival) before.
    let i = 0;
    const seen = new Map<string, number>();
    for (const line of b) {
      if (i < a.length && line === a[i]) { seen.set(line, parseField(line)?.ts ?? 0); i++; continue; }
      assert.ok(seen.has(line), `a line that is neither in order nor a repeat: ${line.slice(0, 120)}`);
    }
    assert.equal(i, a.length);
  });

  test('many properties of heavy-tailed sizes in several time zones', () => {
    const perProperty = new Map<string, number>();
    for (const v of views) perProperty.set(v.property, (perProperty.get(v.property) ?? 0) + 1);
    const perHour = [...perProperty.values()].map((n) => n / FIELD.hours).sort((x, y) => x - y);
    assert.equal(perHour.length, FIELD.properties);
    assert.ok(perHour[Math.floor(perHour.length / 2)] < 150, `median ${perHour[Math.floor(perHour.length / 2)]} views/h`);
    assert.ok(perHour[0] < 60 && perHour[perHour.length - 1] > 5000, `${perHour[0]} .. ${perHour[perHour.length - 1]} views/h`);
    // Each property's busiest hour follows its time zone: not all the same hour.
    const peaks = new Set<number>();
    for (const [p, n] of perProperty) {
      if (n < FIELD.hours * 2000) continue;
      const byHour = new Array(FIELD.hours).fill(0);
      for (const v of views) if (v.property === p) byHour[Math.floor((v.ts - START_MS) / HOUR_MS)]++;
      peaks.add(byHour.indexOf(Math.max(...byHour)));
    }
    assert.ok(peaks.size >= 2, `peak hours ${[...peaks]}`);
  });

  test('a nightly shift doubles its property\'s networkError rate during the local night', () => {
    const night = labels.find((l) => l.kind === 'nightly-shift')!;
    const offset = Number(/UTC([+-][\d.]+)/.exec(night.note ?? '')![1]);
    const local = (v: FieldView) => ((((v.ts - START_MS) / HOUR_MS + offset) % 24) + 24) % 24;
    const mine = views.filter((v) => v.property === night.property_id);
    const nightRate = rate(mine.filter((v) => local(v) >= 23 || local(v) < 6), 'networkError');
    const dayRate = rate(mine.filter((v) => local(v) >= 9 && local(v) < 20), 'networkError');
    assert.ok(dayRate > 0.03 && dayRate < 0.06, `day ${dayRate}`);
    assert.ok(Math.abs(nightRate / dayRate - 2) < 0.3, `night ${nightRate} / day ${dayRate}`);
  });

  test('the labelled situations are in the data', () => {
    const kinds = new Set(labels.map((l) => l.kind));
    for (const k of ['tiny-property-outage', 'tiny-three-of-four', 'ramp', 'new-error-type', 'long-outage', 'property-outage', 'bad-title', 'burst', 'nightly-shift', 'steady-baseline']) {
      assert.ok(kinds.has(k as IncidentLabel['kind']), `no ${k}`);
    }
    for (const l of labels.filter((x) => x.kind === 'tiny-property-outage')) {
      const vs = within(l);
      assert.ok(vs.length >= 20 && vs.every((v) => v.error === 'networkError'), `${l.property_id}: ${vs.length} views`);
    }
    for (const l of labels.filter((x) => x.kind === 'ramp')) {
      const start = Date.parse(l.start);
      const early = rate(within(l, start, start + 10 * MINUTE_MS), 'manifestError');
      const top = rate(within(l, start + 60 * MINUTE_MS, Date.parse(l.end)), 'manifestError');
      assert.ok(early < 0.04 && Math.abs(top - 0.25) < 0.04, `ramp ${l.property_id}: ${early} then ${top}`);
      assert.ok(Date.parse(l.alert_from!) > start + 5 * MINUTE_MS && Date.parse(l.alert_from!) < start + 10 * MINUTE_MS);
    }
    for (const l of labels.filter((x) => x.kind === 'new-error-type')) {
      assert.equal(rate(within(l, START_MS, Date.parse(l.start)), 'drmError'), 0);
      assert.ok(Math.abs(rate(within(l), 'drmError') - 0.15) < 0.04, l.property_id);
    }
    for (const l of labels.filter((x) => x.kind === 'long-outage')) assert.ok(Math.abs(rate(within(l), 'networkError') - 0.6) < 0.08, l.property_id);
    for (const l of labels.filter((x) => x.kind === 'tiny-three-of-four')) {
      const end = Date.parse(l.end);
      const injected = views.filter((v) => v.property === l.property_id && v.ts >= Date.parse(l.start) && v.ts < end && v.title !== null);
      const byTitle = new Map<string, FieldView[]>();
      for (const v of injected) byTitle.set(v.title!, [...(byTitle.get(v.title!) ?? []), v]);
      assert.ok([...byTitle.values()].some((vs) => vs.length >= 4 && vs.filter((v) => v.error === 'networkError').length >= 3), l.property_id);
    }
  });

  test('bad clocks: one view 24 h ahead, and 30% of one property\'s views 3 minutes ahead for 12 h', () => {
    const run = drain(createGenerator({ ...FIELD, hours: 16, properties: 40, badClocks: true }), MINUTE_MS).map(parseField).filter((v): v is FieldView => v !== null);
    const clockLabels = createGenerator({ ...FIELD, hours: 16, properties: 40, badClocks: true }).labels().filter((l) => l.kind === 'bad-clock');
    assert.equal(clockLabels.length, 2);
    let maxTs = -Infinity;
    let far = 0;
    for (const v of run) {
      if (maxTs > -Infinity && v.ts > maxTs + 23 * HOUR_MS) far++;
      else maxTs = Math.max(maxTs, v.ts);
    }
    assert.equal(far, 1);
    const skew = clockLabels.find((l) => /3 min ahead/.test(l.note ?? ''))!;
    const from = Date.parse(skew.start);
    // Lines arrive in nominal order: a view stamped 3 min ahead of its neighbours.
    let ahead = 0;
    let total = 0;
    for (let i = 1; i < run.length; i++) {
      const v = run[i];
      if (v.property !== skew.property_id || v.ts < from + 10 * MINUTE_MS || v.ts > Date.parse(skew.end)) continue;
      total++;
      if (v.ts - run[i - 1].ts > 150_000) ahead++;
    }
    assert.ok(total > 1000 && Math.abs(ahead / total - 0.3) < 0.05, `${ahead} of ${total} ahead`);
  });

  test('field options are checked', () => {
    assert.throws(() => createGenerator({ seed: 1, hours: 1, properties: 10, badClocks: true }), (err: Error) => /properties/.test(err.message) && /badClocks/.test(err.message));
    assert.throws(() => createGenerator({ seed: 1, hours: 1, profile: 'field', duplicates: 0.9 }), /duplicates/);
  });
});

describe('generate: demo profile', () => {
  test('is endless, 20-50 events/s, and shows an incident every few minutes after a 2 min warm-up', () => {
    const startMs = Date.UTC(2026, 10, 27, 18);
    const generator = createGenerator({ seed: 3, hours: Infinity, profile: 'demo', startMs });
    assert.throws(() => generator.nextBatch(Infinity), RangeError);
    const views: View[] = [];
    const seenLabels: number[] = [];
    for (let untilMs = startMs + 250; untilMs <= startMs + 30 * MINUTE_MS; untilMs += 250) {
      for (const line of generator.nextBatch(untilMs)) {
        const v = JSON.parse(line) as Record<string, unknown>;
        const ts = typeof v.ts === 'number' ? v.ts : Date.parse(v.ts as string);
        assert.ok(ts < untilMs);
        views.push({ property: String(v.property_id), title: v.video_title as string, error: v.error_type as string, ts });
      }
      seenLabels.push(generator.labels().length);
    }
    assert.equal(generator.done(), false);
    const perSecond = views.length / (30 * 60);
    assert.ok(perSecond > 20 && perSecond < 50, `${perSecond} events/s`);
    // Labels accumulate as the run reaches them.
    assert.ok(seenLabels[0] < seenLabels[seenLabels.length - 1]);
    const incidents = generator.labels().filter((l) => l.expect === 'alert');
    assert.ok(incidents.length >= 5, `${incidents.length} incidents in 30 min`);
    assert.equal(ms(incidents[0].start) - startMs, 2 * MINUTE_MS);
    incidents.forEach((l, i) => {
      assert.equal(l.kind, i % 2 === 0 ? 'property-outage' : 'bad-title');
      const durationMs = ms(l.end) - ms(l.start);
      assert.ok(durationMs >= 2 * MINUTE_MS && durationMs <= 4 * MINUTE_MS);
      if (ms(l.end) > startMs + 30 * MINUTE_MS) return;
      const hit = ratio(views, (v) => v.ts >= ms(l.start) && v.ts < ms(l.end) && v.property === l.property_id && (l.video_title === null || v.title === l.video_title), l.error_type);
      assert.ok(hit.ratio > 0.2 && hit.n > 100, `demo incident ${i}: ${JSON.stringify(hit)}`);
    });
  });
});

describe('writeGeneratedFiles', () => {
  test('waits for drain instead of buffering a slow stream without bound', async () => {
    let maxBuffered = 0;
    let maxChunk = 0;
    const chunks: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, callback) {
        chunks.push(chunk);
        maxChunk = Math.max(maxChunk, chunk.length);
        setImmediate(callback);
      },
    });
    const origWrite = slow.write.bind(slow);
    slow.write = ((chunk: Buffer, ...rest: never[]) => {
      const ok = origWrite(chunk, ...rest);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      return ok;
    }) as typeof slow.write;
    const result = await writeGeneratedFiles({ seed: 5, hours: 1, scale: 0.05, out: slow });
    assert.ok(result.lines > 40_000);
    assert.equal(Buffer.concat(chunks).toString().split('\n').length - 1, result.lines);
    assert.ok(maxBuffered <= maxChunk + 1024, `buffered ${maxBuffered} with chunks up to ${maxChunk}`);
  });
});

describe('writeGeneratedFiles errors', () => {
  test('rejects with the stream error when the output cannot be written', async () => {
    await assert.rejects(writeGeneratedFiles({ seed: 1, hours: 1, scale: 0.05, out: join(tmpdir(), 'vigil-no-such-dir', 'x', 'views.ndjson') }), { code: 'ENOENT' });
  });
});

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

test('a demo started after its schedule began takes the schedule up where it is: the same incidents, none of those already over', () => {
  const scheduleStartMs = Date.UTC(2026, 10, 27, 12);
  // Incident k runs from minute 2 + 5k for 2 to 4 minutes: at 26 h 6 min 50 s incident 312 is over, 313 not begun.
  const restartMs = scheduleStartMs + 26 * 3_600_000 + 6 * 60_000 + 50_000;
  const labelsOf = (g: ViewGenerator) => g.labels().filter((l) => l.expect === 'alert');
  const resumed = createGenerator({ seed: 3, hours: Infinity, profile: 'demo', startMs: restartMs, scheduleStartMs });
  resumed.nextChunk(restartMs + 20 * 60_000);
  const got = labelsOf(resumed);
  // One incident starts every 5 minutes and lasts at most 4: 4 or 5 of them reach into these 20 minutes.
  assert.ok(got.length >= 4 && got.length <= 5, JSON.stringify(got));
  assert.ok(Date.parse(got[0].end) > restartMs, 'incidents that were over before the restart are not planned again');
  assert.ok(Date.parse(got[0].start) > restartMs - 5 * 60_000);
  // The very same incidents the uninterrupted schedule has at those times.
  const all: IncidentLabel[] = [];
  new DemoSchedule(buildPropertyStates(DEMO_PROFILE.properties, 3, DEMO_PROFILE.zipfExponent), 3, scheduleStartMs, scheduleStartMs, Infinity)
    .extendTo(restartMs + 20 * 60_000, [], all);
  const alerts = all.filter((l) => l.expect === 'alert');
  const index = alerts.findIndex((l) => l.start === got[0].start);
  assert.ok(index > 0, 'found in the uninterrupted schedule');
  assert.deepEqual(got, alerts.slice(index, index + got.length));
  assert.throws(() => createGenerator({ seed: 3, hours: Infinity, profile: 'demo', startMs: scheduleStartMs, scheduleStartMs: scheduleStartMs + 1 }), /scheduleStartMs must be/);
});
