import type { Logger } from '../log/logger.ts';
import type { Incident } from '../incidents/incident.ts';
import { sendHttp } from './http-delivery.ts';
import type { Integration } from './integration.ts';
import { isOpenKind } from './notification.ts';
import type { NotificationLog } from './notification-log.ts';
import type { DeliveryJob, NotifyStage } from './notify-stage.ts';
import { backoffMs, type RetryPolicy } from './retry-policy.ts';
import type { DeliveryStats } from './delivery-stats.ts';

/**
 * Holds, at send time, what a silence now covers: an open-kind notification of an incident that is
 * silenced (the Silence button may be pressed while it waits for a retry), and a reminder (repeat,
 * unsilenced) of an incident that closed meanwhile. Closing notifications always pass: a receiver that
 * was told an incident opened is told it closed.
 */
export class MuteStage implements NotifyStage {
  constructor(private readonly incident: (id: number) => Incident | null, private readonly log: NotificationLog,
    private readonly stats: DeliveryStats, private readonly now: () => number) {}

  async exec(job: DeliveryJob): Promise<DeliveryJob | null> {
    const { record } = job;
    if (!isOpenKind(record.kind)) return job;
    const current = this.incident(record.incidentId);
    let reason: string | null = null;
    if (current?.notifications === 'silenced') reason = 'silenced';
    else if (record.kind !== 'opened' && current !== null && current.status !== 'open') reason = `incident ${current.status} before it was sent`;
    if (reason === null) return job;
    this.log.markDone(record.id, 'held', this.now(), null, reason);
    this.stats.count(job.receiver.name, 'held');
    return null;
  }
}

/** Renders the receiver's request; a rendering bug fails the notification rather than the queue. */
export class RenderStage implements NotifyStage {
  constructor(private readonly integration: Integration, private readonly log: NotificationLog,
    private readonly stats: DeliveryStats, private readonly logger: Logger, private readonly now: () => number) {}

  async exec(job: DeliveryJob): Promise<DeliveryJob | null> {
    try {
      job.request = this.integration.render(job.record);
      return job;
    } catch (err) {
      this.logger.error({ err, incidentId: job.record.incidentId, kind: job.record.kind }, 'notification could not be rendered');
      this.log.markDone(job.record.id, 'failed', this.now(), null, `render: ${(err as Error).message}`);
      this.stats.count(job.receiver.name, 'failed');
      return null;
    }
  }
}

/** Counts the attempt in the log, then sends (the attempt is visible even if the process dies mid-request). */
export class SendStage implements NotifyStage {
  constructor(private readonly log: NotificationLog, private readonly now: () => number) {}

  async exec(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryJob | null> {
    this.log.markAttempt(job.record.id, this.now());
    job.outcome = await sendHttp(job.request!, job.receiver.timeoutMs, signal, this.now);
    return job;
  }
}

/**
 * Writes the outcome to the log: delivered; retry later (exponential backoff with jitter, or the
 * receiver's Retry-After) until giveUpAfterMs; or failed for good, logged with the receiver's answer.
 */
export class RecordStage implements NotifyStage {
  constructor(private readonly log: NotificationLog, private readonly stats: DeliveryStats, private readonly logger: Logger,
    private readonly policy: RetryPolicy & { giveUpAfterMs: number }, private readonly now: () => number,
    private readonly random: () => number = Math.random) {}

  async exec(job: DeliveryJob): Promise<DeliveryJob | null> {
    const { record, receiver } = job;
    const outcome = job.outcome!;
    const now = this.now();
    const ids = { incidentId: record.incidentId, kind: record.kind, seq: record.seq, attempt: record.attempts + 1 };
    if (outcome.result === 'delivered') {
      this.log.markDelivered(record.id, now, outcome.status);
      this.stats.delivered(receiver.name, now - record.createdAtMs);
      this.logger.info({ ...ids, status: outcome.status }, 'notification delivered');
      return null;
    }
    const { error } = outcome;
    // Stopping mid-request: the row stays pending for the next start, which is the documented duplicate window.
    if (error.code === 'NOTIFY_STOPPED') return null;
    if (outcome.result === 'permanent' || now - record.createdAtMs >= this.policy.giveUpAfterMs) {
      const message = outcome.result === 'permanent' ? error.message : `gave up after ${record.attempts + 1} attempts: ${error.message}`;
      this.log.markDone(record.id, 'failed', now, error.status, message);
      this.stats.count(receiver.name, 'failed');
      this.logger.error({ ...ids, code: error.code, status: error.status, response: error.message }, 'notification failed permanently');
      return null;
    }
    const waitMs = outcome.retryAfterMs ?? backoffMs(this.policy, record.attempts + 1, this.random);
    this.log.markRetry(record.id, now + waitMs, error.status, error.message);
    this.stats.count(receiver.name, 'retried');
    this.logger.warn({ ...ids, code: error.code, status: error.status, retryInMs: waitMs, error: error.message }, 'notification will be retried');
    return null;
  }
}
