// Count rings kept as narrow as their counts (assembly/rings.ts): a key or cell's ring is u2 while its
// counts fit, widens to u8, u16 and u32 before a count would overflow, and narrows again once a
// busy stretch has left the ring. Nothing of it may show: verdicts equal the reference model's, an
// export carries every count exactly (u32 per slot), an import keeps the counts and exports the same
// bytes, and after the calm the rings take 8 bytes each again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WasmKernel, exportedKeyLayout } from '../src/kernel/wasm-kernel.ts';
import { ReferenceModel } from '../src/kernel/reference-model.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { decodeKernelState, exportedKeySize } from '../src/kernel/kernel-state.ts';
import { assertSameVerdicts, cutSteps, feedKernel, feedModel, newRunState, sorted } from './support/detection-streams.ts';
import { BYTES_PER_CELL, BYTES_PER_KEY } from '../src/config/memory-caps.ts';

const GROUPS = 128;
const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 1, 6, 0, 0);
const SLOTS = 32;
const RING_BYTES = SLOTS * 4;
const init = { maxKeys: 1000, maxCells: 1000, chunkBytes: 1 << 20, groupLo: 0, groupHi: GROUPS, groups: GROUPS, params: DEFAULT_DETECTION_PARAMS };

const line = (title: string, ts: number, failed: boolean) =>
  JSON.stringify({ property_id: 'pbig', video_title: title, error_type: failed ? 'networkError' : null, ts });

/**
 * Two hours of quiet traffic on two titles (72 failures, all of "hot"), then one ten-minute title slot with 70,000
 * views of "hot" (10% failures: 7,000) and 300 of "warm" (30 failures), then seven hours of a view
 * every 20 minutes on each (a failure every third), longer than a title ring (32 slots of 10 minutes).
 */
function stream(): { before: string[]; burst: string[]; calm: string[] } {
  const before: string[] = [];
  for (let i = 0; i < 7200; i++) before.push(line(i % 2 ? 'hot' : 'warm', T0 + i * 1000, i % 100 === 7));
  const b0 = T0 + 120 * MIN;
  const burst: string[] = [];
  for (let i = 0; i < 70_000; i++) {
    burst.push(line('hot', b0 + Math.floor((i * 9 * MIN) / 70_000), i % 10 === 3));
    if (i % 233 === 0 && i / 233 < 300) burst.push(line('warm', b0 + Math.floor((i * 9 * MIN) / 70_000), (i / 233) % 10 === 1));
  }
  const calm: string[] = [];
  for (let j = 1; j <= 21; j++) {
    const ts = b0 + 10 * MIN + j * 20 * MIN;
    calm.push(line('hot', ts, j % 3 === 0), line('warm', ts + 1, j % 3 === 1));
  }
  return { before, burst, calm };
}

/** Each key's exported rings summed: the key's own name → [views, failures of each cell]. */
function exportedTotals(k: WasmKernel): Map<string, number[]> {
  const L = exportedKeyLayout();
  const r = decodeKernelState(k.exportPart()).records;
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const sum = (at: number) => { let s = 0; for (let i = 0; i < SLOTS; i++) s += dv.getUint32(at + i * 4, true); return s; };
  const out = new Map<string, number[]>();
  for (let p = 0; p < r.length;) {
    const size = exportedKeySize(dv, p, L);
    const cells = dv.getUint32(p + L.cells, true);
    const namesAt = p + size - dv.getUint32(p + L.names, true);
    const name = new TextDecoder().decode(r.subarray(namesAt + 4, namesAt + 4 + dv.getUint32(namesAt, true)));
    const totals = [sum(p + L.header + L.key - RING_BYTES)];
    for (let c = 0; c < cells; c++) totals.push(sum(p + L.header + L.key + (c + 1) * L.cell - RING_BYTES));
    out.set(name, totals);
    p += size;
  }
  return out;
}

