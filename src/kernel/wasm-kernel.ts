import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DetectionParams } from './detection-params.ts';
import { paramSlots, profileSlots, profiledProperties, effectiveScopes, SCOPE_PARAM_FIELDS } from './detection-params.ts';
import type { Scope, Verdict, VerdictKind } from './verdict.ts';
import { referenceDecode } from '../ingest/reference-decode.ts';
import { DECODE_OK } from '../ingest/reject-reason.ts';
import type { FieldNames } from '../ingest/field-names.ts';
import { DUMP_RECORD_FIELDS, type CellFigures, type CellFiguresPage } from './cell-figures.ts';
import { DEFAULT_FIELD_NAMES } from '../ingest/field-names.ts';
import {
  KERNEL_STATE_FORMAT, KERNEL_STATE_FORMAT_2, decodeKernelState, encodeKernelStateHeader, kernelStatePartBytes, writeKernelStateFrame,
  applyDeltas, exportedKeySize, REMOVED_ENTRY_BYTES, type ExportId, type ExportedKeyLayout, type KernelGroupState, type KeyNames,
} from './kernel-state.ts';
import { randomUUID } from 'node:crypto';

const KINDS: VerdictKind[] = ['open', 'update', 'resolve', 'expire'];
const SCOPES: Scope[] = ['property', 'title'];
const FIELD_ORDER: (keyof FieldNames)[] = ['viewId', 'propertyId', 'videoTitle', 'errorType', 'ts'];
const I64_MIN = -(2n ** 63n);
const IMPORT_ERRORS: Record<number, string> = {
  [-1]: 'a key of a key group this worker does not own', [-2]: 'a title whose property is missing',
  [-3]: 'more keys or cells than VIGIL_MAX_KEYS_PER_WORKER / VIGIL_MAX_CELLS_PER_WORKER allow (or names than memory holds)',
  [-4]: 'a key twice', [-5]: 'a record (or a name in it) that overruns its part',
};

/** The kernel's f64 counters, by the name of the state-header offset it exports for each (assembly/index.ts). */
const COUNTER_EXPORTS = {
  events: 'H_EVENTS', late: 'H_LATE', lateDropped: 'H_LATE_DROPPED', keysDropped: 'H_KEYS_DROPPED',
  cellsDropped: 'H_CELLS_DROPPED', evicted: 'H_EVICTED', futureDropped: 'H_FUTURE_DROPPED',
  held: 'H_HELD', heldOverflow: 'H_HELD_OVERFLOW', duplicates: 'H_DUPLICATES', dedupFull: 'H_DEDUP_FULL',
} as const;
export type KernelCounters = Record<keyof typeof COUNTER_EXPORTS, number> & { keys: number; cells: number; open: number; heldNow: number };
/** Every counter's name, for sums and metrics. */
export const KERNEL_COUNTER_NAMES = [...Object.keys(COUNTER_EXPORTS), 'keys', 'cells', 'open', 'heldNow'] as (keyof KernelCounters)[];


/** How a kernel instance is sized and configured. */
export interface KernelInit {
  maxKeys: number;
  maxCells: number;
  /** Largest chunk of NDJSON bytes one decode call takes. */
  chunkBytes: number;
  groupLo: number;
  groupHi: number;
  /** Key groups of the engine (128 by default); duplicate-filter entries record their group. */
  groups?: number;
  params: DetectionParams;
  fieldNames?: FieldNames;
  maxLineBytes?: number;
  /**
   * Bytes of exported keys the kernel writes in one pass into its export region (kept from export
   * to export) before a larger export goes page by page: maxKeys x 24 by default, which holds an
   * incremental export of about a tenth of the keys (the share a 15 s interval sees change).
   */
  exportRegionBytes?: number;
}

/** What one chunk decoded into. */
export interface DecodedChunk {
  /** Packed records per owner worker (copies, safe to transfer). */
  parts: Uint8Array[];
  /** Event time of each valid record, in chunk order (what the engine's clock plans from). */
  times: Float64Array;
  /** Low 32 bits of each valid record's property hash, in chunk order. */
  props: Uint32Array;
  records: number;
  /** Lines per decode status (index = status code of assembly/decode-status.ts). */
  statusCounts: number[];
  /** A few rejected lines, cut to 200 bytes, for the log. */
  samples: Array<{ status: number; line: string }>;
}

