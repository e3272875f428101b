import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DetectionParams } from './detection-params.ts';
import { paramSlots, profileSlots, profiledProperties, effectiveScopes } from './detection-params.ts';
import type { Scope, Verdict, VerdictKind } from './verdict.ts';
import { referenceDecode } from '../ingest/reference-decode.ts';
import { DECODE_OK } from '../ingest/reject-reason.ts';
import type { FieldNames } from '../ingest/field-names.ts';
import { DUMP_RECORD_FIELDS, type CellFigures, type CellFiguresPage } from './cell-figures.ts';
import { DEFAULT_FIELD_NAMES } from '../ingest/field-names.ts';

const KINDS: VerdictKind[] = ['open', 'update', 'resolve', 'expire'];
const SCOPES: Scope[] = ['property', 'title'];
const FIELD_ORDER: (keyof FieldNames)[] = ['viewId', 'propertyId', 'videoTitle', 'errorType', 'ts'];
const SNAPSHOT_MAGIC = 'VIGILSNP';
const SNAPSHOT_FORMAT = 1;
const NO_TS = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const STATE_MAGIC = 0x4b4c4756;

/** Byte offsets of the f64 counters in the kernel's state header (assembly/state.ts). */
const COUNTER_OFFSETS = { events: 104, late: 112, lateDropped: 120, keysDropped: 128, cellsDropped: 136, evicted: 144 } as const;
export type KernelCounters = Record<keyof typeof COUNTER_OFFSETS, number> & { keys: number; cells: number; open: number };

/** How a kernel instance is sized and configured. */
export interface KernelInit {
  maxKeys: number;
  maxCells: number;
  /** Largest chunk of NDJSON bytes one decode call takes. */
  chunkBytes: number;
  groupLo: number;
  groupHi: number;
  params: DetectionParams;
  fieldNames?: FieldNames;
  maxLineBytes?: number;
}

/** What one chunk decoded into. */
export interface DecodedChunk {
  /** Packed records per owner worker (copies, safe to transfer). */
  parts: Uint8Array[];
  /** Highest event time in the chunk, or null when it had no valid record. */
  maxTs: number | null;
  records: number;
  /** Lines per decode status (index = status code of assembly/decode-status.ts). */
  statusCounts: number[];
  /** A few rejected lines, cut to 200 bytes, for the log. */
  samples: Array<{ status: number; line: string }>;
}

interface KernelExports {
  memory: WebAssembly.Memory;
  init(maxKeys: number, maxCells: number, chunkBytes: number, lo: number, hi: number): number;
  setParam(i: number, v: number): void;
  setProfileParam(p: number, slot: number, v: number): void;
  setProfileHash(p: number, hash: bigint): void;
  clearProfileHashes(): void;
  rebindProfiles(): void;
  setFieldName(field: number, ptr: number, len: number): void;
  setMaxLineBytes(n: number): void;
  ingestPacked(ptr: number, len: number, baseMax: bigint, chunkMax: bigint, cap: bigint, ownCap: number): void;
  advanceWatermark(ts: bigint): void;
  finish(): void;
  decodeChunk(len: number, owners: number, groups: number, fixups: number): number;
  inputPtr(): number; inputCap(): number; fixupPtr(): number; fixupCap(): number;
  ownerOffset(o: number): number; ownerLength(o: number): number; outputPtr(): number;
  chunkMaxTs(): bigint; chunkRecords(): number; chunkFallbacks(): number;
  fallbackStart(i: number): number; fallbackEnd(i: number): number;
  statusCount(s: number): number; sampleCount(): number; sampleStart(i: number): number;
  sampleEnd(i: number): number; sampleStatus(i: number): number;
  groupOf(h: bigint, groups: number): number;
  hashBytes(ptr: number, len: number, seed: bigint): bigint;
  keyCount(): number; cellCount(): number; openCount(): number; maxTs(): bigint; heapTop(): number;
  counter(off: number): number; stateVersion(): number; stateMagic(): number; supportedStateVersion(): number;
  dumpCells(cursor: number, maxRecords: number, out: number): number; dumpNextCursor(): number; dumpAtMs(): bigint; dumpFields(): number;
}

let compiled: { release?: WebAssembly.Module; debug?: WebAssembly.Module } = {};

