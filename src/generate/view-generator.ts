import { BackgroundStreams } from './background-streams.ts';
import { dailyCycle } from './daily-cycle.ts';
import { DemoSchedule } from './demo-schedule.ts';
import { buildFieldProfile, nightLevel } from './field-profile.ts';
import { planFieldSchedule } from './field-schedule.ts';
import { resolveGenerateOptions, type GenerateOptions, type ResolvedGenerateOptions } from './generate-options.ts';
import type { IncidentLabel } from './incident-label.ts';
import type { ErrorEffect, InjectedView } from './incident-plan.ts';
import type { ClockSkew, IncidentSchedule } from './incident-schedule.ts';
import { MALFORMED_KINDS, malformedLine } from './malformed-line.ts';
import { Prng, splitmix32 } from './prng.ts';
import { buildPropertyStates, type PropertyState } from './property-state.ts';
import { planRealisticSchedule } from './realistic-schedule.ts';
import { DEMO_PROFILE, REALISTIC_PROFILE, SCALED_RATE_FLOOR_PER_HOUR, type TrafficProfile } from './traffic-profile.ts';
import { buildPropertyFragments, formatViewLine, type PropertyFragments } from './view-line.ts';
import { ViewLineWriter } from './view-line-writer.ts';

/** A deterministic source of NDJSON view lines, pulled in event-time slices. */
export interface ViewGenerator {
  /** Every label scheduled so far, in start order (a finite realistic run knows all of them up front). */
  labels(): IncidentLabel[];
  /**
   * Returns, in generation order, every line not returned yet whose event time is < untilMs (lines
   * carry no '\n'). Generation order is nominal arrival order, so event times are out of order by up
   * to ±2 s and, for ~1 in 20k lines, late by 20-40 s; malformed lines are interleaved. Lines of
   * devices with wrong clocks (field profile) go out at their arrival time whatever their ts says, and
   * duplicated lines 1-60 s after the original.
   */
  nextBatch(untilMs: number): string[];
  /**
   * The same as nextBatch, as UTF-8 bytes with each line followed by '\n' (several times faster when
   * writing files); calls of both kinds can be mixed and share one sequence.
   */
  nextChunk(untilMs: number): { bytes: Buffer; lines: number };
  /** True once a finite run has returned every line; always false for an endless demo. */
  done(): boolean;
}

const TRAFFIC_STREAM = 1;
// Duplicates draw from their own stream: a run with duplicates is the same run plus the repeated lines.
const DUPLICATE_STREAM = 5;
const TICK_MS = 1000;
const HOUR_MS = 3_600_000;
const JITTER_MS = 2000;
const LATE_SHARE = 1 / 20_000;
const LATE_MIN_MS = 20_000;
// Late events sit 20-38 s behind their nominal time; the newest event before them is at most 2 s ahead
// of it, so no line is more than 40 s behind any line emitted before it.
const LATE_SPREAD_MS = 18_000;
const MALFORMED_EVERY = 200_000;
const DUPLICATE_MIN_DELAY_MS = 1000;
const DUPLICATE_MAX_DELAY_MS = 60_000;

/** Creates a generator for the given options (validated; throws RangeError listing every problem). */
export function createGenerator(options: GenerateOptions): ViewGenerator {
  return new SyntheticViewGenerator(resolveGenerateOptions(options));
}

class SyntheticViewGenerator implements ViewGenerator {
  private readonly rng: Prng;
  private readonly startMs: number;
  private readonly endMs: number;
  private readonly cycleAmplitude: number;
  private readonly properties: PropertyState[];
  private readonly fragments: PropertyFragments[];
  private readonly baselineCumulative: Float64Array[];
  private readonly active: ErrorEffect[][];
  private readonly effects: ErrorEffect[];
  private readonly injected: InjectedView[];
  private injectedNext = 0;
  private readonly labelList: IncidentLabel[];
  private readonly demo: DemoSchedule | null;

  private readonly background: BackgroundStreams;
  private tickStartMs: number;
  private tickEndMs: number;
  private nextArrivalMs: number;

