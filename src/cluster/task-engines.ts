import type { S3Client } from '@aws-sdk/client-s3';
import type { VigilConfig } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { EngineStats } from '../engine/engine-stats.ts';
import type { EventClockStats } from '../engine/event-clock.ts';
import { CheckpointError } from '../engine/checkpoint-store.ts';
import type { ChunkOrigin, ChunkPosition, PartitionChange, SourceSink } from '../ingest/source.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { Incident } from '../incidents/incident.ts';
import type { Verdict } from '../kernel/verdict.ts';
import type { DetectionParams } from '../kernel/detection-params.ts';
import type { CellFigures } from '../kernel/cell-figures.ts';
import { KERNEL_COUNTER_NAMES, type KernelCounters } from '../kernel/wasm-kernel.ts';
import type { StoreWriter } from '../daemon/store-writer.ts';
import type { Health } from '../daemon/health.ts';
import { describeError } from '../daemon/health.ts';
import { createS3Client } from '../dump/s3-object-store.ts';
import type { MetricsRegistry, Sample } from '../metrics/metrics-registry.ts';
import { TaskCheckpointStore, type LoadedTaskCheckpoint } from './task-checkpoint-store.ts';

/** Engine options every task's engine shares (the daemon's), without what is the task's own. */
export type TaskEngineBase = Omit<EngineOptions, 'workers' | 'restore' | 'onVerdicts' | 'onFailure'>;

/** What the cluster's tasks need from the daemon. */
export interface ClusterTasksOptions {
  config: VigilConfig;
  logger: Logger;
  manager: IncidentManager;
  writer: StoreWriter;
  health: Health;
  now: () => number;
  /** The daemon's engine options, asked at each task's start (so parameters changed at run time apply). */
  engineBase: () => TaskEngineBase;
  /** Tests inject a client (else one is built from VIGIL_S3_*). */
  s3Client?: Pick<S3Client, 'send'>;
  /** The per-task metrics go here (vigil_cluster_task_*). */
  metrics?: MetricsRegistry;
  /** The newest high watermark the source saw of a task's partition (its lag), or null when unknown. */
  highWatermark?: (task: string) => number | null;
  /**
   * The input is not keyed by property: the tasks are the partitions of the repartition stage's
   * `topic`, and each task's event clock tracks every input partition (`upstreams`, `topic:partition`)
   * whose views its partition carries, from their chunks and progress records.
   */
  repartition?: { topic: string; upstreams: string[] };
}

/** What a task last read of an input partition from a repartition stage's progress records. */
interface UpstreamStatus {
  caughtUp: boolean;
  /** When it was read (wall clock). */
  atMs: number;
}

/**
 * One task this node owns (a partition of the input topic; with Kinesis input, the shard lineages of
 * one partition of the coordination topic): its own engine, event clock and checkpoints.
 */
interface Task {
  key: string;
  /** The group generation this node owns the task in (its checkpoints are written at it). */
  generation: number;
  /** Null while its state loads. */
  engine: Engine | null;
  /** Lost (revoked) or the node stops: no more writes, verdicts or checkpoints. */
  dropped: boolean;
  /** Properties its verdicts named (its incidents are those of these properties). */
  properties: Set<string>;
  /** The positions of its latest durable checkpoint, by stream (Kafka: its partition's offset, what the group may commit; Kinesis: its shards' sequence numbers). */
  checkpointed: Record<string, string> | null;
  checkpointing: Promise<Record<string, unknown> | null> | null;
  gainedAtMs: number;
  readyAtMs: number | null;
  restoredFrom: string | null;
  /** The offset after the last record given to its engine (null before any). */
  pushedNext: number | null;
  /** Its latest durable checkpoint: when it was written (here, or by the node it was restored from), how long the write took here, and its bytes. */
  checkpointAtMs: number | null;
  checkpointSeconds: number | null;
  /** The longest a worker stopped ingesting for the latest checkpoint written here (seconds). */
  checkpointPauseSeconds: number | null;
  checkpointBytes: number | null;
  /** Repartitioned input: each input partition's latest progress read from this task's partition. */
  upstream: Map<string, UpstreamStatus>;
}

/** The partition of a task's key (`<topic>:<partition>`), the label of its metrics. */
const partitionOf = (key: string): string => key.slice(key.lastIndexOf(':') + 1);

