import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.ts';
import type { DetectionParams } from '../kernel/detection-params.ts';
import type { FieldNames } from '../ingest/field-names.ts';
import type { Verdict } from '../kernel/verdict.ts';
import { KERNEL_COUNTER_NAMES, type KernelCounters, type KernelInit } from '../kernel/wasm-kernel.ts';
import type { DecodeReply, ExportReply, VerdictReply, WorkerTask } from '../kernel/worker-messages.ts';
import type { CellFigures, CellFiguresPage } from '../kernel/cell-figures.ts';
import { DECODE_STATUS_NAMES, REJECT_TOO_LARGE, isReject } from '../ingest/reject-reason.ts';
import { compareVerdicts } from './verdict-order.ts';
import { EngineStats } from './engine-stats.ts';
import { WorkerLane } from './worker-lane.ts';
import { groupRange } from '../kernel/key-groups.ts';
import { DEFAULT_CLOCK_OPTIONS, EventClock, type EventClockOptions } from './event-clock.ts';
import type { ChunkOrigin, ChunkPosition } from '../ingest/source.ts';
import type { EventClockState } from './event-clock.ts';

/** How the engine is sized. */
export interface EngineOptions {
  workers: number;
  /** Fixed number of key groups; workers own contiguous ranges. */
  groups: number;
  chunkBytes: number;
  params: DetectionParams;
  maxKeysPerWorker: number;
  maxCellsPerWorker: number;
  fieldNames?: FieldNames;
  maxLineBytes?: number;
  logger: Logger;
  /** Chunks accepted but not yet fully evaluated before push() waits (backpressure). */
  maxInFlight?: number;
  /** Use the kernel build with assertions. */
  debugKernel?: boolean;
  /** Receives every batch of verdicts, in the engine's deterministic order. */
  onVerdicts: (verdicts: Verdict[]) => void;
  /** State to resume from (a checkpoint of the same key groups, taken by any number of workers). */
  restore?: EngineRestore;
  /** Event-time judgement (future records, idle and ahead partitions) over DEFAULT_CLOCK_OPTIONS. */
  clock?: Partial<EventClockOptions>;
  /** Told, for each chunk, the seconds from push() to its verdicts being delivered (a metric). */
  onChunkDone?: (seconds: number) => void;
  /** Told once when the engine fails for good (a worker crashed, onVerdicts threw). */
  onFailure?: (err: Error) => void;
  /**
   * Incremental checkpoint exports go on in the background (true by default): each worker takes what
   * changed at the barrier and writes it between the chunks that follow (WasmKernel.beginExport), so
   * it stops ingesting for a slice at a time instead of the whole export. False: every export is
   * written at the barrier (the benchmark's peer).
   */
  backgroundExports?: boolean;
}

/** Milliseconds of export work a worker does between two chunks while a background export goes on. */
const EXPORT_SLICE_MS = 2;

/** The engine's state at a checkpoint barrier: exactly the records of the chunks before it. */
export interface EngineState {
  /**
   * One encoded part per worker (kernel-state.ts): the state of its key groups, and how long the
   * worker stopped ingesting for it (worker-messages.ts ExportReply: the longest stop, the sum of its
   * stops, the slices of a background export).
   */
  parts: Array<Omit<ExportReply, 'bytes'> & { bytes: Uint8Array }>;
  eventTime: EventClockState;
  /** Source positions of exactly those records (stream -> where the source resumes). */
  positions: Record<string, string>;
}

/** What an engine resumes from: a checkpoint's parts (encoded, any worker count), clock and positions. */
export interface EngineRestore {
  parts: Uint8Array[];
  eventTime: EventClockState;
  positions: Record<string, string>;
}

/** What the control plane and the HTTP API use of an engine (a cluster node's tasks offer it too). */
export type EngineView = Pick<Engine, 'maxEventTs' | 'dumpFigures' | 'setParams'>;

