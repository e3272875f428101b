import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IncidentTransition } from './incident.ts';
import { toReplayRecord } from './replay-record.ts';

/** Appends every opened/resolved/expired transition, in the replay format, to an NDJSON audit file (written synchronously: a transition is on disk before the next one). */
export class AuditFile {
  private fd: number | null;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  /** Writes the transition's replay record, if it has one. */
  write(t: IncidentTransition): void {
    const rec = toReplayRecord(t);
    if (!rec || this.fd === null) return;
    writeSync(this.fd, JSON.stringify(rec) + '\n');
  }

  /** Closes the file; idempotent. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
