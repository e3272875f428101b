import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import DatabaseConstructor from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import type { Scope } from '../kernel/verdict.ts';
import type { Incident, IncidentStatus, NotificationState, TimelineSample } from './incident.ts';
import { FILTER_CLAUSES, checkIncidentFilter } from './incident-filter.ts';
import type { IncidentFilter, IncidentPage } from './incident-filter.ts';
import { incidentKey } from './incident-key.ts';
import { INSTALLATION_ID_KEY, migrateIncidentSchema } from './incident-schema.ts';

/** The manager's bookkeeping for an incident, persisted beside it so a restart continues it exactly. */
export interface IncidentTracking {
  /** Impacted views carried over from before the detector re-opened an already-open incident. */
  impactedBaseViews: number;
  /** Current minimum spacing of stored timeline samples; doubles each time the timeline is thinned. */
  timelineStepMs: number;
}

/** How many timeline samples an incident has and when the newest was taken. */
export interface TimelineExtent {
  sampleCount: number;
  lastSampleAtMs: number | null;
}

/** Another incident of the same key, as the incident page lists it ("2 hours ago, Duration: 24 minutes"). */
export interface Occurrence {
  id: number;
  status: IncidentStatus;
  openedAtMs: number;
  closedAtMs: number | null;
  /** Null while that occurrence is still open. */
  durationMs: number | null;
}

interface IncidentRow {
  id: number;
  scope: Scope;
  property_id: string;
  video_title: string | null;
  error_type: string;
  status: IncidentStatus;
  opened_at_ms: number;
  closed_at_ms: number | null;
  initial_error_ratio: number;
  initial_views_per_hour: number;
  threshold_ratio: number;
  baseline_ratio: number;
  min_window_views: number;
  current_error_ratio: number;
  current_views_per_hour: number;
  current_window_views: number;
  updated_at_ms: number;
  impacted_views: number;
  notifications: NotificationState;
}

const INCIDENT_COLUMNS = `id, scope, property_id, video_title, error_type, status, opened_at_ms, closed_at_ms,
  initial_error_ratio, initial_views_per_hour, threshold_ratio, baseline_ratio, min_window_views,
  current_error_ratio, current_views_per_hour, current_window_views, updated_at_ms, impacted_views, notifications`;

function toIncident(row: IncidentRow): Incident {
  return {
    id: row.id,
    scope: row.scope,
    propertyId: row.property_id,
    videoTitle: row.video_title,
    errorType: row.error_type,
    status: row.status,
    openedAtMs: row.opened_at_ms,
    closedAtMs: row.closed_at_ms,
    initialErrorRatio: row.initial_error_ratio,
    initialViewsPerHour: row.initial_views_per_hour,
    thresholdRatio: row.threshold_ratio,
    baselineRatio: row.baseline_ratio,
    minWindowViews: row.min_window_views,
    currentErrorRatio: row.current_error_ratio,
    currentViewsPerHour: row.current_views_per_hour,
    currentWindowViews: row.current_window_views,
    updatedAtMs: row.updated_at_ms,
    impactedViews: row.impacted_views,
    notifications: row.notifications,
  };
}

/** Durable incidents, their timelines and a small key/value meta table in one SQLite database. */
export class IncidentStore {
  readonly path: string;
  private readonly db: Database;
  private readonly listStatements = new Map<string, Statement>();
  private installation: string | null = null;
  private deriveId: ((draft: Omit<Incident, 'id'>) => number) | null = null;
  private ownNode: string | null = null;
  private readonly stmt;

