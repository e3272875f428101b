// State by key group: a kernel's keys exported as parts and imported into any number of kernels
// that own those groups continue exactly as the uninterrupted kernel does (Flink's rescale).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { decodeKernelState, encodeKernelState, type KernelGroupState } from '../src/kernel/kernel-state.ts';
import { groupRange, ownerOfGroup } from '../src/kernel/key-groups.ts';
import type { Verdict } from '../src/kernel/verdict.ts';
import {
  FAST_PARAMS, assertSameVerdicts, cutSteps, forkRunState, generateLines, newRunState, partitionedSteps, sorted, tally, type RunState, type Step,
} from './support/detection-streams.ts';

const GROUPS = 32;
const encoder = new TextEncoder();

function kernels(workers: number): WasmKernel[] {
  return Array.from({ length: workers }, (_, w) => WasmKernel.create({
    maxKeys: 4096, maxCells: 16384, chunkBytes: 1 << 20, ...range(w, workers), groups: GROUPS, params: FAST_PARAMS,
  }, true));
}

function range(w: number, workers: number): { groupLo: number; groupHi: number } {
  const r = groupRange(w, workers, GROUPS);
  return { groupLo: r.lo, groupHi: r.hi };
}

/** Feeds steps to a set of kernels as the engine does: decode in one, each owner ingests its part by the same plan. */
function feed(ks: WasmKernel[], steps: Step[], state: RunState): Verdict[] {
  const out: Verdict[] = [];
  for (const step of steps) {
    if ('declare' in step) {
      state.clock.declare(step.declare);
      continue;
    }
    if ('advanceTo' in step) {
      const t = state.clock.advanceTarget(step.advanceTo);
      if (t === null) continue;
      state.clock.advanced(t);
      for (const k of ks) out.push(...k.advance(t));
      continue;
    }
    const d = ks[0].decodeChunk(encoder.encode(step.lines.join('\n') + '\n'), ks.length, GROUPS);
    const { plan, endTarget } = state.clock.plan(d.times, d.props, step.origin);
    ks.forEach((k, w) => out.push(...k.ingest(d.parts[w], plan, endTarget)));
  }
  return out;
}

function finish(ks: WasmKernel[], state: RunState): Verdict[] {
  const target = state.clock.finalTarget();
  return ks.flatMap((k) => [...k.advance(target), ...k.finish()]);
}

/** Exports every kernel's state, through bytes (as a checkpoint writes and reads them). */
function exportAll(ks: WasmKernel[]): KernelGroupState[] {
  return ks.map((k) => decodeKernelState(encodeKernelState(k.exportState())));
}

function restoreInto(states: KernelGroupState[], workers: number): WasmKernel[] {
  return Array.from({ length: workers }, (_, w) => WasmKernel.fromStates({
    maxKeys: 4096, maxCells: 16384, chunkBytes: 1 << 20, ...range(w, workers), groups: GROUPS, params: FAST_PARAMS,
  }, states, GROUPS, true));
}

function stream(): Step[] {
  const lines = generateLines({ seed: 91, events: 40_000, properties: 8, titlesPerProperty: 4, ratePerSec: 60, startMs: Date.UTC(2026, 6, 3, 20) });
  return cutSteps(lines, 91, 900);
}

