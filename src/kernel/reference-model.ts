// A plain TypeScript model of the detection kernel (assembly/detector.ts and
// assembly/ingest.ts) for the differential tests. It keeps keys and cells in
// Maps instead of linear memory, but repeats every floating-point operation in
// the kernel's order (and the same folding/decay branching, since folding
// slot by slot and decaying an empty stretch with one powi round differently),
// so that its verdicts are bit-identical. Key and cell caps are not modelled.
import type { DetectionParams, ScopeParams } from './detection-params.ts';
import { baselineDecay, effectiveScopes, fastDecay, fastRisePerSlot, fastShare } from './detection-params.ts';
import type { Scope, Verdict, VerdictKind } from './verdict.ts';
import { floorDiv, powi, wilsonLower, wilsonUpper } from './reference-stats.ts';

const SLOTS = 32;

interface RefCell {
  errorType: string;
  key: RefKey;
  open: boolean;
  /** Baseline frozen: set while the window is suspect, and through an incident. */
  hot: boolean;
  baseViews: number;
  baseFails: number;
  openedAt: number;
  calmSince: number;
  openThr: number;
  openBase: number;
  impacted: number;
  lastRatio: number;
  evidence: number;
  lastEval: number;
  pending: number;
  ring: number[];
  /** Property cells (the kernel's cell extension): the fast baseline, its level, and the newest slot at which the cell was hot. */
  fastViews: number;
  fastFails: number;
  fastLevel: number;
  hotLast: number;
}

interface RefKey {
  scope: Scope;
  propertyId: string;
  videoTitle: string | null;
  mapKey: string;
  parent: RefKey | null;
  dirty: boolean;
  head: number;
  folded: number;
  lastTs: number;
  baseViews: number;
  children: number;
  ring: number[];
  cells: Map<string, RefCell>;
}

/** One decoded input event, as the kernel's decoder yields it ("" and null both mean absent). */
export interface ReferenceEvent {
  propertyId: string;
  videoTitle: string | null;
  errorType: string | null;
  ts: number;
  /** The view id duplicates are recognized by (a non-empty string of at most 256 UTF-8 bytes), else null/absent. */
  viewId?: string | null;
  /**
   * The record's own event time as written, when `ts` is another (the clock's for a record from the
   * future, clamped; the model's for a late one; the hold time for a held one, which the kernel writes
   * into its copy); a copy repeats this one.
   */
  sourceTs?: number;
}

/** Counters comparable with WasmKernel.counters(). */
export interface ReferenceCounters {
  events: number;
  late: number;
  lateDropped: number;
  evicted: number;
  duplicates: number;
  keys: number;
  cells: number;
  open: number;
}

/** Variations of the model that must not change its verdicts (used to check kernel shortcuts). */
export interface ReferenceModelOptions {
  /** Evaluate every tick of a stretch with no dirty key and no open cell instead of skipping to its end, as the kernel does. */
  evaluateEmptyStretches?: boolean;
}

/** One property's parameters of both scopes and their baseline decays (a kernel profile). */
interface RefProfile {
  property: ScopeParams;
  title: ScopeParams;
  decay: Record<Scope, number>;
  /** The property's fast-baseline decay per slot (0: off), a new cell's fast views per slow view, the level's rise per slot. */
  fastDecay: number;
  fastShare: number;
  fastRise: number;
  /** ln of the evidence tests' ratios, as the kernel receives them. */
  logLow: number;
  logHigh: number;
}

const ringIndex = (slot: number): number => ((slot % SLOTS) + SLOTS) % SLOTS;

