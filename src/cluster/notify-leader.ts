import type { Consumer, EachBatchPayload } from 'kafkajs';
import type { Statement } from 'better-sqlite3';
import type { IncidentTransition } from '../incidents/incident.ts';
import { incidentKey } from '../incidents/incident-key.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { Logger } from '../log/logger.ts';
import { decodeTransitionRecord } from './transition-record.ts';
import type { TransitionsMirror } from './transitions-mirror.ts';

/** How often the leader commits the offset up to which every planned notification is done. */
export const NOTIFY_COMMIT_INTERVAL_MS = 1000;
/** How often the leader looks whether the store's mirror has applied the record it is about to plan. */
const MIRROR_WAIT_STEP_MS = 50;

/** What the leader needs of the notification pipeline. */
export interface NotifyPlanning {
  /** Writes the notification rows of these transitions (inside the caller's transaction). */
  plan(transitions: readonly IncidentTransition[]): void;
  /** Tells the planner the notification state of open incidents (at the start of a leadership). */
  seed(open: ReturnType<IncidentStore['openIncidents']>): void;
  /** Forgets what the latest plan() remembered (its transaction rolled back). */
  rollback(): void;
  /** Wakes the receiver queues. */
  wake(): void;
  /** This node starts (true) or stops (false) notifying. */
  lead(leading: boolean): void;
}

/** Counters of the leader (status, metrics, tests). */
export interface NotifyLeaderStats {
  /** Times this node became the notifying node. */
  leaderships: number;
  /** Records planned while leading. */
  planned: number;
  /** Offset commits. */
  commits: number;
}

/** A planned record: its offset and the notification rows its plan wrote (ids after `from`, up to `to`). */
interface Planned {
  offset: number;
  from: number;
  to: number;
}

/**
 * The notifying node: the member of the consumer group `<cluster>.notify` that owns the transitions
 * topic's partition. It plans each transition's notifications through the notification log (the
 * outbox of src/notify/) once the node's mirror has applied the record to the store (the mirror is the
 * one writer of other nodes' incidents, in topic order), and commits a record's offset only once every
 * notification planned from it is done (delivered, failed or held).
 * So a node that takes over after a crash plans again exactly what was not done; what was delivered
 * but not yet committed is sent again with the same idempotency key (the cluster's duplicate window).
 */
export class NotifyLeader {
  readonly stats: NotifyLeaderStats = { leaderships: 0, planned: 0, commits: 0 };
  private readonly planned = new Map<number, Planned[]>();
  private readonly stmt: Record<'maxId' | 'undone', Statement>;
  private owned = new Set<number>();
  private readonly committed = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private consumer: Consumer | null = null;

  constructor(
    private readonly store: IncidentStore,
    private readonly mirror: TransitionsMirror,
    private readonly planning: NotifyPlanning,
    private readonly topic: string,
    private readonly log: Logger,
  ) {
    const db = store.database;
    this.stmt = {
      maxId: db.prepare('SELECT coalesce(max(id), 0) FROM notification_log').pluck(),
      undone: db.prepare(`SELECT 1 FROM notification_log WHERE id > ? AND id <= ? AND state = 'pending' LIMIT 1`).pluck(),
    };
  }

  /** Whether this node is the notifying node now. */
  leading(): boolean {
    return this.owned.size > 0;
  }

  /** Starts committing (the consumer runs with autoCommit off and this handler). */
  start(consumer: Consumer): void {
    this.consumer = consumer;
    this.timer = setInterval(() => { void this.commit(); }, NOTIFY_COMMIT_INTERVAL_MS);
    this.timer.unref();
  }

  /** The group gave this member these partitions of the topic (none: it does not notify). */
  assigned(partitions: readonly number[]): void {
    const before = this.owned.size > 0;
    const mine = new Set(partitions);
    for (const p of this.planned.keys()) if (!mine.has(p)) this.planned.delete(p);
    this.owned = mine;
    if (!before && mine.size > 0) {
      this.stats.leaderships++;
      this.planning.lead(true);
      // What the planner needs to recognise an unsilence among later transitions.
      this.planning.seed(this.store.openIncidents());
      this.log.info({ partitions: [...mine] }, 'this node now sends the cluster\'s notifications');
    } else if (before && mine.size === 0) {
      this.planning.lead(false);
      this.log.info('this node no longer sends the cluster\'s notifications');
    }
  }

  /** The kafkajs eachBatch handler: apply and plan each record, one transaction each. */
  readonly onBatch = async ({ batch, isStale, heartbeat }: EachBatchPayload): Promise<void> => {
    if (isStale() || !this.owned.has(batch.partition)) return;
    // The incidents of these records must be in the store first: wait for the mirror (heartbeating).
    const last = Number(batch.messages[batch.messages.length - 1]?.offset ?? -1);
    while ((this.mirror.position(batch.topic, batch.partition) ?? 0) <= last) {
      if (isStale() || !this.owned.has(batch.partition) || this.timer === null) return;
      await heartbeat();
      await new Promise((r) => setTimeout(r, MIRROR_WAIT_STEP_MS));
    }
    const list = this.planned.get(batch.partition) ?? [];
    this.planned.set(batch.partition, list);
    let woke = false;
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (list.length > 0 && offset <= list[list.length - 1].offset) continue;
      const r = decodeTransitionRecord(m.value);
      let entry: Planned;
      try {
        entry = this.plan(r, offset);
      } catch (err) {
        // Nothing of the record was kept: kafkajs delivers the batch again.
        this.planning.rollback();
        if (woke) this.planning.wake();
        throw err;
      }
      list.push(entry);
      this.stats.planned++;
      if (entry.to > entry.from) woke = true;
    }
    if (woke) this.planning.wake();
  };

  private plan(r: ReturnType<typeof decodeTransitionRecord>, offset: number): Planned {
    return this.store.transaction((): Planned => {
        const from = this.stmt.maxId.get() as number;
        if (typeof r !== 'string') {
          const local = this.store.openedNear(incidentKey(r.incident), r.incident.openedAtMs, 0);
          if (local !== null) {
            // The record's state, under this store's id: what the transition announced, whoever stored what since.
            this.planning.plan([{ type: r.type, incident: { ...r.incident, id: local.id }, atMs: r.atMs }]);
          }
        }
        return { offset, from, to: this.stmt.maxId.get() as number };
    });
  }

  /** Commits, per owned partition, the offset after the last record whose notifications are all done. */
  async commit(): Promise<void> {
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    for (const [partition, list] of this.planned) {
      let done = 0;
      while (done < list.length && this.stmt.undone.get(list[done].from, list[done].to) === undefined) done++;
      if (done === 0) continue;
      const last = list[done - 1];
      // Keep the last entry: it tells onBatch which offsets were planned already.
      list.splice(0, done === list.length ? done - 1 : done);
      if (this.committed.get(partition) === last.offset + 1) continue;
      this.committed.set(partition, last.offset + 1);
      offsets.push({ topic: this.topic, partition, offset: String(last.offset + 1) });
    }
    if (offsets.length === 0 || this.consumer === null) return;
    try {
      await this.consumer.commitOffsets(offsets);
      this.stats.commits++;
    } catch (err) {
      this.log.warn({ err }, 'notification offsets not committed; trying again');
    }
  }

  /** Commits what is done one last time and stops the timer; idempotent. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.commit();
  }
}
