import type { Database, Statement } from 'better-sqlite3';
import type { Incident } from '../incidents/incident.ts';
import type { Scope } from '../kernel/verdict.ts';
import { silenceMatches, type Silence, type SilenceMatcher } from './silence.ts';

interface Row {
  id: number;
  property_id: string | null;
  video_title: string | null;
  error_type: string | null;
  scope: Scope | null;
  comment: string;
  created_at_ms: number;
  expires_at_ms: number;
  ended_at_ms: number | null;
  silenced_incidents: string;
}

function toSilence(r: Row): Silence {
  return {
    id: r.id, propertyId: r.property_id, videoTitle: r.video_title, errorType: r.error_type, scope: r.scope,
    comment: r.comment, createdAtMs: r.created_at_ms, expiresAtMs: r.expires_at_ms, endedAtMs: r.ended_at_ms,
    silencedIncidents: JSON.parse(r.silenced_incidents) as number[],
  };
}

/**
 * Silences by matcher, stored in the incident database (table `silences`, schema version 2) so they
 * survive restarts. The active ones are cached in memory: matching runs on every incident open.
 */
export class SilenceRegistry {
  private readonly stmt: Record<string, Statement>;
  private active: Silence[] = [];

  /** Prepares the statements and loads the silences that have not ended. */
  constructor(db: Database) {
    this.stmt = {
      insert: db.prepare(`INSERT INTO silences (property_id, video_title, error_type, scope, comment, created_at_ms, expires_at_ms)
        VALUES (@propertyId, @videoTitle, @errorType, @scope, @comment, @createdAtMs, @expiresAtMs)`),
      insertWithId: db.prepare(`INSERT INTO silences (id, property_id, video_title, error_type, scope, comment, created_at_ms, expires_at_ms)
        VALUES (@id, @propertyId, @videoTitle, @errorType, @scope, @comment, @createdAtMs, @expiresAtMs)`),
      renumber: db.prepare('UPDATE silences SET id = (SELECT max(id) + 1 FROM silences) WHERE id = ? RETURNING id').pluck(),
      get: db.prepare('SELECT * FROM silences WHERE id = ?'),
      active: db.prepare('SELECT * FROM silences WHERE ended_at_ms IS NULL ORDER BY id'),
      end: db.prepare('UPDATE silences SET ended_at_ms = ? WHERE id = ? AND ended_at_ms IS NULL'),
      setIncidents: db.prepare('UPDATE silences SET silenced_incidents = ? WHERE id = ?'),
    };
    this.reload();
  }

  /** Creates a silence and returns it; under `id` when given (a cluster's silence: the same id on every node; the id must be free). */
  add(matcher: SilenceMatcher, expiresAtMs: number, comment: string, nowMs: number, id: number | null = null): Silence {
    const row = { ...matcher, comment, createdAtMs: nowMs, expiresAtMs };
    const created = id === null ? Number(this.stmt.insert.run(row).lastInsertRowid) : (this.stmt.insertWithId.run({ ...row, id }), id);
    this.reload();
    return this.get(created)!;
  }

  /** Moves a silence to a new id (above every other) and returns that id: frees `id` for a cluster's silence. */
  renumber(id: number): number {
    const moved = this.stmt.renumber.get(id) as number;
    this.reload();
    return moved;
  }

  /** The silence with this id (ended or not), or null. */
  get(id: number): Silence | null {
    const row = this.stmt.get.get(id) as Row | undefined;
    return row === undefined ? null : toSilence(row);
  }

  /** Silences not yet ended, oldest first (some may be past expiry until the next expireDue). */
  list(): Silence[] {
    return this.active.map((s) => ({ ...s, silencedIncidents: [...s.silencedIncidents] }));
  }

  /** The first active, unexpired silence matching the incident, or null. */
  match(incident: Incident, nowMs: number): Silence | null {
    return this.active.find((s) => s.expiresAtMs > nowMs && silenceMatches(s, incident)) ?? null;
  }

  /** Remembers that the silence switched this incident to silenced (so that its end switches it back on). */
  recordSilenced(silenceId: number, incidentId: number): void {
    const s = this.active.find((x) => x.id === silenceId);
    if (s === undefined) return;
    // Written even when memory has it already: the transaction that wrote it may have rolled back
    // (the incident manager applies a failed batch again), and the store must get it then.
    const list = s.silencedIncidents.includes(incidentId) ? s.silencedIncidents : [...s.silencedIncidents, incidentId];
    this.stmt.setIncidents.run(JSON.stringify(list), silenceId);
    s.silencedIncidents = list;
  }

  /** Ends a silence now; returns it as ended, or null when unknown or already ended. */
  end(id: number, nowMs: number): Silence | null {
    if (this.stmt.end.run(nowMs, id).changes === 0) return null;
    this.reload();
    return this.get(id);
  }

  /** Ends every silence whose expiry has passed and returns them. */
  expireDue(nowMs: number): Silence[] {
    const due = this.active.filter((s) => s.expiresAtMs <= nowMs);
    for (const s of due) this.stmt.end.run(s.expiresAtMs, s.id);
    if (due.length) this.reload();
    return due.map((s) => this.get(s.id)!);
  }

  private reload(): void {
    this.active = (this.stmt.active.all() as Row[]).map(toSilence);
  }
}
