// Kernels fed as the engine feeds them, for the tests of incremental exports and checkpoint chains:
// a stream in which keys come and go, exports full or incremental, restores into any worker count,
// and a canonical form of a set of kernels' state to compare restores byte for byte.
import { WasmKernel } from '../../src/kernel/wasm-kernel.ts';
import { decodeKernelState, encodeKernelState, type KernelGroupState } from '../../src/kernel/kernel-state.ts';
import { groupRange } from '../../src/kernel/key-groups.ts';
import type { Verdict } from '../../src/kernel/verdict.ts';
import type { CheckpointMeta } from '../../src/engine/checkpoint-store.ts';
import { FAST_PARAMS, cutSteps, generateLines, type RunState, type Step } from './detection-streams.ts';

export const GROUPS = 32;
const encoder = new TextEncoder();

export function init(w: number, workers: number) {
  const r = groupRange(w, workers, GROUPS);
  return { maxKeys: 4096, maxCells: 16384, chunkBytes: 1 << 20, groupLo: r.lo, groupHi: r.hi, groups: GROUPS, params: FAST_PARAMS };
}

export function kernels(workers: number): WasmKernel[] {
  return Array.from({ length: workers }, (_, w) => WasmKernel.create(init(w, workers), true));
}

export function feed(ks: WasmKernel[], steps: Step[], state: RunState): Verdict[] {
  const out: Verdict[] = [];
  for (const step of steps) {
    if ('declare' in step) { state.clock.declare(step.declare); continue; }
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

export function finish(ks: WasmKernel[], state: RunState): Verdict[] {
  const target = state.clock.finalTarget();
  return ks.flatMap((k) => [...k.advance(target), ...k.finish()]);
}

/** Every kernel's part (full, or with `delta` the changes since its previous export), through bytes. */
export function exportAll(ks: WasmKernel[], delta: boolean): KernelGroupState[] {
  return ks.map((k) => decodeKernelState(encodeKernelState(k.exportState(undefined, undefined, delta))));
}

export function restoreInto(states: KernelGroupState[], workers: number): WasmKernel[] {
  return Array.from({ length: workers }, (_, w) => WasmKernel.fromStates(init(w, workers), states, GROUPS, true));
}

/**
 * The state of a set of kernels, canonical: every exported key's bytes by key hash (key indices, and
 * so the order of an export, depend on the order keys were created or imported), the held records,
 * dedup entries, clock and counters of each kernel.
 */
/** The key hashes of a part's records, in order. */
export function canonicalHashes(s: KernelGroupState): string[] {
  const out: string[] = [];
  const dv = new DataView(s.records.buffer, s.records.byteOffset, s.records.byteLength);
  for (let p = 0; p < s.records.length;) {
    const cells = dv.getUint32(p + 4, true);
    out.push(dv.getBigUint64(p + 24, true).toString(16));
    p += 24 + 192 + cells * (256 + dv.getUint32(p + 20, true)) + dv.getUint32(p + 16, true);
  }
  return out;
}

/**
 * A part's exported keys by key hash (hex of each record), and whether every property record comes
 * before every title record (an importer needs a title's property first).
 */
export function partRecords(s: KernelGroupState): { keys: Map<string, string>; propertiesFirst: boolean } {
  const keys = new Map<string, string>();
  const dv = new DataView(s.records.buffer, s.records.byteOffset, s.records.byteLength);
  let titleSeen = false;
  let propertiesFirst = true;
  for (let p = 0; p < s.records.length;) {
    const cells = dv.getUint32(p + 4, true);
    const size = 24 + 192 + cells * (256 + dv.getUint32(p + 20, true)) + dv.getUint32(p + 16, true);
    if (dv.getBigUint64(p + 8, true) !== 0n) titleSeen = true;
    else if (titleSeen) propertiesFirst = false;
    keys.set(dv.getBigUint64(p + 24, true).toString(16), Buffer.from(s.records.subarray(p, p + size)).toString('hex'));
    p += size;
  }
  return { keys, propertiesFirst };
}

export function canonical(ks: WasmKernel[]): { keys: Map<string, string>; rest: unknown[] } {
  const keys = new Map<string, string>();
  const rest: unknown[] = [];
  for (const k of ks) {
    const s = k.exportState();
    for (const [hash, bytes] of partRecords(s).keys) keys.set(hash, bytes);
    const { nextTick, maxTs, counters, dedup, groupLo, groupHi } = s.header;
    rest.push({ nextTick, maxTs, counters, dedup, groupLo, groupHi, held: Buffer.from(s.held).toString('hex'), dedupEntries: Buffer.from(s.dedup).toString('hex') });
  }
  return { keys, rest };
}

/**
 * A stream in which keys come and go: titles (and a property) seen only in its first quarter, idle
 * long enough to be evicted between checkpoints; titles first seen in its second half (created where
 * evicted keys were); a property that fails hard in [0.15, 0.19) of the stream (after a healthy stretch) and then goes silent
 * with its incident open (evaluated every tick, with no events, until it expires); next to the
 * generator's steady properties.
 */
export function stream(): Step[] {
  const lines = generateLines({ seed: 91, events: 40_000, properties: 8, titlesPerProperty: 4, ratePerSec: 60, startMs: Date.UTC(2026, 6, 3, 20) });
  const n = lines.length;
  const churned = lines.map((l, i) => {
    const e = JSON.parse(l) as Record<string, unknown>;
    if (i < n >> 2 && i % 11 === 0) e.property_id = 'gone-prop';
    else if (i < n >> 2 && i % 7 === 0) e.video_title = `gone-${i % 23}`;
    else if (i >= n * 0.08 && i < n * 0.19 && i % 3 === 0) {
      e.property_id = 'lapse';
      e.error_type = i >= n * 0.15 && i % 2 === 0 ? 'TIMEOUT' : null;
    } else if (i >= n >> 1 && i % 9 === 0) e.video_title = `late-${i % 13}`;
    else return l;
    return JSON.stringify(e);
  });
  return cutSteps(churned, 91, 900);
}

/**
 * The state a set of kernels exports, in a form that does not depend on how its key groups are spread
 * over kernels: every key's bytes by hash, the held records and the duplicate filter's entries (ring
 * positions left out: entries of groups sharing a ring push each other along), sorted, the counters
 * summed, and the clock and sweep mark of the duplicate filter each kernel has.
 */
export function layoutFree(ks: WasmKernel[]) {
  const keys = new Map<string, string>();
  const held: string[] = [];
  const dedup: string[] = [];
  const counters: Record<string, number> = {};
  const clock = new Set<string>();
  const swept = new Set<string>();
  for (const k of ks) {
    const s = k.exportState();
    const dv = new DataView(s.records.buffer, s.records.byteOffset, s.records.byteLength);
    for (let p = 0; p < s.records.length;) {
      const size = 24 + 192 + dv.getUint32(p + 4, true) * (256 + dv.getUint32(p + 20, true)) + dv.getUint32(p + 16, true);
      keys.set(dv.getBigUint64(p + 24, true).toString(16), Buffer.from(s.records.subarray(p, p + size)).toString('hex'));
      p += size;
    }
    const hv = new DataView(s.held.buffer, s.held.byteOffset, s.held.byteLength);
    for (let p = 0; p < s.held.length;) {
      const size = 56 + ((hv.getUint16(p + 40, true) + hv.getUint16(p + 42, true) + hv.getUint16(p + 44, true) + 7) & ~7);
      held.push(Buffer.from(s.held.subarray(p, p + size)).toString('hex'));
      p += size;
    }
    const ev = new DataView(s.dedup.buffer, s.dedup.byteOffset, s.dedup.byteLength);
    for (let p = 0; p < s.dedup.length; p += 16) dedup.push(ev.getBigUint64(p + 8, true).toString(16));
    for (const [n, v] of Object.entries(s.header.counters)) counters[n] = (counters[n] ?? 0) + (v ?? 0);
    clock.add(`${s.header.nextTick} ${s.header.maxTs}`);
    if (s.header.dedup) swept.add(s.header.dedup.swept);
  }
  return { keys: [...keys.entries()].sort(), held: held.sort(), dedup: dedup.sort(), counters, clock: [...clock], swept: [...swept] };
}

export const keysOf = (ks: WasmKernel[]) => ks.reduce((a, k) => a + k.counters().keys, 0);


/** Checkpoint metadata of no source, for tests of the store's parts alone. */
export const NO_SOURCE_META: CheckpointMeta = { eventTime: { reached: null, streams: [] } as unknown as CheckpointMeta['eventTime'], positions: {}, source: null, latestVerdictMs: null };

/** Each worker's part as the store plans it (incremental where it may be), encoded as a worker sends it. */
export function partsOf(ks: WasmKernel[], plan: boolean[]) {
  return ks.map((k, w) => {
    const bytes = k.exportPart(undefined, undefined, plan[w]);
    const h = decodeKernelState(bytes).header;
    return { bytes, groupLo: h.groupLo, groupHi: h.groupHi };
  });
}