/** Single-threaded model of the kernel over decoded events in input order; its verdicts must equal the kernel's bit for bit. */
export class ReferenceModel {
  private p: DetectionParams;
  private readonly profiles = new Map<string, RefProfile>();
  private readonly evaluateEmptyStretches: boolean;
  private readonly properties = new Map<string, RefKey>();
  private readonly titles = new Map<string, RefKey>();
  private dirty: RefKey[] = [];
  private readonly open = new Set<RefCell>();
  private nextTick: number | null = null;
  /** Events not yet due (a partition ahead of event time), by event time (stable). */
  private held: ReferenceEvent[] = [];
  private maxTs: number | null = null;
  private verdicts: Verdict[] = [];
  private readonly stats = { events: 0, late: 0, lateDropped: 0, evicted: 0, duplicates: 0 };
  /** The duplicate filter (kernel: assembly/dedup.ts), exact and without a capacity: record -> its event time. */
  private dedupHorizon = 0;
  private readonly dedupSeen = new Map<string, number>();
  /**
   * How often each way of deciding was taken (the kernel decides identically, so tests use these to
   * show a stream exercised a path): openings by window, recent window and accumulated evidence;
   * property evaluations whose reference was the fast level; title evaluations whose window the span
   * guard cut; evaluations of open incidents that were calm only because the bar had moved.
   */
  readonly paths = { openWindow: 0, openRecent: 0, openEvidence: 0, openTrend: 0, hotBelowOpen: 0, fastLifted: 0, spanGuarded: 0, calmOnMovedBar: 0 };

  constructor(params: DetectionParams, options: ReferenceModelOptions = {}) {
    this.p = params;
    this.evaluateEmptyStretches = options.evaluateEmptyStretches ?? false;
  }

  /** Changes the parameters (not the slot or tick geometry), as WasmKernel.setParams does between chunks. */
  setParams(params: DetectionParams): void {
    this.p = params;
    this.profiles.clear();
  }

  /**
   * Applies one event at its time `e.ts` after advancing event time to `target`: the engine's plan
   * for it (src/engine/event-clock.ts; for one ordered stream, the highest event time up to and
   * including this one). `mark` is its own partition's mark (the target for one stream): an event
   * older than the last tick that mark reached is late (the kernel's ingestPacked).
   */
  ingest(e: ReferenceEvent, target: number, mark = target): void {
    // -Infinity: event time may not advance at all yet (another partition has delivered nothing).
    if (target !== -Infinity) {
      this.advanceTo(target);
      if (this.maxTs === null || target > this.maxTs) this.maxTs = target;
    }
    let ev = e;
    let late = false;
    if (mark !== -Infinity) {
      const seen = floorDiv(mark - this.p.outOfOrdernessMs, this.p.tickMs) * this.p.tickMs;
      if (e.ts < seen) {
        this.stats.late++;
        if (this.p.latePolicy === 'drop') {
          this.stats.lateDropped++;
          return;
        }
        late = true;
        ev = { ...e, ts: seen, sourceTs: e.sourceTs ?? e.ts };
      }
    }
    // Not due before the next tick: held until a tick it belongs before (the kernel's hold).
    if (this.nextTick === null || ev.ts >= this.nextTick) {
      let i = this.held.length;
      while (i > 0 && this.held[i - 1].ts > ev.ts) i--;
      // The kernel writes the time it holds a record at into the copy's own time, and forgets the view
      // id of one held at another time than its own (late, or from the future).
      this.held.splice(i, 0, { ...ev, sourceTs: ev.ts, viewId: ev.ts === (ev.sourceTs ?? ev.ts) ? ev.viewId : null });
      return;
    }
    this.count(ev, late);
  }

  /** Counts the events held until now whose time is before `bound`. */
  private release(bound: number): void {
    let n = 0;
    while (n < this.held.length && this.held[n].ts < bound) n++;
    if (n === 0) return;
    const due = this.held.splice(0, n);
    for (const e of due) this.count(e, false);
  }

  /** Counts an event (`counted`: found late by its mark already). */
  private count(e: ReferenceEvent, counted: boolean): void {
    // Not a record from the future (counted before its own time); a late one is matched at its own time (kernel: isDuplicateRecord).
    const own = e.sourceTs ?? e.ts;
    if (e.ts >= own && this.isDuplicate(e, own)) return;
    let ts = e.ts;
    const tick = this.p.tickMs;
    if (this.nextTick !== null && ts < this.nextTick - tick) {
      if (!counted) {
        this.stats.late++;
        if (this.p.latePolicy === 'drop') {
          this.stats.lateDropped++;
          return;
        }
      }
      ts = this.nextTick - tick;
    }
    this.stats.events++;
    const err = e.errorType ? e.errorType : null;
    let pk = this.properties.get(e.propertyId);
    if (!pk) {
      pk = newKey('property', e.propertyId, null, e.propertyId, null);
      this.properties.set(e.propertyId, pk);
    }
    this.touch(pk, ts, err);
    if (!e.videoTitle) return;
    const tkey = JSON.stringify([e.propertyId, e.videoTitle]);
    let tk = this.titles.get(tkey);
    if (!tk) {
      tk = newKey('title', e.propertyId, e.videoTitle, tkey, pk);
      pk.children++;
      this.titles.set(tkey, tk);
    }
    this.touch(tk, ts, err);
  }