  private untilMs = -Infinity;
  // Lines with event time < untilMs go to exactly one of these, depending on the call in progress.
  private out: string[] | null = null;
  private writer: ViewLineWriter | null = null;
  private lastChunkBytes = 0;
  private pendingLines: string[] = [];
  private pendingTs: number[] = [];
  private frontierMs: number;
  private readonly viewIdPrefix: string;
  private readonly viewIdPrefixBytes: Uint8Array;
  private viewCount = 0;
  private nextMalformedAt: number;
  private malformedCount = 0;
  // Field profile: per-tick baselines of night-shift properties, producers with wrong clocks, duplicates.
  private readonly nightShifted: number[] = [];
  private readonly clockSkews: ClockSkew[] = [];
  private readonly duplicateShare: number;
  private readonly dupRng: Prng;
  // Lines to deliver again, sorted by release time (nominal arrival).
  private dupLines: string[] = [];
  private dupTs: number[] = [];
  private dupAt: number[] = [];

  constructor(options: ResolvedGenerateOptions) {
    const field = options.profile === 'field' ? buildFieldProfile(options.seed, options.properties, options.scale) : null;
    const profile: TrafficProfile = field !== null ? field.profile : options.profile === 'demo' ? DEMO_PROFILE : REALISTIC_PROFILE;
    this.rng = new Prng(options.seed, TRAFFIC_STREAM);
    this.startMs = options.startMs;
    this.endMs = options.endMs;
    this.cycleAmplitude = profile.cycleAmplitude;
    this.properties = buildPropertyStates(profile.properties, options.seed, profile.zipfExponent);
    this.effects = [];
    this.labelList = [];
    this.injected = [];
    this.duplicateShare = options.duplicates;
    this.dupRng = new Prng(options.seed, DUPLICATE_STREAM);
    let fixedTitleStreams: IncidentSchedule['fixedTitleStreams'] = [];
    if (options.profile === 'demo') {
      this.demo = new DemoSchedule(this.properties, options.seed, options.scheduleStartMs, this.startMs, this.endMs);
    } else if (field !== null) {
      this.demo = null;
      const plan = planFieldSchedule(this.properties, field.roles, options.seed, this.startMs, options.hours, options.badClocks);
      this.effects.push(...plan.effects);
      this.injected.push(...plan.injected);
      this.labelList.push(...plan.labels);
      this.clockSkews.push(...(plan.clockSkews ?? []));
      for (const p of this.properties) if (p.profile.nightShift !== undefined) this.nightShifted.push(p.index);
    } else {
      this.demo = null;
      const plan = planRealisticSchedule(this.properties, options.seed, this.startMs, options.hours);
      this.effects.push(...plan.effects);
      this.injected.push(...plan.injected);
      this.labelList.push(...plan.labels);
      fixedTitleStreams = plan.fixedTitleStreams;
    }

    // Fragments come after planning, which appends the special titles.
    this.fragments = this.properties.map((p) => buildPropertyFragments(p.profile.id, p.profile.idIsInteger, p.titles));
    this.baselineCumulative = this.properties.map((p) => {
      const cumulative = new Float64Array(p.profile.baselineRatios.length);
      let sum = 0;
      p.profile.baselineRatios.forEach((ratio, i) => (cumulative[i] = sum += ratio));
      return cumulative;
    });
    this.active = this.properties.map(() => []);

    this.background = new BackgroundStreams([
      ...this.properties.map((p) => ({
        propertyIndex: p.index,
        sampler: p.sampler,
        titleIndex: -1,
        // The field profile's sizes already follow the scale.
        viewsPerMs: (p.profile.viewsPerHour * (field === null && p.profile.viewsPerHour >= SCALED_RATE_FLOOR_PER_HOUR ? options.scale : 1)) / HOUR_MS,
        cycled: true,
        phaseMs: (p.profile.utcOffsetHours ?? 0) * HOUR_MS,
      })),
      ...fixedTitleStreams.map((s) => ({ propertyIndex: s.propertyIndex, sampler: null, titleIndex: s.titleIndex, viewsPerMs: s.viewsPerHour / HOUR_MS, cycled: false })),
    ]);

    this.tickStartMs = this.startMs - TICK_MS;
    this.tickEndMs = this.startMs;
    this.nextArrivalMs = this.startMs;
    this.frontierMs = this.startMs;
    this.viewIdPrefix = `v-${splitmix32(options.seed | 0).toString(36).padStart(7, '0').slice(0, 5)}-`;
    this.viewIdPrefixBytes = Buffer.from(this.viewIdPrefix);
    this.nextMalformedAt = 1 + this.rng.int(MALFORMED_EVERY);
  }

