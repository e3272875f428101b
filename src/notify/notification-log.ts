import type { Database, Statement } from 'better-sqlite3';
import type { Incident } from '../incidents/incident.ts';
import type { DeliveryState, NotificationKind, NotificationRecord } from './notification.ts';

interface Row {
  id: number;
  incident_id: number;
  receiver: string;
  kind: NotificationKind;
  seq: number;
  state: DeliveryState;
  incident_json: string;
  at_ms: number;
  created_at_ms: number;
  attempts: number;
  next_attempt_at_ms: number;
  last_attempt_at_ms: number | null;
  done_at_ms: number | null;
  last_status: number | null;
  last_error: string | null;
}

function toRecord(r: Row): NotificationRecord {
  return {
    id: r.id, incidentId: r.incident_id, receiver: r.receiver, kind: r.kind, seq: r.seq, state: r.state,
    incident: JSON.parse(r.incident_json) as Incident, atMs: r.at_ms, createdAtMs: r.created_at_ms, attempts: r.attempts,
    nextAttemptAtMs: r.next_attempt_at_ms, lastAttemptAtMs: r.last_attempt_at_ms, doneAtMs: r.done_at_ms,
    lastStatus: r.last_status, lastError: r.last_error,
  };
}

/** What a new log row needs; the rest starts empty. */
export interface NewNotification {
  incident: Incident;
  receiver: string;
  kind: NotificationKind;
  seq: number;
  state: 'pending' | 'held';
  atMs: number;
  createdAtMs: number;
  /** Why a held row was held. */
  reason?: string;
}

/**
 * The notification log (an outbox) in the incident database: one row per (incident, receiver, kind,
 * seq). Rows are written inside the transaction of the transition they announce, and a row is marked
 * delivered right after the receiver accepted it, so nothing delivered is sent again after a restart
 * except in the window between the receiver's answer and that mark (see ARCHITECTURE.md).
 */
export class NotificationLog {
  private readonly stmt: Record<string, Statement>;

  /** Prepares the statements; the schema (version 2) is the incident store's. */
  constructor(db: Database) {
    const openKinds = `('opened', 'unsilenced', 'repeat')`;
    this.stmt = {
      insert: db.prepare(`INSERT OR IGNORE INTO notification_log (incident_id, receiver, kind, seq, state, incident_json, at_ms,
          created_at_ms, next_attempt_at_ms, done_at_ms, last_error)
        VALUES (@incidentId, @receiver, @kind, @seq, @state, @incidentJson, @atMs, @createdAtMs, @createdAtMs, @doneAtMs, @reason)`),
      nextPending: db.prepare(`SELECT * FROM notification_log WHERE receiver = ? AND state = 'pending' ORDER BY id LIMIT 1`),
      attempt: db.prepare('UPDATE notification_log SET attempts = attempts + 1, last_attempt_at_ms = ? WHERE id = ?'),
      delivered: db.prepare(`UPDATE notification_log SET state = 'delivered', done_at_ms = ?, last_status = ?, last_error = NULL WHERE id = ? AND state = 'pending'`),
      retry: db.prepare('UPDATE notification_log SET next_attempt_at_ms = ?, last_status = ?, last_error = ? WHERE id = ?'),
      finish: db.prepare(`UPDATE notification_log SET state = ?, done_at_ms = ?, last_status = ?, last_error = ? WHERE id = ? AND state = 'pending'`),
      sentOpen: db.prepare(`SELECT 1 FROM notification_log WHERE incident_id = ? AND receiver = ? AND kind IN ${openKinds} AND state <> 'held' LIMIT 1`).pluck(),
      nextSeq: db.prepare('SELECT coalesce(max(seq), 0) + 1 FROM notification_log WHERE incident_id = ? AND receiver = ? AND kind = ?').pluck(),
      lastOpen: db.prepare(`SELECT * FROM notification_log WHERE incident_id = ? AND receiver = ? AND kind IN ${openKinds} AND state <> 'held' ORDER BY id DESC LIMIT 1`),
      deliveredOpen: db.prepare(`SELECT DISTINCT incident_id FROM notification_log WHERE receiver = ? AND kind IN ${openKinds} AND state = 'delivered'`).pluck(),
      dropPending: db.prepare(`DELETE FROM notification_log WHERE state = 'pending'`),
      anyRow: db.prepare('SELECT 1 FROM notification_log WHERE incident_id = ? AND receiver = ? LIMIT 1').pluck(),
      forIncident: db.prepare('SELECT * FROM notification_log WHERE incident_id = ? ORDER BY id'),
      counts: db.prepare('SELECT receiver, state, count(*) AS n FROM notification_log GROUP BY receiver, state'),
    };
  }