  /** Advances event time to `maxTs` with no new events (an idle source). */
  advanceWatermark(maxTs: number): void {
    this.advanceTo(maxTs);
    if (this.maxTs === null || maxTs > this.maxTs) this.maxTs = maxTs;
  }

  /** End of input: evaluates through the first tick after the latest event time seen, as the kernel's finish() does. */
  finish(): void {
    if (this.maxTs === null) return;
    const tick = this.p.tickMs;
    this.advanceTo((floorDiv(this.maxTs, tick) + 1) * tick + this.p.outOfOrdernessMs);
  }

  /** Returns the verdicts produced since the previous call, in production order. */
  takeVerdicts(): Verdict[] {
    const v = this.verdicts;
    this.verdicts = [];
    return v;
  }

  /** The model's counters, named as in WasmKernel.counters(). */
  counters(): ReferenceCounters {
    let cells = 0;
    for (const k of this.properties.values()) cells += k.cells.size;
    for (const k of this.titles.values()) cells += k.cells.size;
    return { ...this.stats, keys: this.properties.size + this.titles.size, cells, open: this.open.size };
  }

  /** The cells whose baseline is frozen (hot), as `scope|property|title|error type`, sorted: what a kernel's dump must show. */
  hotCells(): string[] {
    const out: string[] = [];
    for (const keys of [this.properties, this.titles]) {
      for (const k of keys.values()) {
        for (const c of k.cells.values()) if (c.hot) out.push(`${k.scope}|${k.propertyId}|${k.videoTitle ?? ''}|${c.errorType}`);
      }
    }
    return out.sort();
  }

  /**
   * Whether the event repeats a record (property, view id, event time) whose original is within the
   * horizon of the watermark (counted, then dropped); otherwise remembers it (kernel: assembly/dedup.ts).
   */
  private isDuplicate(e: ReferenceEvent, ts: number): boolean {
    if (!e.viewId) return false;
    const horizon = this.p.dedupHorizonMs;
    if (horizon <= 0) return false;
    if (horizon !== this.dedupHorizon) {
      this.dedupSeen.clear();
      this.dedupHorizon = horizon;
    }
    if (this.nextTick !== null) {
      const liveFrom = this.nextTick - horizon;
      if (ts < liveFrom) return false;
      // Forget what can no longer match (the kernel's sweep), now and then.
      if (this.dedupSeen.size > 4096) for (const [k, t] of this.dedupSeen) if (t < liveFrom) this.dedupSeen.delete(k);
    }
    const key = `${e.propertyId}\u0000${e.viewId}\u0000${ts}`;
    const seen = this.dedupSeen.get(key);
    if (seen !== undefined && (this.nextTick === null || seen >= this.nextTick - horizon)) {
      this.stats.duplicates++;
      return true;
    }
    this.dedupSeen.set(key, ts);
    return false;
  }

  private sp(scope: Scope): ScopeParams {
    return this.p[scope];
  }

  /** The parameters of a key's property (the kernel's profile of its property key). */
  private prof(key: RefKey): RefProfile {
    let pr = this.profiles.get(key.propertyId);
    if (!pr) {
      const eff = effectiveScopes(this.p, key.propertyId);
      // The kernel receives these very doubles through profileSlots.
      pr = {
        ...eff, decay: { property: baselineDecay(eff.property), title: baselineDecay(eff.title) },
        fastDecay: fastDecay(eff.property), fastShare: fastShare(eff.property), fastRise: fastRisePerSlot(eff.property),
        logLow: Math.log(eff.property.cusumRatioLow), logHigh: Math.log(eff.property.cusumRatioHigh),
      };
      this.profiles.set(key.propertyId, pr);
    }
    return pr;
  }