/** A stage waiting for its workers' replies, then emitted in order. */
interface Pending {
  remaining: number;
  verdicts: Verdict[];
  /** Where the source resumes once this chunk's verdicts are delivered. */
  position?: ChunkPosition;
  /** A barrier's: what to do with each worker's part as it is complete (or its export failed), and when the barrier is emitted. */
  onPart?: (w: number, part: ExportReply | Error) => void;
  onEmit?: () => void;
}

type Stage =
  | { kind: 'chunk'; decoded: DecodeReply; origin?: ChunkOrigin; position?: ChunkPosition }
  | { kind: 'advance'; wallTs?: number }
  | { kind: 'barrier'; atBarrier: () => unknown; done: (state: EngineState & { barrier: unknown }) => void; failed: (err: Error) => void; deltas?: boolean[] }
  | { kind: 'finish' };

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const WORKER_FILE = fileURLToPath(new URL(`../kernel/kernel-worker${ext}`, import.meta.url));

/**
 * The detection pipeline: chunks of NDJSON are decoded by any worker (round robin),
 * the packed records go to the workers owning their key groups, and verdicts come back
 * merged per chunk in a total order, so output never depends on worker count or chunk size.
 */
export class Engine {
  private pools: WorkerLane[] = [];
  private seq = 0;
  // push() time of each chunk still in flight, by sequence number, when onChunkDone wants it.
  private readonly pushedAt = new Map<number, number>();
  private nextIngest = 0;
  private nextEmit = 0;
  private readonly ready = new Map<number, Stage>();
  private readonly pending = new Map<number, Pending>();
  /** Source positions of the chunks planned so far (what a barrier's state holds), by stream. */
  private readonly positions = new Map<string, string>();
  /** Source positions of the chunks whose verdicts are delivered, by stream. */
  private readonly evaluated = new Map<string, string>();
  private inFlight = 0;
  /** Event time: per-partition marks, future records, idle and ahead partitions. */
  readonly clock: EventClock;
  /** An advance of event time without records is queued and not yet planned. */
  private advanceQueued = false;
  /** Clock updates to apply once every chunk pushed before them (seq < at) is planned. */
  private readonly progressQueue: Array<{ at: number; apply: () => void }> = [];
  private idleTimer: NodeJS.Timeout | null = null;
  private waiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private failure: Error | null = null;
  /** A checkpoint is in progress (from its barrier until its every part is complete), and those asked for meanwhile. */
  private exportBusy = false;
  private readonly exportQueue: Array<() => void> = [];
  private exportIdle: Array<() => void> = [];
  /** How to fail each checkpoint whose parts are not all complete yet. */
  private checkpointFailures: Array<(err: Error) => void> = [];
  private readonly workerCounters: KernelCounters[] = [];
  private readonly capLoggedAt: number[] = [];
  readonly stats = new EngineStats();
  private readonly log: Logger;
  private started = false;
  private stopped = false;

