import type { ChunkOrigin } from '../ingest/source.ts';

/** How the clock judges event time; see ARCHITECTURE.md "Event time". */
export interface EventClockOptions {
  /** A record more than this ahead of its partition's high-water mark (or of the wall clock) is from the future. */
  futureToleranceMs: number;
  /** What happens to a record from the future: counted at the partition's current time, or dropped. Both are counted. */
  futurePolicy: 'clamp' | 'drop';
  /** A declared partition that delivers nothing for this long stops holding event time back. */
  streamIdleMs: number;
  /**
   * A caught-up partition that has delivered records still holds event time at its mark this long
   * after its latest chunk, waiting for more (Kafka Streams' max.task.idle.ms). 0: a caught-up
   * partition never holds time back, so records it gets later than other partitions get newer ones
   * (a producer's batches, a history produced faster than real time) may be late.
   */
  caughtUpWaitMs: number;
  /** A partition whose high-water mark is further ahead of the evaluated event time than this should be paused. */
  maxAheadMs: number;
  /** The wall clock: idle partitions, and (with wallClockFuture) records stamped after it. */
  now: () => number;
  /** Records more than futureToleranceMs after the wall clock are from the future (a live daemon; not a replay). */
  wallClockFuture: boolean;
}

/** The clock's defaults: a replay's (no wall clock). The daemon turns wallClockFuture on. */
export const DEFAULT_CLOCK_OPTIONS: EventClockOptions = {
  futureToleranceMs: 30_000, futurePolicy: 'clamp', streamIdleMs: 10_000, caughtUpWaitMs: 0, maxAheadMs: 5 * 60_000,
  now: Date.now, wallClockFuture: false,
};

/** The event-time plan of one chunk, for WasmKernel.ingest (the same for every owner). */
export interface ChunkPlan {
  /**
   * n targets (event time to reach before record i), then n event times to count record i at (NaN:
   * dropped), then n marks of record i's own partition (a record older than the last tick its own
   * partition reached is late, whatever the others did).
   */
  plan: Float64Array;
  /** Event time to reach after the chunk. */
  endTarget: number;
}

/** Event-time state of the clock, carried by checkpoints (JSON: -Infinity is written as null). */
export interface EventClockState {
  reached: number | null;
  streams: Array<{ id: string; high: number | null; a: PropertySeen | null; b: PropertySeen | null; run: StreamClock['run'] }>;
}

/** Counters of the clock's decisions. */
export interface EventClockStats {
  /** Records from the future (clamped or dropped). */
  future: number;
  /** Of those, dropped (futurePolicy 'drop'). */
  futureDropped: number;
  /** Chunks whose end was held back by another partition still catching up. */
  cappedChunks: number;
}

/** A property seen by a partition's clock (low 32 bits of its hash) and its latest accepted event time. */
export interface PropertySeen { prop: number; ts: number }

export interface StreamClock {
  /** Robust high-water mark: the highest event time accepted from this partition. */
  high: number;
  declared: boolean;
  /** Caught up: nothing to deliver right now, so it does not hold event time back. */
  live: boolean;
  lastChunkAt: number;
  /** The two properties accepted most recently (a and a different one, b). */
  a: PropertySeen | null;
  b: PropertySeen | null;
  /** Records beyond the high-water mark from one property, not yet believed. */
  run: { prop: number; min: number; max: number; n: number } | null;
}

/** Without another property accepted within this much event time, a jump of the one property is time passing ... */
const ACTIVE_WINDOW_MS = 10 * 60_000;
/**
 * ... when it is at most this long (a sparse property's views are minutes apart, a quiet night an
 * hour); a longer one (a device a day ahead, or reporting local time as UTC, hours ahead) only once
 * RUN_MIN_RECORDS of the property's records in a row are beyond the mark.
 */
const LONE_JUMP_MS = 60 * 60_000;
/** A run of one property's records beyond the high-water mark is believed once it spans this much of its own time. */
const RUN_SPAN_MS = 2 * 60_000;
const RUN_MIN_RECORDS = 3;
const SINGLE = '';