  private advanceTo(maxTs: number): void {
    const tick = this.p.tickMs;
    const ooo = this.p.outOfOrdernessMs;
    const wm = maxTs - ooo;
    if (this.nextTick === null) {
      // Ticks start after the first event, or after the earliest one held before (the kernel's advanceTo).
      const first = this.held.length > 0 ? Math.min(this.held[0].ts, maxTs) : maxTs;
      this.nextTick = (floorDiv(first - ooo, tick) + 1) * tick;
    }
    const sweepMs = this.p.sweepMs;
    let next = this.nextTick;
    while (next <= wm) {
      this.nextTick = next;
      this.release(next);
      if (!this.evaluateEmptyStretches && this.dirty.length === 0 && this.open.size === 0) {
        let last = floorDiv(wm, tick) * tick;
        // Not past the tick before which the earliest held event is due.
        if (this.held.length > 0) last = Math.min(last, floorDiv(this.held[0].ts, tick) * tick);
        if (last > next) {
          const s = floorDiv(last, sweepMs) * sweepMs;
          if (s >= next) this.sweep(s);
          next = last + tick;
          continue;
        }
      }
      this.evaluateTick(next);
      next += tick;
    }
    this.nextTick = next;
    this.release(next);
  }

  private touch(key: RefKey, ts: number, err: string | null): void {
    const slot = this.rotateTo(key, floorDiv(ts, this.sp(key.scope).slotMs));
    const i = ringIndex(slot);
    key.ring[i]++;
    if (ts > key.lastTs) key.lastTs = ts;
    if (!key.dirty) {
      key.dirty = true;
      this.dirty.push(key);
    }
    if (err === null) return;
    let c = key.cells.get(err);
    if (!c) {
      c = newCell(key, err, key.scope === 'property' ? this.prof(key).fastShare : 0);
      key.cells.set(err, c);
    }
    c.ring[i]++;
    c.pending++;
  }

  private rotateTo(key: RefKey, slot: number): number {
    const head = key.head;
    if (head < 0) {
      key.head = slot;
      key.folded = slot - 1;
      return slot;
    }
    if (slot > head) {
      this.foldTo(key, slot - SLOTS);
      const from = slot - head > SLOTS ? slot - SLOTS + 1 : head + 1;
      for (let s = from; s <= slot; s++) {
        const i = ringIndex(s);
        key.ring[i] = 0;
        for (const c of key.cells.values()) c.ring[i] = 0;
      }
      key.head = slot;
      return slot;
    }
    // Too old for the ring: counted in its oldest slot.
    const oldest = head - SLOTS + 1;
    return slot < oldest ? oldest : slot;
  }

  private foldTo(key: RefKey, upto: number): void {
    if (upto <= key.folded) return;
    const pp = this.prof(key);
    const d = pp.decay[key.scope];
    const fd = key.scope === 'property' ? pp.fastDecay : 0;
    const head = key.head;
    const lo = head - SLOTS + 1;
    let s = key.folded + 1;
    while (s <= upto) {
      if (s < lo || s > head) {
        const e = s < lo ? (upto < lo - 1 ? upto : lo - 1) : upto;
        decayKey(key, powi(d, e - s + 1), fd > 0 ? powi(fd, e - s + 1) : 0);
        s = e + 1;
      } else {
        foldSlot(key, s, d, fd, pp);
        s++;
      }
    }
    key.folded = upto;
  }

  private evaluateTick(t: number): void {
    const dirty = this.dirty;
    this.dirty = [];
    for (const k of dirty) if (k.scope === 'property') this.evalKey(k, t);
    for (const k of dirty) {
      if (k.scope === 'title') this.evalKey(k, t);
      k.dirty = false;
    }
    // A title's threshold reads its property's latest ratio: properties first.
    this.evalOpen(t, 'property');
    this.evalOpen(t, 'title');
    if (t % this.p.sweepMs === 0) this.sweep(t);
  }

  private evalKey(key: RefKey, t: number): void {
    this.foldTo(key, floorDiv(t, this.sp(key.scope).slotMs) - 1);
    for (const c of key.cells.values()) this.evalCell(c, t);
  }

  private evalOpen(t: number, scope: Scope): void {
    for (const c of [...this.open]) {
      if (c.lastEval === t || c.key.scope !== scope) continue;
      this.foldTo(c.key, floorDiv(t, this.sp(scope).slotMs) - 1);
      this.evalCell(c, t);
    }
  }