interface KernelExports {
  memory: WebAssembly.Memory;
  init(maxKeys: number, maxCells: number, chunkBytes: number, lo: number, hi: number, groups: number): number;
  setParam(i: number, v: number): void;
  paramScopeFields(): number;
  setProfileParam(p: number, slot: number, v: number): void;
  setProfileHash(p: number, hash: bigint): void;
  clearProfileHashes(): void;
  rebindProfiles(): void;
  setFieldName(field: number, ptr: number, len: number): void;
  setMaxLineBytes(n: number): void;
  ingestPacked(ptr: number, len: number, plan: number, n: number, endTarget: number): void;
  finish(): void;
  decodeChunk(len: number, owners: number, groups: number, fixups: number): number;
  inputPtr(): number; inputCap(): number; fixupPtr(): number; fixupCap(): number;
  ownerOffset(o: number): number; ownerLength(o: number): number; outputPtr(): number;
  stagePtr(): number; timesPtr(): number; propsPtr(): number;
  chunkRecords(): number; chunkFallbacks(): number;
  fallbackStart(i: number): number; fallbackEnd(i: number): number;
  statusCount(s: number): number; sampleCount(): number; sampleStart(i: number): number;
  sampleEnd(i: number): number; sampleStatus(i: number): number;
  groupOf(h: bigint, groups: number): number;
  hashBytes(ptr: number, len: number, seed: bigint): bigint;
  keyCount(): number; cellCount(): number; openCount(): number; maxTs(): bigint; heapTop(): number; ringBytes(): number;
  counter(off: number): number; stateVersion(): number; stateMagic(): number; supportedStateVersion(): number;
  dumpCells(cursor: number, maxRecords: number, out: number): number; dumpNextCursor(): number; dumpAtMs(): bigint; dumpFields(): number;
  exportKeys(source: number, scope: number, cursor: number, out: number, cap: number, lo: number, hi: number, groups: number): number;
  exportNextCursor(): number; exportBytes(source: number, lo: number, hi: number, groups: number): number; exportedKeys(): number;
  exportRegion(source: number, lo: number, hi: number, groups: number, limit: number): number;
  exportBegin(lo: number, hi: number, groups: number, limit: number, reserve: number): number;
  exportSlice(maxKeys: number): number; exportProgress(what: number): number;
  exportAreaPtr(area: number): number; exportAreaLen(area: number): number;
  importKeys(ptr: number, len: number, groups: number): number;
  changesKnown(): number;
  removedCount(): number; removedPtr(): number; resetChanges(): void;
  setEventTime(nextTick: bigint, maxTs: bigint): void;
  exportHeld(cursor: number, out: number, cap: number, lo: number, hi: number, groups: number): number;
  exportHeldNextCursor(): number;
  importHeld(ptr: number, len: number, groups: number): number;
  exportDedup(cursor: number, out: number, cap: number, lo: number, hi: number): number;
  exportDedupNextCursor(): number;
  importDedup(ptr: number, len: number, mask: number, shift: number, horizon: bigint, swept: bigint): number;
  dedupGeometry(field: number): bigint;
  heldCount(): number;
  addCounter(off: number, v: number): void;
  keyName(key: number): number; keyProperty(key: number): number; keyScope(key: number): number; cellName(cell: number): number;
  nameLength(block: number): number; nameAddress(block: number): number;
  nextTick(): bigint;
}

/** What a part holds besides its keys, taken when its export begins (WasmKernel.exportFrame). */
interface ExportFrame {
  exportId: ExportId;
  header: Omit<KernelGroupState['header'], 'keys'>;
  held: Uint8Array;
  dedupEntries: Uint8Array;
  removed: Uint8Array;
  /** A background export's part once its every key is written: its keys go in `bytes` at `at`, `done` so far. */
  copy?: { part: Uint8Array; at: number; bytes: number; done: number };
}

/** Keys an export slice writes between looks at the clock (some tens of microseconds of work). */
const EXPORT_SLICE_KEYS = 256;
/** Bytes of the export region a slice copies into the part between looks at the clock (a fraction of a millisecond). */
const EXPORT_COPY_BYTES = 1 << 20;