  labels(): IncidentLabel[] {
    return this.labelList.slice();
  }

  done(): boolean {
    return this.frontierMs >= this.endMs && this.pendingLines.length === 0;
  }

  nextBatch(untilMs: number): string[] {
    const out: string[] = [];
    this.out = out;
    try {
      this.advance(untilMs);
    } finally {
      this.out = null;
    }
    return out;
  }

  nextChunk(untilMs: number): { bytes: Buffer; lines: number } {
    // Sized from the previous chunk so a steady run rarely grows its buffer.
    const writer = new ViewLineWriter(Math.ceil(this.lastChunkBytes * 1.25));
    this.writer = writer;
    try {
      this.advance(untilMs);
    } finally {
      this.writer = null;
    }
    const bytes = writer.finish();
    this.lastChunkBytes = bytes.length;
    return { bytes, lines: writer.lines };
  }

  private advance(untilMs: number): void {
    if (Number.isNaN(untilMs)) throw new RangeError('untilMs is NaN');
    if (untilMs === Infinity && this.endMs === Infinity) throw new RangeError('an endless run cannot be drained up to Infinity');
    this.untilMs = untilMs;
    // Held lines are older than anything generated now, so releasing them first keeps generation order.
    if (this.pendingLines.length > 0) {
      const lines = this.pendingLines;
      const ts = this.pendingTs;
      let kept = 0;
      for (let i = 0; i < lines.length; i++) {
        if (ts[i] < untilMs) this.emitLine(lines[i]);
        else {
          lines[kept] = lines[i];
          ts[kept] = ts[i];
          kept++;
        }
      }
      lines.length = kept;
      ts.length = kept;
    }
    // No event is more than JITTER_MS ahead of its nominal time, so this covers every event time < untilMs.
    const limit = Math.min(untilMs + JITTER_MS, this.endMs);
    if (limit > this.frontierMs) {
      this.generateUntil(limit);
      this.frontierMs = limit;
    }
  }

  // The draw sequence depends only on nominal time, never on `limit`, so the generation order is the
  // same however the caller slices the run.
  private generateUntil(limitMs: number): void {
    const rng = this.rng;
    const injected = this.injected;
    for (;;) {
      if (this.nextArrivalMs >= this.tickEndMs) {
        if (this.tickEndMs >= limitMs) break;
        // Views injected late in a tick go out before the next tick draws, as they would when a
        // slice ends there: otherwise the draw order, and so the data, would depend on the slicing.
        while (this.injectedNext < injected.length && injected[this.injectedNext].atMs < this.tickEndMs) this.emitInjected(injected[this.injectedNext++]);
        this.startTick(this.tickEndMs);
        // Poisson arrivals are memoryless, so restarting the gap at each tick with its new rate is exact.
        this.nextArrivalMs = this.tickStartMs - Math.log(1 - rng.next()) / this.background.totalRate;
        continue;
      }
      const nominalMs = this.nextArrivalMs;
      if (nominalMs >= limitMs) break;
      while (this.injectedNext < injected.length && injected[this.injectedNext].atMs <= nominalMs) this.emitInjected(injected[this.injectedNext++]);
      if (this.dupAt.length > 0) this.releaseDuplicates(nominalMs);
      this.emitBackground(nominalMs);
      this.nextArrivalMs = nominalMs - Math.log(1 - rng.next()) / this.background.totalRate;
    }
    while (this.injectedNext < injected.length && injected[this.injectedNext].atMs < limitMs) this.emitInjected(injected[this.injectedNext++]);
    // Duplicates due after the run's end are never delivered.
    if (this.dupAt.length > 0) this.releaseDuplicates(limitMs);
  }