  private evalCell(c: RefCell, t: number): void {
    c.lastEval = t;
    const k = c.key;
    const scope = k.scope;
    const pp = this.prof(k);
    const sp = pp[scope];
    const slotMs = sp.slotMs;
    const minViews = sp.minViews;

    let notBefore = -Number.MAX_SAFE_INTEGER;
    let pc: RefCell | undefined;
    if (scope === 'title') {
      pc = k.parent!.cells.get(c.errorType);
      const pSlotMs = this.p.property.slotMs;
      if (pc && pc.evidence >= 0) notBefore = floorDiv((pc.evidence + 1) * pSlotMs + slotMs - 1, slotMs);
      // Nor into a stretch where the property was hot that its ring no longer holds (kernel: cellFigures).
      if (pc && pp.title.spanGuard > 0 && pc.hotLast >= 0) {
        const ringLo = k.parent!.head - SLOTS + 1;
        const from = pc.hotLast >= ringLo ? ringLo : pc.hotLast + 1;
        const nb = floorDiv(from * pSlotMs + slotMs - 1, slotMs);
        if (nb > notBefore) {
          if (nb > k.head - SLOTS + 1 && nb > c.evidence + 1) this.paths.spanGuarded++;
          notBefore = nb;
        }
      }
    }

    const w = windowOf(k, c, minViews, notBefore);
    const oldest = w.oldest;
    const n = w.views;
    const x = w.fails;
    const ratio = n > 0 ? x / n : 0;
    c.lastRatio = ratio;
    let spanMs = t - oldest * slotMs;
    if (spanMs < 1) spanMs = 1;
    const viewsPerHour = n * 3600000 / spanMs;

    const resolveMs = sp.resolveMs;
    const r = windowOf(k, c, sp.resolveMinViews, notBefore, floorDiv(t - resolveMs, slotMs));
    const rn = r.views;
    const rx = r.fails;
    const rRatio = rn > 0 ? rx / rn : 0;
    let rSpanMs = t - r.oldest * slotMs;
    if (rSpanMs < 1) rSpanMs = 1;
    const rViewsPerHour = rn * 3600000 / rSpanMs;

    let base = 0;
    let warm = false;
    let reference = 0;
    let recentReference = 0;
    const nb = c.baseViews;
    const xb = c.baseFails;
    if (scope === 'property') {
      base = propertyReference(pp, c);
      if (pp.fastDecay > 0 && base > (pp.property.baselineZ > 0 ? wilsonUpper(c.baseFails, c.baseViews, pp.property.baselineZ) : (c.baseViews > 0 ? c.baseFails / c.baseViews : 0))) this.paths.fastLifted++;
      warm = k.baseViews >= pp.property.warmupViews;
      reference = base;
      recentReference = base;
    } else {
      const parent = k.parent!;
      let parentBase = 0;
      let parentRatio = 0;
      let parentRecentRatio = 0;
      if (pc) {
        parentBase = propertyReference(pp, pc);
        const pSlotMs = this.p.property.slotMs;
        parentRatio = spanRatio(parent, pc, floorDiv(oldest * slotMs, pSlotMs));
        parentRecentRatio = spanRatio(parent, pc, floorDiv(r.oldest * slotMs, pSlotMs));
      }
      const prior = pp.title.priorViews;
      base = (xb + prior * parentBase) / (nb + prior);
      warm = parent.baseViews >= pp.property.warmupViews;
      reference = base > parentRatio ? base : parentRatio;
      recentReference = base > parentRecentRatio ? base : parentRecentRatio;
    }
    const thr = thresholdOf(sp, reference);
    const recentThr = thresholdOf(sp, recentReference);

    if (!c.open) {
      c.pending = 0;
      const suspect = wilsonLower(x, n, sp.zOpen) > thr;
      const recentSuspect = wilsonLower(rx, rn, sp.zOpen) > recentThr;
      // zHot below zOpen: thin first failures keep out of a thin baseline (kernel: evalCell).
      c.hot = warm && (suspect || recentSuspect
        || (sp.zHot < sp.zOpen && (wilsonLower(x, n, sp.zHot) > thr || wilsonLower(rx, rn, sp.zHot) > recentThr)));
      if (c.hot && !suspect && !recentSuspect) this.paths.hotBelowOpen++;
      if (c.hot && scope === 'property') c.hotLast = k.head;
      if (!warm) return;
      const enough = (fails: number, failSlots: number): boolean => fails >= sp.minFailures || (sp.minFailingSlots > 0 && failSlots >= sp.minFailingSlots);
      const byWindow = suspect && enough(x, w.failSlots) && (n >= minViews || wilsonLower(x, n, sp.zStrong) > thr);
      const byRecent = enough(rx, r.failSlots) && wilsonLower(rx, rn, sp.zStrong) > recentThr;
      const ev = !byWindow && !byRecent && scope === 'property' ? evidenceScan(k, c, pp, thr, sp.minFailures, t) : null;
      if (!byWindow && !byRecent && ev === null) return;
      c.hot = true;
      if (scope === 'property') c.hotLast = k.head;
      c.open = true;
      c.openedAt = t;
      c.openThr = byRecent && !byWindow ? recentThr : thr;
      c.openBase = base;
      c.calmSince = -1;
      this.open.add(c);
      if (byWindow) this.paths.openWindow++;
      else if (byRecent) this.paths.openRecent++;
      else if (ev!.trend) this.paths.openTrend++;
      else this.paths.openEvidence++;
      if (byWindow) {
        c.impacted = x;
        this.emit('open', c, t, ratio, thr, base, n, x, spanMs, viewsPerHour, x, t);
      } else if (byRecent) {
        c.impacted = rx;
        this.emit('open', c, t, rRatio, recentThr, base, rn, rx, rSpanMs, rViewsPerHour, rx, t);
      } else {
        let eSpanMs = t - ev!.oldest * slotMs;
        if (eSpanMs < 1) eSpanMs = 1;
        c.impacted = ev!.fails;
        this.emit('open', c, t, ev!.fails / ev!.views, thr, base, ev!.views, ev!.fails, eSpanMs, ev!.views * 3600000 / eSpanMs, ev!.fails, t);
      }
      return;
    }

    if (scope === 'property') c.hotLast = k.head;
    const impacted = c.impacted + c.pending;
    c.impacted = impacted;
    c.pending = 0;
    let kind: VerdictKind = 'update';
    if (t - k.lastTs >= sp.expireMs) {
      kind = 'expire';
    } else {
      // The bar can move during an incident with the fast baseline (kernel: evalCell).
      let calmThr = c.openThr;
      if (scope === 'property' && pp.fastDecay > 0 && recentThr > calmThr) calmThr = recentThr;
      const upper = wilsonUpper(rx, rn, sp.zResolve);
      const calm = rn > 0 && upper < calmThr;
      if (calm && upper >= c.openThr) this.paths.calmOnMovedBar++;
      if (calm) {
        if (c.calmSince < 0) c.calmSince = t;
        if (t - c.calmSince >= resolveMs) kind = 'resolve';
      } else {
        c.calmSince = -1;
      }
    }
    if (kind !== 'update') {
      c.open = false;
      c.hot = false;
      // Slots up to here showed the incident: they must not count as evidence for the next one.
      c.evidence = k.head;
      this.open.delete(c);
    }
    this.emit(kind, c, t, rRatio, c.openThr, c.openBase, rn, rx, rSpanMs, rViewsPerHour, impacted, c.openedAt);
  }

