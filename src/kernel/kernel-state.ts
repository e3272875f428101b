import type { KernelCounters } from './wasm-kernel.ts';

/** The format of an exported kernel state (a checkpoint part): bump it when the encoding changes. */
export const KERNEL_STATE_FORMAT = 4; // 4: full or incremental (a removed-keys section); 3: names as bytes inside each exported key
/** Format 3 (always full, no removed-keys section), still read. */
export const KERNEL_STATE_FORMAT_3 = 3;
/** Format 2 (a names JSON section beside the records), still read (its records are converted on restore: WasmKernel.fromStates). */
export const KERNEL_STATE_FORMAT_2 = 2;
const MAGIC = 'VGLKGRP1';
/** Sections after the magic, by format: header, records, [names JSON (format 2)], held records, dedup entries, [removed keys (format 4)]. */
const SECTIONS: Record<number, number> = { 2: 5, 3: 4, 4: 5 };
/** Bytes of one removed-key entry: u64 key hash, u32 key group, u32 0 (assembly/store.ts noteRemoved). */
export const REMOVED_ENTRY_BYTES = 16;

/** Which export of which kernel a part is: an incremental part names the export it follows. */
export interface ExportId {
  /** A random id of the kernel instance (export numbers restart with every kernel). */
  kernel: string;
  seq: number;
}

/** The names of one key of a format-2 part: property, title, each cell's error type. */
export type KeyNames = [property: string, title: string | null, errors: string[]];

/**
 * The state of the keys of a range of key groups: everything a kernel needs to continue them in any
 * worker that owns those groups. `records` are the kernel's exported keys (assembly/key-groups.ts),
 * each with its names; a part of format 2 has records without names and `names2[i]` naming the i-th.
 */
export interface KernelGroupState {
  header: {
    format: number;
    /** The kernel's STATE_FORMAT_VERSION: record layouts must match. */
    stateVersion: number;
    groups: number;
    groupLo: number;
    groupHi: number;
    /** The next tick to evaluate, and the highest target reached (i64 as decimal strings; null before any). */
    nextTick: string | null;
    maxTs: string | null;
    counters: Partial<KernelCounters>;
    keys: number;
    /** The duplicate filter's ring geometry (horizon and sweep mark as decimal strings), null when it has none. */
    dedup: { mask: number; shift: number; horizon: string; swept: string } | null;
    /**
     * Format 4: 'full' (every key of the groups), or 'delta' (the keys that changed since export
     * `since` of the same kernel, and in `removed` those deleted since; held records, dedup entries,
     * clock and counters are complete in both). Absent in older formats: full.
     */
    kind?: 'full' | 'delta';
    /** Format 4: this export. */
    exportId?: ExportId;
    /** A delta: the export it applies on. */
    since?: ExportId;
  };
  records: Uint8Array;
  /** Format 2 only: the names of each record, in order. */
  names2?: KeyNames[];
  /** Records held until due (a partition ahead of event time): packed records of these groups. */
  held: Uint8Array;
  /** The duplicate filter's entries of these groups: 16-byte (u32 ring position, pad, u64 word) records. */
  dedup: Uint8Array;
  /** A delta: the keys deleted since `since`, REMOVED_ENTRY_BYTES each; empty for a full part. */
  removed: Uint8Array;
}

