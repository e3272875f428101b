import type { ReceiverConfig } from '../config/notify-config.ts';
import type { DeliveryOutcome, HttpRequestSpec } from './http-delivery.ts';
import type { NotificationRecord } from './notification.ts';

/** One notification on its way to one receiver, filled in stage by stage. */
export interface DeliveryJob {
  record: NotificationRecord;
  receiver: ReceiverConfig;
  request?: HttpRequestSpec;
  outcome?: DeliveryOutcome;
}

/**
 * A step of the delivery pipeline (as Alertmanager's notify.Stage): returns the job for the next stage,
 * or null when this stage has finished with it (held by a silence, recorded). `signal` aborts on stop.
 */
export interface NotifyStage {
  exec(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryJob | null>;
}

/** Stages run in order; the chain is itself a stage. */
export class StageChain implements NotifyStage {
  constructor(private readonly stages: readonly NotifyStage[]) {}

  /** Runs the job through each stage until one returns null. */
  async exec(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryJob | null> {
    let current: DeliveryJob | null = job;
    for (const stage of this.stages) {
      if (current === null) return null;
      current = await stage.exec(current, signal);
    }
    return current;
  }
}