  private sweep(t: number): void {
    // Titles first: a property may go in the same sweep as its last title.
    this.sweepScope(t, 'title', this.titles);
    this.sweepScope(t, 'property', this.properties);
  }

  private sweepScope(t: number, scope: Scope, keys: Map<string, RefKey>): void {
    for (const k of [...keys.values()]) {
      if (k.dirty) continue;
      if (t - k.lastTs < this.prof(k)[scope].idleEvictMs) continue;
      if (k.children > 0 || [...k.cells.values()].some((c) => c.open)) continue;
      if (k.parent) k.parent.children--;
      keys.delete(k.mapKey);
      this.stats.evicted++;
    }
  }

  private emit(
    kind: VerdictKind, c: RefCell, t: number, errorRatio: number, thresholdRatio: number, baselineRatio: number,
    windowViews: number, windowFailures: number, windowSpanMs: number, viewsPerHour: number,
    impactedViews: number, openedAtMs: number,
  ): void {
    const k = c.key;
    this.verdicts.push({
      kind, scope: k.scope, propertyId: k.propertyId, videoTitle: k.videoTitle, errorType: c.errorType,
      atMs: t, errorRatio, thresholdRatio, baselineRatio, windowViews, windowFailures, windowSpanMs,
      minWindowViews: this.prof(k)[k.scope].minViews, viewsPerHour, impactedViews, openedAtMs,
    });
  }
}

