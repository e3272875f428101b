import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { applyDeltas, decodeKernelState, encodeKernelState } from '../kernel/kernel-state.ts';
import { exportedKeyLayout } from '../kernel/wasm-kernel.ts';
import type { ChainLink, CheckpointManifest, ManifestPart } from './checkpoint-store.ts';
import { verifyCheckpoint } from './checkpoint-store.ts';

/** What a merge made of a checkpoint: per incremental part it held, the full part now in its place. */
export interface MergeResult {
  checkpoint: string;
  /** `from`: the incremental part (as later chains link it); `merged`: the full part equal to it applied on its chain. */
  parts: Array<{ from: ChainLink; merged: ChainLink }>;
}

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const WORKER_URL = new URL(`./chain-merge-worker${ext}`, import.meta.url);
// The thread's entry: the built JavaScript is the worker module itself (an ES module file, as the
// kernel workers are). The TypeScript sources (tests, benchmarks, run under tsx) need tsx's require
// hook registered in the thread first (tsx's --import, which the thread inherits, does not reach a
// worker's loader in Node 20), so there the entry is a script that registers it and loads the module.
const ENTRY: { url: URL | string; eval: boolean } = ext === '.ts'
  ? { url: `const r = require('node:module').createRequire(${JSON.stringify(fileURLToPath(import.meta.url))}); r('tsx/cjs'); r(${JSON.stringify(fileURLToPath(WORKER_URL))});`, eval: true }
  : { url: WORKER_URL, eval: false };

/**
 * Merges the chains of checkpoint `dir` into full parts in a worker thread (the reads, checksums,
 * applyDeltas and the write of a part of hundreds of MB stay off the main thread's event loop).
 * `worker` receives the thread, so a stop can terminate it (a merge cut anywhere leaves the
 * checkpoint as it was: see mergeCheckpoint).
 */
export function mergeInWorker(dir: string, groups: number, worker?: (w: Worker) => void): Promise<MergeResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(ENTRY.url, { eval: ENTRY.eval, workerData: { dir, groups } });
    worker?.(w);
    let settled = false;
    w.once('message', (m: { ok: true; result: MergeResult } | { ok: false; error: string }) => {
      settled = true;
      if (m.ok) resolve(m.result); else reject(new Error(m.error));
    });
    w.once('error', (err) => { settled = true; reject(err); });
    w.once('exit', (code) => { if (!settled) reject(new Error(`the merge thread exited (code ${code}) before it finished`)); });
  });
}

/**
 * Rewrites checkpoint `dir` (whose parts may be incremental) with full parts only, each its chain
 * applied in order (applyDeltas, the code a restore runs, so the merged part restores to exactly what
 * the chain restores to). The checkpoint is read and checked as a restore checks it (every size and
 * SHA-256). Each merged part is written as `<file>.merged.bin` (a temporary file, fsynced, renamed,
 * the directory fsynced), then the manifest is replaced the same way with one naming the merged parts,
 * without chains. The incremental files stay (later checkpoints' chains may name them). A crash or
 * failure at any point leaves the old manifest (the chain, still restorable) or the new one (complete).
 * `failAfter` (tests) throws after that many files are durable, to show it.
 */
export function mergeCheckpoint(dir: string, groups: number, failAfter?: number): MergeResult {
  const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
  const checkpoints = dirname(dir);
  const { manifest, parts } = verifyCheckpoint(manifestText, groups, (file) => readFileSync(join(dir, file)),
    (checkpoint, file) => readFileSync(join(checkpoints, checkpoint, file)));
  const L = exportedKeyLayout();
  const result: MergeResult = { checkpoint: basename(dir), parts: [] };
  const files: ManifestPart[] = [];
  let at = 0;
  let written = 0;
  const durable = () => {
    if (failAfter !== undefined && ++written > failAfter) throw new Error(`merge failed on purpose after ${failAfter} files`);
  };
  for (const p of manifest.parts) {
    const chain = parts.slice(at, at + (p.chain?.length ?? 0) + 1);
    at += chain.length;
    if (p.kind !== 'delta') { files.push(p); continue; }
    const [merged] = applyDeltas(chain.map(decodeKernelState), L, p.groupLo, p.groupHi);
    const bytes = encodeKernelState(merged);
    const file = `${p.file.replace(/\.bin$/, '')}.merged.bin`;
    const sum = createHash('sha256').update(bytes).digest('hex');
    writeDurably(dir, file, bytes);
    durable();
    files.push({ file, groupLo: p.groupLo, groupHi: p.groupHi, bytes: bytes.length, sha256: sum, kind: 'full' });
    result.parts.push({
      from: { checkpoint: result.checkpoint, file: p.file, bytes: p.bytes, sha256: p.sha256 },
      merged: { checkpoint: result.checkpoint, file, bytes: bytes.length, sha256: sum },
    });
  }
  if (result.parts.length === 0) return result;
  const { sha256: _old, ...body } = manifest;
  const next = { ...body, parts: files } as Omit<CheckpointManifest, 'sha256'>;
  const text = JSON.stringify({ ...next, sha256: createHash('sha256').update(JSON.stringify(next)).digest('hex') });
  writeDurably(dir, 'manifest.json', Buffer.from(text));
  durable();
  return result;
}

/** Writes `dir/file` atomically: a temporary file, fsynced, renamed over, the directory fsynced. */
function writeDurably(dir: string, file: string, data: Uint8Array): void {
  const tmp = join(dir, `.${file}.tmp-${process.pid}`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off, Math.min(data.length - off, 1 << 26));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, file));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const d = openSync(dir, 'r');
  try { fsyncSync(d); } finally { closeSync(d); }
}
