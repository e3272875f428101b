import { closeSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, describeFsError } from '../config/config.ts';
import { openIncidentStore, type IncidentStore } from '../incidents/incident-store.ts';
import { AuditFile } from '../incidents/audit-file.ts';
import type { Database } from 'better-sqlite3';

/**
 * A start-up failure of the data directory that may pass by itself (a full disk, a database locked
 * by another process): exit 1 with one line, so an orchestrator tries again. Problems that will not
 * pass without an operator (a read-only directory, a file in the way, a damaged database) are
 * ConfigErrors: exit 2.
 */
export class DataDirError extends Error {
  readonly code = 'DATA_DIR_UNAVAILABLE';
  readonly retriable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataDirError';
  }
}

// Errors that another attempt may not see: no space, a lock, an I/O hiccup.
const PASSING = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EAGAIN', 'EBUSY', 'SQLITE_FULL', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR']);

function passes(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return PASSING.has(code) || PASSING.has(code.split('_').slice(0, 2).join('_'));
}

function fail(variable: string, what: string, err: unknown): never {
  const message = `${variable}: ${what} (${describeFsError(err)})`;
  if (passes(err)) throw new DataDirError(message, { cause: err });
  throw new ConfigError([message], { cause: err });
}

/**
 * Makes sure VIGIL_DATA_DIR is a directory Vigil can write: created with its parents when missing,
 * then a probe file written, synced and removed. Every problem names the variable, the path and the cause.
 */
export function prepareDataDir(dir: string): void {
  try {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st !== undefined && !st.isDirectory()) throw new ConfigError([`VIGIL_DATA_DIR: ${dir} is a file, not a directory`]);
    if (st === undefined) makeDirs(dir);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    fail('VIGIL_DATA_DIR', code === 'ENOTDIR' || code === 'EEXIST' ? `cannot create ${dir}: a file is in the way` : `cannot create ${dir}`, err);
  }
  const probe = join(dir, `.vigil-write-test-${process.pid}`);
  let fd: number | null = null;
  try {
    fd = openSync(probe, 'w');
    writeSync(fd, 'vigil');
    fsyncSync(fd);
  } catch (err) {
    fail('VIGIL_DATA_DIR', `cannot write in ${dir}`, err);
  } finally {
    if (fd !== null) closeSync(fd);
    try { unlinkSync(probe); } catch { /* never created */ }
  }
}

// mkdir -p one level at a time: a recursive mkdirSync reports ENOENT where the real cause is
// EROFS or EACCES on the first missing level.
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); statSync(d, { throwIfNoEntry: false }) === undefined; d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d);
}

/** Opens the incident database in the data directory; a failure names VIGIL_DATA_DIR, the file and the cause. */
export function openDataDirStore(dir: string, busyTimeoutMs: number): IncidentStore {
  const path = join(dir, 'incidents.db');
  let store: IncidentStore | null = null;
  try {
    store = openIncidentStore(path, { busyTimeoutMs });
    // Opening reads little more than the schema: also read what start-up reads next and the newest
    // page of every table (cheap: one path down each tree), so a truncated file is found here.
    store.openIncidents();
    for (const [table, key] of [['incidents', 'id'], ['timeline_samples', 'incident_id DESC, at_ms'], ['notification_log', 'id'], ['silences', 'id']]) {
      store.database.prepare(`SELECT * FROM ${table} ORDER BY ${key} DESC LIMIT 1`).all();
    }
    return store;
  } catch (err) {
    store?.close();
    if (passes(err)) return fail('VIGIL_DATA_DIR', `cannot open the incident database ${path}`, err);
    return fail('VIGIL_DATA_DIR', `cannot open the incident database ${path}: it is read-only, damaged or not a Vigil database; ` +
      'restore it from a backup, or move it away to start with an empty one', err);
  }
}

/** Opens the audit file (VIGIL_TRANSITIONS_FILE); a failure names the variable, the path and the cause. */
export function openAuditFile(path: string, db: Database | null = null): AuditFile {
  try {
    return new AuditFile(path, db);
  } catch (err) {
    return fail('VIGIL_TRANSITIONS_FILE', `cannot open ${path} for appending`, err);
  }
}