/**
 * The engine's event-time clock, on the main thread, in the order chunks are ingested. Each source
 * partition (Kafka partition, Kinesis shard; one implicit partition for a file) has a robust
 * high-water mark; a chunk's records advance event time to their partition's mark, but never past
 * the marks of the other declared partitions that are still catching up (Flink's per-partition
 * watermarks, Kafka Streams' stream time per partition). A partition that is caught up or idle
 * holds nothing back. A record far ahead of its partition (a device clock a day ahead, a producer
 * minutes ahead) or of the wall clock never moves the mark: it is from the future, counted at the
 * partition's time (clamp) or dropped. A jump is believed when a second property agrees, when no
 * other property is active (a jump of over LONE_JUMP_MS: RUN_MIN_RECORDS in a row), or when one
 * property's records keep going for RUN_SPAN_MS of their time.
 * Decisions depend on input order only, so a replay gives the same plan for any chunk size.
 */
export class EventClock {
  private readonly streams = new Map<string, StreamClock>();
  /**
   * Partitions restored from a checkpoint that the source has not declared again yet: a split's
   * children are declared only once their parent, read again from its checkpointed position, has
   * ended. They keep their marks here until then (a child that took its parent's older mark instead
   * would count its next records, beyond that mark, from the future at the parent's time: late), and
   * the next checkpoint carries them.
   */
  private readonly dormant = new Map<string, StreamClock>();
  /** The highest target planned: event time the kernels have been told to reach. */
  private reachedTs = -Infinity;
  /**
   * Restored from a checkpoint, and the source has neither declared its partitions nor delivered a
   * chunk: the restored partitions hold nothing back yet (none is declared), so an advance would take
   * event time to the highest restored mark, past the tail of every slower partition that is about to
   * be read again (its records late, incidents opened late or twice). No advance until then.
   */
  private awaitingSource = false;
  readonly stats: EventClockStats = { future: 0, futureDropped: 0, cappedChunks: 0 };

  constructor(private readonly opts: EventClockOptions) {}

  /**
   * The partitions a source is about to deliver, replacing the previous set (a partition no longer in
   * it is forgotten). `parents`: partitions that continue others (a Kinesis split's children, declared
   * as their parent leaves). One with no mark of its own starts at its parents' (the least, for a
   * merge's two), as if it had delivered their last chunk now: until its first records it holds event
   * time there like any partition, and once caught up it waits caughtUpWaitMs for more like one that
   * has delivered. Without that, a child whose first read is empty (records not yet put into it) is a
   * caught-up partition that never delivered anything, which holds nothing back: the other partitions
   * (the other child, other shards) took event time past the records it got next, and they were late.
   */
  declare(ids: string[], parents?: ReadonlyMap<string, readonly string[]>): void {
    this.awaitingSource = false;
    const now = this.opts.now();
    for (const id of ids) {
      const st = this.dormant.get(id);
      if (st && !this.streams.has(id)) this.streams.set(id, st);
      this.dormant.delete(id);
    }
    // Before the parents are forgotten below.
    for (const id of ids) {
      let mark = Infinity;
      for (const p of parents?.get(id) ?? []) {
        const high = (this.streams.get(p) ?? this.dormant.get(p))?.high ?? -Infinity;
        if (high !== -Infinity && high < mark) mark = high;
      }
      const st = mark === Infinity ? null : this.stream(id);
      if (st && st.high === -Infinity) { st.high = mark; st.lastChunkAt = now; }
    }
    const keep = new Set(ids);
    for (const [id, st] of [...this.streams]) {
      if (id === SINGLE || keep.has(id)) continue;
      // Restored and not declared since: dormant. Declared before and no longer: forgotten.
      if (!st.declared && st.high !== -Infinity) this.dormant.set(id, st);
      this.streams.delete(id);
    }
    for (const id of ids) {
      const st = this.stream(id);
      if (!st.declared) { st.declared = true; st.live = false; st.lastChunkAt = now; }
    }
  }

  /**
   * A declared partition has nothing to deliver now: it no longer holds event time back (after
   * caughtUpWaitMs from its latest chunk). Said again and again while it stays caught up, so the wait
   * counts from its chunks, not from this.
   */
  caughtUp(id: string): void {
    const st = this.streams.get(id);
    if (st) st.live = true;
  }

  /**
   * A declared partition has records it has not delivered yet (a backlog the source can see): it is
   * neither caught up nor idle, however long its next chunk takes (a paused fetch, a slow broker).
   */
  behind(id: string): void {
    const st = this.streams.get(id);
    if (st) { st.live = false; st.lastChunkAt = this.opts.now(); }
  }

