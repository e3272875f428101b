// Kernel state parts (what checkpoints hold): a kernel restored mid-stream (with an incident open)
// from its exported key groups must continue exactly as the original does, and as the reference model
// does; a part that is not one, is cut short, or was written by another format or state layout must
// be refused with an error that says so.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FieldNames } from '../src/ingest/field-names.ts';
import { WasmKernel, type KernelInit } from '../src/kernel/wasm-kernel.ts';
import { ReferenceModel } from '../src/kernel/reference-model.ts';
import { mergeDetectionParams } from '../src/kernel/detection-params.ts';
import { decodeKernelState, encodeKernelState, type KernelGroupState } from '../src/kernel/kernel-state.ts';
import type { Verdict } from '../src/kernel/verdict.ts';
import {
  FAST_PARAMS, assertSameVerdicts, cutSteps, feedKernel, feedModel, forkRunState, generateLines, newRunState, sorted, tally, type RunState,
} from './support/detection-streams.ts';
import type { Step } from './support/detection-streams.ts';
import { readFileSync } from 'node:fs';

/**
 * A part of format 2 (names as a JSON section beside the records), written by the previous version
 * from the first 60 steps of formatTwoSteps(): still read, its records converted on restore.
 */
const FORMAT_2 = new Uint8Array(readFileSync(new URL('./support/fixtures/kernel-state-format-2.bin', import.meta.url)));
/**
 * A part of format 3 (always full, local indices in its records, no removed-keys section), written by
 * the version before incremental checkpoints from the same 60 steps: still read.
 */
const FORMAT_3 = new Uint8Array(readFileSync(new URL('./support/fixtures/kernel-state-format-3.bin', import.meta.url)));

const CHUNK_BYTES = 256 * 1024;
// Non-default names: a restored kernel decodes with the configuration's names (its init), as the original did.
const FIELD_NAMES: FieldNames = { viewId: 'vid', propertyId: 'prop', videoTitle: 'title', errorType: 'err', ts: 'at' };
const INIT: KernelInit = { maxKeys: 1024, maxCells: 4096, chunkBytes: CHUNK_BYTES, groupLo: 0, groupHi: 128, groups: 128, params: FAST_PARAMS, fieldNames: FIELD_NAMES };

function renameFields(line: string): string {
  return line.replace('"view_id":', '"vid":').replace('"property_id":', '"prop":').replace('"video_title":', '"title":')
    .replace('"error_type":', '"err":').replace('"ts":', '"at":');
}

function newKernel(debug: boolean, fieldNames?: FieldNames): WasmKernel {
  return WasmKernel.create({ ...INIT, fieldNames }, debug);
}

/** A kernel's exported state, every byte but the export's id (which names the kernel instance). */
function stateOf(k: WasmKernel): Omit<KernelGroupState, 'header'> & { header: Omit<KernelGroupState['header'], 'exportId'> } {
  const { header: { exportId, ...header }, ...rest } = k.exportState();
  assert.equal(typeof exportId?.kernel, 'string');
  return { header, ...rest };
}

/**
 * stateOf with the keys (each with its cells in error-hash order), the held records and the duplicate
 * filter's entries (without their ring positions) as sorted lists, for the fixtures: they were written
 * by a kernel that released held records of one event time in the heap's order rather than as they
 * came (assembly/held.ts), so their part lists such records in another order, a key may list its cells
 * in another order (created as their error types came), and filter entries may sit elsewhere in their
 * probe chains (found by a lookup all the same).
 */
