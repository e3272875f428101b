import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
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

  /** Writes a checkpoint atomically (replacing the previous one). */
  save(cp: EngineCheckpoint, shape: CheckpointShape, savedAtMs: number): void {
    const tmp = `${this.dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    cp.snapshots.forEach((snap, w) => writeDurably(join(tmp, `worker-${w}.snap`), snap));
    writeDurably(join(tmp, MANIFEST), Buffer.from(JSON.stringify({ format: FORMAT, ...shape, maxTs: cp.maxTs, savedAtMs })));
    const old = `${this.dir}.old-${process.pid}`;
    if (existsSync(this.dir)) renameSync(this.dir, old);
    renameSync(tmp, this.dir);
    rmSync(old, { recursive: true, force: true });
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

function writeDurably(path: string, data: Uint8Array): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