const LOAD_RETRY_MIN_MS = 500;
const LOAD_RETRY_MAX_MS = 10_000;
/**
 * An input partition whose latest progress record said it is caught up holds event time back again
 * once no progress of it was read for this long: its forwarder died or lost it, and the records that
 * arrive meanwhile will be forwarded by its next owner (forwarders send progress every second). Until
 * then it holds nothing: records that arrive in that window and are forwarded after the take-over can
 * be late (a 3-node test with 2 hours produced in 40 s, where 2.5 s are 11 minutes of event time, once
 * gave 26 of 31 incidents with 5 s here).
 */
const PROGRESS_STALE_MS = 2500;

/**
 * A cluster node's tasks: one per input partition the consumer group assigned it (state follows
 * partitions). Each task has its own Engine (VIGIL_CLUSTER_WORKERS_PER_TASK workers, its own event
 * clock), restored from the task's newest checkpoint in S3 before its partition is read, and
 * checkpointed there every VIGIL_CHECKPOINT_INTERVAL_MS with its partition's offset and its
 * incidents. A lost task's engine is stopped and dropped, never checkpointed again. The verdicts of
 * every task go to the node's one IncidentManager, each under its task's scope (its own progress and
 * replay window). This is the SourceSink the Kafka source writes to.
 */
export class ClusterTasks implements SourceSink {
  private readonly tasks = new Map<string, Task>();
  private readonly store: TaskCheckpointStore;
  private readonly log: Logger;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  readonly chunkBytes: number;
  /** Counters of tasks this node dropped, for status. */
  private readonly counts = { gained: 0, lost: 0, restored: 0, checkpoints: 0, checkpointFailures: 0, adopted: 0 };
  private lastWriteAt = 0;
  /** Restores from a checkpoint per task on this node since start (kept when the task leaves, shown while it is here). */
  private readonly restores = new Map<string, number>();
  private readonly readyListeners: Array<(task: string) => void> = [];
  /** What the checkpoints' positions belong to (a checkpoint names it, as a single node's does). */
  private readonly sourceId: string;
  /** Kafka input: a task is one partition, its one stream, declared to its engine when it starts (a Kinesis task's source declares its shards). */
  private readonly taskIsStream: boolean;

  constructor(private readonly o: ClusterTasksOptions) {
    const c = o.config;
    this.log = o.logger.child({ component: 'cluster', node: c.cluster!.nodeId });
    this.chunkBytes = c.chunkBytes;
    this.taskIsStream = c.source !== 'kinesis';
    this.sourceId = c.source === 'kinesis' ? `kinesis:${c.kinesis!.stream}` : `kafka:${o.repartition?.topic ?? c.kafka!.topic}`;
    this.store = new TaskCheckpointStore(o.s3Client ?? createS3Client(c.s3!), c.s3!, c.cluster!.name, c.cluster!.nodeId, this.log);
    if (o.metrics) this.registerMetrics(o.metrics);
  }