function stateAsSets(k: WasmKernel) {
  const s = stateOf(k);
  const rv = new DataView(s.records.buffer, s.records.byteOffset, s.records.byteLength);
  const keys: string[] = [];
  for (let p = 0; p < s.records.length;) {
    const cells = rv.getUint32(p + 4, true);
    const ext = rv.getUint32(p + 20, true);
    const size = 24 + 192 + cells * (256 + ext) + rv.getUint32(p + 16, true);
    const hex = (from: number, n: number) => Buffer.from(s.records.subarray(from, from + n)).toString('hex');
    // Names at the end: the key's own, then each cell's (u32 length, bytes).
    let np = p + 24 + 192 + cells * (256 + ext);
    const name = () => { const n = rv.getUint32(np, true); const v = hex(np + 4, n); np += 4 + n; return v; };
    const own = name();
    const cs = Array.from({ length: cells }, (_, i) => `${hex(p + 216 + i * 256, 256)}/${hex(p + 216 + cells * 256 + i * ext, ext)}/${name()}`);
    keys.push(`${hex(p, 216)}/${own}/${cs.sort().join(',')}`);
    p += size;
  }
  const dv = new DataView(s.dedup.buffer, s.dedup.byteOffset, s.dedup.byteLength);
  const words: string[] = [];
  for (let p = 0; p < s.dedup.length; p += 16) words.push(dv.getBigUint64(p + 8, true).toString(16));
  const hv = new DataView(s.held.buffer, s.held.byteOffset, s.held.byteLength);
  const held: string[] = [];
  for (let p = 0; p < s.held.length;) {
    const size = 56 + ((hv.getUint16(p + 40, true) + hv.getUint16(p + 42, true) + hv.getUint16(p + 44, true) + 7) & ~7);
    held.push(Buffer.from(s.held.subarray(p, p + size)).toString('hex'));
    p += size;
  }
  return { ...s, records: keys.sort(), dedup: words.sort(), held: held.sort() };
}

function restore(part: Uint8Array, debug: boolean, init: KernelInit = INIT): WasmKernel {
  return WasmKernel.fromStates(init, [decodeKernelState(part)], 128, debug);
}

/**
 * The detector FORMAT_2 and FORMAT_3 were written by: FAST_PARAMS without trend evidence and with hot
 * at zOpen (both came later), so feeding their stream today reaches the state they hold.
 */
const FIXTURE_INIT: KernelInit = { ...INIT, params: mergeDetectionParams(FAST_PARAMS, { property: { rampZ: 0, zHot: FAST_PARAMS.property.zOpen } }) };

/** The stream FORMAT_2 was taken from (60 steps in): the default field names' values under FIELD_NAMES. */
function formatTwoSteps(): Step[] {
  const lines = generateLines({ seed: 77, events: 30_000, properties: 3, titlesPerProperty: 4, ratePerSec: 60, startMs: Date.UTC(2026, 6, 3, 20) });
  return cutSteps(lines, 77, 800).map((s) => ('lines' in s ? { lines: s.lines.map(renameFields) } : s));
}

interface Stream {
  steps: Step[];
  renamed: Step[];
}