  /**
   * What a repartition stage says of a declared partition upstream of it (a progress record, read in
   * order with that partition's records): its mark there (null: no record yet), which only raises
   * this partition's mark (the records routed here are a subset of it, so their own mark lags behind
   * the partition's), and whether it is caught up (as caughtUp) or behind (as behind).
   */
  progress(id: string, mark: number | null, caughtUp: boolean): void {
    const st = this.streams.get(id);
    if (!st) return;
    if (mark !== null && mark > st.high) st.high = mark;
    if (caughtUp) st.live = true;
    else { st.live = false; st.lastChunkAt = this.opts.now(); }
  }

  /** Plans a chunk's records (event times and property hashes in chunk order) from one partition, or from the single stream. */
  plan(times: Float64Array, props: Uint32Array, origin?: ChunkOrigin): ChunkPlan {
    this.awaitingSource = false;
    const st = this.stream(origin?.stream ?? SINGLE);
    const now = this.opts.now();
    if (origin) st.lastChunkAt = now;
    const cap = this.capExcept(st, now);
    const n = times.length;
    const plan = new Float64Array(3 * n);
    const wallLimit = this.opts.wallClockFuture ? now + this.opts.futureToleranceMs : Infinity;
    const tol = this.opts.futureToleranceMs;
    for (let i = 0; i < n; i++) {
      const t = times[i];
      let eff = t;
      if (t > wallLimit) {
        eff = this.future(st.high === -Infinity ? now : Math.min(st.high, now));
      } else if (st.high === -Infinity || t <= st.high + tol) {
        accept(st, t, props[i]);
      } else {
        eff = this.beyond(st, t, props[i]);
      }
      plan[i] = st.high < cap ? st.high : cap;
      plan[n + i] = eff;
      plan[2 * n + i] = st.high;
    }
    const end = st.high < cap ? st.high : cap;
    if (cap < st.high) this.stats.cappedChunks++;
    if (origin) st.live = origin.live;
    if (end > this.reachedTs) this.reachedTs = end;
    return { plan, endTarget: end };
  }

  /**
   * Where an advance without records may take event time now: the least mark of the partitions
   * still catching up, or, when none is, the highest mark (or `wallTs`, an idle live source's wall
   * clock, when higher). Null when that is not beyond what was reached already.
   */
  advanceTarget(wallTs?: number): number | null {
    if (this.awaitingSource) return null;
    const now = this.opts.now();
    let minHolding = Infinity;
    let maxAll = -Infinity;
    for (const st of this.streams.values()) {
      if (st.high > maxAll) maxAll = st.high;
      if (this.holding(st, now) && st.high < minHolding) minHolding = st.high;
    }
    const t = minHolding !== Infinity ? minHolding : Math.max(maxAll, wallTs ?? -Infinity);
    return t > this.reachedTs && t !== Infinity ? t : null;
  }

  /** Records that an advance to `target` was planned. */
  advanced(target: number): void {
    if (target > this.reachedTs) this.reachedTs = target;
  }

  /** End of input: the highest mark of any partition. */
  finalTarget(): number {
    let t = this.reachedTs;
    for (const st of this.streams.values()) if (st.high > t) t = st.high;
    return t;
  }

  /**
   * Whether a partition is so far ahead of the evaluated event time that its source should pause it.
   * A partition found ahead is not idle (it has records, it is held back on purpose): without that,
   * one paused for longer than streamIdleMs would be taken for idle when it falls behind again, and
   * event time would run past the records it then delivers.
   */
  ahead(id: string): boolean {
    const st = this.streams.get(id);
    if (!st || st.high === -Infinity) return false;
    const now = this.opts.now();
    const ahead = this.reachedTs === -Infinity ? this.capExcept(st, now) === -Infinity : st.high > this.reachedTs + this.opts.maxAheadMs;
    if (ahead) st.lastChunkAt = now;
    return ahead;
  }

  /** Each partition's mark and whether it holds event time back now (for status). */
  describe(): Record<string, { mark: number | null; live: boolean; holding: boolean; quietMs: number }> {
    const now = this.opts.now();
    const out: Record<string, { mark: number | null; live: boolean; holding: boolean; quietMs: number }> = {};
    for (const [id, st] of this.streams) {
      if (!st.declared) continue;
      out[id] = { mark: st.high === -Infinity ? null : st.high, live: st.live, holding: this.holding(st, now), quietMs: now - st.lastChunkAt };
    }
    return out;
  }

  /** Event time reached (the highest target planned), or null before the first. */
  reached(): number | null {
    return this.reachedTs === -Infinity ? null : this.reachedTs;
  }

