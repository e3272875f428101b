// Checkpoints as a full base and a chain of incremental ones (src/engine/checkpoint-store.ts): the
// manifest names every part a part applies on (size and SHA-256), a restore applies them in order,
// the newest two restorable checkpoints and all they depend on are kept, and a checkpoint whose
// dependency is damaged or missing is refused with the reason (the previous restorable one is used).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CheckpointStore, type CheckpointManifest } from '../src/engine/checkpoint-store.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';
import { newRunState } from './support/detection-streams.ts';
import { GROUPS, NO_SOURCE_META as META, canonical, exportAll, feed, kernels, partsOf, restoreInto, stream } from './support/incremental.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-chain-'));
  dirs.push(d);
  return d;
}

function manifest(dir: string): CheckpointManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as CheckpointManifest;
}

const names = (data: string) => readdirSync(join(data, 'checkpoints')).filter((n) => n.startsWith('cp-')).sort();

/** Writes `count` checkpoints of 2 kernels fed a segment of the stream before each; returns the kernels at the end. */
async function writeChain(data: string, count: number, policy = { maxDeltas: 3, maxDeltaShare: 10 }) {
  const steps = stream();
  const store = new CheckpointStore(data, policy);
  const ks = kernels(2);
  const state = newRunState();
  const kinds: string[] = [];
  const per = Math.floor(steps.length / (count + 1));
  for (let i = 0; i < count; i++) {
    feed(ks, steps.slice(i * per, (i + 1) * per), state);
    const plan = store.plan(2);
    const saved = await store.save(partsOf(ks, plan), META, GROUPS, 1000 + i);
    kinds.push(saved.deltas === 0 ? 'full' : saved.deltas === 2 ? 'delta' : 'mixed');
  }
  return { store, ks, kinds, steps, state, per };
}

describe('checkpoint chains', () => {
  test('a full checkpoint, then incremental ones up to maxDeltas; the newest restores into 3 workers to what a full export restores to', async () => {
    const data = tempDir();
    const { ks, kinds } = await writeChain(data, 6);
    assert.deepEqual(kinds, ['full', 'delta', 'delta', 'delta', 'full', 'delta']);
    const newest = join(data, 'checkpoints', names(data).at(-1)!);
    const m = manifest(newest);
    assert.equal(m.format, 3);
    assert.deepEqual(m.parts.map((p) => [p.kind, p.chain?.map((l) => l.checkpoint)]), [
      ['delta', ['cp-0000000005']], ['delta', ['cp-0000000005']],
    ]);
    const { checkpoint, refused } = new CheckpointStore(data).load(GROUPS);
    assert.deepEqual(refused, []);
    assert.equal(checkpoint?.manifest.seq, 6);
    assert.equal(checkpoint?.parts.length, 4, 'per range the full part, then the delta');
    const restored = restoreInto(checkpoint!.parts.map(decodeKernelState), 3);
    const full = exportAll(ks, false);
    const a = canonical(restored);
    const b = canonical(restoreInto(full, 3));
    assert.deepEqual([...a.keys.entries()].sort(), [...b.keys.entries()].sort());
    assert.deepEqual(a.rest, b.rest);
  });

  test('the newest two checkpoints and every checkpoint they apply on are kept, nothing else', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    // cp-4 and cp-3 apply on cp-2 and cp-1 (cp-1 the full base): all kept.
    assert.deepEqual(names(data), ['cp-0000000001', 'cp-0000000002', 'cp-0000000003', 'cp-0000000004']);
    const data2 = tempDir();
    await writeChain(data2, 7, { maxDeltas: 2, maxDeltaShare: 10 });
    // Full at 1, 4, 7: cp-7 (full) and cp-6 (on 4, 5) are kept with 4 and 5; 1-3 go.
    assert.deepEqual(names(data2), ['cp-0000000004', 'cp-0000000005', 'cp-0000000006', 'cp-0000000007']);
  });

  test('a damaged or missing dependency refuses the checkpoints that need it, with the reason; the previous restorable one is used', async () => {
    const data = tempDir();
    await writeChain(data, 4, { maxDeltas: 5, maxDeltaShare: 10 });
    const cp = (n: number) => join(data, 'checkpoints', `cp-000000000${n}`);
    // One byte of cp-3's part 1: cp-4 (which applies on it) and cp-3 are refused, cp-2 restores.
    const file = join(cp(3), 'part-1.bin');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0x55;
    writeFileSync(file, bytes);
    let { checkpoint, refused } = new CheckpointStore(data).load(GROUPS);
    assert.equal(checkpoint?.manifest.seq, 2);
    assert.equal(refused.length, 2);
    assert.match(refused[0], /cp-0000000004: cp-0000000003\/part-1\.bin \(which part-1\.bin applies on\) checksum does not match/);
    assert.match(refused[1], /cp-0000000003: part-1\.bin checksum does not match/);
    // The base gone: nothing that applies on it restores, and the reason says which file is missing.
    rmSync(cp(1), { recursive: true });
    ({ checkpoint, refused } = new CheckpointStore(data).load(GROUPS));
    assert.equal(checkpoint, null);
    assert.match(refused.at(-1)!, /cp-0000000002: cp-0000000001\/part-0\.bin \(which part-0\.bin applies on\) unreadable \(ENOENT\)/);
  });

  test('an export that was not saved: the next incremental save is refused and the next plan is full', async () => {
    const data = tempDir();
    const { store, ks, steps, state, per } = await writeChain(data, 2);
    feed(ks, steps.slice(2 * per, 3 * per), state);
    partsOf(ks, store.plan(2)); // exported, never saved
    await assert.rejects(store.save(partsOf(ks, [true, true]), META, GROUPS, 5000), (err: Error & { code?: string }) =>
      err.code === 'CHECKPOINT_WRITE_FAILED' && /part 0 is incremental on export .* not the newest checkpoint's part 0/.test(err.message));
    assert.deepEqual(store.plan(2), [false, false]);
    const saved = await store.save(partsOf(ks, store.plan(2)), META, GROUPS, 6000);
    assert.equal(saved.deltas, 0);
    assert.deepEqual(store.plan(2), [true, true]);
    // A store of a new process has no base: its first checkpoint is full.
    assert.deepEqual(new CheckpointStore(data).plan(2), [false, false]);
    store.resetChain();
    assert.deepEqual(store.plan(2), [false, false]);
  });

  test('a checkpoint of format 2 (every part full, of format 3) is still restored', () => {
    const data = tempDir();
    const part = new Uint8Array(readFileSync(new URL('./support/fixtures/kernel-state-format-3.bin', import.meta.url)));
    const dir = join(data, 'checkpoints', 'cp-0000000001');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'part-0.bin'), part);
    const sha = (x: string | Uint8Array) => createHash('sha256').update(x).digest('hex');
    const body = {
      format: 2, seq: 1, createdAtMs: 1, groups: 128, workers: 1,
      parts: [{ file: 'part-0.bin', groupLo: 0, groupHi: 128, bytes: part.length, sha256: sha(part) }], ...META,
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...body, sha256: sha(JSON.stringify(body)) }));
    const { checkpoint, refused } = new CheckpointStore(data).load(128);
    assert.deepEqual(refused, []);
    assert.equal(checkpoint?.parts.length, 1);
    assert.deepEqual(checkpoint!.parts[0], part);
  });
});
