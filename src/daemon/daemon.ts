import { resolve } from 'node:path';
import type { VigilConfig } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { Engine, type EngineRestore, type EngineView } from '../engine/engine.ts';
import { ClusterTasks } from '../cluster/task-engines.ts';
import { CheckpointError, CheckpointStore, DEFAULT_CHAIN_POLICY } from '../engine/checkpoint-store.ts';
import { LineChunker } from '../ingest/line-chunker.ts';
import type { ChunkPosition, Source } from '../ingest/source.ts';
import { DemoSource } from '../ingest/demo-source.ts';
import { StreamSource } from '../ingest/stream-source.ts';
import { KafkaSource } from '../ingest/kafka-source.ts';
import { KinesisSource } from '../ingest/kinesis-source.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import { IncidentManager } from '../incidents/incident-manager.ts';
import type { AuditFile } from '../incidents/audit-file.ts';
import type { IncidentTransition } from '../incidents/incident.ts';
import { formatIncidentSummary } from '../incidents/incident-summary.ts';
import { CommandFailure, CommandHandler } from '../control/command-handler.ts';
import { registerBuiltinCommands } from '../control/builtin-commands.ts';
import { ControlPlane, loadParamOverrides } from '../control/control-plane.ts';
import type { ParamOverrides } from '../control/param-overrides.ts';
import type { DetectionParams } from '../kernel/detection-params.ts';
import { NotificationPipeline } from '../notify/notification-pipeline.ts';
import { ClusterNode } from '../cluster/cluster-node.ts';
import { ClusterDump } from '../cluster/cluster-dump.ts';
import { createS3Client } from '../dump/s3-object-store.ts';
import { KinesisTasksSource } from '../cluster/kinesis-tasks.ts';
import { RepartitionForwarder, type RepartitionStage } from '../cluster/repartition-forwarder.ts';
import { registerNotifyCommands } from '../notify/notify-commands.ts';
import { MetricsRegistry } from '../metrics/metrics-registry.ts';
import { registerDaemonHistograms, registerDaemonMetrics, type DaemonHistograms } from '../metrics/daemon-metrics.ts';
import type { HttpServer, Readiness } from '../http/http-server.ts';
import { createDaemonHttp } from '../http/daemon-http.ts';
import { VERSION } from '../version.ts';
import { backoffMs, type RetryPolicy } from '../notify/retry-policy.ts';
import { Health, RetryTimer, describeError } from './health.ts';
import { StoreWriter } from './store-writer.ts';
import { openAuditFile, openDataDirStore, prepareDataDir } from './data-dir.ts';

// Between attempts at a failing store, audit file or checkpoint: each attempt at a locked database
// holds the thread for VIGIL_DB_BUSY_TIMEOUT_MS, so the pauses between them leave it free.
const RETRY: RetryPolicy = { baseMs: 250, maxMs: 5000 };
// How long a stop keeps trying to store the verdicts that wait (a deadline of its own: not the
// degraded time, which may be what is stopping the daemon).
const STOP_STORE_GRACE_MS = 10_000;

/** Collaborators the daemon can be given (tests inject a source and a clock). */
export interface DaemonDeps {
  source?: Source;
  now?: () => number;
}

/**
 * `vigil run`: source -> engine -> incidents -> subscribers. Components start in order
 * and stop in reverse; stop() drains in-flight chunks, checkpoints the kernels and closes the store.
 */