function newKey(scope: Scope, propertyId: string, videoTitle: string | null, mapKey: string, parent: RefKey | null): RefKey {
  return {
    scope, propertyId, videoTitle, mapKey, parent, dirty: false, head: -1, folded: -1, lastTs: 0, baseViews: 0,
    children: 0, ring: new Array<number>(SLOTS).fill(0), cells: new Map(),
  };
}

function newCell(key: RefKey, errorType: string, fastShareOfKey: number): RefCell {
  // The key's history so far had no failures of this type.
  return {
    errorType, key, open: false, hot: false, baseViews: key.baseViews, baseFails: 0, openedAt: 0, calmSince: -1,
    openThr: 0, openBase: 0, impacted: 0, lastRatio: 0, evidence: -1, lastEval: -1, pending: 0,
    ring: new Array<number>(SLOTS).fill(0),
    fastViews: key.scope === 'property' ? key.baseViews * fastShareOfKey : 0, fastFails: 0, fastLevel: 0, hotLast: -1,
  };
}

function decayKey(k: RefKey, m: number, fm: number): void {
  k.baseViews = k.baseViews * m;
  for (const c of k.cells.values()) {
    if (!c.hot) {
      c.baseViews = c.baseViews * m;
      c.baseFails = c.baseFails * m;
    }
    if (fm > 0) {
      c.fastViews = c.fastViews * fm;
      c.fastFails = c.fastFails * fm;
    }
  }
}

function foldSlot(k: RefKey, slot: number, d: number, fd: number, pp: RefProfile): void {
  const i = ringIndex(slot);
  const views = k.ring[i];
  k.baseViews = k.baseViews * d + views;
  for (const c of k.cells.values()) {
    const fails = c.ring[i];
    let clipped = 0;
    if (fd > 0) {
      let clip = propertyReference(pp, c) + pp.property.minEffectAbs;
      if (clip > 1) clip = 1;
      const ceiling = views * clip;
      clipped = fails < ceiling ? fails : ceiling;
    }
    if (!c.hot) {
      c.baseViews = c.baseViews * d + views;
      c.baseFails = c.baseFails * d + fails;
    }
    if (fd > 0) {
      const fv = c.fastViews * fd + views;
      const ff = c.fastFails * fd + clipped;
      c.fastViews = fv;
      c.fastFails = ff;
      const target = fv > 0 ? ff / fv : 0;
      const most = c.fastLevel + pp.fastRise;
      c.fastLevel = target < most ? target : most;
    }
  }
}

/** The reference rate of a property cell (kernel: propertyReference in assembly/detector.ts). */
function propertyReference(pp: RefProfile, c: RefCell): number {
  const nb = c.baseViews;
  const xb = c.baseFails;
  const z = pp.property.baselineZ;
  const slow = z > 0 ? wilsonUpper(xb, nb, z) : (nb > 0 ? xb / nb : 0);
  if (pp.fastDecay <= 0) return slow;
  let fast = c.fastLevel;
  const cap = thresholdOf(pp.property, slow);
  if (fast > cap) fast = cap;
  return fast > slow ? fast : slow;
}

