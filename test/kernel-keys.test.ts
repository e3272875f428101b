// The kernel's key store at many keys: its hash table grows from a few thousand slots, keys are
// evicted and created again (backward-shift deletion, freed records and names reused), and the names
// of keys and cells, kept in the kernel, come back intact through verdict-free reads (dumps) and a
// key-group export and import.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { DEFAULT_CLOCK_OPTIONS, EventClock } from '../src/engine/event-clock.ts';
import { decodeKernelState, encodeKernelState } from '../src/kernel/kernel-state.ts';

const GROUPS = 128;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1);
const encoder = new TextEncoder();
const init = { maxKeys: 100_000, maxCells: 100_000, chunkBytes: 1 << 20, groupLo: 0, groupHi: GROUPS, groups: GROUPS, params: DEFAULT_DETECTION_PARAMS };

/**
 * Title i: lengths from 2 to 1,024 bytes (the decoder's limit: name blocks of every slab class, and from
 * the heap), some not ASCII; one in seven of every length from 2 to 136 bytes, across each class's bounds.
 */
function title(i: number): string {
  const pad = ['v'.repeat(Math.floor(i / 7) % 131), 'x'.repeat(14), 'é'.repeat(20), 'y'.repeat(90), '—'.repeat(100), 'z'.repeat(600), 'w'.repeat(1018)][i % 7];
  return `T${i}${pad}`;
}
const property = (i: number) => `p${i % 50}`;
const error = (i: number) => `err${i % 3}`;

function line(i: number, ts: number, failed: boolean): string {
  return JSON.stringify({ property_id: property(i), video_title: title(i), error_type: failed ? error(i) : null, ts });
}

class Feeder {
  readonly clock = new EventClock(DEFAULT_CLOCK_OPTIONS);
  constructor(readonly k: WasmKernel) {}
  /** Decodes and ingests lines in chunks under 1 MiB, as the engine does. */
  feed(lines: string[]): void {
    let chunk: string[] = [];
    let bytes = 0;
    const flush = () => {
      if (chunk.length === 0) return;
      const d = this.k.decodeChunk(encoder.encode(chunk.join('\n') + '\n'), 1, GROUPS);
      assert.equal(d.records, chunk.length, 'every line decodes');
      const { plan, endTarget } = this.clock.plan(d.times, d.props);
      this.k.ingest(d.parts[0], plan, endTarget);
      chunk = [];
      bytes = 0;
    };
    for (const l of lines) {
      if (bytes + l.length * 3 > 900_000) flush();
      chunk.push(l);
      bytes += l.length * 3;
    }
    flush();
  }
}

/** The (property, title, error) of every title cell the kernel holds, sorted. */
function titleCells(k: WasmKernel): string[] {
  const out: string[] = [];
  for (let cursor = 0; cursor >= 0;) {
    const page = k.dumpPage(cursor, 10_000);
    for (const f of page.figures) if (f.scope === 'title') out.push(`${f.property_id}|${f.video_title}|${f.error_type}`);
    cursor = page.nextCursor;
  }
  return out.sort();
}

const expected = (ids: number[]) => ids.map((i) => `${property(i)}|${title(i)}|${error(i)}`).sort();
const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, j) => lo + j);

test('20,000 title keys: the table grows, names survive dumps and an export and import', { timeout: 120_000 }, () => {
  const k = WasmKernel.create(init);
  const f = new Feeder(k);
  const lines: string[] = [];
  for (const i of range(0, 20_000)) {
    lines.push(line(i, T0 + i * 10, false), line(i, T0 + i * 10 + 5, true));
  }
  f.feed(lines);
  const c = k.counters();
  assert.equal(c.keys, 20_050);
  assert.equal(c.keysDropped, 0);
  assert.deepEqual(titleCells(k), expected(range(0, 20_000)));

  const restored = WasmKernel.fromStates(init, [decodeKernelState(encodeKernelState(k.exportState()))], GROUPS);
  assert.equal(restored.counters().keys, 20_050);
  assert.deepEqual(titleCells(restored), expected(range(0, 20_000)));
  // The restored kernel finds its keys (a lookup through the rebuilt table): views of known titles create nothing.
  new Feeder(restored).feed(range(0, 20_000).map((i) => line(i, T0 + 300_000 + i, false)));
  assert.equal(restored.counters().keys, 20_050);
});

test('evicted keys free their slots, records and names; keys created after reuse them and every lookup still finds its key', { timeout: 120_000 }, () => {
  const k = WasmKernel.create(init);
  const f = new Feeder(k);
  f.feed(range(0, 20_000).map((i) => line(i, T0 + i * 10, true)));
  // Titles 15000..19999 (the last created: their probe runs cross the slots of earlier keys) are seen
  // again 6 h later; the others stay idle and go at the first sweep after 12 h. (The first record after
  // a jump of event time is from the future, counted at the old time, until a second property's record
  // confirms the jump: title 15001 comes first and again in its place.)
  const kept = range(15_000, 20_000);
  f.feed([15_001, ...kept].map((i) => line(i, T0 + 6 * HOUR + i, false)));
  f.feed(range(20_000, 30_000).map((i) => line(i, T0 + 13 * HOUR + i * 10, true)));
  const c = k.counters();
  assert.equal(c.evicted, 15_000);
  assert.equal(c.keys, 50 + 5_000 + 10_000);
  assert.deepEqual(titleCells(k), expected([...kept, ...range(20_000, 30_000)]));
  // Every surviving key is found (deletions moved entries back along their probe runs): no new key.
  f.feed([...kept, ...range(20_000, 30_000)].map((i) => line(i, T0 + 14 * HOUR + (i % 10_000), false)));
  assert.equal(k.counters().keys, 15_050);
  assert.equal(k.counters().keysDropped, 0);
});