  /**
   * Per-task metrics, labelled by partition, for the tasks this node owns now: computed at each scrape
   * from the tasks held, so a task's series go when the task leaves (its new owner shows them).
   */
  private registerMetrics(m: MetricsRegistry): void {
    const per = (fn: (t: Task) => number | null) => (): Sample[] => {
      const out: Sample[] = [];
      for (const t of this.tasks.values()) {
        if (t.dropped) continue;
        const value = fn(t);
        if (value !== null) out.push({ labels: { partition: partitionOf(t.key) }, value });
      }
      return out;
    };
    const L = ['partition'];
    m.collect('vigil_cluster_tasks_owned', 'Tasks (input partitions) this node owns now.', 'gauge', () => [...this.tasks.values()].filter((t) => !t.dropped).length);
    m.collect('vigil_cluster_tasks_max', 'Tasks this node\'s key and cell caps are sized for (VIGIL_CLUSTER_MAX_TASKS).', 'gauge', () => this.o.config.cluster!.maxTasks);
    m.collect('vigil_cluster_task_events_total', 'Valid records the task\'s engine decoded since this node gained the task.', 'counter', per((t) => t.engine?.stats.events ?? 0), L);
    m.collect('vigil_cluster_task_rejected_total', 'Lines of the task\'s partition rejected since this node gained the task.', 'counter', per((t) => t.engine?.stats.rejectedTotal() ?? 0), L);
    m.collect('vigil_cluster_task_verdicts_total', 'Verdicts of the task\'s engine since this node gained the task.', 'counter', per((t) => t.engine?.stats.verdicts ?? 0), L);
    m.collect('vigil_cluster_task_lag_records', 'Records of the task\'s partition not yet given to its engine (high watermark at the latest fetch minus the next offset); absent before the first fetch.', 'gauge',
      per((t) => {
        const hw = this.o.highWatermark?.(t.key) ?? null;
        return hw === null || t.pushedNext === null ? null : Math.max(0, hw - t.pushedNext);
      }), L);
    m.collect('vigil_cluster_task_event_time_lag_seconds', 'Wall clock minus the newest event time of the task (how far it is behind a live source); absent before its first record.', 'gauge',
      per((t) => { const ts = t.engine?.maxEventTs() ?? null; return ts === null ? null : Math.max(0, this.o.now() - ts) / 1000; }), L);
    m.collect('vigil_cluster_task_checkpoint_age_seconds', 'Since the task\'s latest durable checkpoint was written (here, or the one it was restored from); absent while it has none.', 'gauge',
      per((t) => (t.checkpointAtMs === null ? null : Math.max(0, this.o.now() - t.checkpointAtMs) / 1000)), L);
    m.collect('vigil_cluster_task_checkpoint_duration_seconds', 'How long the task\'s latest checkpoint written by this node took (barrier to manifest in S3).', 'gauge', per((t) => t.checkpointSeconds), L);
    m.collect('vigil_cluster_task_checkpoint_pause_seconds', 'The longest a worker of the task stopped ingesting for its latest checkpoint written by this node (an incremental part written in the background: its longest step).',
      'gauge', per((t) => t.checkpointPauseSeconds), L);
    m.collect('vigil_cluster_task_checkpoint_bytes', 'Bytes of the task\'s latest checkpoint written by this node (its parts).', 'gauge', per((t) => t.checkpointBytes), L);
    m.collect('vigil_cluster_task_restores_total', 'Times this node restored the task from a checkpoint since it started.', 'counter', per((t) => this.restores.get(t.key) ?? 0), L);
    m.collect('vigil_cluster_task_restore_seconds', 'From the assignment of the task to its engine ready (checkpoint read from S3 and restored, or started empty) this time it came here; absent while it loads.', 'gauge',
      per((t) => (t.readyAtMs === null ? null : (t.readyAtMs - t.gainedAtMs) / 1000)), L);
  }

  /** Starts the periodic task checkpoints and the stale sweep. */
  start(): void {
    const c = this.o.config;
    // The store's open incidents are those of the tasks this node owned before it stopped: each task
    // gained takes its own back (from the store or its checkpoint), the others are their owners'.
    this.o.manager.release(() => true);
    this.timers.push(setInterval(() => { void this.checkpointAll('interval').catch(() => undefined); }, c.checkpointIntervalMs));
    // Open incidents the task's kernel no longer knows expire; each task by its own event time, and
    // only the incidents of tasks this node owns (another node continues the others).
    this.timers.push(setInterval(() => this.expireStale(), 60_000));
    // Repartitioned input: an input partition with a backlog, or none heard of lately, holds event time.
    if (this.o.repartition) this.timers.push(setInterval(() => this.holdUpstreams(), 500));
    for (const t of this.timers) t.unref();
  }

  /**
   * Each task's input partitions whose latest progress said behind, or that no progress was read of
   * for PROGRESS_STALE_MS (or ever), hold event time at their marks (engine.streamBehind): their
   * records are still to come through this task's partition, however long that takes (a forwarder
   * moving to another node after a kill -9 takes the session timeout, more than the idle timeout).
   */
  private holdUpstreams(): void {
    const now = this.o.now();
    for (const t of this.tasks.values()) {
      if (!t.engine || t.dropped) continue;
      for (const u of this.o.repartition!.upstreams) {
        const st = t.upstream.get(u);
        if (!st || !st.caughtUp || now - st.atMs > PROGRESS_STALE_MS) t.engine.streamBehind(u);
      }
    }
  }

  // --- SourceSink ---------------------------------------------------------------------------------

