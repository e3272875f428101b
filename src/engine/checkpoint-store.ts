import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { decodeKernelState, type ExportId } from '../kernel/kernel-state.ts';
import { mergeInWorker, type MergeResult } from './chain-merge.ts';
import type { EventClockState } from './event-clock.ts';

/** The checkpoint format this version writes (3: parts may be incremental, naming the parts they apply on). */
export const CHECKPOINT_FORMAT = 3;
/** The previous format (every part full), still read. */
export const CHECKPOINT_FORMAT_2 = 2;
const DIR = 'checkpoints';
const MANIFEST = 'manifest.json';
const KEEP = 2;

/** When a worker's part is full rather than incremental. */
export interface ChainPolicy {
  /** Incremental parts after a full one before the next full one (0: every part full). */
  maxDeltas: number;
  /** A full part once the incremental parts since the last full one add up to this share of its bytes (a restore reads at most base x (1 + this)). */
  maxDeltaShare: number;
  /**
   * When a chain is due (either limit above), merge it into a new full base in a worker thread instead
   * of asking the kernels for a full export: the kernels keep exporting incremental parts (up to twice
   * either limit while merges fail or lag; then a full export).
   */
  merge?: boolean;
}
export const DEFAULT_CHAIN_POLICY: ChainPolicy = { maxDeltas: 20, maxDeltaShare: 1, merge: true };

/**
 * How a background merge ended (for the owner's log and metrics): merged, failed, or ended by the
 * store's stop (its thread terminated: not a failure, the checkpoint keeps its chain).
 */
export type MergeOutcome =
  | { outcome: 'merged'; checkpoint: string; ms: number; parts: number }
  | { outcome: 'failed'; checkpoint: string; ms: number; error: Error }
  | { outcome: 'stopped'; checkpoint: string; ms: number };

/** A part file of another checkpoint that a part applies on. */
export interface ChainLink { checkpoint: string; file: string; bytes: number; sha256: string }

/** A part of a checkpoint, as its manifest lists it. */
export interface ManifestPart {
  file: string; groupLo: number; groupHi: number; bytes: number; sha256: string;
  /** Format 3: 'delta' parts apply, in order, on the parts of `chain` (a full one first). Absent (format 2): full. */
  kind?: 'full' | 'delta';
  chain?: ChainLink[];
}

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
  parts: ManifestPart[];
  /** SHA-256 of this manifest's JSON without this field. */
  sha256: string;
}

/** A checkpoint read back and checked: its manifest and parts (encoded; per range a full part, then the incremental parts on it, in order). */
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
  /** How many of its parts are incremental. */
  deltas: number;
}

/** The newest checkpoint this process wrote: what the next incremental parts apply on. */
interface Tip {
  name: string;
  parts: Array<ManifestPart & { exportId: ExportId | undefined }>;
}

const linkKey = (l: ChainLink) => `${l.checkpoint}/${l.file}`;

/**
 * Checkpoints in `<dataDir>/checkpoints/cp-<seq>/`: one part file per writing worker (its key groups'
 * state), a manifest with every part's size and SHA-256 and its own SHA-256. Written into a temporary
 * directory, fsynced, renamed into place, and the directory fsynced: a crash leaves the previous
 * checkpoints intact. The newest two are kept; a start takes the newest that checks out.
 */
export class CheckpointStore {
  readonly dir: string;
  private seq: number;
  private tip: Tip | null = null;
  /** Merged full parts by the incremental part they equal (`cp-…/part-i.bin`): a chain through it starts there instead. */
  private readonly merged = new Map<string, ChainLink>();
  private merging: { dir: string; done: Promise<void>; worker?: Worker } | null = null;
  private stopped = false;

  constructor(private readonly dataDir: string, private readonly policy: ChainPolicy = DEFAULT_CHAIN_POLICY,
    private readonly onMerge: (outcome: MergeOutcome) => void = () => {}) {
    this.dir = join(dataDir, DIR);
    this.seq = Math.max(0, ...this.list().map((d) => d.seq));
  }

