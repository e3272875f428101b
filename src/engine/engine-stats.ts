/** Counters of the engine's main-thread side (decoded lines, rejects by reason, chunks). */
export class EngineStats {
  chunks = 0;
  bytes = 0;
  /** Valid records decoded. */
  events = 0;
  verdicts = 0;
  readonly rejected: Record<string, number> = {};

  /** Adds n rejected lines for a reason. */
  reject(reason: string, n: number): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + n;
  }

  /** Total rejected lines. */
  rejectedTotal(): number {
    return Object.values(this.rejected).reduce((a, b) => a + b, 0);
  }
}
