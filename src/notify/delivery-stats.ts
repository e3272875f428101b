/** Outcomes of delivery attempts: delivered, retried (a retriable failure), failed (for good), held (by a silence). */
export type DeliveryOutcomeName = 'delivered' | 'retried' | 'failed' | 'held';

/** Per-receiver counters of delivery outcomes since start, for metrics and status. */
export class DeliveryStats {
  private readonly byReceiver = new Map<string, Record<DeliveryOutcomeName, number>>();

  /** Told of every delivery with its latency (written to the log → receiver answered 2xx), for a histogram. */
  onDelivered: ((receiver: string, latencySeconds: number) => void) | null = null;

  /** Counts a delivery that took `latencyMs` since its notification was written. */
  delivered(receiver: string, latencyMs: number): void {
    this.count(receiver, 'delivered');
    this.onDelivered?.(receiver, Math.max(0, latencyMs) / 1000);
  }

  /** Adds one to the receiver's counter for this outcome. */
  count(receiver: string, outcome: DeliveryOutcomeName): void {
    let c = this.byReceiver.get(receiver);
    if (c === undefined) {
      c = { delivered: 0, retried: 0, failed: 0, held: 0 };
      this.byReceiver.set(receiver, c);
    }
    c[outcome]++;
  }

  /** Every (receiver, outcome, count), for the Prometheus collector. */
  samples(): Array<{ receiver: string; outcome: DeliveryOutcomeName; value: number }> {
    return [...this.byReceiver].flatMap(([receiver, c]) =>
      (Object.keys(c) as DeliveryOutcomeName[]).map((outcome) => ({ receiver, outcome, value: c[outcome] })));
  }

  /** One receiver's counters (zeros when it has none yet). */
  of(receiver: string): Record<DeliveryOutcomeName, number> {
    return { delivered: 0, retried: 0, failed: 0, held: 0, ...this.byReceiver.get(receiver) };
  }
}
