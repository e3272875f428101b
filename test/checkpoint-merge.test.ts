// A chain due for a new full base is merged off the workers (src/engine/chain-merge.ts): the merged
// part restores to exactly what the chain restores to, later incremental parts chain on it, the
// kernels never export a full part after the first, and a merge cut anywhere (a failure between its
// files, its thread terminated) leaves the checkpoint restorable as it was.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { mergeCheckpoint, mergeInWorker } from '../src/engine/chain-merge.ts';
import { CheckpointStore, type ChainPolicy, type CheckpointManifest, type MergeOutcome } from '../src/engine/checkpoint-store.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';
import type { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { newRunState } from './support/detection-streams.ts';
import { GROUPS, NO_SOURCE_META as META, canonical, exportAll, feed, kernels, partsOf, restoreInto, stream } from './support/incremental.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-merge-'));
  dirs.push(d);
  return d;
}

const cpDir = (data: string, n: number) => join(data, 'checkpoints', `cp-${String(n).padStart(10, '0')}`);
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as CheckpointManifest;
const names = (data: string) => readdirSync(join(data, 'checkpoints')).filter((n) => n.startsWith('cp-')).sort();

/** The canonical state a checkpoint restores to (3 workers), or the reason it does not restore. */
function restored(data: string, seq?: number) {
  const { checkpoint, refused } = new CheckpointStore(data).load(GROUPS);
  if (seq !== undefined) assert.equal(checkpoint?.manifest.seq, seq, `restores cp-${seq} (refused: ${refused.join('; ')})`);
  const c = canonical(restoreInto(checkpoint!.parts.map(decodeKernelState), 3));
  return { keys: [...c.keys.entries()].sort(), rest: c.rest };
}

function fullOf(ks: WasmKernel[]) {
  const c = canonical(restoreInto(exportAll(ks, false), 3));
  return { keys: [...c.keys.entries()].sort(), rest: c.rest };
}

/** Writes `count` checkpoints of 2 kernels, a segment of the stream before each, each merge awaited; returns what each plan was and the full state at each cut. */
async function writeChain(data: string, count: number, policy: ChainPolicy, onMerge?: (m: MergeOutcome) => void) {
  const steps = stream();
  const outcomes: MergeOutcome[] = [];
  const store = new CheckpointStore(data, policy, (m) => { outcomes.push(m); onMerge?.(m); });
  const ks = kernels(2);
  const state = newRunState();
  // Twins fed the same stream, exported in full at each cut (an export restarts a kernel's change tracking: not the checkpointed ones').
  const twins = kernels(2);
  const twinState = newRunState();
  const kinds: string[] = [];
  const cuts: Array<ReturnType<typeof fullOf>> = [];
  const per = Math.floor(steps.length / (count + 1));
  for (let i = 0; i < count; i++) {
    feed(ks, steps.slice(i * per, (i + 1) * per), state);
    feed(twins, steps.slice(i * per, (i + 1) * per), twinState);
    const plan = store.plan(2);
    const saved = await store.save(partsOf(ks, plan), META, GROUPS, 1000 + i);
    kinds.push(saved.deltas === 0 ? 'full' : saved.deltas === 2 ? 'delta' : 'mixed');
    await store.settled();
    cuts.push(fullOf(twins));
  }
  return { store, ks, kinds, cuts, outcomes };
}

const MERGE: ChainPolicy = { maxDeltas: 3, maxDeltaShare: 10, merge: true };

