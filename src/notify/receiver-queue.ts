import type { Logger } from '../log/logger.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Incident } from '../incidents/incident.ts';
import { sendHttp } from './http-delivery.ts';
import type { Integration } from './integration.ts';
import type { NotificationLog } from './notification-log.ts';
import type { NotifyStage } from './notify-stage.ts';

/** What a receiver's queue works with. */
export interface ReceiverQueueOptions {
  receiver: ReceiverConfig;
  integration: Integration;
  log: NotificationLog;
  stages: NotifyStage;
  logger: Logger;
  now: () => number;
}

/**
 * One receiver's delivery loop: FIFO over its pending rows in the notification log (so an incident's
 * resolve never overtakes its open), one request in flight. Its backlog lives in SQLite, not in memory,
 * so a dead receiver costs disk rows, never heap, and never delays detection or the other receivers.
 */
export class ReceiverQueue {
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private readonly abort = new AbortController();
  private refreshPending: readonly Incident[] | null = null;
  private again = false;

  constructor(private readonly o: ReceiverQueueOptions) {}

  /** Starts delivering, beginning with what is pending from before (a restart or crash). */
  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Looks for due work now (called after new rows were committed). */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      // The loop may already have looked and be on its way out: make it look once more.
      this.again = true;
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.running = this.pump().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Asks an integration that needs it (Alertmanager) to be told these incidents are still open; the latest ask wins. */
  refresh(open: readonly Incident[]): void {
    if (this.o.integration.renderRefresh === undefined) return;
    this.refreshPending = open;
    this.wake();
  }

  /**
   * Stops taking work; an in-flight request gets up to graceMs to finish and is then aborted (its row
   * stays pending and is sent again on the next start). Idempotent.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const running = this.running;
    if (running === null) return;
    let t: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => { t = setTimeout(r, graceMs); });
    await Promise.race([running, grace]);
    clearTimeout(t);
    this.abort.abort();
    await running;
  }

  private async pump(): Promise<void> {
    const { receiver, log, logger } = this.o;
    try {
      while (!this.stopped) {
        const record = log.nextPending(receiver.name);
        const now = this.o.now();
        if (record !== null && record.nextAttemptAtMs <= now) {
          await this.o.stages.exec({ record, receiver }, this.abort.signal);
          continue;
        }
        if (this.refreshPending !== null) {
          await this.sendRefresh(this.refreshPending);
          continue;
        }
        if (record !== null) this.schedule(record.nextAttemptAtMs - now);
        return;
      }
    } catch (err) {
      // A store error (e.g. closed during shutdown) must not kill the loop for good.
      logger.error({ err }, 'notification queue failed; retrying');
      if (!this.stopped) this.schedule(1000);
    }
  }

  // Refreshes are not logged: re-posting an open alert is idempotent in Alertmanager, and the next one comes anyway.
  private async sendRefresh(open: readonly Incident[]): Promise<void> {
    this.refreshPending = null;
    const req = this.o.integration.renderRefresh!(open);
    if (req === null) return;
    const outcome = await sendHttp(req, this.o.receiver.timeoutMs, this.abort.signal, this.o.now);
    if (outcome.result !== 'delivered') this.o.logger.warn({ alerts: open.length, error: outcome.error.message }, 'alert refresh failed');
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.wake(); }, Math.max(0, Math.min(delayMs, 2 ** 31 - 1)));
    this.timer.unref();
  }
}