  /** The state a checkpoint carries: partitions' marks and the event time reached. */
  state(): EventClockState {
    return {
      reached: this.reached(),
      streams: [...this.streams, ...this.dormant].map(([id, st]) => ({
        id, high: st.high === -Infinity ? null : st.high, a: st.a && { ...st.a }, b: st.b && { ...st.b }, run: st.run && { ...st.run },
      })),
    };
  }

  /** Resumes from a checkpoint's state (before any chunk; partitions are declared again by their source). */
  restore(s: EventClockState): void {
    this.awaitingSource = true;
    this.reachedTs = s.reached ?? -Infinity;
    this.dormant.clear();
    for (const { id, high, a, b, run } of s.streams) {
      const st = this.stream(id);
      st.high = high ?? -Infinity;
      st.a = a && { ...a };
      st.b = b && { ...b };
      st.run = run && { ...run };
    }
  }

  private stream(id: string): StreamClock {
    let st = this.streams.get(id);
    if (!st) {
      st = { high: -Infinity, declared: false, live: false, lastChunkAt: 0, a: null, b: null, run: null };
      this.streams.set(id, st);
    }
    return st;
  }

  private holding(st: StreamClock, now: number): boolean {
    if (!st.declared) return false;
    // Caught up: an empty partition never holds time back; one with a mark waits a little for more.
    if (st.live) return st.high !== -Infinity && now - st.lastChunkAt < this.opts.caughtUpWaitMs;
    return now - st.lastChunkAt < this.opts.streamIdleMs;
  }

  /** The least mark of the declared partitions other than `self` still catching up (Infinity: none). */
  private capExcept(self: StreamClock, now: number): number {
    let cap = Infinity;
    for (const st of this.streams.values()) if (st !== self && this.holding(st, now) && st.high < cap) cap = st.high;
    return cap;
  }

  /** A record more than the tolerance beyond its partition's mark: a jump of time, or a wrong clock. */
  private beyond(st: StreamClock, t: number, prop: number): number {
    const alone = !otherPropertyActive(st, prop);
    if (alone && t - st.high <= LONE_JUMP_MS) {
      accept(st, t, prop);
      return t;
    }
    const run = st.run;
    if (run && run.prop !== prop) {
      // A second property is beyond the mark too: time has moved to where both are.
      st.high = Math.max(st.high, Math.min(run.min, t));
      st.run = null;
      if (t <= st.high + this.opts.futureToleranceMs) {
        accept(st, t, prop);
        return t;
      }
    }
    if (!st.run) st.run = { prop, min: t, max: t, n: 0 };
    const r = st.run;
    r.n++;
    if (t < r.min) r.min = t;
    if (t > r.max) r.max = t;
    // Alone, a longer jump is believed once RUN_MIN_RECORDS in a row are beyond the mark: after a gap
    // every record is, while a wrong clock's neighbours are at the mark (accept() ends the run).
    if (r.n >= RUN_MIN_RECORDS && (alone || r.max - r.min >= RUN_SPAN_MS)) {
      st.high = Math.max(st.high, r.min);
      accept(st, t, prop);
      return t;
    }
    return this.future(st.high);
  }

  private future(at: number): number {
    this.stats.future++;
    if (this.opts.futurePolicy === 'drop') {
      this.stats.futureDropped++;
      return NaN;
    }
    return at;
  }
}

/** A record within the tolerance of its partition's mark: it moves the mark and ends any run of doubtful records. */
function accept(st: StreamClock, t: number, prop: number): void {
  if (t > st.high) st.high = t;
  st.run = null;
  const a = st.a;
  if (a && a.prop === prop) {
    if (t > a.ts) a.ts = t;
  } else {
    // The record of the property before the last is reused: records of properties taking turns
    // (most chunks) make no object each (snapshots copy them).
    const reuse = st.b;
    st.b = a;
    if (reuse) {
      reuse.prop = prop;
      reuse.ts = t;
      st.a = reuse;
    } else {
      st.a = { prop, ts: t };
    }
  }
}

/** Whether a property other than `prop` was accepted within ACTIVE_WINDOW_MS of the partition's mark. */
function otherPropertyActive(st: StreamClock, prop: number): boolean {
  const since = st.high - ACTIVE_WINDOW_MS;
  if (st.a && st.a.prop !== prop && st.a.ts >= since) return true;
  return st.b !== null && st.b.prop !== prop && st.b.ts >= since;
}
