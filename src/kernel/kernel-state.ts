import type { KernelCounters } from './wasm-kernel.ts';

/** The format of an exported kernel state (a checkpoint part): bump it when the encoding changes. */
export const KERNEL_STATE_FORMAT = 2; // 2: property cell extensions in the records, the duplicate filter's entries
const MAGIC = 'VGLKGRP1';
const SECTIONS = 5;

/** The names of one exported key (the kernel holds hashes, JS the names): property, title, each cell's error type. */
export type KeyNames = [property: string, title: string | null, errors: string[]];

/**
 * The state of the keys of a range of key groups: everything a kernel needs to continue them in any
 * worker that owns those groups. `records` are the kernel's exported keys (assembly/key-groups.ts),
 * `names[i]` names the i-th of them.
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
  names: KeyNames[];
  /** Records held until due (a partition ahead of event time): packed records of these groups. */
  held: Uint8Array;
  /** The duplicate filter's entries of these groups: 16-byte (u32 ring position, pad, u64 word) records. */
  dedup: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const MAGIC_BYTES = encoder.encode(MAGIC);

/** One part as bytes: magic, then five length-prefixed sections (header JSON, records, names JSON, held records, dedup entries). */
export function encodeKernelState(s: KernelGroupState): Uint8Array {
  const header = encoder.encode(JSON.stringify(s.header));
  const names = encoder.encode(JSON.stringify(s.names));
  const out = new Uint8Array(8 + 4 * SECTIONS + header.length + s.records.length + names.length + s.held.length + s.dedup.length);
  const dv = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  let p = 8;
  for (const section of [header, s.records, names, s.held, s.dedup]) {
    dv.setUint32(p, section.length, true);
    out.set(section, p + 4);
    p += 4 + section.length;
  }
  return out;
}

/** Parses a part; throws with the reason when it is not one, is truncated, or is of another format. */
export function decodeKernelState(bytes: Uint8Array): KernelGroupState {
  if (bytes.length < 8 || !MAGIC_BYTES.every((b, i) => bytes[i] === b)) throw new Error('not a Vigil kernel state part (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sections: Uint8Array[] = [];
  let p = 8;
  for (let i = 0; i < SECTIONS; i++) {
    if (p + 4 > bytes.length) {
      // A part of another format may have other sections: say so rather than "truncated".
      const format = sections.length > 0 ? formatOf(sections[0]) : undefined;
      if (format !== undefined && format !== KERNEL_STATE_FORMAT) throw new Error(`kernel state part format ${format} is not ${KERNEL_STATE_FORMAT}`);
      throw new Error('kernel state part is truncated');
    }
    const len = dv.getUint32(p, true);
    if (p + 4 + len > bytes.length) throw new Error('kernel state part is truncated');
    sections.push(bytes.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  if (p !== bytes.length) throw new Error(`kernel state part has ${bytes.length - p} bytes after its end`);
  let header: KernelGroupState['header'];
  let names: KeyNames[];
  try {
    header = JSON.parse(decoder.decode(sections[0]));
    names = JSON.parse(decoder.decode(sections[2]));
  } catch (err) {
    throw new Error(`kernel state part is damaged: ${(err as Error).message}`);
  }
  if (header.format !== KERNEL_STATE_FORMAT) throw new Error(`kernel state part format ${header.format} is not ${KERNEL_STATE_FORMAT}`);
  if (!Array.isArray(names) || names.length !== header.keys) throw new Error(`kernel state part names ${Array.isArray(names) ? names.length : '?'} keys, its header ${header.keys}`);
  return { header, records: sections[1], names, held: sections[3], dedup: sections[4] };
}

/** The format field of a header section, when it parses. */
function formatOf(header: Uint8Array): unknown {
  try {
    return (JSON.parse(decoder.decode(header)) as { format?: unknown }).format;
  } catch {
    return undefined;
  }
}
