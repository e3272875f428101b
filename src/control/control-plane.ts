import type { Logger } from '../log/logger.ts';
import type { VigilConfig } from '../config/config.ts';
import type { EngineView } from '../engine/engine.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { DetectionParams } from '../kernel/detection-params.ts';
import type { CommandHandler } from './command-handler.ts';
import { AmqpControl } from './amqp-control.ts';
import { registerDumpCommands } from './dump-commands.ts';
import { registerThresholdCommands } from './threshold-commands.ts';
import { ParamOverrides } from './param-overrides.ts';
import { S3ObjectStore, createS3Client } from '../dump/s3-object-store.ts';

/** Collaborators of the control plane. */
export interface ControlPlaneOptions {
  config: VigilConfig;
  logger: Logger;
  commands: CommandHandler;
  engine: () => EngineView;
  manager: IncidentManager;
  now: () => number;
  /** The set-thresholds overrides loaded at start (loadParamOverrides). */
  overrides: ParamOverrides;
}

/**
 * Applies the thresholds set at run time (persisted in the data directory) over the configured
 * parameters; a bad file is logged and ignored. The returned ParamOverrides takes later changes.
 */
export function loadParamOverrides(dataDir: string, configured: DetectionParams, log: Logger): { params: DetectionParams; overrides: ParamOverrides } {
  const overrides = new ParamOverrides(dataDir);
  const { params, problem } = overrides.load(configured);
  if (problem) log.warn({ problem }, 'stored set-thresholds overrides not applied');
  else if (params !== configured) {
    log.info({ property: params.property, title: params.title, perProperty: params.perProperty ?? {} }, 'detection parameters include set-thresholds overrides');
  }
  return { params, overrides };
}

/**
 * The control plane: registers dump-error-rates, dump-incidents and set-thresholds on the daemon's
 * one command handler (which the HTTP admin API shares) and, with VIGIL_AMQP_URL, consumes commands
 * from RabbitMQ. start() never fails for an unreachable broker; it keeps retrying in the background.
 */
export class ControlPlane {
  readonly dumpStats = { dumps: 0, dumpsFailed: 0 };
  readonly amqp: AmqpControl | null;
  readonly s3: S3ObjectStore | null;

  constructor(private readonly opts: ControlPlaneOptions) {
    const c = opts.config;
    const log = opts.logger.child({ component: 'control' });
    this.s3 = c.s3 ? new S3ObjectStore(createS3Client(c.s3), c.s3, log.child({ component: 's3-dump' })) : null;
    registerDumpCommands(opts.commands, {
      engine: opts.engine, manager: opts.manager, now: opts.now, stats: this.dumpStats,
      s3: c.s3 && this.s3 ? { config: c.s3, store: this.s3 } : null,
    });
    registerThresholdCommands(opts.commands, {
      setParams: async (p) => {
        await opts.engine().setParams(p);
        c.params = p;
        log.info({ property: p.property, title: p.title, perProperty: p.perProperty ?? {} }, 'detection parameters changed (set-thresholds)');
      },
      overrides: opts.overrides,
    });
    this.amqp = c.amqp ? new AmqpControl({ config: c.amqp, handler: opts.commands, logger: opts.logger }) : null;
  }

  /** Starts consuming control messages (when configured). */
  async start(): Promise<void> {
    await this.amqp?.start();
  }

  /** Stops consuming after the commands in progress; idempotent. */
  async stop(): Promise<void> {
    await this.amqp?.stop();
  }

  /** For the status command and metrics. */
  status(): Record<string, unknown> {
    return {
      commands: { ...this.opts.commands.stats },
      amqp: this.amqp ? { connected: this.amqp.connected(), queue: this.opts.config.amqp?.queue, ...this.amqp.stats } : null,
      dumps: { ...this.dumpStats, s3: this.s3 ? { bucket: this.opts.config.s3?.bucket, ...this.s3.stats } : null },
    };
  }
}