  /** Wraps an open database, migrating its schema first; prefer openIncidentStore, which also sets the pragmas. */
  constructor(db: Database) {
    this.db = db;
    this.path = db.name;
    migrateIncidentSchema(db);
    this.stmt = {
      insert: db.prepare(`INSERT INTO incidents (id, node, key, scope, property_id, video_title, error_type, status,
          opened_at_ms, closed_at_ms, initial_error_ratio, initial_views_per_hour, threshold_ratio, baseline_ratio,
          min_window_views, current_error_ratio, current_views_per_hour, current_window_views, updated_at_ms,
          impacted_views, notifications, impacted_base_views, timeline_step_ms)
        VALUES (@id, @node, @key, @scope, @propertyId, @videoTitle, @errorType, @status, @openedAtMs, @closedAtMs,
          @initialErrorRatio, @initialViewsPerHour, @thresholdRatio, @baselineRatio, @minWindowViews,
          @currentErrorRatio, @currentViewsPerHour, @currentWindowViews, @updatedAtMs, @impactedViews,
          @notifications, @impactedBaseViews, @timelineStepMs)`),
      update: db.prepare(`UPDATE incidents SET status = @status, closed_at_ms = @closedAtMs,
          current_error_ratio = @currentErrorRatio, current_views_per_hour = @currentViewsPerHour,
          current_window_views = @currentWindowViews, updated_at_ms = @updatedAtMs, impacted_views = @impactedViews,
          notifications = @notifications, impacted_base_views = @impactedBaseViews, timeline_step_ms = @timelineStepMs
        WHERE id = @id`),
      setNotifications: db.prepare('UPDATE incidents SET notifications = ? WHERE id = ?'),
      get: db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE id = ?`),
      open: db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE status = 'open' ORDER BY id`),
      tracking: db.prepare(
        'SELECT impacted_base_views AS impactedBaseViews, timeline_step_ms AS timelineStepMs FROM incidents WHERE id = ?',
      ),
      others: db.prepare(`SELECT o.id, o.status, o.opened_at_ms, o.closed_at_ms FROM incidents AS self
          JOIN incidents AS o ON o.key = self.key AND o.id <> self.id
        WHERE self.id = ? ORDER BY o.opened_at_ms DESC, o.id DESC LIMIT ?`),
      appendSample: db.prepare(`INSERT OR REPLACE INTO timeline_samples
          (incident_id, at_ms, error_ratio, threshold_ratio, window_views)
        VALUES (@incidentId, @atMs, @errorRatio, @thresholdRatio, @windowViews)`),
      timeline: db.prepare(`SELECT at_ms AS atMs, error_ratio AS errorRatio, threshold_ratio AS thresholdRatio,
          window_views AS windowViews FROM timeline_samples WHERE incident_id = ? ORDER BY at_ms`),
      extent: db.prepare(
        'SELECT count(*) AS sampleCount, max(at_ms) AS lastSampleAtMs FROM timeline_samples WHERE incident_id = ?',
      ),
      // Keeps the 1st, 3rd, 5th... sample: the opening sample always survives and spacing stays even.
      thin: db.prepare(`DELETE FROM timeline_samples WHERE incident_id = @id AND at_ms IN (
          SELECT at_ms FROM (
            SELECT at_ms, row_number() OVER (ORDER BY at_ms) AS rank FROM timeline_samples WHERE incident_id = @id
          ) WHERE rank % 2 = 0)`),
      openedNear: db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE key = ? AND opened_at_ms BETWEEN ? AND ?
        ORDER BY abs(opened_at_ms - ?), id LIMIT 1`),
      openOfKey: db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE key = ? AND status = 'open'`),
      exists: db.prepare('SELECT 1 FROM incidents WHERE id = ?').pluck(),
      node: db.prepare('SELECT node FROM incidents WHERE id = ?').pluck(),
      setNode: db.prepare('UPDATE incidents SET node = ? WHERE id = ?'),
      openOfNode: db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE status = 'open' AND (node IS NULL OR node = ?) ORDER BY id`),
      sampleAt: db.prepare(`SELECT at_ms AS atMs, error_ratio AS errorRatio, threshold_ratio AS thresholdRatio,
          window_views AS windowViews FROM timeline_samples WHERE incident_id = ? AND at_ms = ?`),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /**
   * Stores a new incident and returns it with its id: the next id (1 for the first, never reused), or
   * in a cluster the id derived from its identity (deriveIdsWith), the next free one after it on a
   * collision. `node`: the node that derived it, when that is not this store's own.
   */
  insertIncident(draft: Omit<Incident, 'id'>, tracking: IncidentTracking, node: string | null = this.ownNode, id: number | null = null): Incident {
    let wanted = id ?? (this.deriveId === null ? null : this.deriveId(draft));
    while (wanted !== null && this.stmt.exists.get(wanted) !== undefined) wanted++;
    const result = this.stmt.insert.run({ ...draft, ...tracking, id: wanted, node, key: incidentKey(draft) });
    return { id: Number(result.lastInsertRowid), ...draft };
  }

  /**
   * Cluster mode: ids derived from an incident's identity (the same on every node, whatever the order
   * in which they learn of it) instead of the next number, the installation id replaced by the
   * cluster's (so that notification keys are the same whichever node sends), and the node that
   * writes this store's own incidents.
   */
  useClusterIdentity(deriveId: (draft: Omit<Incident, 'id'>) => number, installationId: string, node: string): void {
    this.deriveId = deriveId;
    this.installation = installationId;
    this.ownNode = node;
  }

  /** The node that derived an incident (null: unknown or a single node), or undefined for an unknown id. */
  nodeOf(id: number): string | null | undefined {
    return this.stmt.node.get(id) as string | null | undefined;
  }

  /** Records which node derived an incident. */
  setNode(id: number, node: string | null): void {
    this.stmt.setNode.run(node, id);
  }

  /** The open incident of a key, or null. */
  openOfKey(key: string): Incident | null {
    const row = this.stmt.openOfKey.get(key) as IncidentRow | undefined;
    return row ? toIncident(row) : null;
  }

  /** Open incidents derived by `node` (or by no node named), oldest id first. */
  openIncidentsOf(node: string): Incident[] {
    return (this.stmt.openOfNode.all(node) as IncidentRow[]).map(toIncident);
  }

  /** The incident's timeline sample at exactly `atMs`, or null. */
  timelineSampleAt(incidentId: number, atMs: number): TimelineSample | null {
    return (this.stmt.sampleAt.get(incidentId, atMs) as TimelineSample | undefined) ?? null;
  }

  /** Writes the lifecycle, current figures, notification state and tracking of an existing incident. */
  updateIncident(incident: Incident, tracking: IncidentTracking): void {
    this.stmt.update.run({ ...incident, ...tracking });
  }

  /** Sets whether an incident notifies; returns false when no incident has that id. */
  setNotifications(id: number, state: NotificationState): boolean {
    return this.stmt.setNotifications.run(state, id).changes > 0;
  }

  /** The incident with this id, or null. */
  get(id: number): Incident | null {
    const row = this.stmt.get.get(id) as IncidentRow | undefined;
    return row === undefined ? null : toIncident(row);
  }

  /** Every open incident, oldest id first. */
  openIncidents(): Incident[] {
    return (this.stmt.open.all() as IncidentRow[]).map(toIncident);
  }

  /** One page of incidents matching the filter, newest first; throws INCIDENT_FILTER_INVALID on a bad limit, cursor or range. */
  list(filter: IncidentFilter = {}): IncidentPage {
    const limit = checkIncidentFilter(filter);
    const present = FILTER_CLAUSES.filter(([field]) => filter[field] !== undefined);
    const cacheKey = present.map(([field]) => field).join(',');
    let statement = this.listStatements.get(cacheKey);
    if (statement === undefined) {
      const where = present.length === 0 ? '' : `WHERE ${present.map(([, clause]) => clause).join(' AND ')}`;
      statement = this.db.prepare(`SELECT ${INCIDENT_COLUMNS} FROM incidents ${where} ORDER BY id DESC LIMIT @limit`);
      this.listStatements.set(cacheKey, statement);
    }
    const params: Record<string, unknown> = { limit: limit + 1 };
    for (const [field] of present) params[field] = filter[field];
    // One extra row tells whether another page exists without a count query.
    const rows = statement.all(params) as IncidentRow[];
    const incidents = rows.slice(0, limit).map(toIncident);
    const nextCursor = rows.length > limit ? incidents[incidents.length - 1].id : null;
    return { incidents, nextCursor };
  }

  /** Other incidents of the same key as `id` (never `id` itself), most recently opened first, at most `limit`. */
  otherOccurrences(id: number, limit = 10): Occurrence[] {
    const rows = this.stmt.others.all(id, limit) as Pick<IncidentRow, 'id' | 'status' | 'opened_at_ms' | 'closed_at_ms'>[];
    return rows.map((row) => ({
      id: row.id,
      status: row.status,
      openedAtMs: row.opened_at_ms,
      closedAtMs: row.closed_at_ms,
      durationMs: row.closed_at_ms === null ? null : row.closed_at_ms - row.opened_at_ms,
    }));
  }

  /** The tracking stored with an incident, or null when no incident has that id. */
  tracking(id: number): IncidentTracking | null {
    return (this.stmt.tracking.get(id) as IncidentTracking | undefined) ?? null;
  }

  /** Stores a timeline sample; a second sample at the same atMs replaces the first. */
  appendTimelineSample(incidentId: number, sample: TimelineSample): void {
    this.stmt.appendSample.run({ incidentId, ...sample });
  }

  /** The incident's timeline samples, oldest first (empty for an unknown id). */
  timeline(incidentId: number): TimelineSample[] {
    return this.stmt.timeline.all(incidentId) as TimelineSample[];
  }

  /** How many samples the incident's timeline holds and the time of the newest. */
  timelineExtent(incidentId: number): TimelineExtent {
    return this.stmt.extent.get(incidentId) as TimelineExtent;
  }

  /** Drops every second sample of the timeline, keeping the first, and returns how many remain. */
  thinTimeline(incidentId: number): number {
    this.stmt.thin.run({ id: incidentId });
    return this.timelineExtent(incidentId).sampleCount;
  }

  /** The incident of a key opened nearest to `atMs`, within `toleranceMs` of it, or null. */
  openedNear(key: string, atMs: number, toleranceMs: number): Incident | null {
    const row = this.stmt.openedNear.get(key, atMs - toleranceMs, atMs + toleranceMs, atMs) as IncidentRow | undefined;
    return row ? toIncident(row) : null;
  }

  /** A meta value, or null when the key was never set. */
  getMeta(key: string): string | null {
    return (this.stmt.getMeta.get(key) as string | undefined) ?? null;
  }

  /** Sets a meta value, replacing any previous one. */
  setMeta(key: string, value: string): void {
    this.stmt.setMeta.run(key, value);
  }

  /**
   * The open database, for components that keep their own tables in this file (notification log,
   * silences: schema version 2) and must write inside this store's transactions.
   */
  get database(): Database {
    return this.db;
  }

  /**
   * The installation id: a random UUID made with the database (schema version 3), unique to this data
   * directory. External identities (notification delivery ids, PagerDuty dedup keys) include it.
   */
  get installationId(): string {
    this.installation ??= this.getMeta(INSTALLATION_ID_KEY);
    if (this.installation === null) throw new Error(`incident store ${this.path} has no installation id`);
    return this.installation;
  }

  /** Runs fn in one transaction (a savepoint when nested): all its writes land together or none do. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Closes the database; calling it again does nothing. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** How a store is opened. */
export interface IncidentStoreOptions {
  /** How long a write waits for another connection's lock before failing with SQLITE_BUSY; default 5000. */
  busyTimeoutMs?: number;
}

/**
 * Opens (creating if needed) the incident store at `path`, or an in-memory one for ':memory:' (replay).
 * A file store gets its parent directory created, WAL journaling, synchronous=NORMAL and a busy timeout.
 */
export function openIncidentStore(path: string, options: IncidentStoreOptions = {}): IncidentStore {
  const inMemory = path === ':memory:';
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseConstructor(path);
  try {
    if (!inMemory) {
      db.pragma('journal_mode = WAL');
      // Under WAL, NORMAL can lose the last commits on power loss (not on a process crash) and never
      // corrupts the file; an fsync per verdict batch would cost more than that risk is worth.
      db.pragma('synchronous = NORMAL');
    }
    // better-sqlite3 is synchronous: the thread waits up to this long on a lock, so keep it short.
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('foreign_keys = ON');
    return new IncidentStore(db);
  } catch (error) {
    db.close();
    throw error;
  }
}
