import type { VigilConfig } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { Engine } from '../engine/engine.ts';
import { CheckpointError, CheckpointStore, type CheckpointShape } from '../engine/checkpoint-store.ts';
import { LineChunker } from '../ingest/line-chunker.ts';
import type { Source } from '../ingest/source.ts';
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
  private readonly shape: CheckpointShape;
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
    this.checkpointRetry = new RetryTimer(delay, () => this.checkpointOnce().then(() => true, () => false));
    this.auditRetry = new RetryTimer(delay, () => this.flushAudit());
    registerDaemonMetrics(this.metrics, {
      engineStats: () => this.engine?.stats, kernelCounters: () => this.engine?.kernelCounters(), clockStats: () => this.engine?.clock.stats, maxEventTs: () => this.engine?.maxEventTs() ?? null,
      manager: () => this.manager, commands: () => this.commands, now: this.now,
      health: () => this.health, storeWriter: () => this.writer ?? undefined, auditPendingLines: () => this.audit?.pendingLines ?? 0,
    });
    this.histograms = registerDaemonHistograms(this.metrics);
    this.checkpoints = new CheckpointStore(config.dataDir);
    this.shape = {
      workers: config.workers, groups: config.keyGroups, chunkBytes: config.chunkBytes,
      maxKeysPerWorker: config.maxKeysPerWorker, maxCellsPerWorker: config.maxCellsPerWorker,
    };
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
    this.notify = new NotificationPipeline({ config: c.notify, store: this.store, logger: this.log, now: this.now, metrics: this.metrics });
    this.manager = new IncidentManager({
      store: this.store, logger: this.log.child({ component: 'incidents' }),
      isSilenced: this.notify.isSilenced, beforeCommit: this.notify.beforeCommit, afterRollback: this.notify.afterRollback,
    });
    this.notify.start(this.manager);
    const open = this.manager.openIncidents();
    if (open.length) this.log.info({ open: open.length }, 'continuing open incidents from the store');
    if (c.transitionsFile) {
      this.audit = openAuditFile(c.transitionsFile);
      this.manager.subscribe((t) => this.writeAudit(t));
    }
    const tlog = this.log.child({ component: 'transitions' });
    this.manager.subscribe((t) => {
      if (t.type === 'updated') return;
      if (t.type === 'opened') this.histograms.eventToIncident.observe(Math.max(0, this.now() - t.atMs) / 1000);
      tlog.info({ incidentId: t.incident.id, type: t.type, scope: t.incident.scope, propertyId: t.incident.propertyId,
        videoTitle: t.incident.videoTitle, errorType: t.incident.errorType, at: new Date(t.atMs).toISOString() },
      `incident #${t.incident.id} ${t.type}: ${formatIncidentSummary(t.incident)}`);
    });

    let restore;
    if (c.checkpoints) {
      const loaded = this.checkpoints.load(this.shape);
      if ('checkpoint' in loaded) restore = loaded.checkpoint;
      else if (loaded.reason !== 'no checkpoint') this.log.warn({ reason: loaded.reason }, 'checkpoint not used; starting with empty kernel state');
    }
    this.engine = new Engine({ ...this.engineOptions(), restore });
    try {
      await this.engine.start();
    } catch (err) {
      if (!restore) throw err;
      this.log.warn({ err }, 'checkpoint could not be restored; starting with empty kernel state');
      await this.engine.stop();
      this.engine = new Engine({ ...this.engineOptions(), restore: undefined });
      await this.engine.start();
    }

    this.commands = new CommandHandler(this.log.child({ component: 'control' }));
    registerBuiltinCommands(this.commands, {
      manager: this.manager,
      status: () => this.status(),
      checkpoint: () => this.checkpointNow(),
    });
    registerNotifyCommands(this.commands, this.notify, this.now);
    this.control = new ControlPlane({
      config: c, logger: this.log, commands: this.commands, engine: () => this.engine, manager: this.manager, now: this.now,
      overrides: this.paramOverrides,
    });
    await this.control.start();
    if (c.http.enabled) {
      this.http = createDaemonHttp({
        config: c.http, logger: this.log, engine: () => this.engine, manager: this.manager, commands: this.commands,
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
    await this.source.start({
      // With an origin (a Kinesis shard's batch), every chunk of the write comes from that shard.
      // While the store fails, sources wait here (back-pressure): nothing more is read until it works.
      write: async (bytes, origin) => {
        await this.writer!.idle();
        this.lastWriteAt = this.now();
        const chunks: Uint8Array[] = [];
        this.chunker.push(bytes, (ch) => chunks.push(ch));
        // A live source's write is a batch already: evaluate it now rather than wait for a full chunk.
        this.chunker.flush((ch) => chunks.push(ch));
        this.engine.countOversized(this.chunker.takeOversized());
        for (const ch of chunks) await this.engine.push(ch, origin);
      },
      // Broker sources write whole lines, so after write() nothing of theirs waits in the chunker.
      // Positions are committed only once the verdicts are stored too, not merely evaluated.
      evaluated: async () => {
        await this.engine.settled();
        await this.writer!.idle();
      },
      // Broker sources frame records straight into chunks the engine transfers as they are.
      chunkBytes: c.chunkBytes,
      writeChunk: async (chunk, origin) => {
        await this.writer!.idle();
        this.lastWriteAt = this.now();
        await this.engine.push(chunk, origin);
      },
      declareStreams: (ids) => this.engine.declareStreams(ids),
      streamCaughtUp: (id) => this.engine.streamCaughtUp(id),
      streamAhead: (id) => this.engine.streamAhead(id),
    });
    this.sourceStarted = true;
    // A source that fails for good (a file that vanished, a broker gone) leaves the daemon degraded.
    this.source.finished().then(() => this.flushChunker(), (err) => this.health.fail('source', err))
      .catch((err) => this.log.error({ err }, 'flushing the end of the source failed'));
    this.health.start();
    this.startTimers();
    this.log.info({ source: this.source.name, workers: c.workers, dataDir: c.dataDir }, 'vigil running');
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
    if (c.source === 'kafka') return new KafkaSource({ config: c.kafka!, maxRecordBytes: c.maxLineBytes, logger: this.log });
    if (c.source === 'kinesis') return new KinesisSource({ config: c.kinesis!, maxRecordBytes: c.maxLineBytes, dataDir: c.dataDir, logger: this.log });
    return new StreamSource(c.source === 'file' ? c.sourceFile : null, c.chunkBytes);
  }

  private async flushChunker(): Promise<void> {
    if (!this.chunker) return; // start() failed before the source was set up
    const chunks: Uint8Array[] = [];
    this.chunker.end((ch) => chunks.push(ch));
    this.engine.countOversized(this.chunker.takeOversized());
    for (const ch of chunks) await this.engine.push(ch);
  }

  private startTimers(): void {
    const c = this.config;
    if (c.idleAdvance) {
      // A live source whose event time is the wall clock: when it falls quiet, time still passes,
      // so open incidents can resolve or expire.
      this.timers.push(setInterval(() => {
        // Not while verdicts wait for the store: that would only add to them.
        if (this.now() - this.lastWriteAt < c.params.tickMs || this.writer!.pending() > 0) return;
        this.engine.advance(this.now()).catch((err) => this.log.error({ err }, 'idle advance failed'));
      }, c.params.tickMs));
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
    return this.engine?.maxEventTs() ?? null;
  }

  /** Counters for status and metrics. */
  status(): Record<string, unknown> {
    return {
      version: VERSION, installation_id: this.store?.installationId, uptime_s: Math.round((this.now() - this.startedAt) / 1000), workers: this.config.workers,
      source: this.source?.name, position: this.source?.position(), engine: { ...this.engine?.stats, clock: this.engine?.clock.stats },
      kernel: this.engine?.kernelCounters(), openIncidents: this.manager?.openIncidents().length,
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
      workers: this.engine !== undefined, source: this.sourceStarted && connected !== false, stopping: this.stopping !== null,
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
   * Writes a checkpoint of every worker's kernel now (after in-flight chunks). Refused while verdicts
   * wait for the store (the state would hold transitions that are not stored); a failure to write
   * leaves the checkpoint degraded and is retried with backoff until one succeeds.
   */
  async checkpointNow(): Promise<Record<string, unknown>> {
    try {
      return await this.checkpointOnce();
    } catch (err) {
      if (err instanceof CheckpointError && err.code === 'CHECKPOINT_WRITE_FAILED' && this.stopping === null) this.checkpointRetry.kick();
      throw err;
    }
  }

  private async checkpointOnce(): Promise<Record<string, unknown>> {
    if (!this.config.checkpoints) throw new CommandFailure('CHECKPOINTS_DISABLED', 'checkpoints are disabled (VIGIL_CHECKPOINTS=false)');
    this.refuseWhileStoreFails();
    const done = this.histograms.checkpoint.startTimer({ trigger: 'command' });
    const cp = await this.engine.checkpoint();
    this.refuseWhileStoreFails();
    try {
      this.checkpoints.save(cp, this.shape, this.now());
    } catch (err) {
      this.health.fail('checkpoint', err);
      throw err;
    }
    done();
    this.checkpointRetry.reset();
    this.health.ok('checkpoint');
    return { workers: cp.workers, max_event_ts: cp.maxTs, bytes: cp.snapshots.reduce((a, s) => a + s.length, 0) };
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
    await this.source?.stop().catch((err) => this.log.error({ err }, 'source stop failed'));
    this.http?.stop();
    if (this.engine) {
      try {
        await this.flushChunker();
        await this.engine.drain();
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
          const done = this.histograms.checkpoint.startTimer({ trigger: 'shutdown' });
          const cp = await this.engine.checkpoint();
          this.checkpoints.save(cp, this.shape, this.now());
          done();
          this.log.info({ maxTs: cp.maxTs }, 'checkpoint written');
        } catch (err) {
          this.fail('checkpoint', `final checkpoint not written: ${describeError(err)}`, err);
        }
      }
      await this.engine.stop();
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
    await this.notify?.stop();
    this.store?.close();
    if (this.stopFailures.length) this.log.error({ ...final, failures: this.stopFailures }, 'vigil stopped with failures');
    else this.log.info(final, 'vigil stopped');
  }

  private fail(what: string, message: string, err?: unknown): void {
    this.stopFailures.push(message);
    this.log.error({ err, failed: what }, message);
  }
}