export class Daemon {
  private engine!: Engine;
  /** In a cluster (VIGIL_CLUSTER=true): one engine per task (input partition) this node owns, instead of `engine`. */
  private cluster: ClusterTasks | null = null;
  private store!: IncidentStore;
  manager!: IncidentManager;
  /** The one command handler every control channel (RabbitMQ, HTTP admin) goes through. */
  commands!: CommandHandler;
  /** Dumps, set-thresholds and the RabbitMQ consumer (see control-plane.ts). */
  control: ControlPlane | null = null;
  /** Prometheus registry served at /metrics; any component may register its metrics here. */
  readonly metrics = new MetricsRegistry({ runtime: true });
  private readonly histograms: DaemonHistograms;
  /** The HTTP API, feed and dashboard (null when VIGIL_HTTP=false). */
  http: HttpServer | null = null;
  private sourceStarted = false;
  private audit: AuditFile | null = null;
  /** Notification log, silences and receiver queues (src/notify/). */
  notify!: NotificationPipeline;
  /** This node's part of a cluster's incident view (VIGIL_CLUSTER=true; src/cluster/cluster-node.ts), else null. */
  view: ClusterNode | null = null;
  /** A cluster whose input is not keyed by property: this node's part of the repartition stage (else null). */
  private forwarder: RepartitionForwarder | null = null;
  private stage: RepartitionStage | null = null;
  private source!: Source;
  private chunker!: LineChunker;
  private timers: NodeJS.Timeout[] = [];
  /** Degraded states (store, checkpoint, audit file, source, engine): /readyz, /metrics, give-up. */
  readonly health: Health;
  /** Verdict batches and stale expiries on their way to the store; they wait here while it fails. */
  private writer: StoreWriter | null = null;
  /** Resolves with the reason when a degraded state lasted VIGIL_DEGRADED_EXIT_MS: stop, exit 1. */
  readonly fatal: Promise<string>;
  private giveUp!: (reason: string) => void;
  private gaveUp = false;
  /** What stop() could not do (verdicts not stored, the final checkpoint): non-empty means exit code 1. */
  readonly stopFailures: string[] = [];
  private readonly checkpointRetry: RetryTimer;
  private readonly auditRetry: RetryTimer;
  private lastWriteAt = 0;
  private stopping: Promise<void> | null = null;
  private readonly now: () => number;
  private startedAt = 0;
  private readonly checkpoints: CheckpointStore;
  /** Source positions of the latest durable checkpoint: what sources may commit. */
  private checkpointed = new Map<string, string>();
  private checkpointing: Promise<Record<string, unknown>> | null = null;
  /** Positions whose verdicts are stored (sources commit these without checkpoints). */
  private stored = new Map<string, string>();
  /** The file source's offset the chunker counts from (a restored checkpoint's). */
  private fileBase = 0;
  /** The detection parameters of the configuration (set-thresholds overrides apply over these). */
  private readonly configuredParams: DetectionParams;
  private paramOverrides!: ParamOverrides;

  constructor(readonly config: VigilConfig, private readonly log: Logger, private readonly deps: DaemonDeps = {}) {
    this.now = deps.now ?? Date.now;
    this.configuredParams = config.params;
    this.fatal = new Promise((resolve) => { this.giveUp = resolve; });
    this.health = new Health({
      logger: log, now: this.now, exitAfterMs: config.degradedExitMs,
      onGiveUp: (reason) => {
        this.gaveUp = true;
        this.log.fatal({ reason }, `giving up: ${reason}`);
        this.giveUp(reason);
      },
    });
    const delay = (failures: number) => backoffMs(RETRY, failures);
    this.checkpointRetry = new RetryTimer(delay, () => this.checkpointOnce('retry').then(() => true, () => false));
    this.auditRetry = new RetryTimer(delay, () => this.flushAudit());
    registerDaemonMetrics(this.metrics, {
      engineStats: () => this.cluster?.stats ?? this.engine?.stats, kernelCounters: () => this.cluster?.kernelCounters() ?? this.engine?.kernelCounters(),
      clockStats: () => this.cluster?.clockStats() ?? this.engine?.clock.stats, maxEventTs: () => this.engineEventTime(),
      manager: () => this.manager, commands: () => this.commands, now: this.now,
      health: () => this.health, storeWriter: () => this.writer ?? undefined, auditPendingLines: () => this.audit?.pendingLines ?? 0,
    });
    this.histograms = registerDaemonHistograms(this.metrics);
    const cpLog = log.child({ component: 'checkpoint' });
    this.checkpoints = new CheckpointStore(config.dataDir, { ...DEFAULT_CHAIN_POLICY, maxDeltas: config.checkpointMaxDeltas }, (m) => {
      this.histograms.merges.inc({ outcome: m.outcome });
      if (m.outcome === 'merged') {
        this.histograms.merge.observe(m.ms / 1000);
        cpLog.info({ checkpoint: m.checkpoint, parts: m.parts, ms: Math.round(m.ms) }, 'checkpoint chain merged into a new full base');
      } else if (m.outcome === 'stopped') {
        cpLog.info({ checkpoint: m.checkpoint, ms: Math.round(m.ms) }, 'checkpoint chain merge ended by the stop: the checkpoint keeps its chain');
      } else {
        cpLog.warn({ checkpoint: m.checkpoint, ms: Math.round(m.ms), err: m.error }, 'checkpoint chain merge failed: the chain goes on (a full export past twice its limits)');
      }
    });
  }

