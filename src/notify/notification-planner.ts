import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Incident, IncidentTransition, NotificationState } from '../incidents/incident.ts';
import type { NotificationLog } from './notification-log.ts';
import { routeMatches } from './receiver-route.ts';

/**
 * Decides, inside the transaction of each batch of transitions, which receivers get which notification,
 * and writes them to the notification log (the outbox):
 * - opened: every routed receiver; held (never sent) when the incident starts silenced;
 * - resolved / expired: every receiver that was sent an open-kind notification of the incident, even if
 *   it is silenced now (a page that was opened must be closed);
 * - updated that turns a silenced open incident back on: its current state, once, to every routed receiver.
 */
export class NotificationPlanner {
  // Notification state of open incidents as last seen, to recognise an unsilence among 'updated's.
  private readonly seen = new Map<number, NotificationState>();
  // What the latest plan() changed in `seen` (undefined: absent before), to undo it when its transaction rolls back.
  private undo = new Map<number, NotificationState | undefined>();

  /**
   * `closesUnknown` (a cluster's notifying node): a close of an incident whose opening another node
   * planned (this log has no row of it for the receiver) goes to every routed receiver while the
   * incident notifies, since the previous notifying node sent it the opening.
   */
  constructor(private readonly receivers: readonly ReceiverConfig[], private readonly log: NotificationLog, private readonly now: () => number,
    private readonly closesUnknown = false) {}

  /** Learns the notification state of the incidents open at start. */
  seed(open: readonly Incident[]): void {
    for (const i of open) this.seen.set(i.id, i.notifications);
  }

  /** Writes the log rows for these transitions; runs inside the store transaction (IncidentManager beforeCommit). */
  plan(transitions: readonly IncidentTransition[]): void {
    this.undo = new Map();
    for (const t of transitions) {
      const i = t.incident;
      if (!this.undo.has(i.id)) this.undo.set(i.id, this.seen.get(i.id));
      if (t.type === 'opened') {
        this.seen.set(i.id, i.notifications);
        const state = i.notifications === 'silenced' ? 'held' : 'pending';
        for (const r of this.routed(i)) this.log.insert({ incident: i, receiver: r.name, kind: 'opened', seq: 1, state, atMs: t.atMs, createdAtMs: this.now() });
      } else if (t.type === 'resolved' || t.type === 'expired') {
        this.seen.delete(i.id);
        for (const r of this.receivers) {
          if (this.log.sentOpen(i.id, r.name) || (this.closesUnknown && i.notifications === 'on' && routeMatches(r.match, i) && !this.log.anyRow(i.id, r.name))) this.log.insert({ incident: i, receiver: r.name, kind: t.type, seq: 1, state: 'pending', atMs: t.atMs, createdAtMs: this.now() });
        }
      } else if (i.status === 'open') {
        const before = this.seen.get(i.id);
        this.seen.set(i.id, i.notifications);
        if (before === 'silenced' && i.notifications === 'on') {
          for (const r of this.routed(i)) {
            const seq = this.log.nextSeq(i.id, r.name, 'unsilenced');
            this.log.insert({ incident: i, receiver: r.name, kind: 'unsilenced', seq, state: 'pending', atMs: t.atMs, createdAtMs: this.now() });
          }
        }
      }
    }
  }

  /** Undoes the latest plan()'s changes to what it remembers (its transaction rolled back; the rows are gone with it). */
  rollback(): void {
    for (const [id, state] of this.undo) {
      if (state === undefined) this.seen.delete(id);
      else this.seen.set(id, state);
    }
    this.undo = new Map();
  }

  /** Adds a repeat for every open, notifying incident whose last open-kind notification to a receiver with a repeat interval was delivered that long ago. */
  planRepeats(open: readonly Incident[]): number {
    let added = 0;
    for (const r of this.receivers) {
      if (r.repeatIntervalMs === null) continue;
      for (const i of open) {
        if (i.notifications !== 'on' || !routeMatches(r.match, i)) continue;
        const last = this.log.lastOpen(i.id, r.name);
        // Nothing sent yet (held, or routed after it opened), or still pending: no reminder of a reminder.
        if (last === null || last.state !== 'delivered' || this.now() - (last.doneAtMs ?? last.createdAtMs) < r.repeatIntervalMs) continue;
        const seq = this.log.nextSeq(i.id, r.name, 'repeat');
        if (this.log.insert({ incident: i, receiver: r.name, kind: 'repeat', seq, state: 'pending', atMs: i.updatedAtMs, createdAtMs: this.now() })) added++;
      }
    }
    return added;
  }

  private routed(i: Incident): ReceiverConfig[] {
    return this.receivers.filter((r) => routeMatches(r.match, i));
  }
}
