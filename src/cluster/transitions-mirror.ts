import type { Consumer, EachBatchPayload } from 'kafkajs';
import type { Statement } from 'better-sqlite3';
import type { Incident, IncidentTransition } from '../incidents/incident.ts';
import { incidentKey } from '../incidents/incident-key.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { Logger } from '../log/logger.ts';
import { decodeTransitionRecord, incidentIdentity, type TransitionRecord } from './transition-record.ts';

/** Counters of the mirror (status, metrics, tests). */
export interface MirrorStats {
  /** Records read from the topic (own ones included). */
  records: number;
  /** Other nodes' transitions that changed this store. */
  applied: number;
  /** Records already reflected in the store (own ones, duplicates, older states). */
  unchanged: number;
  /** Records that could not be read (another version, not JSON), skipped. */
  unreadable: number;
  /** Other nodes' incidents whose id was taken here by another incident (see clusterIncidentId). */
  idCollisions: number;
}

/** A default for the tracking of an incident another node derived (only its deriving node uses it). */
const MIRRORED_TRACKING = { impactedBaseViews: 0, timelineStepMs: 60_000 };

/**
 * Applies the cluster's transitions to this node's store. The store's copy of an incident follows the
 * latest transition of it (a closed incident stays closed, figures never go back in event time), and
 * the position in the topic is written in the same transaction as what was read up to it, so that
 * after a crash the store and its position agree (an exactly-once mirror). Own records are in the store
 * already (they were committed before they were published) and only move the position.
 */
export class TransitionsMirror {
  readonly stats: MirrorStats = { records: 0, applied: 0, unchanged: 0, unreadable: 0, idCollisions: 0 };
  private readonly stmt: Record<'position' | 'setPosition', Statement>;

  constructor(private readonly store: IncidentStore, private readonly node: string, private readonly log: Logger) {
    const db = store.database;
    this.stmt = {
      position: db.prepare('SELECT next_offset FROM cluster_positions WHERE topic = ? AND partition = ?').pluck(),
      setPosition: db.prepare(`INSERT INTO cluster_positions (topic, partition, next_offset) VALUES (?, ?, ?)
        ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`),
    };
  }

  /** The next offset of a partition this store has not applied, or null when it never read it. */
  position(topic: string, partition: number): number | null {
    return (this.stmt.position.get(topic, partition) as number | undefined) ?? null;
  }

  /**
   * Applies records of one partition (offsets rising) in one transaction with the partition's new
   * position; returns the transitions that changed the store (to pass to the IncidentManager).
   */
  applyBatch(topic: string, partition: number, records: ReadonlyArray<{ offset: number; value: Buffer | null }>): IncidentTransition[] {
    return this.store.transaction(() => {
      const from = this.position(topic, partition);
      const out: IncidentTransition[] = [];
      let next: number | null = null;
      for (const m of records) {
        if (from !== null && m.offset < from) continue;
        next = m.offset + 1;
        this.stats.records++;
        const r = decodeTransitionRecord(m.value);
        if (typeof r === 'string') {
          this.stats.unreadable++;
          this.log.warn({ topic, partition, offset: m.offset, reason: r }, 'transition record skipped');
          continue;
        }
        if (r.node === this.node) {
          this.stats.unchanged++;
          continue;
        }
        this.apply(r, out);
      }
      if (next !== null) this.stmt.setPosition.run(topic, partition, next);
      return out;
    });
  }

  /**
   * Applies one record of another node to the store (inside the caller's transaction); pushes the
   * transitions it made to `out` and returns the store's copy of the incident (null: unchanged).
   */
  apply(r: TransitionRecord, out: IncidentTransition[]): Incident | null {
    const i = r.incident;
    const key = incidentKey(i);
    const local = this.store.openedNear(key, i.openedAtMs, 0);
    if (local !== null) {
      // Closed stays closed (a late update of a task's old owner), and figures never go back.
      const same = local.status === i.status && local.notifications === i.notifications && local.updatedAtMs === i.updatedAtMs;
      if (local.status !== 'open' || i.updatedAtMs < local.updatedAtMs || same) {
        this.stats.unchanged++;
        return null;
      }
      const next: Incident = { ...i, id: local.id };
      this.store.updateIncident(next, this.store.tracking(local.id) ?? MIRRORED_TRACKING);
      // The node that derives it now (a task moved); a silence or unsilence from another node does not make it that node's.
      if (i.updatedAtMs > local.updatedAtMs || i.status !== local.status) this.store.setNode(local.id, r.node);
      if (r.sample !== null) this.store.appendTimelineSample(local.id, r.sample);
      this.stats.applied++;
      out.push(mirroredTransition(r, next));
      return next;
    }
    let draft: Omit<Incident, 'id'> = { ...i };
    if (i.status === 'open') {
      // One open incident per key: the later opening stays open, the earlier is over, expired at its
      // last update (the rule the deriving node's IncidentManager applies when it opens the later one,
      // supersede(), so every store agrees).
      const other = this.store.openOfKey(key);
      if (other !== null && other.openedAtMs < i.openedAtMs) {
        const closed: Incident = { ...other, status: 'expired', closedAtMs: other.updatedAtMs };
        this.store.updateIncident(closed, this.store.tracking(other.id) ?? MIRRORED_TRACKING);
        out.push(Object.freeze({ type: 'expired', incident: Object.freeze(closed), atMs: other.updatedAtMs, mirroredFrom: r.node }));
      } else if (other !== null) {
        draft = { ...i, status: 'expired', closedAtMs: i.updatedAtMs };
      }
    }
    const inserted = this.store.insertIncident(draft, MIRRORED_TRACKING, r.node, i.id);
    if (inserted.id !== i.id) {
      this.stats.idCollisions++;
      this.log.error({ identity: incidentIdentity(i), id: i.id, here: inserted.id, node: r.node }, 'cluster incident id taken here by another incident: this store numbers it differently');
    }
    if (r.sample !== null) this.store.appendTimelineSample(inserted.id, r.sample);
    this.stats.applied++;
    out.push(mirroredTransition(r, inserted));
    return inserted;
  }

  /** A kafkajs eachBatch handler over this mirror; `applied` receives what changed the store. */
  handler(applied: (transitions: IncidentTransition[]) => void): (p: EachBatchPayload) => Promise<void> {
    return async ({ batch, isStale }) => {
      if (isStale() || batch.messages.length === 0) return;
      const changed = this.applyBatch(batch.topic, batch.partition, batch.messages.map((m) => ({ offset: Number(m.offset), value: m.value })));
      if (changed.length > 0) applied(changed);
    };
  }

  /** Seeks the consumer to this store's positions of the partitions it was given (after consumer.run()). */
  seekToPositions(consumer: Consumer, topic: string, partitions: readonly number[]): void {
    for (const p of partitions) {
      const at = this.position(topic, p);
      if (at !== null) consumer.seek({ topic, partition: p, offset: String(at) });
    }
  }
}

function mirroredTransition(r: TransitionRecord, incident: Incident): IncidentTransition {
  return Object.freeze({ type: r.type, incident: Object.freeze({ ...incident }), atMs: r.atMs, mirroredFrom: r.node });
}
