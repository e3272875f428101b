import type { Logger } from '../log/logger.ts';
import { backoffMs, type RetryPolicy } from '../notify/retry-policy.ts';
import type { Health } from './health.ts';

/** One write to the incident store, applied whole or not at all (the manager's transactions). */
interface Write {
  what: string;
  run: () => void;
}

/** What the writer works with. */
export interface StoreWriterOptions {
  health: Health;
  logger: Logger;
  /** Backoff between attempts while the store fails. */
  retry: RetryPolicy;
  random?: () => number;
}

/**
 * Applies the writes the engine's verdicts cause (and stale expiries) to the incident store, in
 * order, and keeps them when the store fails (locked beyond its busy timeout, full, damaged): the
 * failed write and every later one wait in memory and are tried again with backoff, so no
 * transition is dropped and none overtakes another. While writes wait, sources are held back
 * (idle()), and positions are committed only once what was evaluated is stored; the engine's
 * in-flight chunks bound what waits.
 */
export class StoreWriter {
  private readonly queue: Write[] = [];
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private stopped = false;
  private closing = false;
  /** Writes applied, attempts that failed, and retries (attempts after a failure). */
  readonly stats = { writes: 0, failures: 0, retries: 0 };

  constructor(private readonly o: StoreWriterOptions) {}

  /** Applies the write now, or after those already waiting. */
  submit(what: string, run: () => void): void {
    this.queue.push({ what, run });
    if (this.queue.length === 1 && this.timer === null) this.drain();
  }

  /** Writes waiting for the store. */
  pending(): number {
    return this.queue.length;
  }

  /**
   * Resolves once nothing waits (at once while the store works). After close(), rejects instead of
   * waiting: a source held back must be able to stop.
   */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    if (this.closing) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Stops holding sources back (the daemon is stopping): whoever waits in idle() now, or later while
   * writes wait, gets an error instead, so that a source can stop and commits nothing past them.
   */
  close(): void {
    this.closing = true;
    if (this.queue.length === 0) return;
    for (const w of this.waiters.splice(0)) w.reject(this.closedError());
  }

  private closedError(): Error {
    return Object.assign(new Error(`stopping with ${this.queue.length} write(s) waiting for the incident store`), { code: 'STORE_UNAVAILABLE', retriable: true });
  }

  /**
   * Tries the waiting writes until they are stored or `ms` have passed (shutdown); true when none is
   * left. Stops the timer: after this, only another flush writes.
   */
  async flush(ms: number): Promise<boolean> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const end = Date.now() + ms;
    while (!this.drain()) {
      const wait = Math.min(backoffMs(this.o.retry, this.attempt, this.o.random), end - Date.now());
      if (wait <= 0) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
    return true;
  }

  /** Stops retrying (what waits stays unwritten); idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // Applies what waits, in order; on a failure keeps it and the rest, and schedules the next attempt.
  private drain(): boolean {
    while (this.queue.length > 0) {
      const w = this.queue[0];
      try {
        w.run();
      } catch (err) {
        this.stats.failures++;
        this.attempt++;
        this.o.health.fail('store', err);
        if (this.attempt === 1) this.o.logger.error({ err, write: w.what, waiting: this.queue.length }, 'incident store write failed; keeping it and retrying with backoff');
        this.schedule();
        return false;
      }
      this.queue.shift();
      this.stats.writes++;
    }
    if (this.attempt > 0) {
      this.attempt = 0;
      this.o.health.ok('store');
    }
    for (const w of this.waiters.splice(0)) w.resolve();
    return true;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.stats.retries++;
      this.drain();
    }, backoffMs(this.o.retry, this.attempt, this.o.random));
  }
}