  private startTick(tickStartMs: number): void {
    this.tickStartMs = tickStartMs;
    this.tickEndMs = tickStartMs + TICK_MS;
    const amplitude = this.cycleAmplitude;
    this.background.setCycle(tickStartMs + TICK_MS / 2, (atMs) => dailyCycle(atMs, amplitude));
    for (const i of this.nightShifted) this.setNightBaseline(i, tickStartMs + TICK_MS / 2);

    if (this.demo !== null) {
      this.demo.extendTo(this.tickEndMs + JITTER_MS, this.effects, this.labelList);
      // An endless demo must not accumulate effects: drop those no late event can reach any more.
      if (this.effects.length > 8) {
        const horizon = tickStartMs - LATE_MIN_MS - LATE_SPREAD_MS - 2 * JITTER_MS;
        const live = this.effects.filter((f) => f.endMs > horizon);
        this.effects.length = 0;
        this.effects.push(...live);
      }
    }
    // Events of this tick have event times within [tick - 40 s, tick end + 2 s].
    const fromMs = tickStartMs - LATE_MIN_MS - LATE_SPREAD_MS - JITTER_MS;
    const toMs = this.tickEndMs + JITTER_MS;
    for (const list of this.active) list.length = 0;
    for (const f of this.effects) if (f.endMs > fromMs && f.startMs < toMs) this.active[f.propertyIndex].push(f);
  }

  private emitBackground(nominalMs: number): void {
    const rng = this.rng;
    const stream = this.background.pick(rng.next());
    const propertyIndex = stream.propertyIndex;
    const titleIndex = stream.sampler !== null ? stream.sampler.sample(rng.next()) : stream.titleIndex;
    const eventMs = this.eventTime(nominalMs);
    const error = this.decideError(propertyIndex, titleIndex, eventMs);
    for (const skew of this.clockSkews) {
      if (skew.propertyIndex === propertyIndex && nominalMs >= skew.fromMs && nominalMs < skew.toMs && rng.next() < skew.share) {
        this.emitView(propertyIndex, titleIndex, error, eventMs + skew.offsetMs, false, nominalMs);
        return;
      }
    }
    this.emitView(propertyIndex, titleIndex, error, eventMs, false);
  }

  private emitInjected(view: InjectedView): void {
    const offset = view.tsOffsetMs ?? 0;
    if (offset !== 0) this.emitView(view.propertyIndex, view.titleIndex, view.errorIndex, view.atMs + offset, true, view.atMs);
    else this.emitView(view.propertyIndex, view.titleIndex, view.errorIndex, view.atMs, true);
  }

  /** Sets a night-shift property's baseline for the tick at `atMs` (its error ratio times 1..factor by the local night). */
  private setNightBaseline(propertyIndex: number, atMs: number): void {
    const profile = this.properties[propertyIndex].profile;
    const shift = profile.nightShift!;
    const level = nightLevel(atMs, profile.utcOffsetHours ?? 0);
    const cumulative = this.baselineCumulative[propertyIndex];
    let sum = 0;
    profile.baselineRatios.forEach((ratio, k) => (cumulative[k] = sum += k === shift.errorIndex ? ratio * (1 + (shift.factor - 1) * level) : ratio));
  }

  private eventTime(nominalMs: number): number {
    const rng = this.rng;
    const base = Math.floor(nominalMs);
    if (rng.next() < LATE_SHARE && base - this.startMs >= LATE_MIN_MS + LATE_SPREAD_MS + JITTER_MS) {
      return base - LATE_MIN_MS - rng.int(LATE_SPREAD_MS + 1);
    }
    const eventMs = base + rng.int(2 * JITTER_MS + 1) - JITTER_MS;
    // Reflect at the run's edges so every event time lies inside [startMs, endMs).
    if (eventMs < this.startMs) return 2 * this.startMs - eventMs - 1;
    if (eventMs >= this.endMs) return 2 * this.endMs - eventMs - 1;
    return eventMs;
  }