  write(): Promise<void> {
    return Promise.reject(new Error('a cluster node takes framed chunks of one partition (writeChunk)'));
  }

  writeChunk = async (chunk: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> => {
    // Repartitioned, a chunk's origin is its input partition; its position says which task's partition it was read from.
    const key = this.o.repartition ? position?.stream : origin?.stream;
    const t = key === undefined ? undefined : this.tasks.get(key);
    // A partition lost (or still loading) while its chunk was framed: its records are the new owner's.
    if (!t || !t.engine || t.dropped) return;
    // Repartitioned: the chunk's input partition is caught up or not as its latest progress said (not as this partition is).
    if (this.o.repartition && origin) origin = { stream: origin.stream, live: t.upstream.get(origin.stream)?.caughtUp ?? false };
    await this.o.writer.idle();
    this.lastWriteAt = this.o.now();
    try {
      await t.engine.push(chunk, origin, position);
      if (position !== undefined) t.pushedNext = Number(position.next);
    } catch (err) {
      if (!t.dropped) throw err;
    }
  };

  // Arrow functions: the source calls these detached from the sink.
  committable = (): ReadonlyMap<string, string> => {
    const out = new Map<string, string>();
    for (const t of this.tasks.values()) if (!t.dropped) for (const [k, v] of Object.entries(t.checkpointed ?? {})) out.set(k, v);
    return out;
  };

  /** Each task's engine declares its own partition when it starts. */
  declareStreams = (): void => {};

  // Repartitioned, a task's partition is no stream of its clock (its input partitions are: holdUpstreams).
  streamCaughtUp = (id: string): void => {
    if (!this.o.repartition) this.tasks.get(id)?.engine?.streamCaughtUp(id);
  };

  streamBehind = (id: string): void => {
    if (!this.o.repartition) this.tasks.get(id)?.engine?.streamBehind(id);
  };

  // Repartitioned, a task's partition is never paused: the views of the input partition holding event
  // time back come through it behind those of the one ahead (the kernel holds what is ahead).
  streamAhead = (id: string): boolean => (this.o.repartition ? false : this.tasks.get(id)?.engine?.streamAhead(id) ?? false);

  upstreamProgress = (partition: string, upstream: string, mark: number | null, caughtUp: boolean): void => {
    const t = this.tasks.get(partition);
    if (!t || !t.engine || t.dropped) return;
    t.upstream.set(upstream, { caughtUp, atMs: this.o.now() });
    t.engine.upstreamProgress(upstream, mark, caughtUp);
  };

  partitionsChanged = (change: PartitionChange): Map<string, Promise<string | null>> => {
    const out = new Map<string, Promise<string | null>>();
    for (const [key, load] of this.assign(change)) out.set(key, load.then((p) => p?.[key] ?? null));
    return out;
  };

  /**
   * A task's own sink, for a source that reads the streams of one task (a Kinesis task's shards):
   * bound to the task as it is now, so a source left over from before the task was lost and gained
   * again writes nothing into the new one. Its committable positions are the task's latest checkpoint's.
   */
  sinkOf(key: string): SourceSink {
    const t = this.tasks.get(key);
    const live = (): Task | null => (t && !t.dropped && t.engine && this.tasks.get(key) === t ? t : null);
    return {
      chunkBytes: this.chunkBytes,
      write: () => Promise.reject(new Error('a cluster task takes framed chunks (writeChunk)')),
      writeChunk: async (chunk, origin, position) => {
        if (!live()) return;
        await this.o.writer.idle();
        this.lastWriteAt = this.o.now();
        try {
          await live()?.engine!.push(chunk, origin, position);
        } catch (err) {
          if (live()) throw err;
        }
      },
      committable: () => new Map(Object.entries(live()?.checkpointed ?? {})),
      declareStreams: (ids, parents) => live()?.engine!.declareStreams(ids, parents),
      streamCaughtUp: (id) => live()?.engine!.streamCaughtUp(id),
      streamBehind: (id) => live()?.engine!.streamBehind(id),
      streamAhead: (id) => live()?.engine!.streamAhead(id) ?? false,
    };
  }

  /**
   * A new assignment of tasks: the lost ones are dropped, and for each gained one a promise of the
   * positions its state holds (by stream; null: no checkpoint), resolved once its state is loaded and
   * its engine started. Reading a gained task's streams must wait for it.
   */
  assign(change: PartitionChange): Map<string, Promise<Record<string, string> | null>> {
    const generation = change.generation ?? 0;
    for (const key of change.lost) this.drop(key, 'revoked');
    for (const t of this.tasks.values()) t.generation = generation;
    const loads = new Map<string, Promise<Record<string, string> | null>>();
    for (const key of change.gained) {
      const t: Task = { key, generation, engine: null, dropped: false, properties: new Set(), checkpointed: null, checkpointing: null,
        gainedAtMs: this.o.now(), readyAtMs: null, restoredFrom: null, pushedNext: null, checkpointAtMs: null, checkpointSeconds: null, checkpointPauseSeconds: null, checkpointBytes: null, upstream: new Map() };
      this.tasks.set(key, t);
      this.counts.gained++;
      loads.set(key, this.gain(t));
    }
    this.log.info({ generation, gained: change.gained, lost: change.lost, owned: [...this.tasks.keys()].sort() }, 'cluster tasks assigned');
    const c = this.o.config;
    if (this.tasks.size > c.cluster!.maxTasks) {
      // The caps are per kernel: every task's kernels may fill theirs, so memory at full caps grows with the tasks owned.
      this.log.warn({ owned: this.tasks.size, maxTasks: c.cluster!.maxTasks, kernels: this.tasks.size * c.cluster!.workersPerTask, maxKeysPerWorker: c.maxKeysPerWorker,
        maxCellsPerWorker: c.maxCellsPerWorker }, 'this node owns more tasks than VIGIL_CLUSTER_MAX_TASKS: at full key and cell caps its kernels may take more than the memory share they were sized for');
    }
    return loads;
  }

  // --- gaining and losing a task --------------------------------------------------------------------

  /** Loads the task's newest checkpoint (retrying while S3 fails), settles its incidents, starts its engine; resolves with where to read from (by stream). */
  private async gain(t: Task): Promise<Record<string, string> | null> {
    const groups = this.o.config.keyGroups;
    let loaded: LoadedTaskCheckpoint | null = null;
    for (let attempt = 0; ; attempt++) {
      if (t.dropped) return null;
      try {
        const { checkpoint, refused } = await this.store.load(t.key, groups);
        for (const reason of refused) this.log.warn({ task: t.key, reason }, 'task checkpoint refused');
        loaded = checkpoint;
        break;
      } catch (err) {
        // A task must not start cold because S3 is away: its partition stays paused until this works.
        this.o.health.fail('checkpoint', err);
        const delay = Math.min(LOAD_RETRY_MAX_MS, LOAD_RETRY_MIN_MS * 2 ** attempt);
        this.log.warn({ task: t.key, err: describeError(err), retryInMs: delay }, 'task checkpoint not readable; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    if (t.dropped) return null;
    const m = loaded?.manifest;
    for (const p of m?.incidents.properties ?? []) t.properties.add(p);
    this.settleIncidents(t, loaded);
    const positions = m?.positions ?? {};
    let engine = this.newEngine(t, loaded ? { parts: loaded.parts, eventTime: m!.eventTime, positions } : undefined);
    try {
      await engine.start();
    } catch (err) {
      if (!loaded) throw err;
      this.log.warn({ task: t.key, err: describeError(err), checkpoint: loaded.name }, 'task checkpoint could not be restored; the task starts with empty state');
      await engine.stop();
      engine = this.newEngine(t, undefined);
      await engine.start();
      loaded = null;
    }
    if (t.dropped) {
      await engine.stop();
      return null;
    }
    if (this.taskIsStream) engine.declareStreams(this.o.repartition?.upstreams ?? [t.key]);
    t.engine = engine;
    for (const l of this.readyListeners) {
      try { l(t.key); } catch (err) { this.log.error({ err, task: t.key }, 'task ready listener failed'); }
    }
    t.checkpointed = loaded ? { ...positions } : null;
    t.restoredFrom = loaded?.name ?? null;
    t.readyAtMs = this.o.now();
    if (loaded) {
      this.counts.restored++;
      this.restores.set(t.key, (this.restores.get(t.key) ?? 0) + 1);
      t.checkpointAtMs = m!.createdAtMs;
    }
    this.log.info({ task: t.key, generation: t.generation, checkpoint: loaded?.name ?? null, writtenBy: m?.nodeId ?? null,
      ...(this.taskIsStream ? { offset: loaded ? positions[t.key] ?? null : null } : { positions: loaded ? positions : null }),
      eventTime: m?.eventTime.reached ?? null, openIncidents: m?.incidents.open.length ?? 0, loadMs: t.readyAtMs - t.gainedAtMs }, 'cluster task ready');
    return loaded ? positions : null;
  }

  /**
   * Where the task's incidents stand on this node before its first verdicts: those the checkpoint
   * holds open (IncidentManager.adopt: as this store has them, or stored here). When this store is
   * ahead of the checkpoint (this node had the task past it: a restart, or the task back before
   * another node checkpointed it), the re-derived tail up to the store's progress is recognised by
   * identity, not stored or notified again. In order with the verdicts, through the store writer.
   */
  private settleIncidents(t: Task, cp: LoadedTaskCheckpoint | null): void {
    const owns = (i: Incident): boolean => t.properties.has(i.propertyId);
    const cpMs = cp?.manifest.latestVerdictMs ?? null;
    const tick = this.o.config.params.tickMs;
    this.o.writer.submit('task incidents', () => {
      this.o.manager.replayAfterRestore(cpMs, tick, t.key);
      const n = this.o.manager.adopt(t.key, cpMs, cp?.manifest.incidents.open ?? [], owns);
      this.counts.adopted += n;
      if (n) this.log.info({ task: t.key, adopted: n }, 'open incidents of the task taken over from its checkpoint');
    });
  }

  private newEngine(t: Task, restore: EngineOptions['restore']): Engine {
    const base = this.o.engineBase();
    let evaluated = false;
    return new Engine({
      ...base,
      workers: this.o.config.cluster!.workersPerTask,
      restore,
      // The first chunk of the task evaluated here: how long a move took, from the assignment (logged once per task).
      onChunkDone: (seconds: number) => {
        base.onChunkDone?.(seconds);
        if (evaluated || t.dropped) return;
        evaluated = true;
        this.log.info({ task: t.key, sinceAssignedMs: this.o.now() - t.gainedAtMs }, 'cluster task evaluating');
      },
      onVerdicts: (v: Verdict[]) => {
        if (t.dropped) return;
        for (const x of v) t.properties.add(x.propertyId);
        this.o.writer.submit('verdicts', () => { this.o.manager.applyBatch(v, t.key); });
      },
      // A dropped task's engine fails its in-flight work when it stops: that is no failure of the node.
      onFailure: (err: Error) => { if (!t.dropped) this.o.health.fail('engine', err); },
    });
  }

  /** Stops and forgets a task (no checkpoint: its new owner restores the latest durable one). */
  private drop(key: string, why: string): void {
    const t = this.tasks.get(key);
    if (!t) return;
    t.dropped = true;
    this.tasks.delete(key);
    this.counts.lost++;
    const owns = (i: Incident): boolean => t.properties.has(i.propertyId);
    // After the task's verdicts already on their way to the store.
    this.o.writer.submit('task released', () => { this.o.manager.release(owns); });
    void t.engine?.stop().catch((err) => this.log.warn({ err, task: key }, 'task engine stop failed'));
    this.log.info({ task: key, why }, 'cluster task dropped');
  }

  // --- checkpoints ----------------------------------------------------------------------------------

  /** Checkpoints every task that is ready; rejects with the first failure after trying all. */
  async checkpointAll(trigger: 'interval' | 'command' | 'shutdown'): Promise<Record<string, unknown>> {
    const results: Record<string, unknown> = {};
    let failure: unknown = null;
    for (const t of [...this.tasks.values()]) {
      try {
        results[t.key] = await this.checkpointTask(t);
      } catch (err) {
        failure ??= err;
        results[t.key] = { error: describeError(err) };
      }
    }
    if (failure !== null) {
      this.counts.checkpointFailures++;
      this.o.health.fail('checkpoint', failure);
      if (trigger !== 'interval') throw failure;
      this.log.warn({ err: describeError(failure) }, 'periodic task checkpoint not written');
    } else {
      this.o.health.ok('checkpoint');
    }
    return { tasks: results };
  }

  private checkpointTask(t: Task): Promise<Record<string, unknown> | null> {
    if (!t.engine || t.dropped) return Promise.resolve(null);
    const engine = t.engine;
    t.checkpointing ??= (async () => {
      const startedAtMs = this.o.now();
      this.refuseWhileStoreFails();
      const owns = (i: Incident): boolean => t.properties.has(i.propertyId);
      // Taken where the barrier is emitted: after the verdicts of every chunk before it.
      const state = await engine.checkpoint(() => ({
        latestVerdictMs: this.o.manager.latestVerdictMs(t.key), open: this.o.manager.openIncidentsOf(owns), properties: [...t.properties].sort(),
        waiting: this.o.writer.pending(),
      }));
      if (state.barrier.waiting > 0) this.refuseWhileStoreFails();
      if (t.dropped) return null;
      const c = this.o.config;
      const saved = await this.store.save(t.key, t.generation, state.parts, {
        eventTime: state.eventTime, positions: state.positions, source: this.sourceId, latestVerdictMs: state.barrier.latestVerdictMs,
        incidents: { open: state.barrier.open, properties: state.barrier.properties },
      }, c.keyGroups, this.o.now(), () => !t.dropped);
      if (saved === null || t.dropped) return null;
      this.counts.checkpoints++;
      t.checkpointed = { ...t.checkpointed, ...state.positions };
      t.checkpointAtMs = this.o.now();
      t.checkpointSeconds = (t.checkpointAtMs - startedAtMs) / 1000;
      t.checkpointPauseSeconds = Math.max(...state.parts.map((p) => p.pauseMs)) / 1000;
      t.checkpointBytes = saved.bytes;
      return { name: saved.name, bytes: saved.bytes, ...this.checkpointedOf(t), event_time: state.eventTime.reached };
    })().finally(() => { t.checkpointing = null; });
    return t.checkpointing;
  }

  private refuseWhileStoreFails(): void {
    const waiting = this.o.writer.pending();
    if (waiting === 0) return;
    throw new CheckpointError(`task checkpoint refused: ${waiting} write(s) wait for the incident store; a checkpoint now would hold incidents that are not stored`,
      { code: 'CHECKPOINT_REFUSED' });
  }

  /** At shutdown: every task's in-flight chunks evaluated, then its final checkpoint (the source commits their offsets after). */
  async drainAndCheckpoint(): Promise<void> {
    for (const t of this.tasks.values()) await t.engine?.drain();
    await this.checkpointAll('shutdown');
  }

  private expireStale(): void {
    const c = this.o.config;
    const maxSilence = 2 * Math.max(c.params.property.expireMs, c.params.title.expireMs);
    for (const t of this.tasks.values()) {
      const ts = t.engine?.maxEventTs() ?? null;
      if (ts === null || t.dropped) continue;
      const owns = (i: Incident): boolean => t.properties.has(i.propertyId);
      this.o.writer.submit('expire stale', () => { this.o.manager.expireStale(ts, maxSilence, owns); });
    }
  }

  /** Stops every task's engine (after drainAndCheckpoint at shutdown); idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    const engines = [...this.tasks.values()].map((t) => { t.dropped = true; return t.engine; });
    this.tasks.clear();
    await Promise.all(engines.map((e) => e?.stop()));
  }

  // --- what the rest of the daemon asks of "the engine" ---------------------------------------------

  /** The furthest event time any task has reached (null before any). */
  maxEventTs(): number | null {
    let max: number | null = null;
    for (const t of this.tasks.values()) {
      const ts = t.engine?.maxEventTs() ?? null;
      if (ts !== null && (max === null || ts > max)) max = ts;
    }
    return max;
  }

  /** Calls `listener` with a task's key each time a task gained here is ready (its engine started). */
  onTaskReady(listener: (task: string) => void): void {
    this.readyListeners.push(listener);
  }

  /** The tasks whose engines run here now, with the generation this node owns each in and a handle of this ownership (for stillOwned). */
  readyTasks(): Array<{ task: string; generation: number; ownership: object }> {
    return [...this.tasks.values()].filter((t) => t.engine !== null && !t.dropped).map((t) => ({ task: t.key, generation: t.generation, ownership: t }));
  }

  /** Whether this node still owns the task as it did when readyTasks() gave `ownership` (not revoked since, even if gained again). */
  stillOwned(task: string, ownership: object): boolean {
    const t = this.tasks.get(task);
    return t === ownership && !t.dropped;
  }

  /** One task's cell figures (a cluster dump's share of it); false when the task is not ready here. */
  async dumpTask(task: string, onPage: (figures: CellFigures[]) => Promise<void> | void, opts: { pageRecords?: number; propertyId?: string } = {}): Promise<boolean> {
    const t = this.tasks.get(task);
    if (!t?.engine || t.dropped) return false;
    await t.engine.dumpFigures(onPage, opts);
    return true;
  }

  /** The newest event time of a task here, or null. */
  taskEventTime(task: string): number | null {
    return this.tasks.get(task)?.engine?.maxEventTs() ?? null;
  }

  /** Every task's cell figures, task after task. */
  async dumpFigures(onPage: (figures: CellFigures[]) => Promise<void> | void, opts: { pageRecords?: number; propertyId?: string } = {}): Promise<void> {
    for (const t of [...this.tasks.values()]) await t.engine?.dumpFigures(onPage, opts);
  }

  /** New detection parameters for every task (tasks gained later start with the daemon's current ones). */
  async setParams(params: DetectionParams): Promise<void> {
    await Promise.all([...this.tasks.values()].map((t) => t.engine?.setParams(params)));
  }

  /** Kernel counters summed over the tasks this node owns now. */
  kernelCounters(): KernelCounters {
    const sum = Object.fromEntries(KERNEL_COUNTER_NAMES.map((k) => [k, 0])) as KernelCounters;
    for (const t of this.tasks.values()) {
      const c = t.engine?.kernelCounters();
      if (c) for (const k of KERNEL_COUNTER_NAMES) sum[k] += c[k];
    }
    return sum;
  }

  /** Event-clock counters (future records, capped chunks) summed over the tasks this node owns now. */
  clockStats(): EventClockStats {
    const sum: EventClockStats = { future: 0, futureDropped: 0, cappedChunks: 0 };
    for (const t of this.tasks.values()) {
      const c = t.engine?.clock.stats;
      if (!c) continue;
      sum.future += c.future; sum.futureDropped += c.futureDropped; sum.cappedChunks += c.cappedChunks;
    }
    return sum;
  }

  /** Engine counters summed over the tasks this node owns now. */
  get stats(): EngineStats {
    const sum = new EngineStats();
    for (const t of this.tasks.values()) {
      const s = t.engine?.stats;
      if (!s) continue;
      sum.chunks += s.chunks; sum.bytes += s.bytes; sum.events += s.events; sum.verdicts += s.verdicts;
      for (const [r, n] of Object.entries(s.rejected)) sum.reject(r, n);
    }
    return sum;
  }

  /** When the source last wrote (for the daemon's idle advance). */
  lastWrite(): number {
    return this.lastWriteAt;
  }

  /** Where a task's latest checkpoint stands: its partition's offset (Kafka), or its shards' sequence numbers (Kinesis). */
  private checkpointedOf(t: Task, prefix = ''): Record<string, unknown> {
    return this.taskIsStream ? { [`${prefix}offset`]: t.checkpointed?.[t.key] ?? null } : { [`${prefix}positions`]: t.checkpointed };
  }

  status(): Record<string, unknown> {
    const now = this.o.now();
    return {
      node: this.o.config.cluster!.nodeId, name: this.o.config.cluster!.name, ...this.counts, max_tasks: this.o.config.cluster!.maxTasks,
      tasks: [...this.tasks.values()].sort((a, b) => a.key.localeCompare(b.key)).map((t) => ({
        task: t.key, generation: t.generation, ready: t.engine !== null, restored_from: t.restoredFrom, ...this.checkpointedOf(t, 'checkpointed_'),
        event_time: t.engine?.maxEventTs() ?? null, owned_s: Math.round((now - t.gainedAtMs) / 1000), properties: t.properties.size,
        events: t.engine?.stats.events ?? 0, restore_ms: t.readyAtMs === null ? null : t.readyAtMs - t.gainedAtMs,
        checkpoint_age_s: t.checkpointAtMs === null ? null : Math.round((now - t.checkpointAtMs) / 1000), checkpoint_bytes: t.checkpointBytes,
      })),
    };
  }
}
