import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IncidentTransition } from './incident.ts';
import { toReplayRecord } from './replay-record.ts';

/**
 * Appends every opened/resolved/expired transition, in the replay format, to an NDJSON audit file
 * (written synchronously: a transition is on disk before the next one). A write that fails (a full
 * disk) never loses the line: it and every later one wait in memory, in order, and go out with the
 * next successful write (flush()); `failure` says why meanwhile.
 */
export class AuditFile {
  private fd: number | null;
  private pending: Buffer[] = [];
  /** The error of the latest failed write, null once everything is written. */
  failure: Error | null = null;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  /** Writes the transition's replay record, if it has one; never throws (see failure). */
  write(t: IncidentTransition): void {
    const rec = toReplayRecord(t);
    if (!rec || this.fd === null) return;
    this.pending.push(Buffer.from(JSON.stringify(rec) + '\n'));
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

  /** Closes the file (lines still waiting are dropped: flush first); idempotent. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