  /**
   * Which of `workers` workers' next parts may be incremental (on this process's newest checkpoint):
   * none before this process wrote one (a kernel's first export is full anyway), none after a failed
   * write, and a full part once a part's chain (from its merged base, if one is merged) has
   * `maxDeltas` incremental parts or they outgrow `maxDeltaShare` of its full part; with merges, twice
   * those (the chain was due for a merge, which has failed or not ended yet).
   */
  plan(workers: number): boolean[] {
    const tip = this.tip;
    // With merges, a chain due for a new base goes on while the merge runs, up to twice the limits.
    const slack = this.merges() ? 2 : 1;
    return Array.from({ length: workers }, (_, i) => {
      const p = tip?.parts.length === workers ? tip.parts[i] : undefined;
      if (p === undefined) return false;
      const c = this.chainSize(tip!.name, p);
      return c.deltas < slack * this.policy.maxDeltas && c.deltaBytes < slack * this.policy.maxDeltaShare * c.baseBytes;
    });
  }

  private merges(): boolean {
    return this.policy.merge === true && this.policy.maxDeltas > 0;
  }

  /** Whether a part's chain has reached a limit (a new base is due). */
  private due(name: string, p: ManifestPart): boolean {
    const c = this.chainSize(name, p);
    return c.deltas >= this.policy.maxDeltas || c.deltaBytes >= this.policy.maxDeltaShare * c.baseBytes;
  }

  /** Part `p` of checkpoint `name` in numbers: its (shortest) chain's full part's bytes, and the incremental parts after it, its own included. */
  private chainSize(name: string, p: ManifestPart): { baseBytes: number; deltaBytes: number; deltas: number } {
    const links = this.shorten([...(p.chain ?? []), { checkpoint: name, file: p.file, bytes: p.bytes, sha256: p.sha256 }]);
    return { baseBytes: links[0].bytes, deltaBytes: links.slice(1).reduce((a, l) => a + l.bytes, 0), deltas: links.length - 1 };
  }

  /** A chain with its longest merged prefix replaced by the merged full part. */
  private shorten(chain: ChainLink[]): ChainLink[] {
    for (let j = chain.length - 1; j >= 0; j--) {
      const m = this.merged.get(linkKey(chain[j]));
      if (m) return [m, ...chain.slice(j + 1)];
    }
    return chain;
  }

  /** Forgets the newest checkpoint as a base (the kernels exported parts that were not saved): the next parts are full. */
  resetChain(): void {
    this.tip = null;
  }

