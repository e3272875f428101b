import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database, Statement } from 'better-sqlite3';
import type { IncidentTransition } from './incident.ts';
import { toReplayRecord } from './replay-record.ts';

/** The audit line of a transition (its replay record), or null when it has none (updates, mirrored transitions). */
function auditLine(t: IncidentTransition): string | null {
  if (t.mirroredFrom !== undefined) return null;
  const rec = toReplayRecord(t);
  return rec ? JSON.stringify(rec) + '\n' : null;
}

/**
 * Appends every opened/resolved/expired transition this node derived, in the replay format, to an
 * NDJSON audit file (written synchronously: a transition is on disk before the next one). A write that
 * fails (a full disk) never loses the line: it and every later one wait in memory, in order, and go out
 * with the next successful write (flush()); `failure` says why meanwhile.
 *
 * With the incident store (`db`), the file agrees with the store across a crash: the lines of a
 * transaction's transitions are written into the store's table `audit_outbox` in that transaction
 * (beforeCommit), each with the file size it ends at, and written to the file after the commit. A
 * process killed between the two (the transitions are in the store, so a restart that derives them
 * again does not publish them again) leaves lines the file lacks: recover() appends them at the next
 * start. Rows whose line is in the file are deleted in the next transaction and at close.
 */
export class AuditFile {
  private fd: number | null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The file's size: what it had when opened and every byte written since. */
  private written: number;
  private readonly stmt: { insert: Statement; trim: Statement; rows: Statement } | null;
  /** The error of the latest failed write, null once everything is written. */
  failure: Error | null = null;

  constructor(readonly path: string, private readonly db: Database | null = null) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
    this.written = fstatSync(this.fd).size;
    this.stmt = db && {
      insert: db.prepare('INSERT INTO audit_outbox (end_offset, line) VALUES (?, ?)'),
      trim: db.prepare('DELETE FROM audit_outbox WHERE end_offset <= ?'),
      rows: db.prepare('SELECT end_offset AS endOffset, line FROM audit_outbox ORDER BY seq'),
    };
  }

  /** For IncidentManager beforeCommit: the transitions' lines into the store, in their transaction. */
  readonly beforeCommit = (transitions: readonly IncidentTransition[]): void => {
    if (this.stmt === null) return;
    this.stmt.trim.run(this.written);
    let end = this.written + this.pendingBytes;
    for (const t of transitions) {
      const line = auditLine(t);
      if (line === null) continue;
      end += Buffer.byteLength(line);
      this.stmt.insert.run(end, line);
    }
  };

  /**
   * At start, before any transition: appends the lines the store holds that the file lacks (a line
   * cut short by the kill is written again from its start); returns how many were appended. A file
   * shorter than the store's lines say it was (rotated or emptied by hand) gets every line it lacks
   * from where it ends.
   */
  recover(): number {
    if (this.stmt === null || this.fd === null) return 0;
    const rows = this.stmt.rows.all() as Array<{ endOffset: number; line: string }>;
    let appended = 0;
    for (const { endOffset, line } of rows) {
      const start = endOffset - Buffer.byteLength(line);
      if (endOffset <= this.written) continue;
      if (start < this.written) {
        ftruncateSync(this.fd, start);
        this.written = start;
      }
      this.write0(Buffer.from(line));
      appended++;
    }
    this.flush();
    this.db!.transaction(() => this.stmt!.trim.run(this.written))();
    return appended;
  }

  /** Writes the transition's line, if it has one; never throws (see failure). */
  write(t: IncidentTransition): void {
    const line = auditLine(t);
    if (line === null || this.fd === null) return;
    this.write0(Buffer.from(line));
  }

  private write0(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    this.flush();
  }

  /** Lines waiting to be written. */
  get pendingLines(): number {
    return this.pending.length;
  }

  /** Writes what waits; true when nothing is left. */
  flush(): boolean {
    while (this.pending.length > 0 && this.fd !== null) {
      const buf = this.pending[0];
      try {
        const n = writeSync(this.fd, buf);
        this.written += n;
        this.pendingBytes -= n;
        // A short write (the disk filled up mid-line): the rest of the line goes next.
        if (n < buf.length) { this.pending[0] = buf.subarray(n); continue; }
      } catch (err) {
        this.failure = err as Error;
        return false;
      }
      this.pending.shift();
    }
    this.failure = null;
    return true;
  }

  /** Closes the file (lines still waiting are dropped: flush first; the store keeps them for recover()); idempotent. */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    try {
      if (this.stmt && this.db!.open) this.db!.transaction(() => this.stmt!.trim.run(this.written))();
    } catch {
      // The store is failing: its rows are trimmed at the next start instead.
    }
  }
}
