// Seeded view streams for the kernel tests, and drivers that feed one stream to
// the WASM kernel and to the reference model in the same steps. The streams are
// built so that small inputs exercise everything the detector does: incidents
// that open and resolve, keys that go silent (expiry, eviction), events out of
// order and late, titles and error types with characters JSON must escape.
import assert from 'node:assert/strict';
import type { DetectionParams } from '../../src/kernel/detection-params.ts';
import { mergeDetectionParams, DEFAULT_DETECTION_PARAMS } from '../../src/kernel/detection-params.ts';
import type { Verdict } from '../../src/kernel/verdict.ts';
import type { WasmKernel } from '../../src/kernel/wasm-kernel.ts';
import type { ReferenceEvent, ReferenceModel } from '../../src/kernel/reference-model.ts';
import { compareVerdicts } from '../../src/engine/verdict-order.ts';
import { DEFAULT_CLOCK_OPTIONS, EventClock } from '../../src/engine/event-clock.ts';
import type { ChunkOrigin } from '../../src/ingest/source.ts';

const SEC = 1000;
const MIN = 60 * SEC;

/** Parameters scaled down (slots of seconds, ticks of one second) so incidents open, resolve, expire and keys are evicted within a few thousand events. */
export const FAST_PARAMS: DetectionParams = mergeDetectionParams(DEFAULT_DETECTION_PARAMS, {
  tickMs: SEC,
  outOfOrdernessMs: 2 * SEC,
  sweepMs: MIN,
  // Epochs of 20 s: copies a few seconds apart land in the same and in the previous epoch, and the
  // stream's silences skip epochs.
  dedupHorizonMs: 20 * SEC,
  property: {
    slotMs: 5 * SEC, minViews: 200, minFailures: 10, minEffectAbs: 0.03, minEffectRatio: 1.5,
    resolveMs: 20 * SEC, expireMs: MIN, idleEvictMs: 5 * MIN, baselineHalfLifeMs: 5 * MIN, warmupViews: 0,
    // The fast baseline and the evidence test on the same time scale as everything else here.
    fastHalfLifeMs: MIN, fastRisePerHour: 2, cusumThreshold: 6,
  },
  title: {
    slotMs: 10 * SEC, minViews: 30, minFailures: 5, minEffectAbs: 0.1, minEffectRatio: 2,
    resolveMs: 40 * SEC, expireMs: 2 * MIN, idleEvictMs: 3 * MIN, baselineHalfLifeMs: 15 * MIN, priorViews: 100,
  },
});

/** FAST_PARAMS with every mechanism of issue 13 off: the detector before it (PREVIOUS_DETECTION_PARAMS), scaled the same way. */
export const FAST_PREVIOUS_PARAMS: DetectionParams = mergeDetectionParams(FAST_PARAMS, {
  dedupHorizonMs: 0,
  property: { warmupViews: 300, minFailures: 10, minFailingSlots: 0, baselineZ: 0, fastHalfLifeMs: 0, cusumThreshold: 0, rampZ: 0, zHot: 3 },
  title: { spanGuard: 0 },
});

/** A second shape: no out-of-orderness allowance (every reordered event is late), tick = property slot, slower sweeps. */
export const TIGHT_PARAMS: DetectionParams = mergeDetectionParams(FAST_PARAMS, {
  tickMs: 2 * SEC,
  outOfOrdernessMs: 0,
  sweepMs: 2 * MIN,
  property: { slotMs: 2 * SEC, minViews: 120, zStrong: 4, resolveMs: 16 * SEC, warmupViews: 100 },
  title: { slotMs: 4 * SEC, minViews: 20, warmupViews: 50, priorViews: 40 },
});