describe('checkpoint chain merges', () => {
  test('a merged checkpoint restores byte for byte to what its chain restored to; its manifest names full parts only', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    const dir = cpDir(data, 4);
    const before = restored(data, 4);
    const r = mergeCheckpoint(dir, GROUPS);
    assert.deepEqual(r.parts.map((p) => [p.from.file, p.merged.file]), [['part-0.bin', 'part-0.merged.bin'], ['part-1.bin', 'part-1.merged.bin']]);
    const m = manifest(dir);
    assert.deepEqual(m.parts.map((p) => [p.file, p.kind, p.chain]), [['part-0.merged.bin', 'full', undefined], ['part-1.merged.bin', 'full', undefined]]);
    const { checkpoint, refused } = new CheckpointStore(data).load(GROUPS);
    assert.deepEqual(refused, []);
    assert.equal(checkpoint?.parts.length, 2, 'one full part per range, no chain');
    assert.deepEqual(restored(data, 4), before);
    // Its old chain is not needed any more: the merged checkpoint restores without cp-1..cp-3.
    for (const n of [1, 2, 3]) rmSync(cpDir(data, n), { recursive: true });
    assert.deepEqual(restored(data, 4), before);
  });

  test('with merges the kernels export a full part only first; later parts chain on the merged base; every kept checkpoint restores to the state at its cut', async () => {
    const data = tempDir();
    const { kinds, cuts, outcomes } = await writeChain(data, 9, MERGE);
    assert.deepEqual(kinds, ['full', ...Array(8).fill('delta')]);
    // Due at cp-4 (3 incremental parts): merged; cp-5..7 chain on it; due again at cp-7: merged.
    assert.deepEqual(outcomes.map((o) => [o.outcome, o.checkpoint]), [['merged', 'cp-0000000004'], ['merged', 'cp-0000000007']]);
    // (Were cp-5.. chained on cp-4's chain rather than its merged part, cp-5 would be due, and merged, instead of cp-7.)
    assert.deepEqual(manifest(cpDir(data, 8)).parts.map((p) => p.chain?.map((l) => `${l.checkpoint}/${l.file}`)),
      [['cp-0000000007/part-0.merged.bin'], ['cp-0000000007/part-1.merged.bin']]);
    assert.deepEqual(manifest(cpDir(data, 9)).parts.map((p) => p.chain?.map((l) => `${l.checkpoint}/${l.file}`)),
      [['cp-0000000007/part-0.merged.bin', 'cp-0000000008/part-0.bin'], ['cp-0000000007/part-1.merged.bin', 'cp-0000000008/part-1.bin']]);
    // Kept: cp-9 and cp-8 and the merged base they chain on; the old chains are gone.
    assert.deepEqual(names(data), ['cp-0000000007', 'cp-0000000008', 'cp-0000000009']);
    assert.deepEqual(restored(data, 9), cuts[8]);
    rmSync(cpDir(data, 9), { recursive: true });
    assert.deepEqual(restored(data, 8), cuts[7]);
    rmSync(cpDir(data, 8), { recursive: true });
    assert.deepEqual(restored(data, 7), cuts[6]);
  });

  test('a merge cut between its files leaves the chain restorable as it was; merging again completes', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    const dir = cpDir(data, 4);
    const before = restored(data, 4);
    const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
    for (const failAfter of [0, 1]) {
      assert.throws(() => mergeCheckpoint(dir, GROUPS, failAfter), /merge failed on purpose/);
      // The parts written so far are there, but the manifest is the chain's, and restores to the same state.
      assert.equal(readFileSync(join(dir, 'manifest.json'), 'utf8'), text, `manifest untouched after ${failAfter} files`);
      assert.deepEqual(restored(data, 4), before);
    }
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], 'no temporary file left');
    mergeCheckpoint(dir, GROUPS);
    assert.notEqual(readFileSync(join(dir, 'manifest.json'), 'utf8'), text);
    assert.deepEqual(restored(data, 4), before);
  });

  test('a merge thread terminated mid-way leaves the checkpoint restorable; a damaged dependency fails the merge and changes nothing', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    const dir = cpDir(data, 4);
    const before = restored(data, 4);
    const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
    await assert.rejects(mergeInWorker(dir, GROUPS, (w) => { void w.terminate(); }), /exited|terminated/);
    assert.deepEqual(restored(data, 4), before);
    const file = join(cpDir(data, 2), 'part-0.bin');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0x55;
    writeFileSync(file, bytes);
    await assert.rejects(mergeInWorker(dir, GROUPS), /cp-0000000002\/part-0\.bin \(which part-0\.bin applies on\) checksum does not match/);
    assert.equal(readFileSync(join(dir, 'manifest.json'), 'utf8'), text);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('merged')), []);
  });

  test('what a merge cut short left in a checkpoint (its temporary file, merged parts the manifest does not name) is removed at start', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    const dir = cpDir(data, 4);
    const before = restored(data, 4);
    // A merge that wrote its first part and died writing the second (a thread terminated, a process killed).
    assert.throws(() => mergeCheckpoint(dir, GROUPS, 1), /merge failed on purpose/);
    const dead = 999_999_999;
    writeFileSync(join(dir, `.part-1.merged.bin.tmp-${dead}`), 'half a part');
    const live = join(cpDir(data, 3), `.part-0.merged.bin.tmp-${process.ppid}`);
    writeFileSync(live, 'a live process writes it');
    const left = readdirSync(dir).filter((n) => n.includes('merged')).sort();
    assert.deepEqual(left, [`.part-1.merged.bin.tmp-${dead}`, 'part-0.merged.bin', 'part-1.merged.bin']);
    const removed = new CheckpointStore(data).cleanStale((pid) => pid === process.ppid);
    assert.deepEqual(removed.sort(), left.map((n) => `cp-0000000004/${n}`));
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('merged')), []);
    assert.ok(readdirSync(cpDir(data, 3)).includes(`.part-0.merged.bin.tmp-${process.ppid}`), 'a live process\'s file stays');
    assert.deepEqual(restored(data, 4), before);
    // A completed merge's parts are named by its manifest: they stay.
    mergeCheckpoint(dir, GROUPS);
    rmSync(live);
    assert.deepEqual(new CheckpointStore(data).cleanStale(), []);
    assert.deepEqual(restored(data, 4), before);
  });

  test('a stop during a merge terminates it: the checkpoint keeps its chain and restores as before; no merge starts after', async () => {
    const data = tempDir();
    const steps = stream();
    const outcomes: MergeOutcome[] = [];
    const store = new CheckpointStore(data, MERGE, (m) => outcomes.push(m));
    const ks = kernels(2);
    const state = newRunState();
    const per = Math.floor(steps.length / 6);
    for (let i = 0; i < 4; i++) {
      feed(ks, steps.slice(i * per, (i + 1) * per), state);
      await store.save(partsOf(ks, store.plan(2)), META, GROUPS, 1000 + i);
    }
    // cp-4 is due: its merge started with the save; stopped at once.
    await store.stop();
    // Ended by the stop, which is not a failure (the daemon logs it as such, and counts it apart).
    assert.deepEqual(outcomes.map((o) => [o.outcome, o.checkpoint]), [['stopped', 'cp-0000000004']]);
    assert.deepEqual(manifest(cpDir(data, 4)).parts.map((p) => [p.file, p.kind]), [['part-0.bin', 'delta'], ['part-1.bin', 'delta']]);
    const { checkpoint, refused } = new CheckpointStore(data).load(GROUPS);
    assert.deepEqual(refused, []);
    assert.equal(checkpoint?.manifest.seq, 4);
    feed(ks, steps.slice(4 * per, 5 * per), state);
    await store.save(partsOf(ks, store.plan(2)), META, GROUPS, 2000);
    await store.settled();
    assert.equal(outcomes.length, 1, 'no merge after stop');
  });

  test('while merges fail the chain goes on to twice its limits, then the kernels export a full part', async () => {
    const data = tempDir();
    const steps = stream();
    const outcomes: MergeOutcome[] = [];
    const store = new CheckpointStore(data, MERGE, (m) => outcomes.push(m));
    const ks = kernels(2);
    const state = newRunState();
    const kinds: string[] = [];
    const per = Math.floor(steps.length / 10);
    for (let i = 0; i < 9; i++) {
      feed(ks, steps.slice(i * per, (i + 1) * per), state);
      const saved = await store.save(partsOf(ks, store.plan(2)), META, GROUPS, 1000 + i);
      kinds.push(saved.deltas === 0 ? 'full' : 'delta');
      // Damage the base once written: every merge of this chain is refused.
      if (i === 0) writeFileSync(join(cpDir(data, 1), 'part-0.bin'), Buffer.from('damaged'));
      await store.settled();
    }
    assert.deepEqual(kinds, ['full', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta', 'full', 'delta']);
    assert.ok(outcomes.length >= 3 && outcomes.every((o) => o.outcome === 'failed'), JSON.stringify(outcomes.map((o) => o.outcome)));
    await store.stop();
    await store.stop();
  });
});