  /**
   * Writes a checkpoint (parts as encoded by encodeKernelState, one per writing worker); resolves once
   * durable. An incremental part must apply on the same worker's part of this process's newest
   * checkpoint (its `since` is that part's export), or the save is refused: its base would be missing.
   */
  async save(parts: Array<{ bytes: Uint8Array; groupLo: number; groupHi: number }>, meta: CheckpointMeta, groups: number, nowMs: number): Promise<SavedCheckpoint> {
    const seq = ++this.seq;
    const name = `cp-${String(seq).padStart(10, '0')}`;
    const tmp = join(this.dir, `.tmp-${name}-${process.pid}`);
    const tip = this.tip;
    // Until this one is durable there is no base for incremental parts (the kernels' tracking restarted with these exports).
    this.tip = null;
    try {
      const next: Tip = { name, parts: [] };
      for (let i = 0; i < parts.length; i++) {
        const { bytes: data, groupLo, groupHi } = parts[i];
        const h = decodeKernelState(data).header;
        const file = `part-${i}.bin`;
        const entry = { file, groupLo, groupHi, bytes: data.length, sha256: '', exportId: h.exportId };
        if (h.kind !== 'delta') {
          next.parts.push({ ...entry, kind: 'full' });
          continue;
        }
        const base = tip?.parts[i];
        if (!base || tip?.parts.length !== parts.length || base.groupLo !== groupLo || base.groupHi !== groupHi
          || base.exportId?.kernel !== h.since?.kernel || base.exportId?.seq !== h.since?.seq) {
          throw new Error(`part ${i} is incremental on export ${JSON.stringify(h.since ?? null)}, which is not the newest checkpoint's part ${i} (${tip ? JSON.stringify(base?.exportId ?? null) : 'none'})`);
        }
        const link: ChainLink = { checkpoint: tip.name, file: base.file, bytes: base.bytes, sha256: base.sha256 };
        next.parts.push({ ...entry, kind: 'delta', chain: this.shorten([...(base.chain ?? []), link]) });
      }
      await mkdir(tmp, { recursive: true });
      let bytes = 0;
      for (let i = 0; i < parts.length; i++) {
        const data = parts[i].bytes;
        await writeDurably(join(tmp, next.parts[i].file), data);
        next.parts[i].sha256 = await sha256(data);
        bytes += data.length;
      }
      const files: ManifestPart[] = next.parts.map(({ file, groupLo, groupHi, bytes: b, sha256: sum, kind, chain }) => ({
        file, groupLo, groupHi, bytes: b, sha256: sum, kind, ...(chain ? { chain } : {}),
      }));
      const manifest = buildManifest(files, meta, seq, groups, nowMs);
      await writeDurably(join(tmp, MANIFEST), Buffer.from(JSON.stringify(manifest)));
      await syncDir(tmp);
      await rename(tmp, join(this.dir, name));
      await syncDir(this.dir);
      this.tip = next;
      await this.prune();
      if (this.merges() && this.merging === null && !this.stopped && next.parts.some((p) => p.kind === 'delta' && this.due(name, p))) {
        this.startMerge(join(this.dir, name), groups);
      }
      return { seq, dir: join(this.dir, name), bytes, deltas: next.parts.filter((p) => p.kind === 'delta').length };
    } catch (err) {
      this.tip = null;
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      this.seq--;
      throw new CheckpointError(`cannot write the checkpoint in ${this.dir} (${(err as Error).message}); the previous one is kept`, { cause: err });
    }
  }

  /**
   * Merges checkpoint `dir`'s chains into full parts in a worker thread (chain-merge.ts), then lets
   * the next incremental parts chain on those instead. One at a time; a failure is reported and
   * changes nothing (the chain goes on, and past twice the limits the kernels export a full part).
   */
  private startMerge(dir: string, groups: number): void {
    const started = performance.now();
    const checkpoint = dir.slice(this.dir.length + 1);
    const m: NonNullable<CheckpointStore['merging']> = { dir, done: Promise.resolve() };
    this.merging = m;
    m.done = mergeInWorker(dir, groups, (w) => { m.worker = w; }).then((r: MergeResult) => {
      for (const { from, merged } of r.parts) this.merged.set(linkKey(from), merged);
      this.onMerge({ outcome: 'merged', checkpoint, ms: performance.now() - started, parts: r.parts.length });
    }, (error: Error) => {
      const ms = performance.now() - started;
      // After stop() the thread was terminated on purpose: whatever it threw says so, not a fault.
      this.onMerge(this.stopped ? { outcome: 'stopped', checkpoint, ms } : { outcome: 'failed', checkpoint, ms, error });
    }).finally(() => { this.merging = null; });
  }

