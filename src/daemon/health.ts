import type { Logger } from '../log/logger.ts';

/** The parts whose failure degrades the daemon without stopping it. */
export type Component = 'store' | 'checkpoint' | 'audit' | 'source' | 'engine';

export const COMPONENTS: readonly Component[] = ['store', 'checkpoint', 'audit', 'source', 'engine'];

/** A component that is failing now: since when, why (its latest error), how many failures in a row. */
export interface Degradation {
  component: Component;
  reason: string;
  sinceMs: number;
  failures: number;
}

/** What the health tracker needs. */
export interface HealthOptions {
  logger: Logger;
  now: () => number;
  /** A degradation lasting this long makes the daemon give up (onGiveUp); 0: never. */
  exitAfterMs: number;
  /** Called once, with a sentence saying what failed for how long. */
  onGiveUp: (reason: string) => void;
  /** How often the give-up deadline is checked; default 1000. */
  checkMs?: number;
}

/**
 * The daemon's degraded states, in one place: a component reports each failure (fail) and its
 * recovery (ok). While any is degraded, /readyz answers 503 with the reasons and /metrics shows it;
 * one that stays degraded for exitAfterMs makes the daemon give up, so that its orchestrator
 * restarts it instead of keeping a zombie behind a green probe.
 */
export class Health {
  private readonly current = new Map<Component, Degradation>();
  /** Failures per component since start. */
  readonly failures: Record<Component, number> = { store: 0, checkpoint: 0, audit: 0, source: 0, engine: 0 };
  /** Recoveries per component since start. */
  readonly recoveries: Record<Component, number> = { store: 0, checkpoint: 0, audit: 0, source: 0, engine: 0 };
  private timer: NodeJS.Timeout | null = null;
  private gaveUp = false;
  private readonly log: Logger;

  constructor(private readonly o: HealthOptions) {
    this.log = o.logger.child({ component: 'health' });
  }

  /** Records a failure of the component (the first one of a row makes it degraded). */
  fail(component: Component, err: unknown): void {
    this.failures[component]++;
    const reason = describeError(err);
    const cur = this.current.get(component);
    if (cur === undefined) {
      this.current.set(component, { component, reason, sinceMs: this.o.now(), failures: 1 });
      this.log.error({ degraded: component, reason }, `${component} degraded: ${reason}`);
      return;
    }
    cur.failures++;
    cur.reason = reason;
    this.log.warn({ degraded: component, reason, failures: cur.failures, forMs: this.o.now() - cur.sinceMs }, `${component} still failing: ${reason}`);
  }

  /** Records that the component works again. */
  ok(component: Component): void {
    const cur = this.current.get(component);
    if (cur === undefined) return;
    this.current.delete(component);
    this.recoveries[component]++;
    this.log.info({ recovered: component, failures: cur.failures, degradedMs: this.o.now() - cur.sinceMs }, `${component} recovered`);
  }

  /** The degradation of a component, or null when it works. */
  state(component: Component): Degradation | null {
    const cur = this.current.get(component);
    return cur === undefined ? null : { ...cur };
  }

  /** Every component degraded now. */
  degraded(): Degradation[] {
    return [...this.current.values()].map((d) => ({ ...d }));
  }

  /** Starts checking the give-up deadline. */
  start(): void {
    if (this.timer !== null || this.o.exitAfterMs <= 0) return;
    this.timer = setInterval(() => this.check(), this.o.checkMs ?? 1000);
    this.timer.unref();
  }

  /** Stops checking; idempotent. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Gives up when a degradation has lasted exitAfterMs; the timer calls it, tests may too. */
  check(): void {
    if (this.gaveUp || this.o.exitAfterMs <= 0) return;
    const now = this.o.now();
    for (const d of this.current.values()) {
      if (now - d.sinceMs < this.o.exitAfterMs) continue;
      this.gaveUp = true;
      this.o.onGiveUp(`${d.component} degraded for ${Math.round((now - d.sinceMs) / 1000)} s, longer than VIGIL_DEGRADED_EXIT_MS ` +
        `(${this.o.exitAfterMs} ms), after ${d.failures} failures: ${d.reason}`);
      return;
    }
  }
}

/** One line for an error: its code when it has one (SQLITE_BUSY, ENOSPC), then its message. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
}

/**
 * Runs `attempt` again with backoff until it returns true (a component catching up after a failure:
 * the audit file's waiting lines, a checkpoint). kick() after each failure; stop() ends it.
 */
export class RetryTimer {
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;

  constructor(private readonly nextDelayMs: (failures: number) => number, private readonly attempt: () => boolean | Promise<boolean>) {}

  /** Notes a failure and schedules the next attempt (unless one is scheduled already). */
  kick(): void {
    this.failures++;
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      Promise.resolve().then(this.attempt).then((done) => {
        if (done) this.failures = 0;
        else this.kick();
      }, () => this.kick());
    }, this.nextDelayMs(this.failures));
    this.timer.unref();
  }

  /** Forgets the failures (the component works again). */
  reset(): void {
    this.failures = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Cancels what is scheduled; idempotent. */
  stop(): void {
    this.stopped = true;
    this.reset();
  }
}