  private decideError(propertyIndex: number, titleIndex: number, eventMs: number): number {
    let u = this.rng.next();
    const effects = this.active[propertyIndex];
    for (let i = 0; i < effects.length; i++) {
      const f = effects[i];
      if (eventMs >= f.startMs && eventMs < f.endMs && (f.titleIndex < 0 || f.titleIndex === titleIndex)) {
        const probability = f.endProbability === undefined ? f.probability
          : f.probability + ((f.endProbability - f.probability) * (eventMs - f.startMs)) / (f.endMs - f.startMs);
        if (u < probability) return f.errorIndex;
        // Reuse the rest of the uniform for the baseline so it stays independent of the effect.
        u = (u - probability) / (1 - probability);
        break;
      }
    }
    const cumulative = this.baselineCumulative[propertyIndex];
    for (let k = 0; k < cumulative.length; k++) if (u < cumulative[k]) return k;
    return -1;
  }

  /**
   * Writes one view. A line goes out once `untilMs` passes its event time, except that a device with a
   * wrong clock (`arrivalMs` given) delivers it at its arrival, whatever its ts says.
   */
  private emitView(propertyIndex: number, titleIndex: number, errorIndex: number, eventMs: number, keepTitle: boolean, arrivalMs?: number): void {
    const viewNumber = this.viewCount++;
    const forms = this.rng.nextU32();
    const fragments = this.fragments[propertyIndex];
    const dueMs = arrivalMs ?? eventMs;
    if (dueMs < this.untilMs && this.writer !== null) {
      this.writer.writeView(fragments, titleIndex, errorIndex, eventMs, this.viewIdPrefixBytes, viewNumber, forms, keepTitle);
    } else {
      this.push(formatViewLine(fragments, titleIndex, errorIndex, eventMs, this.viewIdPrefix, viewNumber, forms, keepTitle), dueMs);
    }
    if (this.duplicateShare > 0 && this.dupRng.next() < this.duplicateShare) {
      const releaseAt = (arrivalMs ?? eventMs) + DUPLICATE_MIN_DELAY_MS + this.dupRng.int(DUPLICATE_MAX_DELAY_MS - DUPLICATE_MIN_DELAY_MS + 1);
      this.holdDuplicate(formatViewLine(fragments, titleIndex, errorIndex, eventMs, this.viewIdPrefix, viewNumber, forms, keepTitle), dueMs, releaseAt);
    }
    if (this.viewCount === this.nextMalformedAt) this.emitMalformed(eventMs);
  }

  /** Keeps a copy of a line for delivery again at nominal time `releaseAt` (sorted insert: the queue is short). */
  private holdDuplicate(line: string, dueMs: number, releaseAt: number): void {
    let i = this.dupAt.length;
    while (i > 0 && this.dupAt[i - 1] > releaseAt) i--;
    this.dupLines.splice(i, 0, line);
    this.dupTs.splice(i, 0, dueMs);
    this.dupAt.splice(i, 0, releaseAt);
  }

  /** Delivers the held duplicates due before nominal time `t`. */
  private releaseDuplicates(t: number): void {
    let n = 0;
    while (n < this.dupAt.length && this.dupAt[n] < t) {
      this.push(this.dupLines[n], this.dupTs[n]);
      n++;
    }
    if (n > 0) {
      this.dupLines.splice(0, n);
      this.dupTs.splice(0, n);
      this.dupAt.splice(0, n);
    }
  }

  private emitMalformed(eventMs: number): void {
    const rng = this.rng;
    const kind = MALFORMED_KINDS[this.malformedCount++ % MALFORMED_KINDS.length];
    const property = this.properties[rng.int(this.properties.length)];
    const fragments = this.fragments[property.index];
    const valid = formatViewLine(fragments, property.sampler.sample(rng.next()), -1, eventMs, this.viewIdPrefix, this.viewCount++, rng.nextU32(), true);
    this.push(malformedLine(kind, valid, fragments.idFragment, rng), eventMs);
    this.nextMalformedAt = this.viewCount + Math.round(MALFORMED_EVERY * (0.75 + rng.next() / 2));
  }

  private push(line: string, eventMs: number): void {
    if (eventMs < this.untilMs) this.emitLine(line);
    else {
      this.pendingLines.push(line);
      this.pendingTs.push(eventMs);
    }
  }

  private emitLine(line: string): void {
    if (this.writer !== null) this.writer.writeLine(line);
    else this.out!.push(line);
  }
}