  /**
   * Starts every component; throws when one cannot start, after stopping what did (no checkpoint:
   * nothing was read). Problems of the data directory are ConfigErrors naming VIGIL_DATA_DIR.
   */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      await this.stop().catch((e) => this.log.error({ err: e }, 'stop after a failed start failed'));
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const c = this.config;
    this.startedAt = this.now();
    prepareDataDir(c.dataDir);
    const cleaned = this.checkpoints.cleanStale();
    if (cleaned.length) this.log.warn({ cleaned }, 'removed what an interrupted checkpoint left in the data directory');
    // Thresholds changed with set-thresholds at run time survive restarts.
    const loaded = loadParamOverrides(c.dataDir, this.configuredParams, this.log);
    c.params = loaded.params;
    this.paramOverrides = loaded.overrides;
    this.store = openDataDirStore(c.dataDir, c.dbBusyTimeoutMs);
    this.writer = new StoreWriter({ health: this.health, logger: this.log.child({ component: 'store' }), retry: RETRY });
    // In a cluster the transitions go to the cluster's topic, and the notifying node plans notifications from there.
    if (c.cluster) this.view = new ClusterNode(c.cluster, c.kafka!, this.store, this.log, this.metrics);
    this.notify = new NotificationPipeline({ config: c.notify, store: this.store, logger: this.log, now: this.now, metrics: this.metrics, cluster: c.cluster !== null });
    if (c.transitionsFile) {
      // Before any transition: the lines a crash kept from the file (in the store) are appended first.
      this.audit = openAuditFile(c.transitionsFile, this.store.database);
      const recovered = this.audit.recover();
      if (recovered > 0) this.log.warn({ lines: recovered, path: this.audit.path }, 'audit file completed from the incident store (the process had stopped between storing transitions and writing them)');
    }
    const audit = this.audit;
    const withAudit = (before: (t: readonly IncidentTransition[]) => void) =>
      (audit === null ? before : (t: readonly IncidentTransition[]) => { audit.beforeCommit(t); before(t); });
    this.manager = new IncidentManager({
      store: this.store, logger: this.log.child({ component: 'incidents' }), isSilenced: this.notify.isSilenced,
      ...(this.view
        ? { beforeCommit: withAudit(this.view.outbox.beforeCommit), sharedStore: { toleranceMs: c.params.tickMs } }
        : { beforeCommit: withAudit(this.notify.beforeCommit), afterRollback: this.notify.afterRollback }),
    });
    this.notify.start(this.manager);
    await this.view?.start(this.manager, this.notify);
    const open = this.manager.openIncidents();
    if (open.length) this.log.info({ open: open.length }, 'continuing open incidents from the store');
    if (this.audit) this.manager.subscribe((t) => { if (t.mirroredFrom === undefined) this.writeAudit(t); });
    const tlog = this.log.child({ component: 'transitions' });
    this.manager.subscribe((t) => {
      if (t.type === 'updated' || t.mirroredFrom !== undefined) return;
      if (t.type === 'opened') this.histograms.eventToIncident.observe(Math.max(0, this.now() - t.atMs) / 1000);
      tlog.info({ incidentId: t.incident.id, type: t.type, scope: t.incident.scope, propertyId: t.incident.propertyId,
        videoTitle: t.incident.videoTitle, errorType: t.incident.errorType, at: new Date(t.atMs).toISOString() },
      `incident #${t.incident.id} ${t.type}: ${formatIncidentSummary(t.incident)}`);
    });

    let resume: ReadonlyMap<string, string> | undefined;
    if (c.cluster) {
      if (!c.cluster.inputKeyedByProperty) {
        // The tasks read the repartition stage's topic, which the forwarders fill from the input.
        this.forwarder = new RepartitionForwarder({ kafka: c.kafka!, cluster: c.cluster, fieldNames: c.fieldNames, maxRecordBytes: c.maxLineBytes,
          clock: this.clockOptions(), logger: this.log });
        this.stage = await this.forwarder.prepare();
      }
      // State follows partitions: each task's engine is restored from S3 when the group assigns it.
      this.cluster = new ClusterTasks({ config: c, logger: this.log, manager: this.manager, writer: this.writer, health: this.health, now: this.now,
        engineBase: () => this.engineOptions(), metrics: this.metrics,
        highWatermark: (task) => (this.source instanceof KafkaSource ? this.source.highWatermark(task) : null),
        repartition: this.stage ? { topic: this.stage.topic, upstreams: this.stage.upstreams } : undefined });
    } else {
      resume = await this.startEngine();
    }