  /** Resolves when the merge under way (if any) has ended (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.merging?.done;
  }

  /** Stops a merge under way (its thread is terminated: the checkpoint stays as it was) and starts no more; idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    const m = this.merging;
    if (!m) return;
    await m.worker?.terminate();
    await m.done;
  }

  /**
   * The newest checkpoint that checks out for `groups` key groups: manifest checksum, format, group
   * count, every part's size and checksum (and those of every part an incremental one applies on),
   * parts covering every group exactly once. Returns the reasons the newer ones were refused, and null
   * when none checks out.
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

  /**
   * Keeps the newest KEEP checkpoints whose manifest checks out and whose files (their own and those
   * of the parts they apply on) are all there at their sizes, and every checkpoint those depend on;
   * removes the others and temporary directories of other processes. (Checksums are checked when a
   * checkpoint is restored, not here: that would read every part again at every checkpoint.)
   */
  private async prune(): Promise<void> {
    const keep = new Set<string>();
    let kept = 0;
    for (const { dir } of this.list().sort((a, b) => b.seq - a.seq)) {
      if (kept === KEEP) break;
      const deps = this.dependencies(dir);
      if (deps === null) continue;
      keep.add(dir);
      for (const d of deps) keep.add(d);
      kept++;
    }
    // A checkpoint being merged stays until its merge ends (its merged parts are what later chains will name).
    if (this.merging) keep.add(this.merging.dir);
    for (const { dir } of this.list()) if (!keep.has(dir)) await rm(dir, { recursive: true, force: true });
    for (const [k, link] of this.merged) if (!keep.has(join(this.dir, link.checkpoint))) this.merged.delete(k);
    this.cleanStale();
  }

  /** The checkpoint directories `dir` applies parts on, or null when its manifest or a file it needs is not there as listed. */
  private dependencies(dir: string): string[] | null {
    try {
      const manifest = readManifest(dir);
      const deps = new Set<string>();
      for (const p of manifest.parts) {
        if (statSync(join(dir, p.file)).size !== p.bytes) return null;
        for (const link of p.chain ?? []) {
          const d = join(this.dir, link.checkpoint);
          if (statSync(join(d, link.file)).size !== link.bytes) return null;
          deps.add(d);
        }
      }
      return [...deps];
    } catch {
      return null;
    }
  }