test('rings widen for a burst of 70,000 views in a slot and narrow after it; counts, verdicts and exports as with u32 rings', { timeout: 120_000 }, () => {
  const { before, burst, calm } = stream();
  const k = WasmKernel.create(init, true);
  const model = new ReferenceModel(DEFAULT_DETECTION_PARAMS);
  const ks = newRunState();
  const ms = newRunState();
  const kv = [];
  const mv = [];
  for (const [i, part] of [before, burst].entries()) {
    const steps = cutSteps(part, 11 + i, 4000);
    kv.push(...feedKernel(k, steps, ks));
    mv.push(...feedModel(model, steps, ms));
  }
  // Every count of the burst is in the exported rings (a narrower ring that did not widen would wrap;
  // before the burst "hot"'s cell counted 6 failures a slot: u8).
  const totals = exportedTotals(k);
  assert.deepEqual(totals.get('hot'), [3600 + 70_000, 72 + 7000]);
  assert.deepEqual(totals.get('warm'), [3600 + 300, 30]);
  // The property's ring is 32 minutes: the burst and the end of the quiet traffic before it.
  const [pv, pf] = totals.get('pbig')!;
  assert.ok(pv >= 70_300 && pv <= 70_300 + 32 * 60 && pf >= 7030, `property rings hold ${pv} views, ${pf} failures`);
  // Widened: "hot"'s key ring is u32 (128 bytes), its cell's u16 (64), "warm"'s key ring u16 (300 a
  // slot before the burst already), its cell's u8 (32), the property's rings u16.
  const wide = k.ringBytes();
  assert.equal(wide, 128 + 64 + 64 + 32 + 64 + 64, 'ring widths after the burst');
  // An import keeps the counts (each ring as narrow as they allow) and exports the same keys.
  const part = decodeKernelState(k.exportPart());
  const copy = WasmKernel.fromStates(init, [part], GROUPS, true);
  assert.deepEqual(decodeKernelState(copy.exportPart()).records, part.records);
  assert.equal(copy.ringBytes(), wide, 'the import chose other widths than the kernel had');

  const steps = cutSteps(calm, 13, 5);
  kv.push(...feedKernel(k, steps, ks));
  mv.push(...feedModel(model, steps, ms));
  // The burst left every ring: all are u2 again (a view every 20 minutes a title, 2 in a minute for the property).
  assert.equal(k.counters().keys, 3);
  assert.equal(k.counters().cells, 3);
  assert.equal(k.ringBytes(), 6 * 8, 'rings did not narrow after the burst left them');
  kv.push(...k.finish());
  model.finish();
  mv.push(...model.takeVerdicts());
  assert.ok(kv.some((v) => v.kind === 'open'), 'the burst opened no incident');
  assertSameVerdicts(sorted(kv), sorted(mv), 'kernel against the reference model');
});

test('the memory caps bound a title key and its cell at their widest: every ring u32, 60-byte titles, every cell once opened', { timeout: 120_000 }, (t) => {
  // N title keys learnt, exported, every count of every ring set to 70,000 (u32 wide) and every cell
  // marked as opened once (an incident record), imported into a fresh kernel: the heap it takes per
  // title key (records, table, names, rings, incident records, and the 50 properties' share) must
  // stay within what src/config/memory-caps.ts assumes a key and a cell cost.
  // Keys and cells fill whole blocks of 4096 records (the 50 properties and their cells with the titles).
  const N = 3 * 4096 - 50;
  const big = { ...init, maxKeys: N + 1000, maxCells: N + 1000 };
  const k = WasmKernel.create(big);
  const st = newRunState();
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const title = `T${i}-`.padEnd(60, 'x');
    lines.push(JSON.stringify({ property_id: `p${i % 50}`, video_title: title, error_type: 'networkError', ts: T0 + i * 10 }));
  }
  feedKernel(k, cutSteps(lines, 3, 4000), st);
  k.advance(st.clock.finalTarget());
  k.finish();
  assert.equal(k.counters().keys, N + 50);
  const L = exportedKeyLayout();
  const part = decodeKernelState(k.exportPart());
  const r = part.records;
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const wide = (at: number) => { for (let s = 0; s < SLOTS; s++) dv.setUint32(at + s * 4, 70_000, true); };
  for (let p = 0; p < r.length;) {
    const cells = dv.getUint32(p + L.cells, true);
    wide(p + L.header + L.key - RING_BYTES);
    for (let c = 0; c < cells; c++) {
      const cell = p + L.header + L.key + c * L.cell;
      wide(cell + L.cell - RING_BYTES);
      dv.setBigInt64(cell + L.cellOpenedAt, BigInt(T0), true);
    }
    p += exportedKeySize(dv, p, L);
  }
  const before = WasmKernel.create(big).heapBytes();
  const copy = WasmKernel.fromStates(big, [part], GROUPS);
  assert.equal(copy.counters().keys, N + 50);
  assert.equal(copy.ringBytes(), 2 * (N + 50) * 128, 'every ring is u32');
  const perTitle = (copy.heapBytes() - before) / N;
  t.diagnostic(`${perTitle.toFixed(0)} bytes a title key and its cell at their widest`);
  assert.ok(perTitle <= BYTES_PER_KEY + BYTES_PER_CELL, `${perTitle.toFixed(0)} bytes a title key and its cell at their widest, over the caps' ${BYTES_PER_KEY} + ${BYTES_PER_CELL}`);
});
