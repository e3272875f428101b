import type { KernelCounters } from './wasm-kernel.ts';

/** The format of an exported kernel state (a checkpoint part): bump it when the encoding changes. */
export const KERNEL_STATE_FORMAT = 3; // 3: names as bytes inside each exported key (2: a names JSON section beside the records)
/** The previous format, still read (its records are converted on restore: WasmKernel.fromStates). */
export const KERNEL_STATE_FORMAT_2 = 2;
const MAGIC = 'VGLKGRP1';
/** Sections after the magic, by format: header, records, [names JSON (format 2)], held records, dedup entries. */
const SECTIONS: Record<number, number> = { 2: 5, 3: 4 };

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
  };
  records: Uint8Array;
  /** Format 2 only: the names of each record, in order. */
  names2?: KeyNames[];
  /** Records held until due (a partition ahead of event time): packed records of these groups. */
  held: Uint8Array;
  /** The duplicate filter's entries of these groups: 16-byte (u32 ring position, pad, u64 word) records. */
  dedup: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const MAGIC_BYTES = encoder.encode(MAGIC);

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

/** One part as bytes: magic, then length-prefixed sections (header JSON, records, held records, dedup entries). */
export function encodeKernelState(s: KernelGroupState): Uint8Array {
  const header = encodeKernelStateHeader(s.header);
  const sections = s.header.format === KERNEL_STATE_FORMAT_2
    ? [s.records, encoder.encode(JSON.stringify(s.names2 ?? [])), s.held, s.dedup]
    : [s.records, s.held, s.dedup];
  const out = new Uint8Array(kernelStatePartBytes(header, ...sections.map((x) => x.length)));
  writeKernelStateFrame(out, header, sections.map((x) => x.length)).forEach((at, i) => out.set(sections[i], at));
  return out;
}

/** Parses a part (format 3, or 2); throws with the reason when it is not one, is truncated, or is of another format. */
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
      if (count === 0) throw new Error(`kernel state part format ${header?.format} is not ${KERNEL_STATE_FORMAT} (nor ${KERNEL_STATE_FORMAT_2}, which this version still reads)`);
    }
  }
  if (p !== bytes.length) throw new Error(`kernel state part has ${bytes.length - p} bytes after its end`);
  const h = header!;
  if (h.format === KERNEL_STATE_FORMAT) return { header: h, records: sections[1], held: sections[2], dedup: sections[3] };
  let names: KeyNames[];
  try {
    names = JSON.parse(decoder.decode(sections[2]));
  } catch (err) {
    throw new Error(`kernel state part is damaged: ${(err as Error).message}`);
  }
  if (!Array.isArray(names) || names.length !== h.keys) throw new Error(`kernel state part names ${Array.isArray(names) ? names.length : '?'} keys, its header ${h.keys}`);
  return { header: h, records: sections[1], names2: names, held: sections[3], dedup: sections[4] };
}