/** The layout of exported keys, from the kernel's own constants (assembly/key-groups.ts). */
interface ExportLayout extends ExportedKeyLayout {
  /** Packed records: header bytes, and the offset of the three u16 lengths. */
  recordHeader: number; recordLengths: number;
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

/**
 * The layout of exported keys, read from the kernel module's constants without a kernel (no init, no
 * key memory): what applyDeltas needs where no kernel runs (a chain merge's thread).
 */
export function exportedKeyLayout(): ExportedKeyLayout {
  const x = new WebAssembly.Instance(kernelModule(false), { env: { abort: () => { throw new Error('kernel assertion failed'); }, verdict: () => {} } }).exports;
  const g = (name: string) => (x[name] as WebAssembly.Global).value as number;
  return {
    group: g('E_GROUP'), cells: g('E_CELLS'), names: g('E_NAMES'), header: g('E_HEADER'), key: g('E_KEY_BYTES'), cell: g('E_CELL_BYTES'), ext: g('E_EXT'),
    keyHash: g('EK_HASH'), keyScope: g('EK_SCOPE'), cellOpenedAt: g('EC_OPENED_AT'),
  };
}

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/**
 * One instance of the WASM kernel: decode chunks, ingest packed records, export and import key groups.
 * The names of keys and cells live in the kernel (assembly/names.ts); JS decodes one only to report it.
 */
export class WasmKernel {
  private readonly x: KernelExports;
  /** Names this kernel instance in the parts it exports (an incremental part names the export it follows). */
  private readonly instanceId = randomUUID();
  private lastExport: ExportId | null = null;
  /** Bytes of the latest incremental part, and a buffer made ready for the next (partBuffer). */
  private lastDeltaBytes = 0;
  private spare: ArrayBuffer | null = null;
  /** Keys and their bytes in the latest incremental part (what the next background export reserves room by). */
  private lastDeltaKeys = 0;
  private lastDeltaKeyBytes = 0;
  /** The export in the background (beginExport), until its part is complete. */
  private background: ExportFrame | null = null;
  /** How the latest export wrote its keys: in one pass into the export region, sized then page by page, or in the background. */
  lastExportWay: 'region' | 'pages' | 'background' | null = null;
  /** Keys of the latest background export that the kernel wrote before their first change (not in a slice). */
  lastExportCow = 0;
  /** The kind of the latest part assembled. */
  lastExportKind: 'full' | 'delta' = 'full';
  private verdicts: Verdict[] = [];
  /** Error types as decoded once, so verdicts and dumps share one string per error type. */
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
      },
    });
    this.x = instance.exports as unknown as KernelExports;
    if (this.x.paramScopeFields() !== SCOPE_PARAM_FIELDS) {
      throw new Error(`kernel parameter blocks have ${this.x.paramScopeFields()} fields per scope, detection-params.ts writes ${SCOPE_PARAM_FIELDS}`);
    }
  }

  /** Creates and initializes a kernel; throws when memory cannot be had. */
  static create(init: KernelInit, debug = false): WasmKernel {
    const k = new WasmKernel(init, debug);
    const rc = k.x.init(init.maxKeys, init.maxCells, init.chunkBytes, init.groupLo, init.groupHi, k.groups());
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

  /** The text of a name block of the kernel (0: none, read as ''). */
  private nameText(block: number): string {
    if (block === 0) return '';
    const x = this.x;
    return utf8.decode(new Uint8Array(x.memory.buffer, x.nameAddress(block), x.nameLength(block)));
  }

  /** Property id of a live key (a title key's is its property key's name). */
  private keyProperty(key: number): string {
    return this.nameText(this.x.keyName(this.x.keyProperty(key)));
  }

  /** Video title of a live title key; null for a property key. */
  private keyTitle(key: number): string | null {
    return this.x.keyScope(key) === 1 ? this.nameText(this.x.keyName(key)) : null;
  }

  /** Error type of a live cell. */
  private cellError(cell: number): string {
    return this.intern(this.nameText(this.x.cellName(cell)));
  }

  private intern(s: string): string {
    let interned = this.errorNames.get(s);
    if (interned === undefined) { interned = s; this.errorNames.set(s, s); }
    return interned;
  }

  private onVerdict(
    kind: number, scope: number, key: number, cell: number, atMs: number, errorRatio: number, thresholdRatio: number,
    baselineRatio: number, windowViews: number, windowFailures: number, windowSpanMs: number, viewsPerHour: number,
    impactedViews: number, openedAtMs: number,
  ): void {
    const s = SCOPES[scope];
    const propertyId = this.keyProperty(key);
    this.verdicts.push({
      kind: KINDS[kind], scope: s, propertyId, videoTitle: this.keyTitle(key),
      errorType: this.cellError(cell), atMs, errorRatio, thresholdRatio, baselineRatio, windowViews, windowFailures,
      windowSpanMs, minWindowViews: effectiveScopes(this.init.params, propertyId)[s].minViews, viewsPerHour, impactedViews, openedAtMs,
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
    const records = x.chunkRecords();
    const times = new Float64Array(x.memory.buffer.slice(x.timesPtr(), x.timesPtr() + records * 8));
    const props = new Uint32Array(x.memory.buffer.slice(x.propsPtr(), x.propsPtr() + records * 4));
    return { parts, times, props, records, statusCounts, samples };
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
      const viewId = r.status === DECODE_OK && r.viewId ? r.viewId : null;
      const len = prop.length + (title?.length ?? 0) + (err?.length ?? 0) + (viewId?.length ?? 0);
      if (p + 32 + len + 8 > cap) throw new Error('fallback decisions exceed the fixup region');
      // Layout read by assembly/chunk.ts decodeChunk: status, lengths (-1 absent), ts, view id length, bytes.
      view = new DataView(x.memory.buffer);
      view.setInt32(p, r.status, true);
      view.setInt32(p + 4, prop.length, true);
      view.setInt32(p + 8, title ? title.length : -1, true);
      view.setInt32(p + 12, err ? err.length : -1, true);
      view.setBigInt64(p + 16, BigInt(r.status === DECODE_OK ? r.ts! : 0), true);
      view.setInt32(p + 24, viewId ? viewId.length : -1, true);
      view.setInt32(p + 28, 0, true);
      const mem = new Uint8Array(x.memory.buffer);
      let q = p + 32;
      mem.set(prop, q); q += prop.length;
      if (title) { mem.set(title, q); q += title.length; }
      if (err) { mem.set(err, q); q += err.length; }
      if (viewId) { mem.set(viewId, q); q += viewId.length; }
      p += 32 + ((len + 7) & ~7);
    }
  }

  /**
   * Applies packed records for this worker's keys by the engine's plan for their chunk (see
   * EventClock.plan: n targets, n event times, n partition marks; n = the chunk's valid records) and returns the
   * verdicts they caused. An empty part still advances event time, as every worker must at each chunk.
   */
  ingest(part: Uint8Array, plan: Float64Array, endTarget: number): Verdict[] {
    const x = this.x;
    if (part.length > x.inputCap() * 5) throw new Error('packed part larger than the kernel can take');
    if (plan.length * 8 > x.inputCap() * 4) throw new Error('plan larger than the kernel can take');
    // The decode staging areas are free between calls: the part lands in the output region, the plan in the stage.
    const ptr = x.outputPtr();
    new Uint8Array(x.memory.buffer, ptr, part.length).set(part);
    const planPtr = x.stagePtr();
    new Float64Array(x.memory.buffer, planPtr, plan.length).set(plan);
    x.ingestPacked(ptr, part.length, planPtr, plan.length / 3, endTarget);
    return this.takeVerdicts();
  }

  /** Advances event time to `target` with no new records (an idle source, or a partition that stopped holding time back). */
  advance(target: number): Verdict[] {
    return this.ingest(EMPTY_PART, EMPTY_PLAN, target);
  }

  /** End of input: evaluates up to the last event. */
  finish(): Verdict[] {
    this.x.finish();
    return this.takeVerdicts();
  }

  /** The kernel's counters. */
  counters(): KernelCounters {
    const c = {} as KernelCounters;
    const exp = this.x as unknown as Record<string, WebAssembly.Global>;
    for (const [name, off] of Object.entries(COUNTER_EXPORTS)) c[name as keyof typeof COUNTER_EXPORTS] = this.x.counter(exp[off].value as number);
    c.keys = this.x.keyCount();
    c.cells = this.x.cellCount();
    c.open = this.x.openCount();
    c.heldNow = this.x.heldCount();
    return c;
  }

  /** Bytes of the count rings of live keys and cells: 8 per ring kept as u2, 32 as u8, 64 as u16, 128 as u32 (assembly/rings.ts). */
  ringBytes(): number {
    return this.x.ringBytes();
  }

  /** The top of the kernel's manual heap: every byte of state it has ever allocated (records, table, names, rings, regions). */
  heapBytes(): number {
    return this.x.heapTop();
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
      const property = this.keyProperty(key);
      if (propertyId !== undefined && property !== propertyId) continue;
      const open = f[o + 3] === 1;
      figures.push({
        scope: SCOPES[f[o + 2]], property_id: property, video_title: this.keyTitle(key), error_type: this.cellError(f[o + 1]),
        at_ms: atMs, open, window_views: f[o + 4], window_failures: f[o + 5], error_ratio: f[o + 4] > 0 ? f[o + 5] / f[o + 4] : 0,
        window_span_ms: f[o + 6], recent_views: f[o + 7], recent_failures: f[o + 8], recent_error_ratio: f[o + 7] > 0 ? f[o + 8] / f[o + 7] : 0,
        baseline_ratio: f[o + 10], threshold_ratio: f[o + 11], recent_threshold_ratio: f[o + 12],
        open_threshold_ratio: open ? f[o + 13] : null, open_baseline_ratio: open ? f[o + 14] : null, opened_at_ms: open ? f[o + 15] : null,
        impacted_views: f[o + 16], warm: f[o + 17] === 1, hot: f[o + 18] === 1, last_event_ts: f[o + 19],
      });
    }
    return { figures, nextCursor: x.dumpNextCursor() };
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

  /** Bytes of the packed record at `off` of a decoded part (the kernel's own record layout). */
  recordSizeAt(part: DataView, off: number): number {
    return packedRecordSize(part, off, this.layout());
  }

  /** A constant the kernel exports (its value: one source of truth for both sides). */
  private global(name: string): number {
    return (this.x as unknown as Record<string, WebAssembly.Global>)[name].value as number;
  }

  private layout(): ExportLayout {
    const g = (name: string) => this.global(name);
    return {
      group: g('E_GROUP'), cells: g('E_CELLS'), names: g('E_NAMES'), header: g('E_HEADER'), key: g('E_KEY_BYTES'), cell: g('E_CELL_BYTES'), ext: g('E_EXT'),
      keyHash: g('EK_HASH'), keyScope: g('EK_SCOPE'), cellOpenedAt: g('EC_OPENED_AT'),
      recordHeader: g('R_HEADER'), recordLengths: g('R_PROP_LEN'),
    };
  }

  /**
   * The state of this kernel's keys in key groups [lo, hi) (all it owns by default) as a part any
   * kernel owning those groups can import (fromStates), whatever the worker count. Read-only but
   * for the change tracking (see exportPart).
   */
  exportState(lo = this.init.groupLo, hi = this.init.groupHi, delta = false): KernelGroupState {
    return decodeKernelState(this.exportPart(lo, hi, delta));
  }

  /**
   * exportState as the bytes of a part (kernel-state.ts). This is what a worker does while it stops
   * ingesting for a checkpoint (its pause), so it does as little as it can: the kernel writes the
   * keys in one pass into its export region (properties and titles apart), and the part takes them
   * in one copy each; into a part buffer made ready in advance (preparePartBuffer) when there is one
   * large enough, so that the copy does not fault in fresh pages. An export larger than the region
   * allows (exportRegionBytes: a full part of many keys) is sized first, then copied page by page.
   *
   * With `delta`, only the keys that changed since this kernel's previous export (and the hashes of
   * those deleted since) go in: an incremental part, in time proportional to what changed, that
   * applies on the previous export's part (header `since`). It is a full part after all when the
   * kernel lost track (too many deletions) or has not exported before. Every export, full or
   * incremental, starts the tracking afresh: an export that is not kept (a checkpoint that failed)
   * leaves the next delta without its base, which the checkpoint store refuses (`since` differs).
   */
  exportPart(lo = this.init.groupLo, hi = this.init.groupHi, delta = false): Uint8Array {
    if (this.background) throw new Error('an export is in progress in this kernel (finish it with exportStep first)');
    const x = this.x;
    const groups = this.groups();
    const cap = x.inputCap() * 4;
    const since = this.lastExport;
    const incremental = delta && since !== null && x.changesKnown() === 1;
    const source = this.global(incremental ? 'SOURCE_CHANGED' : 'SOURCE_ALL');
    // Either source is walked in key index order (the kernel reads its key blocks in address order).
    const regionBytes = x.exportRegion(source, lo, hi, groups, this.regionLimit());
    const keyBytes = regionBytes >= 0 ? regionBytes : x.exportBytes(source, lo, hi, groups);
    this.lastExportWay = regionBytes >= 0 ? 'region' : 'pages';
    this.lastExportCow = 0;
    const frame = this.exportFrame(lo, hi, incremental ? since : null);
    const out = this.assemblePart(frame, x.exportedKeys(), keyBytes, (part, recordsAt) => {
      if (regionBytes >= 0) {
        this.copyRegion(part, recordsAt, 0, keyBytes);
        return;
      }
      let w = recordsAt;
      for (const scope of [0, 1]) {
        for (let cursor = 0; cursor >= 0;) {
          const n = x.exportKeys(source, scope, cursor, x.outputPtr(), cap, lo, hi, groups);
          const next = x.exportNextCursor();
          if (n === 0 && next >= 0) throw new Error(`key ${next} has more cells than an export page of ${cap} bytes holds`);
          if (w + n > recordsAt + keyBytes) throw new Error('kernel export overran the size it was given (a kernel bug)');
          part.set(new Uint8Array(x.memory.buffer, x.outputPtr(), n), w);
          w += n;
          cursor = next;
        }
      }
      if (w !== recordsAt + keyBytes) throw new Error(`kernel export wrote ${w - recordsAt} bytes of keys, sized ${keyBytes} (a kernel bug)`);
    });
    x.resetChanges();
    this.lastExport = frame.exportId;
    return out;
  }

  /**
   * exportPart in the background (copy on write, assembly/key-groups.ts exportBegin): what the part
   * holds besides its keys is taken now, and the keys that changed since the previous export are
   * marked; each is written into the export region by exportStep, or by the kernel itself before its
   * first change, so ingestion goes on in between and the part is the state as of this call. Returns
   * the part when it is complete at once (no key changed), or when the export cannot run in the
   * background and ran here (a full export: the first, or after the kernel lost track of deletions;
   * more changed keys than the export region holds); else null, and exportStep goes on with it.
   */
  beginExport(delta: boolean): Uint8Array | null {
    if (this.background) throw new Error('an export is in progress in this kernel (finish it with exportStep first)');
    const x = this.x;
    const since = this.lastExport;
    if (!delta || since === null || x.changesKnown() !== 1) return this.exportPart(undefined, undefined, delta);
    const { groupLo: lo, groupHi: hi } = this.init;
    // Taken before exportBegin, which empties the kernel's list of deleted keys.
    const frame = this.exportFrame(lo, hi, since);
    const changed = x.exportProgress(3);
    // Begun when the changed keys' least size fits the region (else it goes page by page, at once);
    // it may grow to 4 times that while it goes on (keys with cells are larger), for a background
    // export that runs out of room is a lost checkpoint.
    if (changed * (this.global('E_HEADER') + this.global('E_KEY_BYTES')) > this.regionLimit()) return this.exportPart(lo, hi, delta);
    // The titles' area made ready for about the bytes the previous incremental part's keys took a key.
    const perKey = this.lastDeltaKeys > 0 ? this.lastDeltaKeyBytes / this.lastDeltaKeys : 0;
    const pending = x.exportBegin(lo, hi, this.groups(), this.regionLimit() * 4, Math.ceil(perKey * changed * 1.1));
    if (pending < 0) return this.exportPart(lo, hi, delta);
    this.lastExportWay = 'background';
    this.lastExport = frame.exportId;
    this.background = frame;
    return pending === 0 ? this.exportStep(Infinity) : null;
  }

  /**
   * Goes on with the export begun by beginExport for about `budgetMs` (a slice of the worker's time
   * between chunks), `sliceKeys` keys between looks at the clock; once every key is written, the
   * export region goes into the part `copyBytes` at a time the same way. Returns the part once it is
   * complete, else null. Throws when the export
   * region could not hold the part (the export is lost; the kernel's next export is full).
   */
  exportStep(budgetMs: number, sliceKeys = EXPORT_SLICE_KEYS, copyBytes = EXPORT_COPY_BYTES): Uint8Array | null {
    const bg = this.background;
    if (!bg) throw new Error('no export is in progress in this kernel');
    const started = performance.now();
    if (!bg.copy) {
      let left: number;
      do left = this.x.exportSlice(sliceKeys);
      while (left > 0 && performance.now() - started < budgetMs);
      if (left > 0) return null;
      bg.copy = this.beginCopy(bg);
    }
    // Then the region goes into the part `copyBytes` at a time (nothing writes to it any more).
    const c = bg.copy;
    do {
      const n = Math.min(copyBytes, c.bytes - c.done);
      this.copyRegion(c.part, c.at, c.done, n);
      c.done += n;
    } while (c.done < c.bytes && performance.now() - started < budgetMs);
    if (c.done < c.bytes) return null;
    this.background = null;
    return c.part;
  }

  /** Whether an export begun by beginExport is in progress. */
  get exporting(): boolean {
    return this.background !== null;
  }

  /**
   * Once every key of the background export is written: the part with everything but its keys,
   * where its keys go, and how many bytes of them. Throws (the export is over) when the export
   * region could not hold the keys.
   */
  private beginCopy(frame: ExportFrame): NonNullable<ExportFrame['copy']> {
    const x = this.x;
    this.lastExportCow = x.exportProgress(1);
    if (x.exportProgress(2) !== 0) {
      this.background = null;
      throw new Error(`an incremental checkpoint's keys outgrew the export region (${this.regionLimit() * 4} bytes: 4 x exportRegionBytes) or memory: that checkpoint is lost and the next one is a full export`);
    }
    const bytes = x.exportAreaLen(this.global('AREA_PROPS')) + x.exportAreaLen(this.global('AREA_TITLES'));
    let at = 0;
    const part = this.assemblePart(frame, x.exportProgress(0), bytes, (_, recordsAt) => { at = recordsAt; });
    return { part, at, bytes, done: 0 };
  }

  /** Bytes the export region may take (exportRegionBytes). */
  private regionLimit(): number {
    return this.init.exportRegionBytes ?? this.init.maxKeys * 24;
  }

  /**
   * Bytes [from, from + n) of the export region's keys into `part` at `at + from`, the keys as the part
   * takes them: the properties' area, then the titles' (an importer always has a title's property).
   */
  private copyRegion(part: Uint8Array, at: number, from: number, n: number): void {
    const x = this.x;
    const [props, titles] = [this.global('AREA_PROPS'), this.global('AREA_TITLES')];
    const propBytes = x.exportAreaLen(props);
    for (let i = from; i < from + n;) {
      // A copy never crosses from one area to the other.
      const inProps = i < propBytes;
      const m = Math.min(from + n, inProps ? propBytes : Infinity) - i;
      const src = inProps ? x.exportAreaPtr(props) + i : x.exportAreaPtr(titles) + (i - propBytes);
      part.set(new Uint8Array(x.memory.buffer, src, m), at + i);
      i += m;
    }
  }

  /** What a part of key groups [lo, hi) holds besides its keys, as of now; incremental when it follows `since`. */
  private exportFrame(lo: number, hi: number, since: ExportId | null): ExportFrame {
    const x = this.x;
    const groups = this.groups();
    const cap = x.inputCap() * 4;
    // Held records and dedup entries are few (bounded rings): pages copied out, then into the part.
    const held = concat(pagesOf((cursor) => x.exportHeld(cursor, x.outputPtr(), cap, lo, hi, groups), () => x.exportHeldNextCursor(), x));
    const dedupEntries = concat(pagesOf((cursor) => x.exportDedup(cursor, x.outputPtr(), cap, lo, hi), () => x.exportDedupNextCursor(), x));
    const removed = since !== null ? this.removedEntries(lo, hi) : EMPTY_PART;
    const mask = Number(x.dedupGeometry(0));
    const dedup = mask < 0 ? null : {
      mask, shift: Number(x.dedupGeometry(1)), horizon: String(x.dedupGeometry(2)), swept: String(x.dedupGeometry(3)),
    };
    const c = this.counters();
    const counters = Object.fromEntries(Object.keys(COUNTER_EXPORTS).map((k) => [k, c[k as keyof typeof COUNTER_EXPORTS]]));
    const nextTick = x.nextTick();
    const maxTs = x.maxTs();
    const exportId: ExportId = { kernel: this.instanceId, seq: (this.lastExport?.seq ?? 0) + 1 };
    return {
      exportId, held, dedupEntries, removed,
      header: {
        format: KERNEL_STATE_FORMAT, stateVersion: x.stateVersion(), groups, groupLo: lo, groupHi: hi,
        nextTick: nextTick === I64_MIN ? null : String(nextTick), maxTs: maxTs === I64_MIN ? null : String(maxTs),
        counters, dedup, kind: since !== null ? 'delta' : 'full', exportId, ...(since !== null ? { since } : {}),
      },
    };
  }

  /** A part of `frame` and `keys` keys of `keyBytes` bytes, which `writeKeys` writes at the offset it is given. */
  private assemblePart(frame: ExportFrame, keys: number, keyBytes: number, writeKeys: (part: Uint8Array, at: number) => void): Uint8Array {
    const incremental = frame.header.kind === 'delta';
    this.lastExportKind = frame.header.kind ?? 'full';
    const header = encodeKernelStateHeader({ ...frame.header, keys });
    const lengths = [keyBytes, frame.held.length, frame.dedupEntries.length, frame.removed.length];
    const out = this.partBuffer(kernelStatePartBytes(header, ...lengths), incremental);
    const [recordsAt, heldAt, dedupAt, removedAt] = writeKernelStateFrame(out, header, lengths);
    writeKeys(out, recordsAt);
    out.set(frame.held, heldAt);
    out.set(frame.dedupEntries, dedupAt);
    out.set(frame.removed, removedAt);
    if (incremental) {
      this.lastDeltaKeys = keys;
      this.lastDeltaKeyBytes = keyBytes;
    }
    return out;
  }

  /**
   * A part of `bytes`: the prepared buffer when it is large enough (an incremental part; a view of its
   * first bytes, the rest slack), else a new one. A new buffer's pages are faulted in by the first
   * write, at 16 MB some milliseconds of the pause that a prepared buffer had outside it.
   */
  private partBuffer(bytes: number, incremental: boolean): Uint8Array {
    if (incremental) this.lastDeltaBytes = bytes;
    const spare = this.spare;
    if (incremental && spare !== null && spare.byteLength >= bytes) {
      this.spare = null;
      return new Uint8Array(spare, 0, bytes);
    }
    return new Uint8Array(bytes);
  }

  /**
   * Makes the buffer of the next incremental part ready, its pages written once (so faulted in), a
   * quarter larger than the latest incremental part: the kernel worker calls it after an export,
   * outside the pause. Does nothing when one is ready or no incremental part was exported yet.
   */
  preparePartBuffer(): void {
    if (this.spare !== null && this.spare.byteLength >= this.lastDeltaBytes) return;
    if (this.lastDeltaBytes === 0) return;
    const spare = new ArrayBuffer(Math.ceil(this.lastDeltaBytes * 1.25) + 4096);
    new Uint8Array(spare).fill(0);
    this.spare = spare;
  }

  /** The kernel's removed-key entries of key groups [lo, hi) (copied out of its list). */
  private removedEntries(lo: number, hi: number): Uint8Array {
    const x = this.x;
    const all = new Uint8Array(x.memory.buffer, x.removedPtr(), x.removedCount() * REMOVED_ENTRY_BYTES);
    const dv = new DataView(all.buffer, all.byteOffset, all.byteLength);
    const out = new Uint8Array(all.length);
    let w = 0;
    for (let p = 0; p < all.length; p += REMOVED_ENTRY_BYTES) {
      const g = dv.getUint32(p + 8, true);
      if (g >= lo && g < hi) { out.set(all.subarray(p, p + REMOVED_ENTRY_BYTES), w); w += REMOVED_ENTRY_BYTES; }
    }
    return out.slice(0, w);
  }

  /**
   * A kernel for `init` (its own key-group range) holding the keys of its groups from exported parts
   * taken by any number of workers: the parts' other groups are skipped. Each part's counters go to
   * the kernel owning the part's first group, so their sum over workers stays. Throws with the
   * reason when a part is of another state version, group count, or does not fit the caps.
   */
  static fromStates(init: KernelInit, parts: KernelGroupState[], groups: number, debug = false): WasmKernel {
    const k = WasmKernel.create(init, debug);
    const x = k.x;
    const L = k.layout();
    const states = applyDeltas(parts, L, init.groupLo, init.groupHi);
    const supported = x.supportedStateVersion();
    const cap = x.inputCap() * 4;
    let nextTick = I64_MIN;
    let maxTs = I64_MIN;
    for (const s of states) {
      const h = s.header;
      if (h.stateVersion !== supported) throw new Error(`kernel state part of state version ${h.stateVersion} cannot be restored by this kernel (version ${supported})`);
      if (h.groups !== groups) throw new Error(`kernel state part has ${h.groups} key groups, the engine ${groups}`);
      if (h.nextTick !== null && BigInt(h.nextTick) > nextTick) nextTick = BigInt(h.nextTick);
      if (h.maxTs !== null && BigInt(h.maxTs) > maxTs) maxTs = BigInt(h.maxTs);
      if (h.groupLo >= init.groupLo && h.groupLo < init.groupHi) {
        for (const [name, v] of Object.entries(h.counters)) {
          const off = COUNTER_EXPORTS[name as keyof typeof COUNTER_EXPORTS];
          if (off && v) x.addCounter((x as unknown as Record<string, WebAssembly.Global>)[off].value as number, v);
        }
      }
      const records = s.header.format === KERNEL_STATE_FORMAT_2 ? upgradeRecords(s.records, s.names2 ?? [], L) : s.records;
      const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
      let page: Uint8Array[] = [];
      let pageBytes = 0;
      const flush = () => {
        if (page.length === 0) return;
        const mem = new Uint8Array(x.memory.buffer);
        let p = x.outputPtr();
        for (const r of page) { mem.set(r, p); p += r.length; }
        const n = x.importKeys(x.outputPtr(), pageBytes, groups);
        if (n < 0) throw new Error(`kernel state part holds ${IMPORT_ERRORS[n] ?? `an error ${n}`}`);
        page = [];
        pageBytes = 0;
      };
      for (let p = 0; p < records.length;) {
        if (p + L.header > records.length) throw new Error('kernel state part is truncated inside a key');
        const size = exportedKeySize(dv, p, L);
        if (p + size > records.length) throw new Error('kernel state part is truncated inside a key');
        const group = dv.getUint32(p + L.group, true);
        if (group >= init.groupLo && group < init.groupHi) {
          if (size > cap) throw new Error(`a key of ${size} bytes is larger than an import page of ${cap} bytes`);
          if (pageBytes + size > cap) flush();
          page.push(records.subarray(p, p + size));
          pageBytes += size;
        }
        p += size;
      }
      flush();
      k.importHeldRecords(s.held, init);
      k.importDedupEntries(s);
    }
    x.setEventTime(nextTick, maxTs);
    return k;
  }

  /**
   * Puts back the duplicate filter's entries, of every group in the part: the others' keep the probe
   * chains of this kernel's entries unbroken (assembly/dedup.ts) and are swept within a horizon. A ring of another geometry (other dedup parameters) is not imported: copies of records seen
   * before the checkpoint may then count once more.
   */
  private importDedupEntries(s: KernelGroupState): void {
    const g = s.header.dedup;
    if (!g || s.dedup.length === 0) return;
    const x = this.x;
    const cap = (x.inputCap() * 4) & ~15;
    for (let off = 0; off < s.dedup.length; off += cap) {
      const page = s.dedup.subarray(off, Math.min(s.dedup.length, off + cap));
      new Uint8Array(x.memory.buffer, x.outputPtr(), page.length).set(page);
      if (x.importDedup(x.outputPtr(), page.length, g.mask, g.shift, BigInt(g.horizon), BigInt(g.swept)) < 0) return;
    }
  }

  /** Holds again the exported held records of this kernel's groups (packed records, walked by their own sizes). */
  private importHeldRecords(held: Uint8Array, init: KernelInit): void {
    const x = this.x;
    const cap = x.inputCap() * 4;
    const dv = new DataView(held.buffer, held.byteOffset, held.byteLength);
    const L = this.layout();
    const mine: Uint8Array[] = [];
    for (let p = 0; p < held.length;) {
      const size = packedRecordSize(dv, p, L);
      if (size > cap || p + size > held.length) throw new Error('kernel state part is damaged: a held record overruns it');
      const rec = held.subarray(p, p + size);
      if (this.groupOfRecord(rec) >= init.groupLo && this.groupOfRecord(rec) < init.groupHi) mine.push(rec);
      p += size;
    }
    for (let i = 0; i < mine.length;) {
      let bytes = 0;
      let j = i;
      while (j < mine.length && bytes + mine[j].length <= cap) bytes += mine[j++].length;
      const mem = new Uint8Array(x.memory.buffer);
      let p = x.outputPtr();
      for (let k = i; k < j; k++) { mem.set(mine[k], p); p += mine[k].length; }
      const n = x.importHeld(x.outputPtr(), bytes, this.groups());
      if (n < 0) throw new Error(`kernel state part holds ${IMPORT_ERRORS[n] ?? `an error ${n}`}`);
      i = j;
    }
  }

  private groupOfRecord(rec: Uint8Array): number {
    return this.x.groupOf(new DataView(rec.buffer, rec.byteOffset, 8).getBigUint64(0, true), this.groups());
  }

  /** The engine's key-group count this kernel was sized for (the decoder routes with it). */
  private groups(): number {
    return this.init.groups ?? 128;
  }
}

const EMPTY_PART = new Uint8Array(0);

/** The export pages of one pass (held records, dedup entries), each copied out of the output region. */
function pagesOf(write: (cursor: number) => number, next: () => number, x: KernelExports): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let cursor = 0; cursor >= 0;) {
    const n = write(cursor);
    pages.push(new Uint8Array(x.memory.buffer, x.outputPtr(), n).slice());
    cursor = next();
  }
  return pages;
}

