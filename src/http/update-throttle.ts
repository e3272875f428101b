import type { IncidentTransition } from '../incidents/incident.ts';

/**
 * Coalesces `updated` transitions: at most one per incident per intervalMs is let through; a later one
 * waits (replacing any older pending one) until due(). Opened/closed transitions always pass at once and
 * reset the incident's state. Time comes from the injected clock.
 */
export class UpdateThrottle {
  private readonly lastSentAt = new Map<number, number>();
  private readonly pending = new Map<number, IncidentTransition>();

  constructor(private readonly intervalMs: number, private readonly now: () => number) {}

  /** Returns the transitions to send now for this one (zero or one). */
  offer(t: IncidentTransition): IncidentTransition[] {
    const id = t.incident.id;
    if (t.type !== 'updated') {
      this.pending.delete(id);
      if (t.type === 'opened') this.lastSentAt.set(id, this.now());
      else this.lastSentAt.delete(id);
      return [t];
    }
    const last = this.lastSentAt.get(id);
    const now = this.now();
    if (this.intervalMs === 0 || last === undefined || now - last >= this.intervalMs) {
      this.pending.delete(id);
      this.lastSentAt.set(id, now);
      return [t];
    }
    this.pending.set(id, t);
    return [];
  }

  /** Pending updates whose interval has passed, oldest incident first; they count as sent. */
  due(): IncidentTransition[] {
    const now = this.now();
    const out: IncidentTransition[] = [];
    for (const [id, t] of this.pending) {
      if (now - (this.lastSentAt.get(id) ?? -Infinity) < this.intervalMs) continue;
      out.push(t);
      this.pending.delete(id);
      this.lastSentAt.set(id, now);
    }
    return out.sort((a, b) => a.incident.id - b.incident.id);
  }

  /** Updates waiting for their interval. */
  get pendingCount(): number {
    return this.pending.size;
  }
}