/** Out-of-orderness longer than the 32-slot ring: reordered events land before a key's oldest slot without being late. */
export const WIDE_PARAMS: DetectionParams = mergeDetectionParams(FAST_PARAMS, {
  tickMs: SEC,
  outOfOrdernessMs: 45 * SEC,
  sweepMs: 30 * SEC,
  property: { slotMs: SEC, minViews: 150, resolveMs: 10 * SEC, expireMs: 40 * SEC, warmupViews: 200 },
  title: { slotMs: 2 * SEC, minViews: 25, resolveMs: 12 * SEC, expireMs: 50 * SEC, idleEvictMs: 2 * MIN },
});

/** sfc32: small, fast, and its sequence depends only on the seed. */
export class TestRng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = 0x9e3779b9 ^ seed;
    this.b = 0x243f6a88 + Math.imul(seed, 0x85ebca6b);
    this.c = 0xb7e15162 ^ Math.imul(seed, 0xc2b2ae35);
    for (let i = 0; i < 20; i++) this.u32();
  }

  /** A uniform integer in [0, 2^32). */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (((this.c << 21) | (this.c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

/** How a generated stream looks. */
export interface StreamShape {
  seed: number;
  events: number;
  properties: number;
  titlesPerProperty: number;
  /** Mean events per second over all properties while they are active. */
  ratePerSec: number;
  /** Epoch ms of the first event. */
  startMs: number;
}

const ERROR_TYPES = ['NETWORK_ERROR', 'DECODE_ERROR', 'DRM_LICENSE', 'TIMEOUT', 'lecture échouée "ß" \\ 😀'];
const TITLE_WORDS = ['Night', 'Harbor', 'Gold', 'Échos', 'Quiet "Run"', 'Ωmega', 'Drift\\Line', 'Glass', 'North', '東京'];

interface Burst {
  property: number;
  /** Title index, or -1 for the whole property. */
  title: number;
  errorType: string;
  prob: number;
  untilMs: number;
}

/**
 * NDJSON lines of a seeded stream of views: baseline failures of ~1-2% over several error
 * types, bursts of 15-70% failures on one property or title, silences of single titles,
 * of single properties and of the whole stream, jitter, stragglers late by tens of seconds, absent titles and
 * error types (null, "" and missing), and some ISO-8601 timestamps.
 */
export function generateLines(shape: StreamShape): string[] {
  const rng = new TestRng(shape.seed);
  const props = Array.from({ length: shape.properties }, (_, i) => `prop-${shape.seed % 97}-${i}`);
  const titles = props.map((_, p) => Array.from({ length: shape.titlesPerProperty }, (_, t) =>
    `${TITLE_WORDS[(p * 3 + t) % TITLE_WORDS.length]} ${t}`));
  const weight = props.map(() => 0.5 + rng.next());
  const silentUntil = props.map(() => 0);
  const titleSilentUntil = props.map(() => titles[0].map(() => 0));
  const bursts: Burst[] = [];
  const lines: string[] = [];
  let now = shape.startMs;
  let viewId = 0;
  while (lines.length < shape.events) {
    now += Math.max(1, Math.round(-Math.log(1 - rng.next()) * (SEC / shape.ratePerSec)));
    const r = rng.next();
    if (r < 0.00005) now += rng.int(3 * MIN, 12 * MIN); // the whole stream goes quiet
    else if (r < 0.0002) silentUntil[rng.int(0, props.length - 1)] = now + rng.int(30 * SEC, 8 * MIN);
    else if (r < 0.0008) titleSilentUntil[rng.int(0, props.length - 1)][rng.int(0, shape.titlesPerProperty - 1)] = now + rng.int(MIN, 10 * MIN);
    else if (r < 0.0016) {
      const property = rng.int(0, props.length - 1);
      bursts.push({
        property, title: rng.next() < 0.55 ? rng.int(0, shape.titlesPerProperty - 1) : -1,
        errorType: rng.pick(ERROR_TYPES.slice(0, 3)), prob: 0.15 + rng.next() * 0.55,
        untilMs: now + rng.int(15 * SEC, 3 * MIN),
      });
    }
    for (let i = bursts.length - 1; i >= 0; i--) if (bursts[i].untilMs < now) bursts.splice(i, 1);

    let p = pickWeighted(rng, weight);
    if (silentUntil[p] > now) {
      p = pickWeighted(rng, weight);
      if (silentUntil[p] > now) continue;
    }
    let t = rng.next() < 0.85 ? rng.int(0, shape.titlesPerProperty - 1) : -1;
    // A title out of fashion yields its views to the property's other titles or to none.
    if (t >= 0 && titleSilentUntil[p][t] > now) t = rng.int(-1, shape.titlesPerProperty - 1);
    if (t >= 0 && titleSilentUntil[p][t] > now) t = -1;
    const hasTitle = t >= 0;
    let errorType: string | null = null;
    for (const b of bursts) {
      if (b.property === p && (b.title < 0 || b.title === t) && rng.next() < b.prob) errorType = b.errorType;
    }
    if (errorType === null && rng.next() < 0.015) errorType = rng.pick(ERROR_TYPES);

    let ts = now - rng.int(0, 1500);
    const lateDraw = rng.next();
    if (lateDraw < 0.02) ts -= rng.int(2 * SEC, 40 * SEC);
    else if (lateDraw < 0.021) ts -= rng.int(2 * MIN, 20 * MIN); // older than a slot ring
    // Whole seconds put events on tick, slot and sweep boundaries, where >= and > differ.
    if (rng.next() < 0.25) ts -= ts % SEC;

    // At-least-once delivery: ~2% of lines come again within a few hundred lines (a few seconds),
    // byte-identical or (1 in 10) the same view id with a later ts, or on another property (not a
    // duplicate: views are told apart by property and id); some views carry no usable id.
    if (lines.length > 10 && rng.next() < 0.02) {
      const back = lines[lines.length - 1 - rng.int(0, Math.min(300, lines.length - 1))];
      const how = rng.next();
      if (how < 0.85) lines.push(back);
      else {
        const o = JSON.parse(back) as Record<string, unknown>;
        if (how < 0.93) lines.push(JSON.stringify({ ...o, ts: typeof o.ts === 'number' ? o.ts + (rng.next() < 0.5 ? 1 : rng.int(1, 5 * SEC)) : o.ts }));
        else lines.push(JSON.stringify({ ...o, property_id: props[(props.indexOf(o.property_id as string) + 1) % props.length] }));
      }
      continue;
    }
    const idDraw = rng.next();
    const id = idDraw < 0.01 ? 12345 : idDraw < 0.02 ? '' : idDraw < 0.03 ? null : `v${shape.seed}-${viewId++}`;
    const rec: Record<string, unknown> = { view_id: id, property_id: props[p] };
    if (hasTitle) rec.video_title = titles[p][t];
    else if (rng.next() < 0.5) rec.video_title = rng.next() < 0.5 ? null : '';
    if (errorType !== null) rec.error_type = errorType;
    else if (rng.next() < 0.3) rec.error_type = rng.next() < 0.5 ? null : '';
    rec.ts = rng.next() < 0.1 ? new Date(ts).toISOString() : ts;
    lines.push(JSON.stringify(rec));
  }
  return lines;
}

/**
 * One property with many rarely played titles (each title's window of 30 views spans minutes) and a
 * property-wide outage at 60% from minute `fromMin` to `toMin`: the setting of a title storm, where
 * title windows still hold the outage after the property's ring no longer does.
 */
export function outageLines(seed: number, startMs: number, fromMin: number, toMin: number, minutes: number, titles = 80, perSec = 6): string[] {
  const rng = new TestRng(seed);
  const lines: string[] = [];
  let t = startMs;
  let id = 0;
  while (t < startMs + minutes * MIN) {
    t += Math.max(1, Math.round(-Math.log(1 - rng.next()) * (SEC / perSec)));
    const m = (t - startMs) / MIN;
    const rec: Record<string, unknown> = { view_id: `o${seed}-${id++}`, property_id: `outage-${seed}`, video_title: `Title ${rng.int(0, titles - 1)}` };
    if (rng.next() < (m >= fromMin && m < toMin ? 0.6 : 0.01)) rec.error_type = 'NETWORK_ERROR';
    rec.ts = t - rng.int(0, 500);
    lines.push(JSON.stringify(rec));
  }
  return lines;
}

function pickWeighted(rng: TestRng, weight: number[]): number {
  let total = 0;
  for (const w of weight) total += w;
  let x = rng.next() * total;
  for (let i = 0; i < weight.length; i++) {
    x -= weight[i];
    if (x < 0) return i;
  }
  return weight.length - 1;
}

/** Decodes a generated line with JSON.parse (numbers are epoch ms, strings ISO-8601; "" and null mean absent). */
export function parseLine(line: string): ReferenceEvent {
  const o = JSON.parse(line) as { property_id: string; video_title?: string | null; error_type?: string | null; ts: number | string; view_id?: unknown };
  const ts = typeof o.ts === 'number' ? o.ts : Date.parse(o.ts);
  // The decoder's view identity: a non-empty string of at most 256 UTF-8 bytes.
  const viewId = typeof o.view_id === 'string' && o.view_id !== '' && Buffer.byteLength(o.view_id) <= 256 ? o.view_id : null;
  return { propertyId: o.property_id, videoTitle: o.video_title || null, errorType: o.error_type || null, ts, viewId };
}

/** A step of a run: a chunk of whole lines, or an idle-source watermark advance. */
export type Step = { lines: string[]; origin?: ChunkOrigin } | { advanceTo: number } | { declare: string[] };

/** Cuts lines into chunks of 1..maxLines lines (some of a single line), with occasional watermark advances between them. */
export function cutSteps(lines: string[], seed: number, maxLines: number, advances = true): Step[] {
  const rng = new TestRng(seed ^ 0x5a5a5a5a);
  const steps: Step[] = [];
  let maxTs = -Infinity;
  for (let i = 0; i < lines.length;) {
    const n = rng.next() < 0.1 ? 1 : rng.int(1, maxLines);
    const chunk = lines.slice(i, i + n);
    i += n;
    steps.push({ lines: chunk });
    for (const l of chunk) maxTs = Math.max(maxTs, parseLine(l).ts);
    if (advances && rng.next() < 0.03) steps.push({ advanceTo: maxTs + rng.int(0, 4 * SEC) });
  }
  return steps;
}

const encoder = new TextEncoder();

/**
 * The lines split into `partitions` by property (as a topic keyed by property is) and delivered as
 * a consumer reads a backlog: chunks of each partition in turn, partition p's chunks p + 1 times as
 * large, so some partitions run ahead of event time while others hold it back; each partition is
 * caught up (live) with its last chunk.
 */
export function partitionedSteps(lines: string[], partitions: number, chunkLines: number): Step[] {
  const parts: string[][] = Array.from({ length: partitions }, () => []);
  for (const l of lines) parts[propertyTag(parseLine(l).propertyId) % partitions].push(l);
  const ids = parts.map((_, p) => `p${p}`);
  const steps: Step[] = [{ declare: ids }];
  const offsets = parts.map(() => 0);
  while (offsets.some((o, p) => o < parts[p].length)) {
    parts.forEach((part, p) => {
      if (offsets[p] >= part.length) return;
      const n = chunkLines * (p + 1);
      const chunk = part.slice(offsets[p], offsets[p] + n);
      offsets[p] += n;
      steps.push({ lines: chunk, origin: { stream: ids[p], live: offsets[p] >= part.length } });
    });
  }
  return steps;
}

/** The event-time state of a run (one clock, as the engine has one): fork it to continue a run twice. */
export interface RunState { clock: EventClock }

/** A replay's clock (no wall clock), as the engine plans a single stream. */
export function newRunState(): RunState {
  return { clock: new EventClock({ ...DEFAULT_CLOCK_OPTIONS }) };
}

/** An independent copy of a run's event-time state. */
export function forkRunState(state: RunState): RunState {
  const copy = newRunState();
  copy.clock.restore(state.clock.state());
  copy.clock.declare([]);
  return copy;
}

/** An idle-source advance to `ts`, planned by the clock; the target to hand the kernel or model, or null. */
function planAdvance(state: RunState, ts: number): number | null {
  const t = state.clock.advanceTarget(ts);
  if (t !== null) state.clock.advanced(t);
  return t;
}

/** Feeds steps to a kernel as one owner would see them (decode with 1 owner, then ingest by the clock's plan); returns its verdicts, not yet finished. */
export function feedKernel(kernel: WasmKernel, steps: Step[], state: RunState = newRunState()): Verdict[] {
  const out: Verdict[] = [];
  for (const step of steps) {
    if ('declare' in step) {
      state.clock.declare(step.declare);
      continue;
    }
    if ('advanceTo' in step) {
      const t = planAdvance(state, step.advanceTo);
      if (t !== null) out.push(...kernel.advance(t));
      continue;
    }
    const d = kernel.decodeChunk(encoder.encode(step.lines.join('\n') + '\n'), 1, 128);
    assert.equal(d.records, step.lines.length, 'every generated line must decode');
    const { plan, endTarget } = state.clock.plan(d.times, d.props, step.origin);
    out.push(...kernel.ingest(d.parts[0], plan, endTarget));
  }
  return out;
}

/** A property's stand-in for the kernel's hash in a plan: any function that tells properties apart will do. */
function propertyTag(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Feeds the same steps to the reference model, one event at a time by the clock's plan; returns its verdicts, not yet finished. */
export function feedModel(model: ReferenceModel, steps: Step[], state: RunState = newRunState()): Verdict[] {
  for (const step of steps) {
    if ('declare' in step) {
      state.clock.declare(step.declare);
      continue;
    }
    if ('advanceTo' in step) {
      const t = planAdvance(state, step.advanceTo);
      if (t !== null) model.advanceWatermark(t);
      continue;
    }
    const events = step.lines.map(parseLine);
    const n = events.length;
    const { plan, endTarget } = state.clock.plan(Float64Array.from(events, (e) => e.ts), Uint32Array.from(events, (e) => propertyTag(e.propertyId)), step.origin);
    events.forEach((e, i) => {
      if (!Number.isNaN(plan[n + i])) model.ingest({ ...e, ts: plan[n + i], sourceTs: e.ts }, plan[i], plan[2 * n + i]);
    });
    if (endTarget !== -Infinity) model.advanceWatermark(endTarget);
  }
  return model.takeVerdicts();
}

/** Verdicts in the engine's total order (a copy). */
export function sorted(verdicts: Verdict[]): Verdict[] {
  return [...verdicts].sort(compareVerdicts);
}

/** Counts verdicts by kind and scope, e.g. { open: 3, 'open/title': 1, ... }. */
export function tally(verdicts: Verdict[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const v of verdicts) {
    t[v.kind] = (t[v.kind] ?? 0) + 1;
    t[`${v.kind}/${v.scope}`] = (t[`${v.kind}/${v.scope}`] ?? 0) + 1;
  }
  return t;
}

/** Deep equality of two sorted verdict lists that names the first difference instead of dumping both lists. */
export function assertSameVerdicts(actual: Verdict[], expected: Verdict[], what: string): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    try {
      assert.deepStrictEqual(actual[i], expected[i]);
    } catch {
      assert.fail(`${what}: first difference at verdict ${i} of ${actual.length} vs ${expected.length}\n`
        + `actual:   ${JSON.stringify(actual[i])}\nexpected: ${JSON.stringify(expected[i])}\n`
        + `previous: ${JSON.stringify(actual[i - 1] ?? null)}`);
    }
  }
  assert.equal(actual.length, expected.length, `${what}: verdict count (first ${n} equal); `
    + `next actual ${JSON.stringify(actual[n] ?? null)}, next expected ${JSON.stringify(expected[n] ?? null)}`);
}