    this.commands = new CommandHandler(this.log.child({ component: 'control' }));
    registerBuiltinCommands(this.commands, {
      manager: this.manager,
      status: () => this.status(),
      checkpoint: () => this.checkpointNow(),
    });
    registerNotifyCommands(this.commands, this.notify, this.now);
    this.control = new ControlPlane({
      config: c, logger: this.log, commands: this.commands, engine: () => this.engineView(), manager: this.manager, now: this.now,
      overrides: this.paramOverrides,
    });
    await this.control.start();
    // In a cluster, set-thresholds goes through the cluster's control topic; its commands run here before any input.
    await this.view?.startControl(this.commands, (control) => {
      // The kernel figures are split over the tasks: a dump gathers a share of every task (cluster-dump.ts).
      const cluster = this.cluster!;
      const view = this.view!;
      new ClusterDump({
        tasks: cluster, s3: { config: c.s3!, store: this.control!.s3!, client: createS3Client(c.s3!) }, node: c.cluster!.nodeId, cluster: c.cluster!.name,
        partitions: () => view.partitionsOf(c.kafka!.topic), now: this.now, log: this.log.child({ component: 'cluster-dump' }), stats: this.control!.dumpStats,
      }).share(control, this.commands);
    });
    if (c.http.enabled) {
      this.http = createDaemonHttp({
        config: c.http, logger: this.log, engine: () => this.engineView(), manager: this.manager, commands: this.commands,
        metrics: this.metrics, version: VERSION, ready: () => this.readiness(),
        deliveries: (id) => this.notify.notificationState(id).map((r) => ({
          receiver: r.receiver, kind: r.kind, state: r.state, attempts: r.attempts, last_status: r.lastStatus, last_error: r.lastError,
        })),
        notifications: { receivers: c.notify.receivers, silences: () => this.notify.silences.list() },
      });
      await this.http.start();
    }

