import type { Producer } from 'kafkajs';
import type { Statement } from 'better-sqlite3';
import type { IncidentTransition } from '../incidents/incident.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { Logger } from '../log/logger.ts';
import { backoffMs } from '../notify/retry-policy.ts';
import { encodeTransitionRecord, incidentIdentity, TRANSITION_RECORD_VERSION } from './transition-record.ts';

/** Records taken from the outbox per produce request. */
const BATCH = 500;

/** Counters of the publisher (status, metrics). */
export interface OutboxStats {
  /** Records written to the outbox (own transitions). */
  queued: number;
  /** Records the broker acknowledged. */
  published: number;
  /** Failed produce requests (retried). */
  failures: number;
}

/**
 * The transitions this node derives, on their way to `<cluster>.transitions`. beforeCommit writes one
 * row per transition inside the IncidentManager's transaction, so a transition is in the outbox exactly
 * when it is in the store; the publisher sends rows in order and deletes them once the broker has
 * acknowledged them (acks from all in-sync replicas). A crash between the acknowledgement and the
 * delete sends them again at start: a duplicate on the topic, recognised by its identity.
 */
export class TransitionsOutbox {
  readonly stats: OutboxStats = { queued: 0, published: 0, failures: 0 };
  private readonly stmt: Record<'insert' | 'take' | 'remove' | 'count', Statement>;
  private producer: Producer | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private failuresInRow = 0;
  private stopped = false;

  constructor(private readonly store: IncidentStore, private readonly node: string, private readonly topic: string, private readonly log: Logger) {
    const db = store.database;
    this.stmt = {
      insert: db.prepare('INSERT INTO cluster_outbox (record_key, record) VALUES (?, ?)'),
      take: db.prepare('SELECT seq, record_key AS key, record FROM cluster_outbox ORDER BY seq LIMIT ?'),
      remove: db.prepare('DELETE FROM cluster_outbox WHERE seq <= ?'),
      count: db.prepare('SELECT count(*) FROM cluster_outbox').pluck(),
    };
  }

  /** For IncidentManagerOptions.beforeCommit: the batch's transitions join the outbox in its transaction. */
  readonly beforeCommit = (transitions: readonly IncidentTransition[]): void => {
    for (const t of transitions) {
      if (t.mirroredFrom !== undefined) continue;
      const i = t.incident;
      const identity = incidentIdentity(i);
      const sample = this.store.timelineSampleAt(i.id, t.atMs);
      this.stmt.insert.run(identity, encodeTransitionRecord({ v: TRANSITION_RECORD_VERSION, node: this.node, identity, type: t.type, atMs: t.atMs, incident: i, sample }));
      this.stats.queued++;
    }
  };

  /** Rows not yet acknowledged by the broker. */
  pending(): number {
    return this.stmt.count.get() as number;
  }

  /** Starts publishing (what waits from before a crash first). */
  start(producer: Producer): void {
    this.producer = producer;
    this.wake();
  }

  /** Publishes what waits, now (after each committed batch); a call while a round runs makes it go round again. */
  wake(): void {
    if (this.producer === null || this.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Publishes what waits now and resolves when the outbox is empty or a send failed (then the rows stay for the next start). */
  async flush(): Promise<void> {
    this.wake();
    while (this.running !== null) await this.running;
  }

  /** Waits for the round in flight, then publishes no more; idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    await this.running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const rows = this.stmt.take.all(BATCH) as Array<{ seq: number; key: string; record: string }>;
      if (rows.length === 0) return;
      try {
        await this.producer!.send({ topic: this.topic, acks: -1, messages: rows.map((r) => ({ key: r.key, value: r.record })) });
      } catch (err) {
        this.stats.failures++;
        this.failuresInRow++;
        const delay = backoffMs({ baseMs: 500, maxMs: 10_000 }, this.failuresInRow);
        this.log.warn({ err, pending: this.pending(), retryInMs: delay }, 'transitions not published; retrying');
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.wake(); }, delay);
        this.retryTimer.unref();
        return;
      }
      this.failuresInRow = 0;
      this.stmt.remove.run(rows[rows.length - 1].seq);
      this.stats.published += rows.length;
    }
  }
}
