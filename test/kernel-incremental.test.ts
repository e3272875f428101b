// Incremental kernel exports: a full part followed by parts holding only the keys that changed (and
// the keys deleted) since the export before. A chain restores to exactly the state a full export at
// its end restores to, in any worker count, and a chain with a missing link is refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REMOVED_ENTRY_BYTES, decodeKernelState, type KernelGroupState } from '../src/kernel/kernel-state.ts';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { TestRng, assertSameVerdicts, cutSteps, forkRunState, newRunState, sorted } from './support/detection-streams.ts';
import { canonical, canonicalHashes, exportAll, feed, finish, init, kernels, keysOf, layoutFree, partRecords, restoreInto, stream } from './support/incremental.ts';

describe('incremental kernel exports', () => {
  const steps = stream();
  // Between the cuts at 0.2 and 0.35 the stream's 'lapse' property has an incident open and no events
  // (evaluated every tick until it expires, evicted only later): the delta at 0.35 must hold it.
  const cuts = [0.2, 0.35, 0.41, 0.5, 0.65].map((f) => Math.floor(steps.length * f));
  const end = cuts[cuts.length - 1];

  /** Runs 2 kernels to each cut, exporting full at the first and deltas after; then a full export at the last. */
  function chainRun() {
    const state = newRunState();
    const original = kernels(2);
    const chain: KernelGroupState[][] = [];
    let from = 0;
    cuts.forEach((at, i) => {
      feed(original, steps.slice(from, at), state);
      from = at;
      chain.push(exportAll(original, i > 0));
    });
    return { state, original, chain };
  }

  test('quiet keys do not change: a delta holds the keys that saw events or were evaluated, and the keys evicted since', () => {
    const { state, original, chain } = chainRun();
    assert.ok(chain[0].every((p) => p.header.kind === 'full'), 'the first export is full');
    for (const parts of chain.slice(1)) assert.ok(parts.every((p) => p.header.kind === 'delta'), 'later exports are deltas');
    const removed = chain.slice(1).map((parts) => parts.reduce((a, p) => a + p.removed.length / REMOVED_ENTRY_BYTES, 0));
    assert.ok(removed.some((n) => n > 0), `keys were evicted between exports: ${removed}`);
    // Right after an export nothing has changed: the next delta is empty.
    const empty = exportAll(original, true);
    assert.deepEqual(empty.map((p) => [p.header.kind, p.header.keys, p.removed.length]), [['delta', 0, 0], ['delta', 0, 0]]);
    // Events of one property only: once the keys counted before the last export are evaluated (their
    // tick comes after it), a delta holds that property's keys and those with an incident open
    // (evaluated every tick), no others.
    const lines = steps.slice(end, end + 3).flatMap((st) => ('lines' in st ? st.lines : []));
    const propertyOf = (l: string) => (JSON.parse(l) as { property_id: string }).property_id;
    const property = propertyOf(lines[0]);
    const own = lines.filter((l) => propertyOf(l) === property);
    feed(original, [{ lines: own.slice(0, own.length >> 1) }], state);
    exportAll(original, true);
    feed(original, [{ lines: own.slice(own.length >> 1) }], state);
    const open = original.reduce((a, k) => a + k.counters().open, 0);
    const n = exportAll(original, true).reduce((a, p) => a + p.header.keys, 0);
    const ownKeys = 1 + new Set(own.map((l) => (JSON.parse(l) as { video_title?: string }).video_title)).size;
    assert.ok(n > 0 && n <= ownKeys + open && n < keysOf(original), `${n} keys in the delta, of ${keysOf(original)} (the property's: ${ownKeys}, open cells: ${open})`);
  });

  for (const to of [2, 1, 3, 4]) {
    test(`full + deltas restore into ${to} worker(s) to the state a full export restores to, byte for byte, and continue alike`, () => {
      const { state, original, chain } = chainRun();
      const evictedBefore = original.reduce((a, k) => a + k.counters().evicted, 0);
      assert.ok(evictedBefore > 0, 'keys were evicted during the chain');
      // The chain as a checkpoint's restore gets it: per range, the full part, then its deltas in order.
      const flat = chain.flat();
      const fromChain = restoreInto(flat, to);
      const full = exportAll(original, false);
      const fromFull = restoreInto(full, to);
      assert.equal(keysOf(fromChain), keysOf(original));
      const a = canonical(fromChain);
      const b = canonical(fromFull);
      assert.equal(a.keys.size, b.keys.size);
      for (const [hash, bytes] of b.keys) assert.equal(a.keys.get(hash), bytes, `key ${hash}`);
      assert.deepEqual(a.rest, b.rest);
      const rest = steps.slice(end);
      const sa = forkRunState(state);
      const sb = forkRunState(state);
      const so = forkRunState(state);
      const va = sorted([...feed(fromChain, rest, sa), ...finish(fromChain, sa)]);
      const vb = sorted([...feed(fromFull, rest, sb), ...finish(fromFull, sb)]);
      const vo = sorted([...feed(original, rest, so), ...finish(original, so)]);
      assert.ok(vo.length > 0);
      assertSameVerdicts(va, vb, 'chain vs full');
      assertSameVerdicts(va, vo, 'chain vs uninterrupted');
    });
  }

  // The stream holds records that repeat another's property, view id and event time with another title
  // (the churn rewrites lines by position, copies included): which of such a pair counts (the other is
  // its duplicate) depends on the order records of one time are counted in, which must not depend on
  // how key groups are spread over workers, before a checkpoint or after it.
  test('uninterrupted runs with 1, 2 and 3 workers agree: verdicts and exported state', () => {
    const runs = [1, 2, 3].map((w) => {
      const s = newRunState();
      const ks = kernels(w);
      return { w, verdicts: sorted([...feed(ks, steps, s), ...finish(ks, s)]), state: layoutFree(ks) };
    });
    for (const r of [runs[0], runs[2]]) {
      assertSameVerdicts(r.verdicts, runs[1].verdicts, `${r.w} workers vs 2`);
      assert.deepEqual(r.state, runs[1].state, `exported state, ${r.w} workers vs 2`);
    }
  });

  for (const from of [2, 3]) {
    test(`a full part written by ${from} workers restores into 1, 2, 3 and 4 workers and continues exactly like the uninterrupted run`, () => {
      for (const f of [0.65, 0.8]) {
        const at = Math.floor(steps.length * f);
        const state = newRunState();
        const original = kernels(from);
        feed(original, steps.slice(0, at), state);
        const parts = exportAll(original, false);
        const held = original.reduce((a, k) => a + k.counters().heldNow, 0);
        assert.ok(held > 0 && parts.every((p) => p.dedup.length > 0), `records held (${held}) and dedup entries at the cut`);
        const so = forkRunState(state);
        const vo = sorted([...feed(original, steps.slice(at), so), ...finish(original, so)]);
        assert.ok(vo.some((v) => v.kind === 'open'), 'incidents open after the cut');
        const expected = layoutFree(original);
        for (const to of [1, 2, 3, 4]) {
          const what = `${from} -> ${to} workers at ${f}`;
          const restored = restoreInto(parts, to);
          assert.deepEqual(layoutFree(restored), layoutFree(restoreInto(parts, from)), `${what}: restored state`);
          const sr = forkRunState(state);
          assertSameVerdicts(sorted([...feed(restored, steps.slice(at), sr), ...finish(restored, sr)]), vo, what);
          assert.deepEqual(layoutFree(restored), expected, `${what}: exported state at the end`);
        }
      }
    });
  }

  test('records of one time held at a checkpoint are counted in the order they came, after a restore into any worker count', () => {
    // Copies with other titles (same property, view id and time): of each time the first to come counts.
    // Out of order within the out-of-orderness, so at any cut records of several times are held, and
    // the heap has released others around them (its array is no longer in the order they came).
    const rng = new TestRng(7);
    const t0 = Date.UTC(2026, 6, 3, 20);
    const lines = Array.from({ length: 6000 }, (_, i) => {
      const ts = t0 + Math.max(0, Math.floor((i * 10 - rng.int(0, 1500)) / 250) * 250);
      return JSON.stringify({ view_id: `c-${ts}`, property_id: `p-${(ts / 250) % 9}`, video_title: `t-${rng.int(0, 5)}`, error_type: rng.next() < 0.3 ? 'E' : null, ts });
    });
    const steps = cutSteps(lines, 7, 150, false);
    for (const f of [0.3, 0.6]) {
      const at = Math.floor(steps.length * f);
      const state = newRunState();
      const original = kernels(2);
      feed(original, steps.slice(0, at), state);
      assert.ok(original.every((k) => k.counters().heldNow > 20), 'records held at the cut');
      const parts = exportAll(original, false);
      const so = forkRunState(state);
      feed(original, steps.slice(at), so);
      finish(original, so);
      const expected = layoutFree(original);
      assert.ok(expected.counters.duplicates! > 1000, `copies dropped: ${expected.counters.duplicates}`);
      for (const to of [1, 2, 3]) {
        const restored = restoreInto(parts, to);
        const sr = forkRunState(state);
        feed(restored, steps.slice(at), sr);
        finish(restored, sr);
        assert.deepEqual(layoutFree(restored), expected, `2 -> ${to} workers at ${f}`);
      }
    }
  });

  test('at every cut the chain so far restores to what a full export at that cut restores to', () => {
    // Twins fed alike: one exports the chain, the other a full part at each cut (a full export restarts
    // the change tracking, so one kernel cannot do both).
    const state = newRunState();
    const twinState = newRunState();
    const chained = kernels(2);
    const twin = kernels(2);
    const chain: KernelGroupState[] = [];
    let from = 0;
    cuts.forEach((at, i) => {
      feed(chained, steps.slice(from, at), state);
      feed(twin, steps.slice(from, at), twinState);
      from = at;
      chain.push(...exportAll(chained, i > 0));
      const a = canonical(restoreInto(chain, 2));
      const b = canonical(restoreInto(exportAll(twin, false), 2));
      assert.deepEqual([...a.keys.entries()].sort(), [...b.keys.entries()].sort(), `keys at cut ${i}`);
      assert.deepEqual(a.rest, b.rest, `clock, counters, held records, dedup entries at cut ${i}`);
    });
  });

  test('a delta without its base, or after a missing link, is refused with the reason', () => {
    const { chain } = chainRun();
    assert.throws(() => restoreInto(chain[1], 2), /without its base/);
    assert.throws(() => restoreInto([...chain[0], ...chain[2], ...chain[3]], 2), /applies on export .* its chain ends with/);
    // Deltas in the wrong order.
    assert.throws(() => restoreInto([...chain[0], ...chain[2], ...chain[1]], 2), /applies on export/);
  });

  test('an export that was not kept breaks the chain: the next delta names an export its chain does not end with', () => {
    const { state, original, chain } = chainRun();
    feed(original, steps.slice(end, end + 20), state);
    exportAll(original, true); // taken, then lost (a checkpoint that failed to write)
    feed(original, steps.slice(end + 20, end + 40), state);
    const next = exportAll(original, true);
    assert.throws(() => restoreInto([...chain.flat(), ...next], 2), /applies on export/);
  });

  test('records counted between two exports with no tick evaluated between them are in the second', () => {
    const { state, original, chain } = chainRun();
    // Late views (of the stream's first minute): counted at the current tick, the watermark does not
    // move, no tick is evaluated.
    const last = steps.slice(0, end).flatMap((st) => ('lines' in st ? st.lines : []))[100];
    const views = (tag: string) => Array.from({ length: 40 }, (_, i) => {
      const e = JSON.parse(last) as Record<string, unknown>;
      e.error_type = i % 4 === 0 ? 'TIMEOUT' : null;
      e.view_id = `${tag}-${i}`; // not copies of one view (the duplicate filter would drop them)
      return JSON.stringify(e);
    });
    feed(original, [{ lines: views('a') }], state);
    const link = exportAll(original, true);
    // Counted again: the keys are dirty already (their tick is not evaluated yet), and changed since `link`.
    feed(original, [{ lines: views('b') }], state);
    const second = exportAll(original, true);
    assert.deepEqual(second.map((p) => p.header.nextTick), link.map((p) => p.header.nextTick), 'no tick evaluated between the two');
    assert.ok(second.some((p) => p.header.keys > 0), 'the counted keys are in the second delta');
    assert.equal(second.reduce((a, p) => a + (p.header.counters.late ?? 0), 0) - link.reduce((a, p) => a + (p.header.counters.late ?? 0), 0), 40);
    const a = canonical(restoreInto([...chain.flat(), ...link, ...second], 2));
    const b = canonical(restoreInto(exportAll(original, false), 2));
    assert.deepEqual([...a.keys.entries()].sort(), [...b.keys.entries()].sort());
    assert.deepEqual(a.rest, b.rest);
  });

  test('a key index freed and reused between two exports is exported once (a changed bit per key index: exported once)', () => {
    const state = newRunState();
    const ks = kernels(2);
    feed(ks, steps.slice(0, cuts[0]), state);
    exportAll(ks, false);
    // One long interval: titles listed, evicted, their indices reused by titles first seen later.
    feed(ks, steps.slice(cuts[0], steps.length - 10), state);
    assert.ok(ks.reduce((a, k) => a + k.counters().evicted, 0) > 0);
    for (const p of exportAll(ks, true)) {
      const hashes = canonicalHashes(p);
      assert.equal(new Set(hashes).size, hashes.length, `a key twice in a delta of ${hashes.length} keys`);
      assert.equal(hashes.length, p.header.keys);
    }
  });

  test('the export region (one pass) and the page-by-page export write the same parts, full and incremental', () => {
    // A region that holds any of these exports, and none: each kernel takes one way every time.
    const make = (exportRegionBytes: number) => Array.from({ length: 2 }, (_, w) => WasmKernel.create({ ...init(w, 2), exportRegionBytes }, true));
    const [inRegion, inPages] = [make(1 << 30), make(0)];
    const [a, b] = [newRunState(), newRunState()];
    let from = 0;
    cuts.forEach((at, i) => {
      feed(inRegion, steps.slice(from, at), a);
      feed(inPages, steps.slice(from, at), b);
      from = at;
      for (let w = 0; w < 2; w++) {
        // The region's kernels export into a buffer made ready in advance (after the first delta).
        inRegion[w].preparePartBuffer();
        const [r, p] = [inRegion[w], inPages[w]].map((k) => decodeKernelState(k.exportPart(undefined, undefined, i > 0)));
        assert.deepEqual([inRegion[w].lastExportWay, inPages[w].lastExportWay], ['region', 'pages']);
        assert.equal(r.header.kind, i > 0 ? 'delta' : 'full');
        assert.ok(r.header.keys > 0, 'every export holds keys');
        const header = (s: KernelGroupState) => ({ ...s.header, exportId: null, since: null });
        assert.deepEqual(header(r), header(p), `header at cut ${i}, worker ${w}`);
        for (const section of ['records', 'held', 'dedup', 'removed'] as const) {
          assert.ok(Buffer.from(r[section]).equals(Buffer.from(p[section])), `${section} at cut ${i}, worker ${w}`);
        }
      }
    });
  });
  test('a background export that outgrows its region is refused with the reason; the kernel goes on and its next export is full', () => {
    // A region that holds the changed keys at their least size (a key with no cell) but not these
    // keys, each with five cells: the export begins in the background and runs out of room.
    const k = WasmKernel.create({ ...init(0, 1), exportRegionBytes: 500 }, true);
    const state = newRunState();
    const T = Date.UTC(2026, 6, 3, 20);
    const lines = (from: number) => ['E1', 'E2', 'E3', 'E4', 'E5'].map((e, i) =>
      JSON.stringify({ property_id: 'p', video_title: 't', error_type: e, ts: T + from + i * 1000 }));
    feed([k], [{ lines: lines(0) }], state);
    assert.equal(decodeKernelState(k.exportPart(undefined, undefined, true)).header.kind, 'full');
    feed([k], [{ lines: lines(10_000) }], state);
    assert.equal(k.beginExport(true), null, 'begun in the background');
    assert.throws(() => { while (k.exportStep(0) === null); }, /outgrew the export region \(2000 bytes: 4 x exportRegionBytes\).*next one is a full export/);
    assert.equal(k.exporting, false);
    // Ingestion goes on; the next export is full, and holds the keys as they are.
    feed([k], [{ lines: lines(20_000) }], state);
    const next = decodeKernelState(k.exportPart(undefined, undefined, true));
    assert.deepEqual([next.header.kind, next.header.keys], ['full', 2]);
  });

  for (const [how, every, sliceKeys, copyBytes] of [
    ['a key per slice and 6000 bytes of copy, a slice a step', 1, 1, 6000], ['no slice for 6 steps, then all at once', 6, 1 << 20, 1 << 30],
  ] as const) {
    test(`a background export writes, while the stream goes on, the part an export at its start writes (${how})`, () => {
      // Two sets of kernels fed alike: one exports at each cut at once, the other begins an export
      // there and goes on ingesting, its keys written by slices or before their first change.
      const [now, later] = [kernels(2), kernels(2)];
      const [a, b] = [newRunState(), newRunState()];
      let from = 0;
      let cow = 0;
      let written = 0;
      cuts.forEach((at, i) => {
        feed(now, steps.slice(from, at), a);
        feed(later, steps.slice(from, at), b);
        const expected = now.map((k) => decodeKernelState(k.exportPart(undefined, undefined, i > 0)));
        const parts = later.map((k) => k.beginExport(i > 0));
        assert.equal(parts.every((p) => p === null), i > 0, 'a full export is written at once, a delta in the background');
        let s = at;
        for (let n = 1; parts.some((p) => p === null); n++, s++) {
          assert.ok(s < steps.length, 'the export completes before the stream ends');
          feed(now, [steps[s]], a);
          feed(later, [steps[s]], b);
          if (n % every === 0) later.forEach((k, w) => { if (parts[w] === null) parts[w] = k.exportStep(0, sliceKeys, copyBytes); });
        }
        from = s;
        for (let w = 0; w < 2; w++) {
          const got = decodeKernelState(parts[w]!);
          const header = (x: KernelGroupState) => ({ ...x.header, exportId: null, since: null });
          assert.deepEqual(header(got), header(expected[w]), `header at cut ${i}, worker ${w}`);
          for (const section of ['held', 'dedup', 'removed'] as const) {
            assert.ok(Buffer.from(got[section]).equals(Buffer.from(expected[w][section])), `${section} at cut ${i}, worker ${w}`);
          }
          // In the order the keys were written (a key before its first change may come before a key
          // of lower index), properties first: the same records.
          assert.deepEqual(partRecords(got), partRecords(expected[w]), `records at cut ${i}, worker ${w}`);
          if (i > 0) { cow += later[w].lastExportCow; written += got.header.keys; }
        }
      });
      assert.ok(cow > 0 && cow < written, `some keys were written before their first change (${cow} of ${written}), some by slices`);
    });
  }
});