    this.chunker = new LineChunker(c.chunkBytes);
    this.source = this.deps.source ?? this.makeSource();
    this.cluster?.start();
    await this.source.start(this.cluster ?? {
      // With an origin (a partition of a source that has several), every chunk of the write comes from it.
      // While the store fails, sources wait here (back-pressure): nothing more is read until it works.
      write: async (bytes, origin, position) => {
        await this.writer!.idle();
        this.lastWriteAt = this.now();
        const chunks: Array<[Uint8Array, number]> = [];
        this.chunker.push(bytes, (ch, end) => chunks.push([ch, end]));
        // A live source's write is a batch already: evaluate it now rather than wait for a full chunk.
        this.chunker.flush((ch, end) => chunks.push([ch, end]));
        this.engine.countOversized(this.chunker.takeOversized());
        for (let i = 0; i < chunks.length; i++) {
          const [ch, end] = chunks[i];
          // Whole-line writes position their last chunk; a file's offsets are counted here.
          await this.engine.push(ch, origin, this.filePosition(end) ?? (i === chunks.length - 1 ? position : undefined));
        }
      },
      // Broker sources frame records straight into chunks the engine transfers as they are.
      chunkBytes: c.chunkBytes,
      writeChunk: async (chunk, origin, position) => {
        await this.writer!.idle();
        this.lastWriteAt = this.now();
        await this.engine.push(chunk, origin, position);
      },
      committable: () => (c.checkpoints ? this.checkpointed : this.storedPositions()),
      declareStreams: (ids, parents) => this.engine.declareStreams(ids, parents),
      streamCaughtUp: (id) => this.engine.streamCaughtUp(id),
      streamAhead: (id) => this.engine.streamAhead(id),
      streamBehind: (id) => this.engine.streamBehind(id),
    }, resume);
    await this.forwarder?.start();
    this.sourceStarted = true;
    // A source that fails for good (a file that vanished, a broker gone) leaves the daemon degraded.
    this.source.finished().then(() => this.flushChunker(), (err) => this.health.fail('source', err))
      .catch((err) => this.log.error({ err }, 'flushing the end of the source failed'));
    this.health.start();
    this.startTimers();
    this.log.info({ source: this.source.name, workers: c.workers, dataDir: c.dataDir, maxKeysPerWorker: c.maxKeysPerWorker, maxCellsPerWorker: c.maxCellsPerWorker }, 'vigil running');
  }

  /** The node's one engine, restored from the newest local checkpoint; returns where the source resumes (a checkpoint of this source's positions). */
  private async startEngine(): Promise<ReadonlyMap<string, string> | undefined> {
    const c = this.config;
    const restore = c.checkpoints ? this.loadCheckpoint() : undefined;
    this.engine = new Engine({ ...this.engineOptions(), restore: restore?.engine });
    let checkpointMs = restore?.latestVerdictMs ?? null;
    let restoredPositions = restore?.ofThisSource ?? false;
    try {
      await this.engine.start();
    } catch (err) {
      if (!restore) throw err;
      this.log.warn({ err }, 'checkpoint could not be restored; starting with empty kernel state');
      await this.engine.stop();
      this.checkpointed.clear();
      this.fileBase = 0;
      this.engine = new Engine({ ...this.engineOptions(), restore: undefined });
      await this.engine.start();
      checkpointMs = null;
      restoredPositions = false;
    }
    // The source's tail after the restored state (all of it without one) is derived again: what the
    // store has from before the restart is recognised, not recorded or notified twice.
    this.manager.replayAfterRestore(checkpointMs, c.params.tickMs);
    // Only a checkpoint of this source says where its state ends (without one, sources keep their own positions).
    return restoredPositions ? this.engine.evaluatedPositions() : undefined;
  }

  /** What the control plane and the HTTP API ask of the engine: the node's one engine, or its cluster tasks'. */
  private engineView(): EngineView {
    return this.cluster ?? this.engine;
  }

  /** A live daemon judges records against the wall clock too (a replay cannot). */
  private clockOptions() {
    return { ...this.config.eventTime, now: this.now, wallClockFuture: true };
  }

  private engineOptions() {
    const c = this.config;
    return {
      workers: c.workers, groups: c.keyGroups, chunkBytes: c.chunkBytes, params: c.params,
      maxKeysPerWorker: c.maxKeysPerWorker, maxCellsPerWorker: c.maxCellsPerWorker,
      fieldNames: c.fieldNames, maxLineBytes: c.maxLineBytes, logger: this.log, clock: this.clockOptions(),
      // Never throws: a batch the store cannot take waits in the writer (a throw would fail the engine for good).
      onVerdicts: (v: Parameters<IncidentManager['applyBatch']>[0]) => this.writer!.submit('verdicts', () => { this.manager.applyBatch(v); }),
      onFailure: (err: Error) => this.health.fail('engine', err),
      onChunkDone: (seconds: number) => this.histograms.chunkProcessing.observe(seconds),
    };
  }

  private writeAudit(t: IncidentTransition): void {
    this.audit!.write(t);
    if (this.audit!.pendingLines > 0) {
      this.health.fail('audit', this.audit!.failure);
      this.auditRetry.kick();
    }
  }

  private flushAudit(): boolean {
    if (this.audit === null) return true;
    if (this.audit.flush()) {
      this.health.ok('audit');
      return true;
    }
    this.health.fail('audit', this.audit.failure);
    return false;
  }

  private makeSource(): Source {
    const c = this.config;
    if (c.source === 'demo') return new DemoSource({ seed: c.demoSeed, logger: this.log.child({ component: 'demo' }), now: this.now, dataDir: c.dataDir });
    if (c.source === 'kafka' && this.stage) {
      // Tasks read the internal topic from its start when their group has no commit (it holds nothing older than the forwarders' commits).
      return new KafkaSource({ config: { ...c.kafka!, topic: this.stage.topic, startFrom: 'earliest' }, maxRecordBytes: c.maxLineBytes, logger: this.log,
        repartitioned: { inputTopic: c.kafka!.topic } });
    }
    if (c.source === 'kafka') return new KafkaSource({ config: c.kafka!, maxRecordBytes: c.maxLineBytes, logger: this.log });
    // A cluster's Kinesis shards are tasks that Kafka assigns (src/cluster/kinesis-tasks.ts).
    if (c.source === 'kinesis' && this.cluster) {
      return new KinesisTasksSource({ cluster: c.cluster!, kafka: c.kafka!, kinesis: c.kinesis!, maxRecordBytes: c.maxLineBytes, tasks: this.cluster, logger: this.log });
    }
    if (c.source === 'kinesis') return new KinesisSource({ config: c.kinesis!, maxRecordBytes: c.maxLineBytes, dataDir: c.dataDir, logger: this.log });
    return new StreamSource(c.source === 'file' ? c.sourceFile : null, c.chunkBytes);
  }

  private async flushChunker(): Promise<void> {
    if (!this.chunker || !this.engine) return; // start() failed before the source was set up, or a cluster node (no chunker writes)
    const chunks: Array<[Uint8Array, number]> = [];
    this.chunker.end((ch, end) => chunks.push([ch, end]));
    this.engine.countOversized(this.chunker.takeOversized());
    for (const [ch, end] of chunks) await this.engine.push(ch, undefined, this.filePosition(end));
  }

  /** Without checkpoints, sources commit the positions of the records whose verdicts are evaluated and stored. */
  private storedPositions(): ReadonlyMap<string, string> {
    if ((this.writer?.pending() ?? 0) === 0) this.stored = new Map(this.engine.evaluatedPositions());
    return this.stored;
  }

  /** The file source's position after a chunk the chunker cut `end` bytes into the read. */
  private filePosition(end: number): ChunkPosition | undefined {
    return this.config.source === 'file' && !this.deps.source ? { stream: FILE_STREAM, next: String(this.fileBase + end) } : undefined;
  }

  /** What a checkpoint's positions are positions of: another source's positions are not used. */
  private sourceIdentity(): string | null {
    const c = this.config;
    if (this.deps.source) return `test:${this.deps.source.name}`;
    if (c.source === 'kafka') return `kafka:${c.kafka!.topic}`;
    if (c.source === 'kinesis') return `kinesis:${c.kinesis!.stream}`;
    if (c.source === 'file') return `file:${resolve(c.sourceFile!)}`;
    return null;
  }

  /**
   * The newest checkpoint that checks out (the reasons others were refused are logged); its source
   * positions when they are this source's. Null without one: the kernels start empty.
   */
  private loadCheckpoint(): { engine: EngineRestore; latestVerdictMs: number | null; ofThisSource: boolean } | undefined {
    const { checkpoint, refused } = this.checkpoints.load(this.config.keyGroups);
    for (const reason of refused) this.log.warn({ reason }, 'checkpoint refused');
    if (!checkpoint) {
      if (refused.length) this.log.warn('no usable checkpoint: starting with empty kernel state');
      return undefined;
    }
    const m = checkpoint.manifest;
    let positions = m.positions;
    if (m.source !== this.sourceIdentity()) {
      if (Object.keys(positions).length) this.log.warn({ checkpointSource: m.source, source: this.sourceIdentity() }, 'checkpoint positions are of another source: not used');
      positions = {};
    }
    this.checkpointed = new Map(Object.entries(positions));
    this.fileBase = Number(positions[FILE_STREAM] ?? 0);
    this.log.info({ checkpoint: checkpoint.dir, seq: m.seq, writtenBy: m.workers, workers: this.config.workers, positions }, 'restoring checkpoint');
    return { engine: { parts: checkpoint.parts, eventTime: m.eventTime, positions }, latestVerdictMs: m.latestVerdictMs, ofThisSource: m.source === this.sourceIdentity() };
  }

  private startTimers(): void {
    const c = this.config;
    // A cluster node's tasks checkpoint and sweep on their own timers (ClusterTasks.start).
    if (this.cluster) return;
    if (c.idleAdvance) {
      // A live source whose event time is the wall clock: when it falls quiet, time still passes,
      // so open incidents can resolve or expire.
      this.timers.push(setInterval(() => {
        // Not while verdicts wait for the store: that would only add to them.
        if (this.now() - this.lastWriteAt < c.params.tickMs || this.writer!.pending() > 0) return;
        this.engine.advance(this.now()).catch((err) => this.log.error({ err }, 'idle advance failed'));
      }, c.params.tickMs));
    }
    if (c.checkpoints) {
      // Periodic checkpoints: what a crash costs is the tail since the last one, read again.
      this.timers.push(setInterval(() => {
        this.checkpointNow('interval').catch((err) => this.log.warn({ err: (err as Error).message }, 'periodic checkpoint not written'));
      }, c.checkpointIntervalMs));
    }
    // Open incidents the kernel no longer knows (e.g. after a restart without checkpoint) expire; in
    // order with the verdicts, through the writer.
    this.timers.push(setInterval(() => {
      const ts = this.engine.maxEventTs();
      if (ts !== null) this.writer!.submit('expire stale', () => { this.manager.expireStale(ts, 2 * Math.max(c.params.property.expireMs, c.params.title.expireMs)); });
    }, 60_000));
    for (const t of this.timers) t.unref();
  }

  /** Event time the engine has evaluated up to (plus its out-of-orderness), or null before any record. */
  engineEventTime(): number | null {
    return (this.cluster ?? this.engine)?.maxEventTs() ?? null;
  }

  /** Counters for status and metrics. */
  status(): Record<string, unknown> {
    return {
      version: VERSION, installation_id: this.store?.installationId, uptime_s: Math.round((this.now() - this.startedAt) / 1000), workers: this.config.workers,
      source: this.source?.name, position: this.source?.position(), engine: { ...this.engine?.stats, clock: this.engine?.clock.stats, partitions: this.engine?.clock.describe() },
      kernel: (this.cluster ?? this.engine)?.kernelCounters(), openIncidents: this.manager?.openIncidents().length,
      cluster: this.cluster ? { ...this.cluster.status(), view: this.view?.status(), repartition: this.forwarder?.status() } : undefined,
      control: this.control?.status(),
      detection: { property: this.config.params.property, title: this.config.params.title, perProperty: this.config.params.perProperty ?? {},
        overrides: this.paramOverrides?.current() ?? {} },
    };
  }

  /**
   * For /readyz: workers up, source started (and connected, when the source can tell), not stopping,
   * and nothing degraded. A degraded component's check is its reason (a string) instead of true.
   */
  readiness(): Readiness {
    const connected = (this.source as { connected?: () => boolean } | undefined)?.connected?.();
    const checks: Record<string, boolean | string> = {
      workers: this.engine !== undefined || this.cluster !== null, source: this.sourceStarted && connected !== false, stopping: this.stopping !== null,
      store: true, checkpoint: true, audit: true, engine: true,
    };
    const now = this.now();
    for (const d of this.health.degraded()) {
      checks[d.component] = `${d.reason} (degraded for ${Math.round((now - d.sinceMs) / 1000)} s, ${d.failures} failure${d.failures === 1 ? '' : 's'})`;
    }
    const ok = Object.entries(checks).every(([k, v]) => (k === 'stopping' ? v === false : v === true));
    return { ok, checks };
  }

  /**
   * Writes a checkpoint now, at a barrier after the chunks accepted so far (ingestion goes on
   * meanwhile): every worker's key groups, the clock, the source positions of exactly those records,
   * the store's progress. Refused while verdicts wait for the store (the state would hold transitions
   * that are not stored); a failure to write leaves the checkpoint degraded and is retried with backoff
   * until one succeeds. One at a time: a call while one is being written waits for that one.
   */
  async checkpointNow(trigger: 'command' | 'interval' | 'retry' = 'command'): Promise<Record<string, unknown>> {
    try {
      return await this.checkpointOnce(trigger);
    } catch (err) {
      if (err instanceof CheckpointError && err.code === 'CHECKPOINT_WRITE_FAILED' && this.stopping === null) this.checkpointRetry.kick();
      throw err;
    }
  }

  private checkpointOnce(trigger: 'command' | 'interval' | 'retry' | 'shutdown'): Promise<Record<string, unknown>> {
    if (!this.config.checkpoints) return Promise.reject(new CommandFailure('CHECKPOINTS_DISABLED', 'checkpoints are disabled (VIGIL_CHECKPOINTS=false)'));
    if (this.cluster) return this.cluster.checkpointAll(trigger === 'retry' ? 'interval' : trigger);
    this.checkpointing ??= (async () => {
      this.refuseWhileStoreFails();
      const done = this.histograms.checkpoint.startTimer({ trigger });
      // Taken where the barrier is emitted: after the verdicts of every chunk before it.
      const state = await this.engine.checkpoint(() => ({ latestVerdictMs: this.manager.latestVerdictMs(), waiting: this.writer?.pending() ?? 0 }),
        this.checkpoints.plan(this.config.workers));
      for (const p of state.parts) this.histograms.checkpointPause.observe({ kind: p.kind }, p.pauseMs / 1000);
      if (state.barrier.waiting > 0) {
        // The kernels exported (and restarted their change tracking) for a checkpoint that is not written.
        this.checkpoints.resetChain();
        this.refuseWhileStoreFails();
      }
      let saved;
      try {
        saved = await this.checkpoints.save(state.parts, {
          eventTime: state.eventTime, positions: state.positions, source: this.sourceIdentity(), latestVerdictMs: state.barrier.latestVerdictMs,
        }, this.config.keyGroups, this.now());
      } catch (err) {
        this.health.fail('checkpoint', err);
        throw err;
      }
      this.checkpointed = new Map(Object.entries(state.positions));
      done();
      this.checkpointRetry.reset();
      this.health.ok('checkpoint');
      return { seq: saved.seq, bytes: saved.bytes, incremental_parts: saved.deltas, workers: state.parts.length, event_time: state.eventTime.reached, positions: state.positions };
    })().finally(() => { this.checkpointing = null; });
    return this.checkpointing;
  }

  private refuseWhileStoreFails(): void {
    const waiting = this.writer?.pending() ?? 0;
    if (waiting === 0) return;
    const why = this.health.state('store')?.reason ?? 'the incident store is failing';
    throw new CheckpointError(`checkpoint refused: ${waiting} verdict batch${waiting === 1 ? '' : 'es'} wait for the incident store (${why}); ` +
      'a checkpoint now would hold incidents that are not stored', { code: 'CHECKPOINT_REFUSED' });
  }

  /** Drains, checkpoints and closes everything; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.health.stop();
    this.checkpointRetry.stop();
    this.auditRetry.stop();
    // A source held back by a failing store must not keep stop() waiting for it.
    this.writer?.close();
    await this.control?.stop();
    // No more views forwarded (the transaction in flight ends): then the tasks checkpoint what they read.
    await this.forwarder?.stop();
    // The source stops reading, then (before it commits and lets go of its broker) the final checkpoint.
    let closing: Promise<void> | null = null;
    const finalCheckpoint = (): Promise<void> => (closing ??= this.drainAndCheckpoint());
    await this.source?.stop(finalCheckpoint).catch((err) => this.log.error({ err }, 'source stop failed'));
    this.http?.stop();
    if (this.engine || this.cluster) {
      await finalCheckpoint();
      // A merge under way is cut (the checkpoint it merges stays as it was).
      await this.checkpoints.stop();
      await this.engine?.stop();
      await this.cluster?.stop();
    }
    if (this.audit !== null && !this.audit.flush()) {
      this.fail('audit', `${this.audit.pendingLines} transition(s) not written to VIGIL_TRANSITIONS_FILE ${this.audit.path}: ${describeError(this.audit.failure)}`);
    }
    let final: Record<string, unknown> = {};
    try {
      final = this.status();
    } catch (err) {
      final = { status: `unavailable: ${describeError(err)}` };
    }
    this.audit?.close();
    await this.view?.stop();
    await this.notify?.stop();
    this.store?.close();
    if (this.stopFailures.length) this.log.error({ ...final, failures: this.stopFailures }, 'vigil stopped with failures');
    else this.log.info(final, 'vigil stopped');
  }

  /** The end of a stop: in-flight chunks evaluated and stored, then the final checkpoint (the source commits its positions after it). */
  private async drainAndCheckpoint(): Promise<void> {
    if (!this.engine && !this.cluster) return;
    try {
      await this.flushChunker();
      await this.engine?.drain();
    } catch (err) {
      this.fail('drain', `in-flight chunks not evaluated: ${describeError(err)}`, err);
    }
    // A last chance for what waits for the store: a few seconds (none when the store is why we stop).
    const waiting = this.writer?.pending() ?? 0;
    if (this.writer !== null && !(await this.writer.flush(waiting > 0 && !this.gaveUp ? STOP_STORE_GRACE_MS : 0))) {
      this.fail('store', `${this.writer.pending()} verdict batch(es) could not be written to the incident store ` +
        `(${this.health.state('store')?.reason ?? 'failing'}): their transitions are lost unless the source delivers their records again ` +
        '(Kafka offsets and Kinesis positions were not committed past them); no checkpoint is written');
    } else if (this.config.checkpoints && this.sourceStarted) {
      // Only after something was read: a daemon that failed to start has nothing new to save.
      try {
        const cp = this.cluster ? await this.cluster.drainAndCheckpoint().then(() => ({ cluster: 'every task checkpointed' })) : await this.checkpointOnce('shutdown');
        this.log.info(cp, 'checkpoint written');
      } catch (err) {
        this.fail('checkpoint', `final checkpoint not written: ${describeError(err)}`, err);
      }
    }
  }

  private fail(what: string, message: string, err?: unknown): void {
    this.stopFailures.push(message);
    this.log.error({ err, failed: what }, message);
  }
}

/** The stream name of the file source's position (its byte offset). */
const FILE_STREAM = 'file';