  /**
   * Removes what a write or a merge cut short left behind (not what a live process, or a merge under
   * way here, is writing): temporary checkpoint directories, and in a checkpoint the temporary files of
   * a merge and the merged parts its manifest does not name (a merge ends by writing the manifest:
   * before that, its merged parts are no one's). Returns their names (relative to the checkpoints).
   */
  cleanStale(isAlive: (pid: number) => boolean = pidAlive): string[] {
    if (!existsSync(this.dir)) return [];
    const stale = (pid: number) => pid === process.pid || !isAlive(pid);
    const removed: string[] = [];
    for (const n of readdirSync(this.dir)) {
      const m = /^\.tmp-cp-\d+-(\d+)$/.exec(n);
      if (!m || !stale(Number(m[1]))) continue;
      rmSync(join(this.dir, n), { recursive: true, force: true });
      removed.push(n);
    }
    for (const { dir } of this.list()) {
      if (this.merging?.dir === dir) continue;
      let named: Set<string>;
      try {
        named = new Set(readManifest(dir).parts.map((p) => p.file));
      } catch {
        continue; // not a checkpoint that loads: left as it is (prune removes it when it is not kept)
      }
      for (const n of readdirSync(dir)) {
        const tmp = /^\..+\.tmp-(\d+)$/.exec(n);
        if (tmp ? !stale(Number(tmp[1])) : !(n.endsWith('.merged.bin') && !named.has(n))) continue;
        rmSync(join(dir, n), { force: true });
        removed.push(join(basename(dir), n));
      }
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

/** A checkpoint's manifest (its JSON text), its checksum and format checked. */
function parseManifest(manifestText: string): CheckpointManifest {
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(manifestText) as CheckpointManifest;
  } catch (err) {
    throw new Error(`manifest unreadable (${(err as Error).message})`);
  }
  const { sha256: claimed, ...body } = manifest;
  if (typeof claimed !== 'string' || sha256Sync(JSON.stringify(body)) !== claimed) throw new Error('manifest checksum does not match its content');
  if (manifest.format !== CHECKPOINT_FORMAT && manifest.format !== CHECKPOINT_FORMAT_2) {
    throw new Error(`checkpoint format ${manifest.format} is not ${CHECKPOINT_FORMAT} (nor ${CHECKPOINT_FORMAT_2}, which this version still reads)`);
  }
  return manifest;
}

/** The manifest of the checkpoint in `dir`, checked (checksum, format). */
function readManifest(dir: string): CheckpointManifest {
  let text: string;
  try {
    text = readFileSync(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    throw new Error(`manifest unreadable (${(err as Error).message})`);
  }
  return parseManifest(text);
}

/** The bytes of a part file, checked against the size and checksum a manifest lists for it. */
function checkedPart(bytes: Uint8Array, what: string, size: number, sum: string): Uint8Array {
  if (bytes.length !== size) throw new Error(`${what} is ${bytes.length} bytes, the manifest says ${size}: truncated or replaced`);
  if (sha256Sync(bytes) !== sum) throw new Error(`${what} checksum does not match the manifest`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readCheckpoint(dir: string, groups: number): LoadedCheckpoint {
  let text: string;
  try {
    text = readFileSync(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    throw new Error(`manifest unreadable (${(err as Error).message})`);
  }
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${what} unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const { manifest, parts } = verifyCheckpoint(text, groups, (file) => read(join(dir, file), file),
    (checkpoint, file, what) => read(join(dirname(dir), checkpoint, file), what));
  return { manifest, parts, dir };
}

/**
 * A manifest (its JSON text) and the parts it lists, checked: manifest checksum, format, group
 * count, every part's size and checksum (and those of every part an incremental one applies on,
 * read by `readLink(checkpoint, file, what)`), parts covering every group exactly once. `readPart`
 * returns a part's bytes by file name (or throws with the reason). Throws with the reason a check
 * failed. The parts come per range as a full part, then the incremental parts on it, in order. The
 * one check of a checkpoint, wherever it is stored (a data directory, S3: whose checkpoints are all full).
 */
export function verifyCheckpoint(manifestText: string, groups: number, readPart: (file: string) => Uint8Array,
  readLink: (checkpoint: string, file: string, what: string) => Uint8Array = (checkpoint, file, what) => {
    throw new Error(`${what} cannot be read here (an incremental part outside a data directory)`);
  }): { manifest: CheckpointManifest; parts: Uint8Array[] } {
  const manifest = parseManifest(manifestText);
  if (manifest.groups !== groups) {
    throw new Error(`written for ${manifest.groups} key groups, the configuration has ${groups} (VIGIL_KEY_GROUPS): key groups are what state moves by, their number cannot change`);
  }
  const covered = new Array<number>(groups).fill(0);
  const parts: Uint8Array[] = [];
  for (const p of manifest.parts) {
    // The parts an incremental part applies on, each checked as its own manifest listed it, before it.
    const chain = p.chain ?? [];
    if ((p.kind === 'delta') !== (chain.length > 0)) throw new Error(`${p.file} is ${p.kind ?? 'full'} with ${chain.length} parts to apply on`);
    for (const link of chain) {
      const what = `${link.checkpoint}/${link.file} (which ${p.file} applies on)`;
      const dep = checkedPart(readLink(link.checkpoint, link.file, what), what, link.bytes, link.sha256);
      let h;
      try {
        h = decodeKernelState(dep).header;
      } catch (err) {
        throw new Error(`${what} cannot be read: ${(err as Error).message}`);
      }
      if (h.groupLo !== p.groupLo || h.groupHi !== p.groupHi) throw new Error(`${what} holds other key groups`);
      parts.push(dep);
    }
    const part = checkedPart(readPart(p.file), p.file, p.bytes, p.sha256);
    const h = decodeKernelState(part).header;
    if ((h.kind === 'delta') !== (p.kind === 'delta')) throw new Error(`${p.file} is ${h.kind}, the manifest says ${p.kind ?? 'full'}`);
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