  /** Adds a row unless one with the same (incident, receiver, kind, seq) exists; true when added. */
  insert(n: NewNotification): boolean {
    const held = n.state === 'held';
    return this.stmt.insert.run({
      incidentId: n.incident.id, receiver: n.receiver, kind: n.kind, seq: n.seq, state: n.state,
      incidentJson: JSON.stringify(n.incident), atMs: n.atMs, createdAtMs: n.createdAtMs,
      doneAtMs: held ? n.createdAtMs : null, reason: held ? (n.reason ?? 'silenced') : null,
    }).changes > 0;
  }

  /** The oldest pending row of a receiver (its queue is FIFO), or null. */
  nextPending(receiver: string): NotificationRecord | null {
    const row = this.stmt.nextPending.get(receiver) as Row | undefined;
    return row === undefined ? null : toRecord(row);
  }

  /** Counts an attempt before the request goes out, so a crash mid-request still shows it. */
  markAttempt(id: number, nowMs: number): void {
    this.stmt.attempt.run(nowMs, id);
  }

  /** Marks a row delivered (only from pending). */
  markDelivered(id: number, nowMs: number, status: number): void {
    this.stmt.delivered.run(nowMs, status, id);
  }

  /** Keeps a row pending and schedules its next attempt. */
  markRetry(id: number, nextAttemptAtMs: number, status: number | null, error: string): void {
    this.stmt.retry.run(nextAttemptAtMs, status, error, id);
  }

  /** Ends a pending row as failed (permanent refusal, or gave up) or held (a silence kept it back). */
  markDone(id: number, state: 'failed' | 'held', nowMs: number, status: number | null, error: string): void {
    this.stmt.finish.run(state, nowMs, status, error, id);
  }

  /** True when the receiver was sent (or is being sent) an open-kind notification of the incident. */
  sentOpen(incidentId: number, receiver: string): boolean {
    return this.stmt.sentOpen.get(incidentId, receiver) !== undefined;
  }

  /**
   * Deletes every pending row; returns how many. A cluster node that is not (or no longer) the
   * notifying node hands them over: the notifying node plans them again from the transitions topic,
   * whose committed offset never passed a record with a notification not done.
   */
  dropPending(): number {
    return this.stmt.dropPending.run().changes;
  }

  /** True when the log has any row of the incident for the receiver. */
  anyRow(incidentId: number, receiver: string): boolean {
    return this.stmt.anyRow.get(incidentId, receiver) !== undefined;
  }

  /** The next seq for a repeated kind (repeat, unsilenced) of this incident and receiver. */
  nextSeq(incidentId: number, receiver: string, kind: NotificationKind): number {
    return this.stmt.nextSeq.get(incidentId, receiver, kind) as number;
  }

  /** The newest non-held open-kind row of this incident for this receiver, or null. */
  lastOpen(incidentId: number, receiver: string): NotificationRecord | null {
    const row = this.stmt.lastOpen.get(incidentId, receiver) as Row | undefined;
    return row === undefined ? null : toRecord(row);
  }

  /** Ids of incidents whose open-kind notification this receiver has accepted. */
  deliveredOpenIncidents(receiver: string): Set<number> {
    return new Set(this.stmt.deliveredOpen.all(receiver) as number[]);
  }

  /** Every row of an incident, oldest first: its notification state per receiver. */
  forIncident(incidentId: number): NotificationRecord[] {
    return (this.stmt.forIncident.all(incidentId) as Row[]).map(toRecord);
  }

  /** Row counts by receiver and state (metrics). */
  counts(): Array<{ receiver: string; state: DeliveryState; n: number }> {
    return this.stmt.counts.all() as Array<{ receiver: string; state: DeliveryState; n: number }>;
  }
}