const utf8Encoder = new TextEncoder();

/**
 * The records of a format-2 part in today's layout: format 2 had, after the cells, each cell's index
 * in the exporting kernel (u32, padded to 8) and the key's index in the header where E_NAMES is now,
 * and the names beside the records as text. The key's own name is its title, or its property's id.
 */
function upgradeRecords(old: Uint8Array, names: KeyNames[], L: ExportLayout): Uint8Array {
  const dv = new DataView(old.buffer, old.byteOffset, old.byteLength);
  const out: Uint8Array[] = [];
  let r = 0;
  for (let p = 0; p < old.length; r++) {
    if (p + L.header > old.length || r >= names.length) throw new Error('kernel state part is truncated inside a key');
    const cells = dv.getUint32(p + L.cells, true);
    const ext = dv.getUint32(p + L.ext, true);
    const body = L.header + L.key + cells * L.cell;
    const size = body + ((cells * 4 + 7) & ~7) + cells * ext;
    if (p + size > old.length) throw new Error('kernel state part is truncated inside a key');
    const [property, title, errors] = names[r];
    if (errors.length !== cells) throw new Error(`kernel state part names ${errors.length} error types for a key of ${cells} cells`);
    const texts = [title ?? property, ...errors].map((t) => utf8Encoder.encode(t));
    const namesBytes = (texts.reduce((a, t) => a + 4 + t.length, 0) + 7) & ~7;
    const rec = new Uint8Array(body + cells * ext + namesBytes);
    const rv = new DataView(rec.buffer);
    rec.set(old.subarray(p, p + body), 0);
    rec.set(old.subarray(p + size - cells * ext, p + size), body);
    rv.setUint32(L.names, namesBytes, true);
    let w = body + cells * ext;
    for (const t of texts) { rv.setUint32(w, t.length, true); rec.set(t, w + 4); w += 4 + t.length; }
    out.push(rec);
    p += size;
  }
  if (r !== names.length) throw new Error(`kernel state part names ${names.length} keys, its records ${r}`);
  return concat(out);
}

function concat(pages: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pages.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of pages) { out.set(p, off); off += p.length; }
  return out;
}

/** Bytes of the packed record at `p` (assembly/ingest.ts recordSize: the header, then three u16 lengths' bytes, padded to 8). */
function packedRecordSize(dv: DataView, p: number, L: ExportLayout): number {
  const len = dv.getUint16(p + L.recordLengths, true) + dv.getUint16(p + L.recordLengths + 2, true) + dv.getUint16(p + L.recordLengths + 4, true);
  return L.recordHeader + ((len + 7) & ~7);
}
const EMPTY_PLAN = new Float64Array(0);