  constructor(private readonly opts: EngineOptions) {
    const problems: string[] = [];
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 64) problems.push(`workers must be an integer in 1..64, got ${opts.workers}`);
    if (!Number.isInteger(opts.groups) || opts.groups < opts.workers || opts.groups > 65536) problems.push(`groups must be an integer in workers..65536, got ${opts.groups}`);
    if (!Number.isInteger(opts.chunkBytes) || opts.chunkBytes < 65536) problems.push(`chunkBytes must be an integer >= 65536, got ${opts.chunkBytes}`);
    if (problems.length) throw new Error(`invalid engine options: ${problems.join('; ')}`);
    this.log = opts.logger.child({ component: 'engine' });
    this.clock = new EventClock({ ...DEFAULT_CLOCK_OPTIONS, ...opts.clock });
  }

  /** Starts one single-thread pool per worker and initializes its kernel. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { workers, groups } = this.opts;
    for (let w = 0; w < workers; w++) {
      this.pools.push(new WorkerLane(WORKER_FILE));
    }
    const restore = this.opts.restore;
    if (restore) {
      this.clock.restore(restore.eventTime);
      for (const [stream, next] of Object.entries(restore.positions)) {
        this.positions.set(stream, next);
        this.evaluated.set(stream, next);
      }
    }
    await Promise.all(this.pools.map((pool, w) => {
      const init: KernelInit = {
        maxKeys: this.opts.maxKeysPerWorker,
        maxCells: this.opts.maxCellsPerWorker,
        chunkBytes: this.opts.chunkBytes,
        groupLo: groupRange(w, workers, groups).lo,
        groupHi: groupRange(w, workers, groups).hi,
        groups,
        params: this.opts.params,
        fieldNames: this.opts.fieldNames,
        maxLineBytes: this.opts.maxLineBytes,
      };
      // Each worker takes its own key groups out of every part, whoever wrote them.
      if (restore) return pool.run({ op: 'restore-groups', init, parts: restore.parts, debug: this.opts.debugKernel } satisfies WorkerTask);
      return pool.run({ op: 'init', init, debug: this.opts.debugKernel } satisfies WorkerTask);
    }));
    this.startIdleTimer();
    if (restore) this.log.info({ workers, groups, parts: restore.parts.length, eventTime: this.clock.reached() }, 'engine restored from checkpoint');
    this.log.info({ workers, groups, chunkBytes: this.opts.chunkBytes }, 'engine started');
  }

  /** A declared partition that falls silent stops holding event time back after streamIdleMs: evaluate what it held back. */
  private startIdleTimer(): void {
    this.idleTimer = setInterval(() => this.advanceHeldTime(), 1000);
    this.idleTimer.unref();
  }

  private async waitForSlot(): Promise<void> {
    const max = this.opts.maxInFlight ?? this.opts.workers * 3 + 2;
    while (this.inFlight >= max && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Accepts a chunk of whole lines (its buffer is transferred: do not reuse it or other views of it); resolves once there is room for more. */
  async push(chunk: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> {
    if (chunk.byteLength > this.opts.chunkBytes) {
      throw new RangeError(`chunk of ${chunk.byteLength} bytes exceeds chunkBytes (${this.opts.chunkBytes}): cut input with LineChunker`);
    }
    await this.waitForSlot();
    const seq = this.seq++;
    if (this.opts.onChunkDone) this.pushedAt.set(seq, performance.now());
    this.inFlight++;
    this.stats.chunks++;
    this.stats.bytes += chunk.length;
    // LineChunker hands over views at the start of chunk-sized buffers of their own: those are
    // transferred as they are. Anything else (e.g. a slice of a pooled Buffer) is copied first.
    const owned = chunk.byteOffset === 0 && (chunk.buffer.byteLength === this.opts.chunkBytes || chunk.buffer.byteLength === chunk.byteLength);
    const own = owned ? chunk : chunk.slice();
    const pool = this.decoder(seq);
    const task: WorkerTask = { op: 'decode', bytes: own, owners: this.pools.length, groups: this.opts.groups };
    pool.run<DecodeReply>(task, [own.buffer as ArrayBuffer]).then(
      (decoded: DecodeReply) => { this.ready.set(seq, { kind: 'chunk', decoded, origin, position }); this.pump(); },
      (err: Error) => this.fail(err),
    );
  }

  /**
   * The worker that decodes a chunk: the one with the fewest unfinished tasks (ties round robin).
   * Decoding is the same work on any worker, but counting is not: a worker whose key groups hold
   * the busiest properties has more to do per chunk, and a fixed round robin left the other idle
   * while it fell behind. The decoded result does not depend on which worker made it.
   */
  private decoder(seq: number): WorkerLane {
    const n = this.pools.length;
    let best = this.pools[seq % n];
    for (let i = 1; i < n; i++) {
      const lane = this.pools[(seq + i) % n];
      if (lane.backlog < best.backlog) best = lane;
    }
    return best;
  }

  /**
   * The partitions a source is about to deliver (with ChunkOrigin), replacing the previous set.
   * Until a declared partition has delivered a chunk, is live, or has been silent for
   * streamIdleMs, event time does not advance past what every such partition has delivered: a
   * backlog read partition after partition is then counted in its own slots, not as late. A partition
   * that continues others (`parents`: a split's children) starts at their mark (EventClock.declare).
   */
  declareStreams(ids: string[], parents?: ReadonlyMap<string, readonly string[]>): void {
    this.clock.declare(ids, parents);
    this.advanceHeldTime();
  }

  /**
   * A declared partition has nothing to deliver now (caught up): it no longer holds event time back,
   * from its chunks pushed so far on (applied in ingest order, as upstreamProgress): a chunk of another
   * partition pushed before its last ones must not be planned as if it had none left, or event time
   * could pass the records of those last ones before they are planned (they were counted late).
   */
  streamCaughtUp(id: string): void {
    this.progressQueue.push({ at: this.seq, apply: () => this.clock.caughtUp(id) });
    this.applyProgress();
  }

  /** A declared partition has a backlog it has not delivered yet: it may not be taken for idle. */
  streamBehind(id: string): void {
    this.clock.behind(id);
  }

  /**
   * A repartition stage's progress record for an upstream partition (EventClock.progress), applied in
   * ingest order: after every chunk pushed before it, so its mark never judges records it follows.
   */
  upstreamProgress(id: string, mark: number | null, caughtUp: boolean): void {
    this.progressQueue.push({ at: this.seq, apply: () => this.clock.progress(id, mark, caughtUp) });
    this.applyProgress();
  }

  /** Applies the progress records (and caught-up reports) whose preceding chunks are all planned. */
  private applyProgress(): void {
    let applied = false;
    while (this.progressQueue.length > 0 && this.progressQueue[0].at <= this.nextIngest) {
      this.progressQueue.shift()!.apply();
      applied = true;
    }
    if (applied) this.advanceHeldTime();
  }

  /** Whether a partition is so far ahead of evaluated event time that its source should pause it. */
  streamAhead(id: string): boolean {
    return this.clock.ahead(id);
  }

  /**
   * Queues an advance when the partitions still catching up allow event time to move further than
   * the chunks took it (one caught up, fell idle, or was given up): the records it held back are
   * evaluated without waiting for more input.
   */
  private advanceHeldTime(): void {
    if (this.advanceQueued || this.failure || this.stopped || this.clock.advanceTarget() === null) return;
    this.advanceQueued = true;
    this.enqueue({ kind: 'advance' });
  }

  /** Records lines the chunker skipped as too large. */
  countOversized(lines: Array<{ bytes: number; head: string }>): void {
    for (const l of lines) {
      this.stats.reject(DECODE_STATUS_NAMES[REJECT_TOO_LARGE], 1);
      this.sampleReject(DECODE_STATUS_NAMES[REJECT_TOO_LARGE], `${l.head}… (${l.bytes} bytes)`);
    }
  }

  /** Advances event time to the wall clock with no new records (an idle live source), in order with the chunks before it. */
  async advance(wallTs: number): Promise<void> {
    await this.waitForSlot();
    this.enqueue({ kind: 'advance', wallTs });
  }

  private enqueue(stage: Stage): void {
    const seq = this.seq++;
    this.inFlight++;
    this.ready.set(seq, stage);
    this.pump();
  }

  /** End of input: evaluates up to the last event and waits for every verdict. */
  async finish(): Promise<void> {
    this.enqueue({ kind: 'finish' });
    await this.drain();
  }

  /** Waits until every accepted chunk has been evaluated and its verdicts delivered. */
  async drain(): Promise<void> {
    while (this.nextEmit < this.seq && !this.failure) await new Promise<void>((r) => this.drainWaiters.push(r));
    if (this.failure) throw this.failure;
  }

  private pump(): void {
    for (let stage = this.nextStage(); stage; stage = this.nextStage()) {
      const seq = this.nextIngest++;
      this.ready.delete(seq);
      const entry: Pending = { remaining: this.pools.length, verdicts: [] };
      this.pending.set(seq, entry);
      if (stage.kind === 'chunk' && stage.position) {
        this.positions.set(stage.position.stream, stage.position.next);
        entry.position = stage.position;
      }
      if (stage.kind === 'barrier') this.barrier(stage, entry);
      const tasks = this.tasksOf(stage);
      this.pools.forEach((pool, w) => {
        const { task, transfer } = tasks(w);
        pool.run<VerdictReply & ExportReply>(task, transfer).then(
          (r) => {
            if (entry.onPart) {
              // A background export is completed by slices, queued behind the chunks that follow.
              if (r.bytes !== null) entry.onPart(w, r);
              else this.sliceExport(w, entry.onPart);
            } else {
              this.noteCaps(w, r.counters);
              this.workerCounters[w] = r.counters;
              for (const v of r.verdicts) entry.verdicts.push(v);
            }
            entry.remaining--;
            if (entry.remaining === 0) this.emitReady();
          },
          (err: Error) => this.fail(err),
        );
      });
      // A chunk that caught its partition up may let event time move past it.
      if (stage.kind === 'chunk' && stage.origin?.live) this.advanceHeldTime();
    }
  }

  /** The next stage to ingest, after the upstream progress that precedes it. */
  private nextStage(): Stage | undefined {
    if (this.progressQueue.length > 0) this.applyProgress();
    return this.ready.get(this.nextIngest);
  }

  /**
   * A barrier takes the clock's state and the positions here, in ingest order; its parts come from the
   * workers (at the barrier, or later from a background export). It is over once it is emitted (where
   * atBarrier runs) and every worker's export is over: done, or failed with the first error (a
   * background export that outgrew its region: the kernel's next export is full; ingestion goes on).
   * Never before every export is over, so that the next barrier finds no worker still exporting.
   */
  private barrier(stage: Extract<Stage, { kind: 'barrier' }>, entry: Pending): void {
    const eventTime = this.clock.state();
    const positions = Object.fromEntries(this.positions);
    const parts: EngineState['parts'] = [];
    let missing = this.pools.length;
    let emitted: { barrier: unknown } | null = null;
    let error: Error | null = null;
    const settle = () => {
      if (!emitted || missing > 0) return;
      if (error) stage.failed(error);
      else stage.done({ parts, eventTime, positions, barrier: emitted.barrier });
    };
    entry.onPart = (w, r) => {
      if (r instanceof Error) error ??= r;
      else parts[w] = { ...r, bytes: r.bytes! };
      missing--;
      settle();
    };
    entry.onEmit = () => {
      try {
        emitted = { barrier: stage.atBarrier() };
      } catch (err) {
        emitted = { barrier: null };
        error ??= err as Error;
      }
      settle();
    };
  }

  /** Goes on with worker w's background export, a slice at a time behind the tasks queued before each, until it is over. */
  private sliceExport(w: number, onPart: (w: number, part: ExportReply | Error) => void): void {
    const pool = this.pools[w];
    const next = (): void => {
      pool.run<ExportReply>({ op: 'export-slice', budgetMs: EXPORT_SLICE_MS }).then(
        (r) => (r.bytes !== null ? onPart(w, r) : next()),
        (err: Error) => onPart(w, err),
      );
    };
    next();
  }

  /** The engine failed: every checkpoint not over yet fails with it. */
  private failCheckpoints(err: Error): void {
    for (const f of this.checkpointFailures.splice(0)) f(err);
  }

  /** Plans a stage's event time (in ingest order) and returns each worker's task. */
  private tasksOf(stage: Stage): (w: number) => { task: WorkerTask; transfer?: ArrayBuffer[] } {
    if (stage.kind === 'chunk') {
      const d = stage.decoded;
      this.account(d);
      const { plan, endTarget } = this.clock.plan(d.times, d.props, stage.origin);
      const last = this.pools.length - 1;
      return (w) => {
        // Every owner gets the same plan: the last one takes it, the others a copy.
        const own = w === last ? plan : plan.slice();
        return { task: { op: 'ingest', part: d.parts[w], plan: own, endTarget }, transfer: [d.parts[w].buffer as ArrayBuffer, own.buffer as ArrayBuffer] };
      };
    }
    if (stage.kind === 'barrier') {
      const background = this.opts.backgroundExports ?? true;
      return (w) => ({ task: { op: 'export-state', delta: stage.deltas?.[w] ?? false, background } });
    }
    if (stage.kind === 'advance') {
      if (stage.wallTs === undefined) this.advanceQueued = false;
      const target = this.clock.advanceTarget(stage.wallTs) ?? -Infinity;
      this.clock.advanced(target);
      return () => ({ task: { op: 'advance', target } });
    }
    const target = this.clock.finalTarget();
    this.clock.advanced(target);
    return () => ({ task: { op: 'finish', target } });
  }

  private noteCaps(w: number, c: KernelCounters): void {
    const prev = this.workerCounters[w];
    const keys = c.keysDropped - (prev?.keysDropped ?? 0);
    const cells = c.cellsDropped - (prev?.cellsDropped ?? 0);
    if (keys <= 0 && cells <= 0) return;
    // Once a minute at most per worker: the cap biting is a capacity problem, not an event stream.
    const now = Date.now();
    if (now - (this.capLoggedAt[w] ?? 0) < 60_000) return;
    this.capLoggedAt[w] = now;
    this.log.warn({ worker: w, keysDropped: c.keysDropped, cellsDropped: c.cellsDropped, maxKeys: this.opts.maxKeysPerWorker, maxCells: this.opts.maxCellsPerWorker },
      'key cap reached: events of new keys are counted as dropped (raise VIGIL_MAX_KEYS_PER_WORKER / VIGIL_MAX_CELLS_PER_WORKER or add workers)');
  }

  private account(d: DecodeReply): void {
    this.stats.events += d.records;
    d.statusCounts.forEach((n, code) => {
      if (n > 0 && isReject(code)) this.stats.reject(DECODE_STATUS_NAMES[code], n);
    });
    for (const s of d.samples) this.sampleReject(DECODE_STATUS_NAMES[s.status] ?? String(s.status), s.line);
  }

  private sampleReject(reason: string, line: string): void {
    // Log the first few of each reason, then one in a thousand: never per event on the hot path.
    const seen = this.stats.rejected[reason] ?? 0;
    if (seen <= 5 || seen % 1000 === 0) this.log.warn({ reason, line, rejectedSoFar: seen }, 'rejected input line');
  }

  private emitReady(): void {
    for (let e = this.pending.get(this.nextEmit); e && e.remaining === 0; e = this.pending.get(this.nextEmit)) {
      this.pending.delete(this.nextEmit);
      const pushedAt = this.pushedAt.get(this.nextEmit);
      if (pushedAt !== undefined) {
        this.pushedAt.delete(this.nextEmit);
        this.opts.onChunkDone!((performance.now() - pushedAt) / 1000);
      }
      this.nextEmit++;
      this.inFlight--;
      if (e.position) this.evaluated.set(e.position.stream, e.position.next);
      if (e.onEmit) e.onEmit();
      if (e.verdicts.length > 0) {
        e.verdicts.sort(compareVerdicts);
        this.stats.verdicts += e.verdicts.length;
        try {
          this.opts.onVerdicts(e.verdicts);
        } catch (err) {
          this.fail(err as Error);
          return;
        }
      }
      this.waiters.shift()?.();
    }
    if (this.nextEmit === this.seq) for (const w of this.drainWaiters.splice(0)) w();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.log.error({ err }, 'engine failed');
    this.opts.onFailure?.(err);
    this.failCheckpoints(err);
    for (const w of this.waiters.splice(0)) w();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Event time the engine has reached (what its ticks are evaluated up to, plus the out-of-orderness), or null before any record. */
  maxEventTs(): number | null {
    return this.clock.reached();
  }

  /** Kernel counters summed over workers (as of each worker's latest task). */
  kernelCounters(): KernelCounters {
    const sum = Object.fromEntries(KERNEL_COUNTER_NAMES.map((k) => [k, 0])) as KernelCounters;
    for (const c of this.workerCounters) {
      if (!c) continue;
      for (const k of KERNEL_COUNTER_NAMES) sum[k] += c[k];
    }
    return sum;
  }

  /** Changes detection parameters on every worker, in order with the chunks before it. */
  async setParams(params: DetectionParams): Promise<void> {
    await this.drain();
    await Promise.all(this.pools.map((p) => p.run({ op: 'set-params', params } satisfies WorkerTask)));
  }

  /**
   * Queues a checkpoint barrier after every chunk accepted so far (no drain: chunks after it keep
   * flowing). Each worker exports the state of its key groups when it reaches the barrier; the
   * clock's state and the source positions are those of exactly the chunks before it. `atBarrier`
   * runs synchronously when the barrier is emitted, after the verdicts of every chunk before it and
   * before those of any after it (the incident store's progress is taken there). `deltas[w]`: worker
   * w exports only what changed since its previous export (CheckpointStore.plan decides).
   */
  checkpoint<T>(atBarrier: () => T, deltas?: boolean[]): Promise<EngineState & { barrier: T }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const begin = () => {
        if (this.failure) { reject(this.failure); this.exportDone(); return; }
        this.exportBusy = true;
        let settled = false;
        const end = () => {
          if (settled) return false;
          settled = true;
          this.checkpointFailures = this.checkpointFailures.filter((f) => f !== failed);
          this.exportDone();
          return true;
        };
        const failed = (err: Error) => { if (end()) reject(err); };
        const done = (state: EngineState & { barrier: unknown }) => { if (end()) resolve(state as EngineState & { barrier: T }); };
        this.checkpointFailures.push(failed);
        this.enqueue({ kind: 'barrier', atBarrier, done, failed, deltas });
      };
      // One at a time: a worker has one export in progress at most, so a barrier asked for while one
      // is in progress is queued once the last part of that one is complete.
      if (this.exportBusy) this.exportQueue.push(begin);
      else begin();
    });
  }

  /** The checkpoint in progress is done (or failed): the next one asked for begins. */
  private exportDone(): void {
    this.exportBusy = false;
    const next = this.exportQueue.shift();
    if (next) next();
    else for (const w of this.exportIdle.splice(0)) w();
  }

  /** Source positions of the chunks whose verdicts have been delivered (what a source may commit without checkpoints). */
  evaluatedPositions(): ReadonlyMap<string, string> {
    return this.evaluated;
  }

  /**
   * Pages through every worker's cell figures (optionally of one property), handing each page to
   * onPage before asking for the next. Pages queue behind the chunks already given to a worker, so
   * ingestion goes on between pages; the result is therefore not one point-in-time snapshot.
   */
  async dumpFigures(onPage: (figures: CellFigures[]) => Promise<void> | void, opts: { pageRecords?: number; propertyId?: string } = {}): Promise<void> {
    for (const pool of this.pools) {
      for (let cursor = 0; cursor >= 0;) {
        const page = await pool.run<CellFiguresPage>({ op: 'dump', cursor, maxRecords: opts.pageRecords ?? 4096, propertyId: opts.propertyId });
        if (page.figures.length > 0) await onPage(page.figures);
        cursor = page.nextCursor;
      }
    }
  }

  /** Stops the worker pools; idempotent. Call drain() or finish() first to keep in-flight work. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A background export in progress completes first (its slices run on the pools).
    while (this.exportBusy) await new Promise<void>((r) => this.exportIdle.push(r));
    if (this.idleTimer) clearInterval(this.idleTimer);
    await Promise.all(this.pools.map((p) => p.destroy()));
    this.pools = [];
  }
}