/** Sequential and trend evidence over the ring (kernel: evidenceScan in assembly/detector.ts); the span that proves it, or null. */
function evidenceScan(k: RefKey, c: RefCell, pp: RefProfile, thr: number, minFailures: number, t: number): { views: number; fails: number; oldest: number; trend: boolean } | null {
  const sp = pp.property;
  let h = sp.cusumThreshold;
  const zr = sp.rampZ;
  if ((h <= 0 && zr <= 0) || thr >= 1) return null;
  if (h <= 0) h = Number.MAX_VALUE;
  const logLo = pp.logLow;
  const costLo = thr * (sp.cusumRatioLow - 1);
  const logHi = pp.logHigh;
  const costHi = thr * (sp.cusumRatioHigh - 1);
  const zr2 = zr * zr;
  const zs = sp.rampSlopeZ;
  const zs2 = zs * zs;
  const v = thr * (1 - thr);
  const head = k.head;
  let lo = head - SLOTS + 1;
  if (lo <= c.evidence) lo = c.evidence + 1;
  // Complete slots only (kernel: evidenceScan).
  let last = floorDiv(t, sp.slotMs) - 1;
  if (last > head) last = head;
  let n = 0;
  let x = 0;
  let na = 0;
  let na2 = 0;
  let xa = 0;
  let age = 0;
  // The span's slot with the most failures (kernel: evidenceScan).
  let mx = 0;
  let mn = 0;
  let failSlots = 0;
  let best = h;
  let found: { views: number; fails: number; oldest: number; trend: boolean } | null = null;
  for (let s = last; s >= lo; s--) {
    const i = ringIndex(s);
    const sn = k.ring[i];
    const sx = c.ring[i];
    n += sn;
    x += sx;
    na += sn * age;
    na2 += sn * age * age;
    xa += sx * age;
    age += 1;
    if (sx > mx) {
      mx = sx;
      mn = sn;
    }
    if (sx > 0) failSlots++;
    if (x < minFailures) continue;
    const gLo = x * logLo - n * costLo;
    const gHi = x * logHi - n * costHi;
    const g = gLo > gHi ? gLo : gHi;
    if (g > best) {
      best = g;
      found = { views: n, fails: x, oldest: s, trend: false };
    }
    // Trend evidence (kernel: evidenceScan): excess over the threshold at zr, failures in minFailingSlots
    // slots, still above the threshold without the slot of most failures, and a rising ratio at zs.
    if (found === null && zr > 0 && failSlots >= sp.minFailingSlots) {
      const e = x - n * thr;
      const e1 = (x - mx) - (n - mn) * thr;
      if (e > 0 && e * e > zr2 * n * v && e1 > 0 && e1 * e1 > zs2 * (n - mn) * v) {
        const sxx = na2 - na * na / n;
        const sxy = xa - na * x / n;
        if (sxx > 0 && sxy < 0 && sxy * sxy > zs2 * v * sxx) found = { views: n, fails: x, oldest: s, trend: true };
      }
    }
  }
  return found;
}

/** The threshold of minimum effect over a reference rate: max(ref + abs, ref x ratio), at most 1. */
function thresholdOf(sp: ScopeParams, reference: number): number {
  const absThr = reference + sp.minEffectAbs;
  const relThr = reference * sp.minEffectRatio;
  const thr = absThr > relThr ? absThr : relThr;
  return thr > 1 ? 1 : thr;
}

/** Failures / views of a key's cell over its ring slots from `fromSlot` to the head (0 without views). */
function spanRatio(k: RefKey, c: RefCell, fromSlot: number): number {
  const head = k.head;
  let lo = head - SLOTS + 1;
  if (lo < fromSlot) lo = fromSlot;
  let n = 0;
  let x = 0;
  for (let s = head; s >= lo; s--) {
    const i = ringIndex(s);
    n += k.ring[i];
    x += c.ring[i];
  }
  return n > 0 ? x / n : 0;
}

/**
 * Sums slots from the head back, after the evidence mark and from `notBefore` on, until it has
 * covered every slot from `fromSlot` and holds `minViews` views, or the ring is exhausted.
 */
function windowOf(k: RefKey, c: RefCell, minViews: number, notBefore: number, fromSlot = Number.MAX_SAFE_INTEGER): { views: number; fails: number; oldest: number; failSlots: number } {
  const head = k.head;
  let lo = head - SLOTS + 1;
  if (lo <= c.evidence) lo = c.evidence + 1;
  if (lo < notBefore) lo = notBefore;
  let n = 0;
  let x = 0;
  let failSlots = 0;
  let s = head;
  let oldest = head;
  while (s >= lo) {
    const i = ringIndex(s);
    n += k.ring[i];
    x += c.ring[i];
    if (c.ring[i] !== 0) failSlots++;
    oldest = s;
    if (s <= fromSlot && n >= minViews) break;
    s--;
  }
  return { views: n, fails: x, oldest, failSlots };
}
