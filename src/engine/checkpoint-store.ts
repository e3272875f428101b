import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeKernelState } from '../kernel/kernel-state.ts';
import type { EventClockState } from './event-clock.ts';

/** The checkpoint format this version writes and reads (1 was one memory image per worker). */
export const CHECKPOINT_FORMAT = 2;
const DIR = 'checkpoints';
const MANIFEST = 'manifest.json';
const KEEP = 2;

/** What a checkpoint holds besides the kernel parts: everything that must match the state exactly. */
export interface CheckpointMeta {
  /** Event-time state of the engine's clock at the barrier. */
  eventTime: EventClockState;
  /** Source positions of exactly the records in the state (stream -> position, opaque to all but the source). */
  positions: Record<string, string>;
  /** What the positions are positions of (e.g. `kafka:topic`, `file:/path`); other sources do not use them. */
  source: string | null;
  /** The incident store's progress at the barrier: the latest event time of a verdict applied. */
  latestVerdictMs: number | null;
}

/** A checkpoint's manifest (`manifest.json`): parts with their checksums, and the metadata. */
export interface CheckpointManifest extends CheckpointMeta {
  format: number;
  seq: number;
  createdAtMs: number;
  /** Key groups of the engine: a checkpoint restores only into the same count (groups are the unit that moves). */
  groups: number;
  /** Workers that wrote it (any count may restore it). */
  workers: number;
  parts: Array<{ file: string; groupLo: number; groupHi: number; bytes: number; sha256: string }>;
  /** SHA-256 of this manifest's JSON without this field. */
  sha256: string;
}

/** A checkpoint read back and checked: its manifest and parts (encoded, and decoded for the checks). */
export interface LoadedCheckpoint {
  manifest: CheckpointManifest;
  parts: Uint8Array[];
  dir: string;
}

/** What a save wrote. */
export interface SavedCheckpoint {
  seq: number;
  dir: string;
  bytes: number;
}

/**
 * Checkpoints in `<dataDir>/checkpoints/cp-<seq>/`: one part file per writing worker (its key groups'
 * state), a manifest with every part's size and SHA-256 and its own SHA-256. Written into a temporary
 * directory, fsynced, renamed into place, and the directory fsynced: a crash leaves the previous
 * checkpoints intact. The newest two are kept; a start takes the newest that checks out.
 */
export class CheckpointStore {
  readonly dir: string;
  private seq: number;

  constructor(private readonly dataDir: string) {
    this.dir = join(dataDir, DIR);
    this.seq = Math.max(0, ...this.list().map((d) => d.seq));
  }

  /** Writes a checkpoint (parts as encoded by encodeKernelState, one per writing worker); resolves once durable. */
  async save(parts: Array<{ bytes: Uint8Array; groupLo: number; groupHi: number }>, meta: CheckpointMeta, groups: number, nowMs: number): Promise<SavedCheckpoint> {
    const seq = ++this.seq;
    const name = `cp-${String(seq).padStart(10, '0')}`;
    const tmp = join(this.dir, `.tmp-${name}-${process.pid}`);
    try {
      await mkdir(tmp, { recursive: true });
      const files: CheckpointManifest['parts'] = [];
      let bytes = 0;
      for (let i = 0; i < parts.length; i++) {
        const file = `part-${i}.bin`;
        const { bytes: data, groupLo, groupHi } = parts[i];
        await writeDurably(join(tmp, file), data);
        files.push({ file, groupLo, groupHi, bytes: data.length, sha256: await sha256(data) });
        bytes += data.length;
      }
      const manifest = buildManifest(files, meta, seq, groups, nowMs);
      await writeDurably(join(tmp, MANIFEST), Buffer.from(JSON.stringify(manifest)));
      await syncDir(tmp);
      await rename(tmp, join(this.dir, name));
      await syncDir(this.dir);
      await this.prune();
      return { seq, dir: join(this.dir, name), bytes };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      this.seq--;
      throw new CheckpointError(`cannot write the checkpoint in ${this.dir} (${(err as Error).message}); the previous one is kept`, { cause: err });
    }
  }

  /**
   * The newest checkpoint that checks out for `groups` key groups: manifest checksum, format, group
   * count, every part's size and checksum, parts covering every group exactly once. Returns the
   * reasons the newer ones were refused, and null when none checks out.
   */
  load(groups: number): { checkpoint: LoadedCheckpoint | null; refused: string[] } {
    const refused: string[] = [];
    if (existsSync(join(this.dataDir, 'checkpoint', 'manifest.json'))) {
      refused.push(`${join(this.dataDir, 'checkpoint')}: a checkpoint of format 1 (one memory image per worker), which this version does not read`);
    }
    for (const { dir } of this.list().sort((a, b) => b.seq - a.seq)) {
      try {
        return { checkpoint: readCheckpoint(dir, groups), refused };
      } catch (err) {
        refused.push(`${dir}: ${(err as Error).message}`);
      }
    }
    return { checkpoint: null, refused };
  }

