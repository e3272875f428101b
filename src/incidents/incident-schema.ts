import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { IncidentError } from './incident-error.ts';

type Migration = (db: Database) => void;

// migrations[i] takes a database from user_version i to i + 1. Append, never edit: a file written
// by an older Vigil replays exactly the steps it is missing.
const migrations: readonly Migration[] = [
  (db) => {
    // AUTOINCREMENT (not plain rowid) so an id is never reused, even if the newest incident row is
    // ever deleted. The partial unique index makes "one open incident per key" a storage invariant.
    // impacted_base_views and timeline_step_ms are the manager's bookkeeping, kept so a restart
    // continues an open incident exactly where it stopped.
    db.exec(`
      CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('property', 'title')),
        property_id TEXT NOT NULL,
        video_title TEXT,
        error_type TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'expired')),
        opened_at_ms INTEGER NOT NULL,
        closed_at_ms INTEGER,
        initial_error_ratio REAL NOT NULL,
        initial_views_per_hour REAL NOT NULL,
        threshold_ratio REAL NOT NULL,
        baseline_ratio REAL NOT NULL,
        min_window_views INTEGER NOT NULL,
        current_error_ratio REAL NOT NULL,
        current_views_per_hour REAL NOT NULL,
        current_window_views INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        impacted_views INTEGER NOT NULL,
        notifications TEXT NOT NULL CHECK (notifications IN ('on', 'silenced')),
        impacted_base_views INTEGER NOT NULL DEFAULT 0,
        timeline_step_ms INTEGER NOT NULL
      );
      CREATE INDEX incidents_status ON incidents (status);
      CREATE INDEX incidents_key_opened ON incidents (key, opened_at_ms);
      CREATE UNIQUE INDEX incidents_open_key ON incidents (key) WHERE status = 'open';
      CREATE INDEX incidents_property ON incidents (property_id);
      CREATE INDEX incidents_opened ON incidents (opened_at_ms);
      CREATE TABLE timeline_samples (
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        at_ms INTEGER NOT NULL,
        error_ratio REAL NOT NULL,
        threshold_ratio REAL NOT NULL,
        window_views INTEGER NOT NULL,
        PRIMARY KEY (incident_id, at_ms)
      ) WITHOUT ROWID;
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
  },
  (db) => {
    // Version 2, notifications (src/notify/): the outbox/notification log, one row per (incident,
    // receiver, kind, seq), written in the same transaction as the transition, so a crash can neither
    // lose a notification nor forget that one was delivered. And silences by matcher.
    db.exec(`
      CREATE TABLE notification_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        receiver TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('opened', 'resolved', 'expired', 'unsilenced', 'repeat')),
        seq INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'held')),
        incident_json TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        last_attempt_at_ms INTEGER,
        done_at_ms INTEGER,
        last_status INTEGER,
        last_error TEXT,
        UNIQUE (incident_id, receiver, kind, seq)
      );
      CREATE INDEX notification_log_pending ON notification_log (receiver, id) WHERE state = 'pending';
      CREATE TABLE silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        property_id TEXT,
        video_title TEXT,
        error_type TEXT,
        scope TEXT CHECK (scope IS NULL OR scope IN ('property', 'title')),
        comment TEXT NOT NULL DEFAULT '',
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER,
        silenced_incidents TEXT NOT NULL DEFAULT '[]'
      );
      CREATE INDEX silences_active ON silences (expires_at_ms) WHERE ended_at_ms IS NULL;
    `);
  },
  (db) => {
    // Version 3: the installation id, a random UUID made once with the database (so with the data
    // directory), in the same transaction as the schema. Incident ids restart at 1 in every data
    // directory; every identity a receiver sees (PagerDuty dedup_key, webhook delivery ids) carries
    // this id, so two installations, or a data directory made afresh, never collide.
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(INSTALLATION_ID_KEY, randomUUID());
  },
  (db) => {
    // Version 4, the cluster (src/cluster/): which node derived an incident (null: this one, or a
    // single node); the outbox of transitions not yet published to the cluster's transitions topic,
    // written in the transaction of the transitions; and the position of each topic partition this
    // store has applied, written in the transaction of what was applied (an exactly-once mirror).
    // Unused by a single node.
    db.exec(`
      ALTER TABLE incidents ADD COLUMN node TEXT;
      CREATE TABLE cluster_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        record_key TEXT NOT NULL,
        record TEXT NOT NULL
      );
      CREATE TABLE cluster_positions (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
      ) WITHOUT ROWID;
    `);
  },
  (db) => {
    // Version 5: the lines of the audit file (VIGIL_TRANSITIONS_FILE) written in the transaction of
    // their transitions, with the file size each ends at, until they are in the file
    // (src/incidents/audit-file.ts): a process killed between the commit and the file's write loses
    // no line. Unused without an audit file.
    db.exec(`
      CREATE TABLE audit_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        end_offset INTEGER NOT NULL,
        line TEXT NOT NULL
      );
    `);
  },
];

/** The meta key of the installation id. */
export const INSTALLATION_ID_KEY = 'installation_id';

/** The schema version this build writes (SQLite `user_version`). */
export const INCIDENT_SCHEMA_VERSION = migrations.length;

/**
 * Brings the database up to INCIDENT_SCHEMA_VERSION, one transaction per step, and returns the version
 * found before; throws INCIDENT_SCHEMA_TOO_NEW for a file written by a newer Vigil rather than guess.
 */
export function migrateIncidentSchema(db: Database): number {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > INCIDENT_SCHEMA_VERSION) {
    throw new IncidentError(
      'INCIDENT_SCHEMA_TOO_NEW',
      `incident store ${db.name} has schema version ${found}; this Vigil understands up to ${INCIDENT_SCHEMA_VERSION}`,
    );
  }
  for (let version = found; version < INCIDENT_SCHEMA_VERSION; version++) {
    db.transaction(() => {
      migrations[version](db);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return found;
}
