import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, fsyncSync, openSync, closeSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { EngineCheckpoint } from './engine.ts';

const MANIFEST = 'manifest.json';
const FORMAT = 1;

/** What must match for a checkpoint to be resumed. */
export interface CheckpointShape {
  workers: number;
  groups: number;
  chunkBytes: number;
  maxKeysPerWorker: number;
  maxCellsPerWorker: number;
}

/**
 * Kernel checkpoints in `<dataDir>/checkpoint`: written to a temporary directory, fsynced and
 * renamed into place, so a crash mid-write leaves the previous checkpoint intact.
 */
export class CheckpointStore {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'checkpoint');
  }

  /**
   * Writes a checkpoint atomically (replacing the previous one). On failure (e.g. ENOSPC) the temporary
   * directory is removed, the previous checkpoint stays in place, and a CheckpointError is thrown.
   */
  save(cp: EngineCheckpoint, shape: CheckpointShape, savedAtMs: number): void {
    const tmp = `${this.dir}.tmp-${process.pid}`;
    const old = `${this.dir}.old-${process.pid}`;
    try {
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      cp.snapshots.forEach((snap, w) => writeDurably(join(tmp, `worker-${w}.snap`), snap));
      writeDurably(join(tmp, MANIFEST), Buffer.from(JSON.stringify({ format: FORMAT, ...shape, maxTs: cp.maxTs, savedAtMs })));
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw new CheckpointError(`cannot write the checkpoint in ${this.dir} (${(err as Error).message}); the previous one is kept`, { cause: err });
    }
    try {
      if (existsSync(this.dir)) renameSync(this.dir, old);
      renameSync(tmp, this.dir);
    } catch (err) {
      // Put the previous checkpoint back if it was moved aside.
      if (!existsSync(this.dir) && existsSync(old)) renameSync(old, this.dir);
      rmSync(tmp, { recursive: true, force: true });
      throw new CheckpointError(`cannot put the checkpoint in place in ${this.dir} (${(err as Error).message}); the previous one is kept`, { cause: err });
    }
    rmSync(old, { recursive: true, force: true });
  }

  /**
   * Removes what a process that died while saving left behind (`checkpoint.tmp-<pid>`, and
   * `checkpoint.old-<pid>`, which is put back when no checkpoint is in place); leaves those of a live
   * process other than this one. Returns the names it removed or put back.
   */
  cleanStale(isAlive: (pid: number) => boolean = pidAlive): string[] {
    const parent = dirname(this.dir);
    const base = basename(this.dir);
    const done: string[] = [];
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      return done;
    }
    for (const name of names) {
      const m = new RegExp(`^${base}\\.(tmp|old)-(\\d+)$`).exec(name);
      if (!m) continue;
      const pid = Number(m[2]);
      if (pid !== process.pid && isAlive(pid)) continue;
      const path = join(parent, name);
      if (m[1] === 'old' && !existsSync(this.dir)) renameSync(path, this.dir);
      else rmSync(path, { recursive: true, force: true });
      done.push(name);
    }
    return done;
  }

  /** Loads the checkpoint if one exists and matches the shape; otherwise returns the reason it cannot be used. */
  load(shape: CheckpointShape): { checkpoint: EngineCheckpoint } | { reason: string } {
    const manifestPath = join(this.dir, MANIFEST);
    if (!existsSync(manifestPath)) return { reason: 'no checkpoint' };
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    } catch (err) {
      return { reason: `unreadable manifest: ${(err as Error).message}` };
    }
    if (m.format !== FORMAT) return { reason: `checkpoint format ${String(m.format)} is not ${FORMAT}` };
    for (const k of Object.keys(shape) as (keyof CheckpointShape)[]) {
      if (m[k] !== shape[k]) return { reason: `checkpoint ${k} is ${String(m[k])}, configuration says ${shape[k]}` };
    }
    const snapshots: Uint8Array[] = [];
    for (let w = 0; w < shape.workers; w++) {
      const p = join(this.dir, `worker-${w}.snap`);
      if (!existsSync(p)) return { reason: `missing ${p}` };
      const buf = readFileSync(p);
      snapshots.push(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    }
    return { checkpoint: { workers: shape.workers, groups: shape.groups, maxTs: (m.maxTs as number | null) ?? null, snapshots } };
  }
}

/** A checkpoint that could not be written (or was refused); the previous one, if any, is intact. */
export class CheckpointError extends Error {
  readonly code: 'CHECKPOINT_WRITE_FAILED' | 'CHECKPOINT_REFUSED';
  readonly retriable = true;
  constructor(message: string, options: { cause?: unknown; code?: CheckpointError['code'] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CheckpointError';
    this.code = options.code ?? 'CHECKPOINT_WRITE_FAILED';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writeDurably(path: string, data: Uint8Array): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
