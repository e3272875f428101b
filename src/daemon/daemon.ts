import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { VigilConfig } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { Engine } from '../engine/engine.ts';
import { CheckpointStore, type CheckpointShape } from '../engine/checkpoint-store.ts';
import { LineChunker } from '../ingest/line-chunker.ts';
import type { Source } from '../ingest/source.ts';
import { DemoSource } from '../ingest/demo-source.ts';
import { StreamSource } from '../ingest/stream-source.ts';
import { KafkaSource } from '../ingest/kafka-source.ts';
import { KinesisSource } from '../ingest/kinesis-source.ts';
import { openIncidentStore, type IncidentStore } from '../incidents/incident-store.ts';
import { IncidentManager } from '../incidents/incident-manager.ts';
import { AuditFile } from '../incidents/audit-file.ts';
import { formatIncidentSummary } from '../incidents/incident-summary.ts';
import { CommandHandler } from '../control/command-handler.ts';
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
    registerDaemonMetrics(this.metrics, {
      engineStats: () => this.engine?.stats, kernelCounters: () => this.engine?.kernelCounters(), clockStats: () => this.engine?.clock.stats, maxEventTs: () => this.engine?.maxEventTs() ?? null,
      manager: () => this.manager, commands: () => this.commands, now: this.now,
    });
    this.histograms = registerDaemonHistograms(this.metrics);
    this.checkpoints = new CheckpointStore(config.dataDir);
    this.shape = {
      workers: config.workers, groups: config.keyGroups, chunkBytes: config.chunkBytes,
      maxKeysPerWorker: config.maxKeysPerWorker, maxCellsPerWorker: config.maxCellsPerWorker,
    };
  }

  /** Starts every component; throws (after undoing what started) when one cannot start. */
  async start(): Promise<void> {
    const c = this.config;
    this.startedAt = this.now();
    mkdirSync(c.dataDir, { recursive: true });
    // Thresholds changed with set-thresholds at run time survive restarts.
    const loaded = loadParamOverrides(c.dataDir, this.configuredParams, this.log);
    c.params = loaded.params;
    this.paramOverrides = loaded.overrides;
    this.store = openIncidentStore(join(c.dataDir, 'incidents.db'));
    this.notify = new NotificationPipeline({ config: c.notify, store: this.store, logger: this.log, now: this.now, metrics: this.metrics });
    this.manager = new IncidentManager({
      store: this.store, logger: this.log.child({ component: 'incidents' }),
      isSilenced: this.notify.isSilenced, beforeCommit: this.notify.beforeCommit,
    });
    this.notify.start(this.manager);
    const open = this.manager.openIncidents();
    if (open.length) this.log.info({ open: open.length }, 'continuing open incidents from the store');
    if (c.transitionsFile) {
      const audit = new AuditFile(c.transitionsFile);
      this.audit = audit;
      this.manager.subscribe((t) => audit.write(t));
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
      try {
        await this.http.start();
      } catch (err) {
        // Undo what started before (no checkpoint: nothing new was counted).
        await this.control?.stop().catch(() => {});
        await this.notify?.stop().catch(() => {});
        await this.engine.stop();
        this.store.close();
        throw err;
      }
    }

    this.chunker = new LineChunker(c.chunkBytes);
    this.source = this.deps.source ?? this.makeSource();
    await this.source.start({
      // With an origin (a Kinesis shard's batch), every chunk of the write comes from that shard.
      write: async (bytes, origin) => {
        this.lastWriteAt = this.now();
        const chunks: Uint8Array[] = [];
        this.chunker.push(bytes, (ch) => chunks.push(ch));
        // A live source's write is a batch already: evaluate it now rather than wait for a full chunk.
        this.chunker.flush((ch) => chunks.push(ch));
        this.engine.countOversized(this.chunker.takeOversized());
        for (const ch of chunks) await this.engine.push(ch, origin);
      },
      // Broker sources write whole lines, so after write() nothing of theirs waits in the chunker.
      evaluated: () => this.engine.settled(),
      // Broker sources frame records straight into chunks the engine transfers as they are.
      chunkBytes: c.chunkBytes,
      writeChunk: async (chunk, origin) => {
        this.lastWriteAt = this.now();
        await this.engine.push(chunk, origin);
      },
      declareStreams: (ids) => this.engine.declareStreams(ids),
      streamCaughtUp: (id) => this.engine.streamCaughtUp(id),
      streamAhead: (id) => this.engine.streamAhead(id),
    });
    this.sourceStarted = true;
    this.source.finished().then(() => this.flushChunker()).catch((err) => this.log.error({ err }, 'source failed'));
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
      onVerdicts: (v: Parameters<IncidentManager['applyBatch']>[0]) => { this.manager.applyBatch(v); },
      onChunkDone: (seconds: number) => this.histograms.chunkProcessing.observe(seconds),
    };
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
        if (this.now() - this.lastWriteAt < c.params.tickMs) return;
        this.engine.advance(this.now()).catch((err) => this.log.error({ err }, 'idle advance failed'));
      }, c.params.tickMs));
    }
    // Open incidents the kernel no longer knows (e.g. after a restart without checkpoint) expire.
    this.timers.push(setInterval(() => {
      const ts = this.engine.maxEventTs();
      if (ts !== null) this.manager.expireStale(ts, 2 * Math.max(c.params.property.expireMs, c.params.title.expireMs));
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

  /** For /readyz: workers up, source started (and connected, when the source can tell), not stopping. */
  readiness(): Readiness {
    const connected = (this.source as { connected?: () => boolean } | undefined)?.connected?.();
    const checks = { workers: this.engine !== undefined, source: this.sourceStarted && connected !== false, stopping: this.stopping !== null };
    return { ok: checks.workers && checks.source && !checks.stopping, checks };
  }

  /** Writes a checkpoint of every worker's kernel now (after in-flight chunks). */
  async checkpointNow(): Promise<Record<string, unknown>> {
    if (!this.config.checkpoints) throw new Error('checkpoints are disabled (VIGIL_CHECKPOINTS=false)');
    const done = this.histograms.checkpoint.startTimer({ trigger: 'command' });
    const cp = await this.engine.checkpoint();
    this.checkpoints.save(cp, this.shape, this.now());
    done();
    return { workers: cp.workers, max_event_ts: cp.maxTs, bytes: cp.snapshots.reduce((a, s) => a + s.length, 0) };
  }

  /** Drains, checkpoints and closes everything; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.control?.stop();
    await this.source?.stop().catch((err) => this.log.error({ err }, 'source stop failed'));
    this.http?.stop();
    if (this.engine) {
      try {
        await this.flushChunker();
        await this.engine.drain();
        if (this.config.checkpoints) {
          const done = this.histograms.checkpoint.startTimer({ trigger: 'shutdown' });
          const cp = await this.engine.checkpoint();
          this.checkpoints.save(cp, this.shape, this.now());
          done();
          this.log.info({ maxTs: cp.maxTs }, 'checkpoint written');
        }
      } catch (err) {
        this.log.error({ err }, 'drain or checkpoint failed');
      }
      await this.engine.stop();
    }
    const final = this.status();
    this.audit?.close();
    await this.notify?.stop();
    this.store?.close();
    this.log.info(final, 'vigil stopped');
  }
}