  /** Checkpoint directories by sequence number. */
  private list(): Array<{ seq: number; dir: string }> {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).flatMap((n) => {
      const m = /^cp-(\d{10})$/.exec(n);
      return m ? [{ seq: Number(m[1]), dir: join(this.dir, n) }] : [];
    });
  }

  /** Keeps the newest KEEP checkpoints; removes older ones and temporary directories of other processes. */
  private async prune(): Promise<void> {
    const all = this.list().sort((a, b) => b.seq - a.seq);
    for (const { dir } of all.slice(KEEP)) await rm(dir, { recursive: true, force: true });
    this.cleanStale();
  }

  /** Removes the temporary directories a process that died while writing left behind (not those of a live one); returns their names. */
  cleanStale(isAlive: (pid: number) => boolean = pidAlive): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const n of readdirSync(this.dir)) {
      const m = /^\.tmp-cp-\d+-(\d+)$/.exec(n);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid !== process.pid && isAlive(pid)) continue;
      rmSync(join(this.dir, n), { recursive: true, force: true });
      removed.push(n);
    }
    return removed;
  }

  /** Creates the directory (at start, so a data directory problem shows then). */
  ensureDir(): void {
    mkdirSync(this.dir, { recursive: true });
  }
}

/** A checkpoint that could not be written (or was refused); the previous ones are intact. */
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

function readCheckpoint(dir: string, groups: number): LoadedCheckpoint {
  let text: string;
  try {
    text = readFileSync(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    throw new Error(`manifest unreadable (${(err as Error).message})`);
  }
  const { manifest, parts } = verifyCheckpoint(text, groups, (file) => {
    try {
      return readFileSync(join(dir, file));
    } catch (err) {
      throw new Error(`${file} unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  });
  return { manifest, parts, dir };
}

/**
 * A manifest (its JSON text) and the parts it lists, checked: manifest checksum, format, group
 * count, every part's size and checksum, parts covering every group exactly once. `readPart` returns
 * a part's bytes by file name (or throws with the reason). Throws with the reason a check failed.
 * The one check of a checkpoint, wherever it is stored (a data directory, S3).
 */
export function verifyCheckpoint(manifestText: string, groups: number, readPart: (file: string) => Uint8Array): { manifest: CheckpointManifest; parts: Uint8Array[] } {
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(manifestText) as CheckpointManifest;
  } catch (err) {
    throw new Error(`manifest unreadable (${(err as Error).message})`);
  }
  const { sha256: claimed, ...body } = manifest;
  if (typeof claimed !== 'string' || sha256Sync(JSON.stringify(body)) !== claimed) throw new Error('manifest checksum does not match its content');
  if (manifest.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint format ${manifest.format} is not ${CHECKPOINT_FORMAT}`);
  if (manifest.groups !== groups) {
    throw new Error(`written for ${manifest.groups} key groups, the configuration has ${groups} (VIGIL_KEY_GROUPS): key groups are what state moves by, their number cannot change`);
  }
  const covered = new Array<number>(groups).fill(0);
  const parts: Uint8Array[] = [];
  for (const p of manifest.parts) {
    const bytes = readPart(p.file);
    if (bytes.length !== p.bytes) throw new Error(`${p.file} is ${bytes.length} bytes, the manifest says ${p.bytes}: truncated or replaced`);
    if (sha256Sync(bytes) !== p.sha256) throw new Error(`${p.file} checksum does not match the manifest`);
    const part = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const h = decodeKernelState(part).header;
    if (h.groupLo !== p.groupLo || h.groupHi !== p.groupHi || h.groups !== groups) {
      throw new Error(`${p.file} holds key groups ${h.groupLo}..${h.groupHi - 1} of ${h.groups}, the manifest says ${p.groupLo}..${p.groupHi - 1} of ${groups}`);
    }
    for (let g = h.groupLo; g < h.groupHi; g++) covered[g]++;
    parts.push(part);
  }
  const wrong = covered.findIndex((n) => n !== 1);
  if (wrong >= 0) throw new Error(`key group ${wrong} is in ${covered[wrong]} parts (each must be in exactly one)`);
  return { manifest, parts };
}

/**
 * The manifest of a checkpoint of these parts (each already checksummed): what every store writes
 * last, so that a checkpoint without it is incomplete. `extra` fields are covered by the checksum.
 */
export function buildManifest(files: CheckpointManifest['parts'], meta: CheckpointMeta, seq: number, groups: number, nowMs: number, extra: Record<string, unknown> = {}): CheckpointManifest {
  const body = { format: CHECKPOINT_FORMAT, seq, createdAtMs: nowMs, groups, workers: files.length, parts: files, ...meta, ...extra };
  return { ...body, sha256: sha256Sync(JSON.stringify(body)) };
}

async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

function sha256Sync(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 off the main thread (WebCrypto runs it on the thread pool). */
export async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  return Buffer.from(digest).toString('hex');
}