/** Whether a part is incremental (must be applied on its base: applyDeltas). */
export function isDelta(s: KernelGroupState): boolean {
  return s.header.kind === 'delta';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const MAGIC_BYTES = encoder.encode(MAGIC);
const EMPTY = new Uint8Array(0);

/** The bytes of the header section of a part. */
export function encodeKernelStateHeader(header: KernelGroupState['header']): Uint8Array {
  return encoder.encode(JSON.stringify(header));
}

/** Bytes of a part of `header` (encoded) and sections of these lengths; writeKernelStateFrame lays it out. */
export function kernelStatePartBytes(header: Uint8Array, ...sections: number[]): number {
  return 8 + 4 * (1 + sections.length) + header.length + sections.reduce((a, b) => a + b, 0);
}

/**
 * Writes the magic, the header section and the length of each further section into `out`; returns
 * the offset of each further section's bytes, for the caller to fill (the kernel exporter copies
 * its pages straight in, with no intermediate buffer).
 */
export function writeKernelStateFrame(out: Uint8Array, header: Uint8Array, sections: number[]): number[] {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(MAGIC_BYTES, 0);
  dv.setUint32(8, header.length, true);
  out.set(header, 12);
  let p = 12 + header.length;
  const at: number[] = [];
  for (const len of sections) {
    dv.setUint32(p, len, true);
    at.push(p + 4);
    p += 4 + len;
  }
  return at;
}

/** One part as bytes: magic, then length-prefixed sections (header JSON, records, held records, dedup entries, removed keys). */
export function encodeKernelState(s: KernelGroupState): Uint8Array {
  const header = encodeKernelStateHeader(s.header);
  const sections = s.header.format === KERNEL_STATE_FORMAT_2
    ? [s.records, encoder.encode(JSON.stringify(s.names2 ?? [])), s.held, s.dedup]
    : s.header.format === KERNEL_STATE_FORMAT_3 ? [s.records, s.held, s.dedup] : [s.records, s.held, s.dedup, s.removed];
  const out = new Uint8Array(kernelStatePartBytes(header, ...sections.map((x) => x.length)));
  writeKernelStateFrame(out, header, sections.map((x) => x.length)).forEach((at, i) => out.set(sections[i], at));
  return out;
}

/** Parses a part (format 4, or 3 or 2); throws with the reason when it is not one, is truncated, or is of another format. */
export function decodeKernelState(bytes: Uint8Array): KernelGroupState {
  if (bytes.length < 8 || !MAGIC_BYTES.every((b, i) => bytes[i] === b)) throw new Error('not a Vigil kernel state part (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sections: Uint8Array[] = [];
  let count = 1;
  let header: KernelGroupState['header'] | undefined;
  let p = 8;
  for (let i = 0; i < count; i++) {
    if (p + 4 > bytes.length) throw new Error('kernel state part is truncated');
    const len = dv.getUint32(p, true);
    if (p + 4 + len > bytes.length) throw new Error('kernel state part is truncated');
    sections.push(bytes.subarray(p + 4, p + 4 + len));
    p += 4 + len;
    if (i === 0) {
      // The header says the format, and the format how many sections follow.
      try {
        header = JSON.parse(decoder.decode(sections[0])) as KernelGroupState['header'];
      } catch (err) {
        throw new Error(`kernel state part is damaged: ${(err as Error).message}`);
      }
      count = SECTIONS[header?.format as number] ?? 0;
      if (count === 0) throw new Error(`kernel state part format ${header?.format} is not ${KERNEL_STATE_FORMAT} (nor ${KERNEL_STATE_FORMAT_3} or ${KERNEL_STATE_FORMAT_2}, which this version still reads)`);
    }
  }
  if (p !== bytes.length) throw new Error(`kernel state part has ${bytes.length - p} bytes after its end`);
  const h = header!;
  if (h.format === KERNEL_STATE_FORMAT) {
    if (h.kind !== 'full' && h.kind !== 'delta') throw new Error(`kernel state part is damaged: kind ${JSON.stringify(h.kind)}`);
    if (sections[4].length % REMOVED_ENTRY_BYTES !== 0 || (h.kind === 'full' && sections[4].length > 0)) throw new Error('kernel state part is damaged: its removed-keys section');
    return { header: h, records: sections[1], held: sections[2], dedup: sections[3], removed: sections[4] };
  }
  if (h.format === KERNEL_STATE_FORMAT_3) return { header: { ...h, kind: 'full' }, records: sections[1], held: sections[2], dedup: sections[3], removed: EMPTY };
  let names: KeyNames[];
  try {
    names = JSON.parse(decoder.decode(sections[2]));
  } catch (err) {
    throw new Error(`kernel state part is damaged: ${(err as Error).message}`);
  }
  if (!Array.isArray(names) || names.length !== h.keys) throw new Error(`kernel state part names ${Array.isArray(names) ? names.length : '?'} keys, its header ${h.keys}`);
  return { header: { ...h, kind: 'full' }, records: sections[1], names2: names, held: sections[3], dedup: sections[4], removed: EMPTY };
}

/** Where the fields of an exported key are (the kernel's E_* and K_* exports, assembly/key-groups.ts and store.ts). */
export interface ExportedKeyLayout {
  group: number; cells: number; names: number; header: number; key: number; cell: number; ext: number;
  /** Offsets inside the key record (after the export header): its hash (u64) and scope (u8). */
  keyHash: number; keyScope: number;
  /** Offset inside an exported cell of its incident's opening time (i64, 0 for a cell that never opened). */
  cellOpenedAt: number;
}

/** Bytes of the exported key at `p`: header, key, cells, their extensions, names. */
export function exportedKeySize(dv: DataView, p: number, L: ExportedKeyLayout): number {
  const cells = dv.getUint32(p + L.cells, true);
  return L.header + L.key + cells * (L.cell + dv.getUint32(p + L.ext, true)) + dv.getUint32(p + L.names, true);
}

/**
 * Parts as they are imported: every incremental part applied, in order, on the full part of the same
 * key-group range before it (its removed keys deleted, its changed keys replacing or adding theirs;
 * its clock, counters, held records and dedup entries replacing the base's), keeping the keys of key
 * groups [lo, hi) (the importer's). Full parts pass through. Throws when a delta has no base before it,
 * or does not follow the export its base chain ends with (a link of the chain is missing).
 */
export function applyDeltas(parts: KernelGroupState[], L: ExportedKeyLayout, lo: number, hi: number): KernelGroupState[] {
  if (!parts.some(isDelta)) return parts;
  const out: KernelGroupState[] = [];
  const chains = new Map<string, { at: number; last: ExportId | undefined; keys: Map<bigint, Uint8Array> | null }>();
  for (const s of parts) {
    const h = s.header;
    const range = `${h.groupLo}..${h.groupHi - 1}`;
    if (!isDelta(s)) {
      out.push(s);
      chains.set(range, { at: out.length - 1, last: h.exportId, keys: null });
      continue;
    }
    const chain = chains.get(range);
    if (!chain) throw new Error(`an incremental kernel state part of key groups ${range} comes without its base`);
    if (!chain.last || !h.since || chain.last.kernel !== h.since.kernel || chain.last.seq !== h.since.seq) {
      throw new Error(`an incremental kernel state part of key groups ${range} applies on export ${JSON.stringify(h.since)}, its chain ends with ${JSON.stringify(chain.last ?? null)}`);
    }
    const base = out[chain.at];
    chain.keys ??= recordsByHash(base, L, lo, hi);
    const rd = new DataView(s.removed.buffer, s.removed.byteOffset, s.removed.byteLength);
    for (let p = 0; p < s.removed.length; p += REMOVED_ENTRY_BYTES) chain.keys.delete(rd.getBigUint64(p, true));
    for (const [hash, rec] of recordsByHash(s, L, lo, hi)) chain.keys.set(hash, rec);
    chain.last = h.exportId;
    out[chain.at] = { header: { ...h, kind: 'full', since: undefined }, records: EMPTY, held: s.held, dedup: s.dedup, removed: EMPTY };
  }
  for (const chain of chains.values()) {
    if (!chain.keys) continue;
    // Properties before titles: an importer needs a title's property first.
    const recs = [...chain.keys.values()];
    const ordered = [...recs.filter((r) => r[L.header + L.keyScope] === 0), ...recs.filter((r) => r[L.header + L.keyScope] !== 0)];
    const records = new Uint8Array(ordered.reduce((a, r) => a + r.length, 0));
    let w = 0;
    for (const r of ordered) { records.set(r, w); w += r.length; }
    const s = out[chain.at];
    out[chain.at] = { ...s, header: { ...s.header, keys: ordered.length }, records };
  }
  return out;
}

/** The exported keys of a (format 3 or 4) part in key groups [lo, hi), by key hash, in part order. */
function recordsByHash(s: KernelGroupState, L: ExportedKeyLayout, lo: number, hi: number): Map<bigint, Uint8Array> {
  if (s.names2) throw new Error('an incremental kernel state part cannot apply on a part of format 2');
  const m = new Map<bigint, Uint8Array>();
  const r = s.records;
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  for (let p = 0; p < r.length;) {
    if (p + L.header + L.key > r.length) throw new Error('kernel state part is truncated inside a key');
    const size = exportedKeySize(dv, p, L);
    if (p + size > r.length) throw new Error('kernel state part is truncated inside a key');
    const group = dv.getUint32(p + L.group, true);
    if (group >= lo && group < hi) m.set(dv.getBigUint64(p + L.header + L.keyHash, true), r.subarray(p, p + size));
    p += size;
  }
  return m;
}