describe('kernel state by key group', () => {
  test('the key-group helpers are inverse and agree with the kernel\'s routing', () => {
    const k = kernels(1)[0];
    for (const workers of [1, 2, 3, 4, 7]) {
      for (let g = 0; g < GROUPS; g++) {
        const w = ownerOfGroup(g, workers, GROUPS);
        const r = groupRange(w, workers, GROUPS);
        assert.ok(g >= r.lo && g < r.hi, `group ${g} of ${workers} workers`);
      }
    }
    // The decoder routes every record of a property to the owner of its group.
    const props = Array.from({ length: 40 }, (_, i) => `p-${i}`);
    const d = k.decodeChunk(encoder.encode(props.map((p, i) => JSON.stringify({ property_id: p, ts: 1_800_000_000_000 + i })).join('\n') + '\n'), 3, GROUPS);
    const owners = d.parts.map((part) => part.length);
    assert.ok(owners.every((n) => n > 0), 'every owner gets records');
    const expectedBytes = [0, 0, 0];
    for (const p of props) expectedBytes[ownerOfGroup(k.groupOfProperty(p, GROUPS), 3, GROUPS)]++;
    assert.deepEqual(owners.map((n) => n > 0), expectedBytes.map((n) => n > 0));
  });

  for (const [from, to] of [[2, 2], [2, 1], [2, 3], [1, 4], [3, 2]] as const) {
    test(`a state exported by ${from} worker(s) restores into ${to} and continues exactly like the uninterrupted run`, () => {
      const steps = stream();
      const at = Math.floor(steps.length * 0.55);
      const state = newRunState();
      const original = kernels(from);
      const before = feed(original, steps.slice(0, at), state);
      assert.ok(original.some((k) => k.counters().open > 0) || tally(before).open > 0, 'something happened before the cut');
      const states = exportAll(original);
      const restored = restoreInto(states, to);
      const keys = (ks: WasmKernel[]) => ks.reduce((a, k) => a + k.counters().keys, 0);
      const cells = (ks: WasmKernel[]) => ks.reduce((a, k) => a + k.counters().cells, 0);
      assert.equal(keys(restored), keys(original));
      assert.equal(cells(restored), cells(original));
      const events = (ks: WasmKernel[]) => ks.reduce((a, k) => a + k.counters().events, 0);
      assert.equal(events(restored), events(original), 'counters move with their groups');
      const rest = steps.slice(at);
      const sa = forkRunState(state);
      const sb = forkRunState(state);
      const a = sorted([...feed(original, rest, sa), ...finish(original, sa)]);
      const b = sorted([...feed(restored, rest, sb), ...finish(restored, sb)]);
      assertSameVerdicts(b, a, `${from} -> ${to} workers`);
      const t = tally(a);
      assert.ok((t.open ?? 0) > 0 && (t.resolve ?? 0) + (t.expire ?? 0) > 0, `little happened after the cut: ${JSON.stringify(t)}`);
    });
  }

  test('records held for partitions ahead of event time move with their key groups (2 -> 3 workers)', () => {
    const lines = generateLines({ seed: 93, events: 40_000, properties: 8, titlesPerProperty: 4, ratePerSec: 60, startMs: Date.UTC(2026, 6, 3, 20) });
    const steps = partitionedSteps(lines, 3, 300);
    const state = newRunState();
    const original = kernels(2);
    const at = Math.floor(steps.length * 0.4);
    feed(original, steps.slice(0, at), state);
    const heldNow = original.reduce((a, k) => a + k.counters().heldNow, 0);
    assert.ok(heldNow > 100, `records must be held at the cut (${heldNow})`);
    const restored = restoreInto(exportAll(original), 3);
    assert.equal(restored.reduce((a, k) => a + k.counters().heldNow, 0), heldNow);
    const sa = forkRunState(state);
    const sb = forkRunState(state);
    const a = sorted([...feed(original, steps.slice(at), sa), ...finish(original, sa)]);
    const b = sorted([...feed(restored, steps.slice(at), sb), ...finish(restored, sb)]);
    assertSameVerdicts(b, a, 'held records across a rescale');
    assert.ok((tally(a).open ?? 0) > 0);
  });

  test('refusals: another state version, another group count, a key in a group its part does not own, a truncated part', () => {
    const steps = stream();
    const ks = kernels(2);
    feed(ks, steps.slice(0, 20), newRunState());
    const [s0] = exportAll(ks);
    assert.ok(s0.header.keys > 0);
    const init = { maxKeys: 4096, maxCells: 16384, chunkBytes: 1 << 20, groupLo: 0, groupHi: GROUPS, groups: GROUPS, params: FAST_PARAMS };
    assert.throws(() => WasmKernel.fromStates(init, [{ ...s0, header: { ...s0.header, stateVersion: 1 } }], GROUPS), /state version 1 cannot be restored/);
    assert.throws(() => WasmKernel.fromStates(init, [{ ...s0, header: { ...s0.header, groups: 64 } }], GROUPS), /64 key groups, the engine 32/);
    // A record whose group field does not match its property's hash (a part bound to the wrong range).
    const tampered = s0.records.slice();
    new DataView(tampered.buffer).setUint32(0, (new DataView(s0.records.buffer, s0.records.byteOffset).getUint32(0, true) + 1) % GROUPS, true);
    assert.throws(() => WasmKernel.fromStates(init, [{ ...s0, records: tampered }], GROUPS), /does not own/);
    const bytes = encodeKernelState(s0);
    assert.throws(() => decodeKernelState(bytes.subarray(0, bytes.length - 10)), /truncated/);
    assert.throws(() => decodeKernelState(bytes.subarray(1)), /bad magic/);
  });
});