function stream(): Stream {
  const lines = generateLines({ seed: 77, events: 30_000, properties: 3, titlesPerProperty: 4, ratePerSec: 60, startMs: Date.UTC(2026, 6, 3, 20) });
  // A property first seen after the snapshot: the restored kernel must name keys it creates itself.
  const half = lines.length >> 1;
  const withNewcomer = lines.map((l, i) => (i > half && i % 5 === 0 ? l.replace(/"property_id":"[^"]*"/, '"property_id":"newcomer"') : l));
  const steps = cutSteps(withNewcomer, 77, 800);
  const renamed = steps.map((s) => ('lines' in s ? { lines: s.lines.map(renameFields) } : s));
  return { steps, renamed };
}

/** Index of the first step after the middle at which the kernel has an incident open. */
function splitPoint(steps: Step[], renamed: Step[]): number {
  const probe = newKernel(false, FIELD_NAMES);
  const state = newRunState();
  for (let i = 0; i < renamed.length; i++) {
    feedKernel(probe, [renamed[i]], state);
    if (i >= steps.length / 2 && probe.counters().open > 0) return i + 1;
  }
  throw new Error('the stream never has an incident open after its middle');
}

function snapshotFixture(debug: boolean) {
  const { steps, renamed } = stream();
  const split = splitPoint(steps, renamed);
  const original = newKernel(debug, FIELD_NAMES);
  const state = newRunState();
  const before = feedKernel(original, renamed.slice(0, split), state);
  return { steps, renamed, split, original, state, before, snap: encodeKernelState(original.exportState()) };
}

function finishRun(k: WasmKernel, steps: Step[], state: RunState): Verdict[] {
  const v = feedKernel(k, steps, forkRunState(state));
  v.push(...k.finish());
  return sorted(v);
}

/** Asserts that restoring `bytes` throws an Error whose message says what is wrong with the part. */
function assertRefused(bytes: Uint8Array, what: string, pattern: RegExp): void {
  let restored: WasmKernel | undefined;
  try {
    restored = restore(bytes, true);
  } catch (e) {
    assert.ok(e instanceof Error && pattern.test(e.message),
      `${what}: refused, but with ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)} (expected ${pattern})`);
    return;
  }
  assert.fail(`${what}: accepted (${JSON.stringify(restored.counters())})`);
}

describe('kernel state parts: export and restore', () => {
  for (const debug of [true, false]) {
    test(`a ${debug ? 'debug' : 'release'} kernel restored from its part continues exactly like the original and the reference model`, () => {
      const { steps, renamed, split: at, original, state, before, snap } = snapshotFixture(debug);
      assert.ok(original.counters().open > 0, 'the part must catch an incident open');

      const restored = restore(snap, debug);
      const { keys, cells, open, events, late, evicted } = original.counters();
      const r = restored.counters();
      assert.deepStrictEqual({ keys: r.keys, cells: r.cells, open: r.open, events: r.events, late: r.late, evicted: r.evicted }, { keys, cells, open, events, late, evicted });
      const rest = renamed.slice(at);
      const fromOriginal = finishRun(original, rest, state);
      const fromRestored = finishRun(restored, rest, state);
      assertSameVerdicts(fromRestored, fromOriginal, 'restored vs original');
      const t = tally(fromRestored);
      assert.ok((t.resolve ?? 0) + (t.expire ?? 0) > 0 && (t.open ?? 0) > 0, `little happened after the cut: ${JSON.stringify(t)}`);
      assert.ok(fromRestored.some((v) => v.propertyId === 'newcomer'), 'the property first seen after the cut has verdicts');

      const model = new ReferenceModel(FAST_PARAMS);
      const modelState = newRunState();
      const modelBefore = feedModel(model, steps.slice(0, at), modelState);
      assertSameVerdicts(sorted(before), sorted(modelBefore), 'before the cut: kernel vs model');
      const modelAfter = feedModel(model, steps.slice(at), modelState);
      model.finish();
      modelAfter.push(...model.takeVerdicts());
      assertSameVerdicts(fromRestored, sorted(modelAfter), 'after the cut: restored kernel vs model');
    });
  }

  test('a part of a restored kernel restores again (a chain of checkpoints)', () => {
    const { renamed, split: at, state, snap } = snapshotFixture(false);
    const mid = at + ((renamed.length - at) >> 1);
    const once = restore(snap, false);
    const direct = restore(snap, false);
    const onceState = forkRunState(state);
    const directState = forkRunState(state);
    assertSameVerdicts(sorted(feedKernel(once, renamed.slice(at, mid), onceState)),
      sorted(feedKernel(direct, renamed.slice(at, mid), directState)), 'first leg');
    const twice = restore(encodeKernelState(once.exportState()), false);
    assertSameVerdicts(finishRun(twice, renamed.slice(mid), onceState),
      finishRun(direct, renamed.slice(mid), directState), 'second leg');
  });

  test('a part of format 2 (the previous version) restores to the same state as today\'s part of the same stream', () => {
    const steps = formatTwoSteps();
    const old = decodeKernelState(FORMAT_2);
    assert.equal(old.header.format, 2);
    assert.ok(old.header.keys > 0 && old.held.length > 0);
    const fed = WasmKernel.create(FIXTURE_INIT, false);
    const state = newRunState();
    feedKernel(fed, steps.slice(0, 60), state);
    const fromOld = WasmKernel.fromStates(FIXTURE_INIT, [old], 128);
    const fromNew = restore(fed.exportPart(), false, FIXTURE_INIT);
    assert.ok(fromOld.counters().open > 0, 'the fixture has an incident open');
    assert.deepEqual(stateAsSets(fromOld), stateAsSets(fromNew));
    assertSameVerdicts(finishRun(fromOld, steps.slice(60), state), finishRun(fed, steps.slice(60), state), 'after a format-2 restore');
  });

  test('a part of format 3 (before incremental parts) restores to the same state as today\'s part of the same stream', () => {
    const steps = formatTwoSteps();
    const old = decodeKernelState(FORMAT_3);
    assert.equal(old.header.format, 3);
    assert.equal(old.header.kind, 'full');
    assert.ok(old.header.keys > 0 && old.held.length > 0 && old.removed.length === 0);
    const fed = WasmKernel.create(FIXTURE_INIT, false);
    const state = newRunState();
    feedKernel(fed, steps.slice(0, 60), state);
    const fromOld = WasmKernel.fromStates(FIXTURE_INIT, [old], 128);
    const fromNew = restore(fed.exportPart(), false, FIXTURE_INIT);
    assert.ok(fromOld.counters().open > 0, 'the fixture has an incident open');
    assert.deepEqual(stateAsSets(fromOld), stateAsSets(fromNew));
    assertSameVerdicts(finishRun(fromOld, steps.slice(60), state), finishRun(fed, steps.slice(60), state), 'after a format-3 restore');
  });

  describe('refusals', () => {
    const { snap } = snapshotFixture(true);
    const part = decodeKernelState(snap);

    test('not a part at all (bad magic, empty, too short)', () => {
      const bad = snap.slice();
      bad[0] ^= 0xff;
      assertRefused(bad, 'first byte flipped', /bad magic/);
      assertRefused(new Uint8Array(0), 'empty', /bad magic/);
      assertRefused(snap.subarray(0, 7), '7 bytes', /bad magic/);
    });

    test('a part cut short anywhere, or with bytes appended', () => {
      for (const n of [12, 30, snap.length >> 1, snap.length - 1]) assertRefused(snap.subarray(0, n), `cut at byte ${n}`, /truncated/);
      const longer = new Uint8Array(snap.length + 16);
      longer.set(snap);
      assertRefused(longer, '16 bytes appended', /after its end/);
    });

    test('another part format, another state version (newer or older), another key-group count', () => {
      assertRefused(encodeKernelState({ ...part, header: { ...part.header, format: 9 } }), 'format 9', /format 9 is not/);
      const v = part.header.stateVersion;
      for (const other of [v + 1, v - 1]) {
        assertRefused(encodeKernelState({ ...part, header: { ...part.header, stateVersion: other } }), `state version ${other}`, new RegExp(`state version ${other} cannot be restored`));
      }
      assertRefused(encodeKernelState({ ...part, header: { ...part.header, groups: 64 } }), '64 groups', /64 key groups/);
    });

    test('a damaged header, a name that overruns its key', () => {
      const bytes = snap.slice();
      bytes[12] = 0x7b ^ 0xff; // the header JSON's first byte
      assertRefused(bytes, 'damaged header', /damaged/);
      // The last name of the last key (a u32 length, then its bytes), said to be 65535 bytes long: it
      // overruns the part with no further name or key after it to notice.
      const records = part.records.slice();
      const dv = new DataView(records.buffer);
      const names = decodeKernelState(FORMAT_2).names2!.flatMap(([property, title, errors]) => [property, title ?? '', ...errors].filter((n) => n !== ''));
      const encoded = [...new Set(names)].map((n) => new TextEncoder().encode(n));
      let at = -1;
      for (let p = records.length - 5; p >= 0 && at < 0; p--) {
        const len = dv.getUint32(p, true);
        if (encoded.some((id) => id.length === len && p + 4 + len <= records.length && records.length - (p + 4 + len) < 8 && id.every((x, i) => records[p + 4 + i] === x))) at = p;
      }
      assert.ok(at >= 0, 'no name found at the end of the records');
      dv.setUint32(at, 0xffff, true);
      assertRefused(encodeKernelState({ ...part, records }), 'a name of 65535 bytes', /overruns/);
    });

    test('a format-2 part whose names do not match its keys', () => {
      const old = decodeKernelState(FORMAT_2);
      assertRefused(encodeKernelState({ ...old, names2: old.names2!.slice(1) }), 'one name missing', /names/);
    });

    test('records that overrun their section', () => {
      assertRefused(encodeKernelState({ ...part, records: part.records.subarray(0, part.records.length - 8) }), 'records cut', /truncated inside a key/);
    });
  });
});