/** The compiled kernel module (build/kernel.wasm, or the debug build with assertions), compiled once per thread. */
export function kernelModule(debug = false): WebAssembly.Module {
  const which = debug ? 'debug' : 'release';
  let m = compiled[which];
  if (!m) {
    const file = fileURLToPath(new URL(`../../build/kernel${debug ? '.debug' : ''}.wasm`, import.meta.url));
    m = new WebAssembly.Module(readFileSync(file));
    compiled = { ...compiled, [which]: m };
  }
  return m;
}

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** One instance of the WASM kernel and the names of its keys: decode chunks, ingest packed records, snapshot. */
export class WasmKernel {
  private readonly x: KernelExports;
  private verdicts: Verdict[] = [];
  private keyProperty: string[] = [];
  private keyTitle: (string | null)[] = [];
  private cellError: string[] = [];
  private readonly errorNames = new Map<string, string>();
  readonly init: KernelInit;
  private readonly fieldNames: FieldNames;
  private readonly maxLineBytes: number;
  private debug: boolean;

  private constructor(init: KernelInit, debug: boolean) {
    this.debug = debug;
    this.init = init;
    this.fieldNames = init.fieldNames ?? DEFAULT_FIELD_NAMES;
    this.maxLineBytes = init.maxLineBytes ?? 65536;
    const instance = new WebAssembly.Instance(kernelModule(debug), {
      env: {
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new Error(`kernel assertion failed at ${line}:${col}`);
        },
        verdict: this.onVerdict.bind(this),
        newKey: this.onNewKey.bind(this),
        newCell: this.onNewCell.bind(this),
      },
    });
    this.x = instance.exports as unknown as KernelExports;
  }

  /** Creates and initializes a kernel; throws when memory cannot be had. */
  static create(init: KernelInit, debug = false): WasmKernel {
    const k = new WasmKernel(init, debug);
    const rc = k.x.init(init.maxKeys, init.maxCells, init.chunkBytes, init.groupLo, init.groupHi);
    if (rc !== 0) throw new Error(`kernel init failed (code ${rc}): not enough memory for ${init.maxKeys} keys`);
    k.configure();
    return k;
  }

  private configure(): void {
    this.writeParams(this.init.params);
    this.x.setMaxLineBytes(this.maxLineBytes);
    FIELD_ORDER.forEach((f, i) => {
      const bytes = encoder.encode(this.fieldNames[f]);
      const ptr = this.x.fixupPtr();
      new Uint8Array(this.x.memory.buffer, ptr, bytes.length).set(bytes);
      this.x.setFieldName(i, ptr, bytes.length);
    });
  }

  /**
   * Writes the global parameters (profile 0) and one profile per property with parameters of its
   * own (profile i + 1 for the i-th id in sorted order), binds each to the property's hash, and
   * gives every tracked property key its profile.
   */
  private writeParams(params: DetectionParams): void {
    const x = this.x;
    for (const [i, v] of paramSlots(params)) x.setParam(i, v);
    x.clearProfileHashes();
    profiledProperties(params).forEach((id, i) => {
      for (const [slot, v] of profileSlots(effectiveScopes(params, id))) x.setProfileParam(i + 1, slot, v);
      x.setProfileHash(i + 1, this.propertyHash(id));
    });
    x.rebindProfiles();
  }

  /** Changes detection parameters; effective from the next evaluation. */
  setParams(params: DetectionParams): void {
    (this.init as { params: DetectionParams }).params = params;
    this.writeParams(params);
  }

  private onNewKey(key: number, scope: number, propPtr: number, propLen: number, titlePtr: number, titleLen: number): void {
    const mem = new Uint8Array(this.x.memory.buffer);
    this.keyProperty[key] = utf8.decode(mem.subarray(propPtr, propPtr + propLen));
    this.keyTitle[key] = scope === 1 ? utf8.decode(mem.subarray(titlePtr, titlePtr + titleLen)) : null;
  }

  private onNewCell(cell: number, _key: number, errPtr: number, errLen: number): void {
    const s = utf8.decode(new Uint8Array(this.x.memory.buffer, errPtr, errLen));
    let interned = this.errorNames.get(s);
    if (interned === undefined) { interned = s; this.errorNames.set(s, s); }
    this.cellError[cell] = interned;
  }

  private onVerdict(
    kind: number, scope: number, key: number, cell: number, atMs: number, errorRatio: number, thresholdRatio: number,
    baselineRatio: number, windowViews: number, windowFailures: number, windowSpanMs: number, viewsPerHour: number,
    impactedViews: number, openedAtMs: number,
  ): void {
    const s = SCOPES[scope];
    this.verdicts.push({
      kind: KINDS[kind], scope: s, propertyId: this.keyProperty[key], videoTitle: this.keyTitle[key],
      errorType: this.cellError[cell], atMs, errorRatio, thresholdRatio, baselineRatio, windowViews, windowFailures,
      windowSpanMs, minWindowViews: effectiveScopes(this.init.params, this.keyProperty[key])[s].minViews, viewsPerHour, impactedViews, openedAtMs,
    });
  }

  private takeVerdicts(): Verdict[] {
    const v = this.verdicts;
    this.verdicts = [];
    return v;
  }

  /** Decodes whole NDJSON lines into packed records per owner; lines the WASM leaves to JS are decided by the reference decoder. */
  decodeChunk(bytes: Uint8Array, owners: number, groups: number): DecodedChunk {
    const x = this.x;
    if (bytes.length > x.inputCap()) throw new Error(`chunk of ${bytes.length} bytes exceeds the kernel's ${x.inputCap()}`);
    new Uint8Array(x.memory.buffer, x.inputPtr(), bytes.length).set(bytes);
    x.decodeChunk(bytes.length, owners, groups, 0);
    const fallbacks = x.chunkFallbacks();
    if (fallbacks > 0) {
      this.writeFixups(bytes, fallbacks);
      x.decodeChunk(bytes.length, owners, groups, fallbacks);
    }
    const mem = new Uint8Array(x.memory.buffer);
    const out = x.outputPtr();
    const parts: Uint8Array[] = [];
    for (let o = 0; o < owners; o++) {
      const off = out + x.ownerOffset(o);
      parts.push(mem.slice(off, off + x.ownerLength(o)));
    }
    const statusCounts: number[] = [];
    for (let s = 0; s < 16; s++) statusCounts.push(x.statusCount(s));
    const samples: DecodedChunk['samples'] = [];
    for (let i = 0; i < x.sampleCount(); i++) {
      const start = x.sampleStart(i);
      const end = Math.min(x.sampleEnd(i), start + 200);
      samples.push({ status: x.sampleStatus(i), line: utf8.decode(bytes.subarray(start, end)) });
    }
    const mx = x.chunkMaxTs();
    return { parts, maxTs: mx === NO_TS ? null : Number(mx), records: x.chunkRecords(), statusCounts, samples };
  }

  private writeFixups(bytes: Uint8Array, count: number): void {
    const x = this.x;
    const lines: Uint8Array[] = [];
    for (let i = 0; i < count; i++) lines.push(bytes.slice(x.fallbackStart(i), x.fallbackEnd(i)));
    let view = new DataView(x.memory.buffer);
    let p = x.fixupPtr();
    const cap = p + x.fixupCap();
    for (const line of lines) {
      const r = referenceDecode(line, this.maxLineBytes, this.fieldNames);
      const prop = r.status === DECODE_OK ? r.propertyId! : new Uint8Array(0);
      const title = r.status === DECODE_OK && r.videoTitle ? r.videoTitle : null;
      const err = r.status === DECODE_OK && r.errorType ? r.errorType : null;
      const len = prop.length + (title?.length ?? 0) + (err?.length ?? 0);
      if (p + 24 + len + 8 > cap) throw new Error('fallback decisions exceed the fixup region');
      view = new DataView(x.memory.buffer);
      view.setInt32(p, r.status, true);
      view.setInt32(p + 4, prop.length, true);
      view.setInt32(p + 8, title ? title.length : -1, true);
      view.setInt32(p + 12, err ? err.length : -1, true);
      view.setBigInt64(p + 16, BigInt(r.status === DECODE_OK ? r.ts! : 0), true);
      const mem = new Uint8Array(x.memory.buffer);
      let q = p + 24;
      mem.set(prop, q); q += prop.length;
      if (title) { mem.set(title, q); q += title.length; }
      if (err) { mem.set(err, q); q += err.length; }
      p += 24 + ((len + 7) & ~7);
    }
  }

  /**
   * Applies packed records for this worker's keys (an empty part still advances event time, as
   * every worker must at each chunk) and returns the verdicts they caused. `capTs` bounds how far
   * event time may advance (the event time the other source partitions still catching up have
   * reached; null: no cap, -Infinity: not at all yet), and with `ownCap` so does the chunk's own
   * partition: record by record, its prefix maximum.
   */
  ingest(part: Uint8Array, baseMaxTs: number | null, chunkMaxTs: number | null, capTs: number | null = null, ownCap = false): Verdict[] {
    const x = this.x;
    if (part.length > x.inputCap() * 4) throw new Error('packed part larger than the kernel can take');
    const cap = capTs === null || capTs === Infinity ? I64_MAX : capTs === -Infinity ? NO_TS : BigInt(capTs);
    // The decode staging area is free between calls: reuse the fixup+input space as the landing zone.
    const ptr = x.outputPtr();
    new Uint8Array(x.memory.buffer, ptr, part.length).set(part);
    x.ingestPacked(ptr, part.length, toI64(baseMaxTs), toI64(chunkMaxTs), cap, ownCap ? 1 : 0);
    return this.takeVerdicts();
  }

  /** Advances event time with no new records (idle source). */
  advanceWatermark(maxTs: number): Verdict[] {
    this.x.advanceWatermark(BigInt(maxTs));
    return this.takeVerdicts();
  }

  /** End of input: evaluates up to the last event. */
  finish(): Verdict[] {
    this.x.finish();
    return this.takeVerdicts();
  }

  /** The kernel's counters. */
  counters(): KernelCounters {
    const c = {} as KernelCounters;
    for (const [name, off] of Object.entries(COUNTER_OFFSETS)) c[name as keyof typeof COUNTER_OFFSETS] = this.x.counter(off);
    c.keys = this.x.keyCount();
    c.cells = this.x.cellCount();
    c.open = this.x.openCount();
    return c;
  }

  /**
   * Figures of up to maxRecords live cells from cell index `cursor` on (optionally of one property),
   * read without changing any state; page with the returned nextCursor until it is -1.
   */
  dumpPage(cursor: number, maxRecords: number, propertyId?: string): CellFiguresPage {
    const x = this.x;
    if (x.dumpFields() !== DUMP_RECORD_FIELDS) throw new Error(`kernel dump records have ${x.dumpFields()} fields, expected ${DUMP_RECORD_FIELDS}`);
    // The decode staging area is free between calls (as for ingest): bound the page by its size.
    const cap = Math.floor((x.inputCap() * 4) / (DUMP_RECORD_FIELDS * 8));
    const n = x.dumpCells(cursor, Math.max(1, Math.min(maxRecords, cap)), x.outputPtr());
    const atMs = Number(x.dumpAtMs());
    const f = new Float64Array(x.memory.buffer, x.outputPtr(), n * DUMP_RECORD_FIELDS);
    const figures: CellFigures[] = [];
    for (let i = 0; i < n; i++) {
      const o = i * DUMP_RECORD_FIELDS;
      const key = f[o];
      if (propertyId !== undefined && this.keyProperty[key] !== propertyId) continue;
      const open = f[o + 3] === 1;
      figures.push({
        scope: SCOPES[f[o + 2]], property_id: this.keyProperty[key], video_title: this.keyTitle[key], error_type: this.cellError[f[o + 1]],
        at_ms: atMs, open, window_views: f[o + 4], window_failures: f[o + 5], error_ratio: f[o + 4] > 0 ? f[o + 5] / f[o + 4] : 0,
        window_span_ms: f[o + 6], recent_views: f[o + 7], recent_failures: f[o + 8], recent_error_ratio: f[o + 7] > 0 ? f[o + 8] / f[o + 7] : 0,
        baseline_ratio: f[o + 10], threshold_ratio: f[o + 11], recent_threshold_ratio: f[o + 12],
        open_threshold_ratio: open ? f[o + 13] : null, open_baseline_ratio: open ? f[o + 14] : null, opened_at_ms: open ? f[o + 15] : null,
        impacted_views: f[o + 16], warm: f[o + 17] === 1, hot: f[o + 18] === 1, last_event_ts: f[o + 19],
      });
    }
    return { figures, nextCursor: x.dumpNextCursor() };
  }

  /** Bytes of linear memory in use (the size of a snapshot's body). */
  memoryBytes(): number {
    return this.x.heapTop();
  }

  /** Key group of a property id, as the decoder computes it (for routing keyed records). */
  groupOfProperty(propertyId: string, groups: number): number {
    return this.x.groupOf(this.propertyHash(propertyId), groups);
  }

  /** The hash of a property id, as the decoder computes it (the property key's hash). */
  private propertyHash(propertyId: string): bigint {
    const bytes = encoder.encode(propertyId);
    if (bytes.length > this.x.inputCap()) throw new Error(`property id of ${bytes.length} bytes is longer than any record can hold`);
    const ptr = this.x.inputPtr();
    new Uint8Array(this.x.memory.buffer, ptr, bytes.length).set(bytes);
    return this.x.hashBytes(ptr, bytes.length, 0x5049n);
  }

  /** A snapshot: a JSON header (format, ranges, parameters, names) and a copy of linear memory. */
  snapshot(): Uint8Array {
    const used = this.x.heapTop();
    const header = encoder.encode(JSON.stringify({
      format: SNAPSHOT_FORMAT,
      stateVersion: this.x.stateVersion(),
      build: this.debug ? 'debug' : 'release',
      init: this.init,
      memoryBytes: used,
      keyProperty: this.keyProperty,
      keyTitle: this.keyTitle,
      cellError: this.cellError,
    }));
    const out = new Uint8Array(8 + 4 + header.length + used);
    out.set(encoder.encode(SNAPSHOT_MAGIC), 0);
    new DataView(out.buffer).setUint32(8, header.length, true);
    out.set(header, 12);
    out.set(new Uint8Array(this.x.memory.buffer, 0, used), 12 + header.length);
    return out;
  }

  /** Rebuilds a kernel from a snapshot; throws with a clear message on a foreign or incompatible snapshot. */
  static restore(snapshot: Uint8Array, debug = false): WasmKernel {
    if (snapshot.length < 12 || utf8.decode(snapshot.subarray(0, 8)) !== SNAPSHOT_MAGIC) {
      throw new Error('not a Vigil kernel snapshot (bad magic)');
    }
    const headerLen = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength).getUint32(8, true);
    if (12 + headerLen > snapshot.length) throw new Error(`snapshot header of ${headerLen} bytes exceeds the snapshot (${snapshot.length} bytes): truncated or damaged`);
    let header;
    try {
      header = JSON.parse(utf8.decode(snapshot.subarray(12, 12 + headerLen)));
    } catch (err) {
      throw new Error(`snapshot header is damaged: ${(err as Error).message}`);
    }
    if (header === null || typeof header !== 'object') throw new Error('snapshot header is damaged: not an object');
    if (header.format !== SNAPSHOT_FORMAT) throw new Error(`snapshot format ${header.format} is not supported (expected ${SNAPSHOT_FORMAT})`);
    if ((header.build ?? 'release') !== (debug ? 'debug' : 'release')) {
      throw new Error(`snapshot was written by the ${header.build} kernel build and cannot be restored into the ${debug ? 'debug' : 'release'} build`);
    }
    const body = snapshot.subarray(12 + headerLen);
    if (body.length !== header.memoryBytes) throw new Error(`snapshot body is ${body.length} bytes, header says ${header.memoryBytes}: truncated or damaged`);
    const k = new WasmKernel(header.init as KernelInit, debug);
    const supported = k.x.supportedStateVersion();
    if (header.stateVersion !== supported) throw new Error(`snapshot state version ${header.stateVersion} is not supported by this kernel (version ${supported})`);
    const have = k.x.memory.buffer.byteLength;
    if (body.length > have) k.x.memory.grow(Math.ceil((body.length - have) / 65536));
    new Uint8Array(k.x.memory.buffer, 0, body.length).set(body);
    if (k.x.stateMagic() !== STATE_MAGIC || k.x.stateVersion() !== supported) {
      throw new Error('snapshot body is damaged: the kernel state header does not carry the expected magic and version');
    }
    k.keyProperty = header.keyProperty;
    k.keyTitle = header.keyTitle;
    k.cellError = header.cellError;
    for (const e of k.cellError) if (e != null) k.errorNames.set(e, e);
    k.debug = debug;
    return k;
  }
}

function toI64(ts: number | null): bigint {
  return ts === null ? NO_TS : BigInt(ts);
}
