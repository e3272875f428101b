// State by key group: keys (with their cells) are exported and imported as self-contained
// records, so a checkpoint taken by W workers restores into any number of workers (each imports
// the key groups it owns, as Flink moves key groups on rescale). Indices are local to a kernel:
// a record carries hashes, never indices, and import rebuilds every link, list and table.
import {
  HDR, hdrI32, setHdrI32, setHdrI64, hdrPtr, setHdrPtr, bumpF64, heapAlloc,
  H_PENDING_PTR, H_PENDING_LEN, H_EXPORTING, H_EXPORT_LO, H_EXPORT_HI, H_EXPORT_GROUPS, H_EXPORT_CURSOR,
  H_EXPORT_KEYS, H_EXPORT_COW, H_EXPORT_FAILED, H_EXPORT_LIMIT, H_MAX_KEYS,
  H_KEY_HWM, H_GROUP_LO, H_GROUP_HI, H_DIRTY_PTR, H_DIRTY_LEN, H_NEXT_TICK, H_MAX_TS,
  H_CHANGED_PTR, H_CHANGED_LEN, H_REMOVED_PTR, H_REMOVED_LEN, H_CHANGES_LOST, H_KEY_COUNT,
} from './state';
import {
  keyPtr, cellPtr, extPtr, findKey, createKey, createCell, PX_DATA, addChildren, cellExt,
  K_HASH, K_PARENT, K_SCOPE, K_DIRTY, K_FIRST_CELL, K_PROFILE, headSlot, setHeadSlot, foldedSlot, setFoldedSlot, lastTs, setLastTs, reachSlot, K_BASE_VIEWS,
  C_NEXT, C_STATUS, K_NAME, K_RING, C_RING, C_OPEN, C_HOT,
  C_OWN_VIEWS, O_BASE_VIEWS, cellBaseViews, ownBaseViews, C_BASE_FAILS, C_PENDING, C_NAME, O_EVIDENCE, cellEvidence, cellErrHash,
  O_OPENED_AT, O_CALM_SINCE, O_OPEN_THR, O_IMPACTED, O_OPEN_BASE, openRecordNew,
  cellNameBlock, changedBytes,
} from './store';
import { RING_WIDE_BYTES, ringExport, ringImport, ringFree } from './rings';
import { allocName, nameLen, nameBytes, releaseRegion } from './names';
import { groupOf } from './chunk';
import { profileOfHash, SCOPE_PROPERTY } from './params';
import { heldCount, heldAt, holdRecord, sortHeld } from './held';
import { recordSize, R_PROP_HASH, R_TS } from './ingest';
import { addOpen } from './detector';

// An exported key: a 24-byte header, the key record and its ring, its cell records each with its
// ring, for a property each cell's extension data (store.ts PX_DATA bytes), then the names: the key's own name (a title key's title,
// a property's id) and each cell's error type, each a u32 length and its UTF-8 bytes, the whole
// padded to 8 bytes. Names go as bytes straight from the name store, so exporting decodes no text.
// A ring goes as u32[SLOTS] after its record whatever its width in this kernel (rings.ts), so the
// exported form does not depend on how narrow a kernel keeps its rings.
// JS reads the layout from these exported constants.
export const E_GROUP: usize = 0;       // u32 key group (of the property)
export const E_CELLS: usize = 4;       // u32 cells that follow
export const E_PARENT_HASH: usize = 8; // u64 the property's hash for a title key, 0 for a property
export const E_NAMES: usize = 16;      // u32 bytes of the names at the record's end (a multiple of 8)
export const E_EXT: usize = 20;        // u32 extension bytes per cell after the cells (PX_DATA for a property, 0 for a title)
export const E_HEADER: usize = 24;

// An exported key's fields (EK_FIELDS bytes, then its ring): the key record of an earlier layout,
// every field at its place whatever the layout in memory (store.ts K_*); links and this kernel's
// addresses (parent, first cell, title count, ring, name) and the old changed mark go as 0.
export const EK_HASH: usize = 0;        // u64
export const EK_SCOPE: usize = 12;      // u8
const EK_DIRTY: usize = 13;             // u8
const EK_PROFILE: usize = 14;           // u8
const EK_HEAD_SLOT: usize = 16;         // i64
const EK_FOLDED_SLOT: usize = 24;       // i64
const EK_LAST_TS: usize = 32;           // i64
const EK_BASE_VIEWS: usize = 40;        // f64
const EK_FIELDS: usize = 64;
export const E_KEY_BYTES: usize = EK_FIELDS + RING_WIDE_BYTES;

// An exported cell (EC_SIZE bytes, then its ring): every field at its own place, whether this kernel
// keeps it in the cell record or in its incident record (store.ts); links and this kernel's
// addresses (its key, next cell, position in the open list, extension, name, ring) go as 0.
const EC_ERR_HASH: usize = 0;    // u64
const EC_STATUS: usize = 16;     // u8
const EC_HOT: usize = 17;        // u8
const EC_BASE_VIEWS: usize = 24; // f64
const EC_BASE_FAILS: usize = 32; // f64
export const EC_OPENED_AT: usize = 40;  // i64 (0 for a cell that never opened)
const EC_CALM_SINCE: usize = 48; // i64 (-1)
const EC_OPEN_THR: usize = 56;   // f64 (0)
const EC_IMPACTED: usize = 64;   // f64 (0)
// Two fields are retired (2026-12-07; the kernel no longer keeps them, and a part of an earlier build
// imports as before, what they hold ignored): the window ratio at the cell's latest evaluation, which
// nothing read, and the tick of its latest evaluation, which evaluateTick now tells from its key's
// dirty flag. They go as 0 and -1.
export const EC_LAST_RATIO: usize = 72; // f64, 0
const EC_EVIDENCE: usize = 80;   // i64
export const EC_LAST_EVAL: usize = 88;  // i64, -1
const EC_PENDING: usize = 96;    // i32
const EC_OPEN_BASE: usize = 104; // f64 (0)
const EC_SIZE: usize = 128;
export const E_CELL_BYTES: usize = EC_SIZE + RING_WIDE_BYTES;

/** Writes cell record `cp` of key record `k` exported at `p` (EC_SIZE bytes and the ring). */
function exportCell(cp: usize, k: usize, p: usize): void {
  memory.fill(p, 0, EC_SIZE);
  store<u64>(p + EC_ERR_HASH, cellErrHash(cp));
  store<u8>(p + EC_STATUS, load<u8>(cp + C_STATUS));
  store<u8>(p + EC_HOT, load<u8>(cp + C_HOT));
  store<f64>(p + EC_BASE_VIEWS, cellBaseViews(cp, k));
  store<u64>(p + EC_BASE_FAILS, load<u64>(cp + C_BASE_FAILS));
  store<i64>(p + EC_EVIDENCE, cellEvidence(cp));
  store<i64>(p + EC_LAST_EVAL, -1);
  store<u32>(p + EC_PENDING, load<u32>(cp + C_PENDING));
  const op = <usize>load<u32>(cp + C_OPEN);
  if (op != 0) {
    store<u64>(p + EC_OPENED_AT, load<u64>(op + O_OPENED_AT));
    store<u64>(p + EC_CALM_SINCE, load<u64>(op + O_CALM_SINCE));
    store<u64>(p + EC_OPEN_THR, load<u64>(op + O_OPEN_THR));
    store<u64>(p + EC_IMPACTED, load<u64>(op + O_IMPACTED));
    store<u64>(p + EC_OPEN_BASE, load<u64>(op + O_OPEN_BASE));
  } else {
    store<i64>(p + EC_CALM_SINCE, -1);
  }
  ringExport(cp + C_RING, p + EC_SIZE);
}

/**
 * Reads the exported cell at `s` into cell record `cp` of key record `k` (imported already; the
 * cell's links, extension and name left as they are); false when memory is exhausted. A cell that
 * ever opened (incident fields not those of a cell that never did, or open now) gets its incident
 * record (a property cell has one already), and so does one whose baseline views are its own (hot,
 * or not its key's: store.ts cellBaseViews).
 */
function importCell(s: usize, cp: usize, k: usize): bool {
  ringFree(cp + C_RING);
  if (!ringImport(cp + C_RING, s + EC_SIZE)) return false;
  const openedAt = load<u64>(s + EC_OPENED_AT);
  const calmSince = load<i64>(s + EC_CALM_SINCE);
  const thr = load<u64>(s + EC_OPEN_THR);
  const impacted = load<u64>(s + EC_IMPACTED);
  const base = load<u64>(s + EC_OPEN_BASE);
  const status = load<u8>(s + EC_STATUS);
  const evidence = load<i64>(s + EC_EVIDENCE);
  let op = <usize>load<u32>(cp + C_OPEN);
  if (op == 0 && (status != 0 || openedAt != 0 || calmSince != -1 || thr != 0 || impacted != 0 || base != 0 || evidence != -1)) {
    op = openRecordNew();
    if (op == 0) return false;
    store<u32>(cp + C_OPEN, <u32>op);
  }
  if (op != 0) {
    store<u64>(op + O_OPENED_AT, openedAt);
    store<i64>(op + O_CALM_SINCE, calmSince);
    store<u64>(op + O_OPEN_THR, thr);
    store<u64>(op + O_IMPACTED, impacted);
    store<u64>(op + O_OPEN_BASE, base);
    store<i64>(op + O_EVIDENCE, evidence);
  }
  store<u8>(cp + C_STATUS, status);
  store<u8>(cp + C_HOT, load<u8>(s + EC_HOT));
  const views = load<u64>(s + EC_BASE_VIEWS);
  if (load<u8>(cp + C_OWN_VIEWS) != 0 || load<u8>(cp + C_HOT) != 0 || views != load<u64>(k + K_BASE_VIEWS)) {
    if (!ownBaseViews(cp, k)) return false;
    store<u64>(<usize>load<u32>(cp + C_OPEN) + O_BASE_VIEWS, views);
  }
  store<u64>(cp + C_BASE_FAILS, load<u64>(s + EC_BASE_FAILS));
  store<u32>(cp + C_PENDING, load<u32>(s + EC_PENDING));
  return true;
}

let exportCursor: i32 = -1;

/** Where the next export page starts (after exportKeys); -1 when the pass is complete. */
export function exportNextCursor(): i32 { return exportCursor; }

/** Bytes of one exported key with `cells` cells, `ext` extension bytes per cell and `names` bytes of names. */
@inline function exportedSize(cells: i32, ext: usize, names: usize): usize {
  return E_HEADER + E_KEY_BYTES + <usize>cells * E_CELL_BYTES + <usize>cells * ext + names;
}

/** Bytes of the names of key `k` (its own, then each cell's: a u32 length and the bytes each), padded to 8. */
function namesSize(k: usize): usize {
  let n: usize = 4 + <usize>nameLen(<usize>load<u32>(k + K_NAME));
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    n += 4 + <usize>nameLen(cellNameBlock(cp));
    c = load<i32>(cp + C_NEXT);
  }
  return (n + 7) & ~7;
}

/** Writes name block `name` (0: none, an empty name) at `w` as a u32 length and its bytes; returns the next position. */
@inline function writeName(w: usize, name: usize): usize {
  const len = <usize>nameLen(name);
  store<u32>(w, <u32>len);
  if (len != 0) memory.copy(w + 4, nameBytes(name), len);
  return w + 4 + len;
}

function cellCount(k: usize): i32 {
  let n: i32 = 0;
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) { n++; c = load<i32>(cellPtr(c) + C_NEXT); }
  return n;
}

// Which keys an export walks: every key by index (a full export), or the keys whose changed bit is
// set (store.ts markChanged: an incremental export). Either way in key index order, so the key blocks
// are read in address order; the changed bits are skipped a u64 word of unchanged keys at a time
// (the key high-water mark / 64 reads, next to the keys written). One loop serves both.
export const SOURCE_ALL: i32 = 0;
export const SOURCE_CHANGED: i32 = 1;

/** The first key index from `i` on (below `len`, the key high-water mark) that `source` holds; `len` when none. */
@inline function sourceNext(source: i32, i: i32, len: i32): i32 {
  if (source != SOURCE_CHANGED) return i;
  const bits = hdrPtr(H_CHANGED_PTR);
  while (i < len) {
    const v = load<u64>(bits + ((<usize>i >> 6) << 3)) >> <u64>(i & 63);
    if (v != 0) {
      i += <i32>ctz(v);
      return i < len ? i : len;
    }
    i = (i | 63) + 1;
  }
  return len;
}

let sizedKeys: i32 = 0;

/** How many keys the last exportBytes or exportRegion took. */
export function exportedKeys(): i32 { return sizedKeys; }

/**
 * Bytes the keys of `source` in key groups [lo, hi) take exported (both scopes): the page-by-page
 * exporter (exportKeys) sizes its part with it first. exportedKeys() says how many keys.
 */
export function exportBytes(source: i32, lo: i32, hi: i32, groups: i32): usize {
  const len = hdrI32(H_KEY_HWM);
  let bytes: usize = 0;
  let n: i32 = 0;
  for (let i = sourceNext(source, 0, len); i < len; i = sourceNext(source, i + 1, len)) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) == 0) continue; // free (or freed since it changed)
    const group = keyGroup(k, groups);
    if (group < lo || group >= hi) continue;
    bytes += keyExportSize(k);
    n++;
  }
  sizedKeys = n;
  return bytes;
}

/** The key group of key `k` (its property's). */
@inline function keyGroup(k: usize, groups: i32): i32 {
  const parent = load<i32>(k + K_PARENT);
  return groupOf(parent >= 0 ? load<u64>(keyPtr(parent) + K_HASH) : load<u64>(k + K_HASH), groups);
}

/** Bytes key `k` takes exported. */
@inline function keyExportSize(k: usize): usize {
  return exportedSize(cellCount(k), load<i32>(k + K_PARENT) >= 0 ? 0 : PX_DATA, namesSize(k));
}

/** Writes key `k` of key group `group` exported at `r` (keyExportSize(k) bytes). */
function writeExported(k: usize, group: i32, r: usize): void {
  const parent = load<i32>(k + K_PARENT);
  const cells = cellCount(k);
  const ext: usize = parent >= 0 ? 0 : PX_DATA;
  const names = namesSize(k);
  const size = exportedSize(cells, ext, names);
  store<u32>(r + E_GROUP, <u32>group);
  store<u32>(r + E_CELLS, <u32>cells);
  store<u64>(r + E_PARENT_HASH, parent >= 0 ? load<u64>(keyPtr(parent) + K_HASH) : 0);
  store<u32>(r + E_NAMES, <u32>names);
  store<u32>(r + E_EXT, <u32>ext);
  // Name blocks are addresses in this kernel: the names travel as bytes at the record's end. Links
  // (indices) are local to this kernel too: an importer rebuilds them, so they go as 0 and a key's
  // exported bytes depend on its state only (not on the order keys were created or imported).
  const ke = r + E_HEADER;
  memory.fill(ke, 0, EK_FIELDS);
  store<u64>(ke + EK_HASH, load<u64>(k + K_HASH));
  store<u8>(ke + EK_SCOPE, load<u8>(k + K_SCOPE));
  store<u8>(ke + EK_DIRTY, load<u8>(k + K_DIRTY));
  store<u8>(ke + EK_PROFILE, load<u8>(k + K_PROFILE));
  store<i64>(ke + EK_HEAD_SLOT, headSlot(k));
  store<i64>(ke + EK_FOLDED_SLOT, foldedSlot(k));
  store<i64>(ke + EK_LAST_TS, lastTs(k));
  store<u64>(ke + EK_BASE_VIEWS, load<u64>(k + K_BASE_VIEWS));
  ringExport(k + K_RING, ke + EK_FIELDS);
  let p = r + E_HEADER + E_KEY_BYTES;
  let x = p + <usize>cells * E_CELL_BYTES;
  const namesAt = r + size - names;
  let nw = writeName(namesAt, <usize>load<u32>(k + K_NAME));
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    exportCell(cp, k, p);
    nw = writeName(nw, cellNameBlock(cp));
    // A property cell's extension (fast baseline, hot mark) goes with it.
    if (ext != 0) { memory.copy(x, extPtr(cellExt(cp)), PX_DATA); x += PX_DATA; }
    p += E_CELL_BYTES;
    c = load<i32>(cp + C_NEXT);
  }
  memory.fill(nw, 0, namesAt + names - nw);
}

/**
 * Writes the keys of `source` of one scope (properties pass first, then titles, so an importer always
 * has a title's property) whose key group is in [lo, hi), from position `cursor` of the source on,
 * into [out, out+cap); returns the bytes written, and exportNextCursor() says where the next page
 * starts. The export of a part too large for the export region (exportRegion), page by page.
 */
export function exportKeys(source: i32, scope: i32, cursor: i32, out: usize, cap: usize, lo: i32, hi: i32, groups: i32): usize {
  const len = hdrI32(H_KEY_HWM);
  let w: usize = 0;
  let i = sourceNext(source, cursor, len);
  while (i < len) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) != 0 && <i32>load<u8>(k + K_SCOPE) == scope) {
      const group = keyGroup(k, groups);
      if (group >= lo && group < hi) {
        const size = keyExportSize(k);
        if (w + size > cap) break;
        writeExported(k, group, out + w);
        w += size;
      }
    }
    i = sourceNext(source, i + 1, len);
  }
  exportCursor = i < len ? i : -1;
  return w;
}

// The export region: two areas (properties, titles) the kernel writes a part's keys into in one pass
// over its source, each key read once (a sizing pass and a page-by-page pass read every key's
// record, cells and names twice, or three times counting a pass per scope; at random addresses for
// an incremental export that is most of its time). JS copies the properties area, then the titles
// area, into the part. The areas grow (doubling) as a pass needs, up to the bytes the caller allows,
// and are kept for the next export (written again, not faulted in again); an outgrown area's memory
// goes to the name slabs. Area a at REGION + a * 12: u32 address, u32 capacity, u32 bytes written
// (in memory, as all state that outlives a call).
const REGION = memory.data(24);
export const AREA_PROPS: i32 = 0;
export const AREA_TITLES: i32 = 1;
const AREA_MIN: usize = 64 << 10;

@inline function areaAt(a: i32): usize { return REGION + <usize>a * 12; }

/** The address of area `a` (0 properties, 1 titles) after exportRegion. */
export function exportAreaPtr(a: i32): usize { return <usize>load<u32>(areaAt(a)); }
/** The bytes written into area `a` by the last exportRegion. */
export function exportAreaLen(a: i32): usize { return <usize>load<u32>(areaAt(a), 8); }

/**
 * Room for `need` more bytes in area `a`, the two areas' written bytes staying within `limit`;
 * returns the address to write at, or 0 (over the limit, or no memory).
 */
function areaReserve(a: i32, need: usize, limit: usize): usize {
  const at = areaAt(a);
  const p = <usize>load<u32>(at);
  const cap = <usize>load<u32>(at, 4);
  const len = <usize>load<u32>(at, 8);
  if (len + need <= cap) return p + len;
  if (exportAreaLen(AREA_PROPS) + exportAreaLen(AREA_TITLES) + need > limit) return 0;
  let grown = cap < AREA_MIN ? AREA_MIN : cap << 1;
  while (grown < len + need) grown <<= 1;
  if (grown > limit) grown = limit; // at least len + need (checked above)
  const q = heapAlloc(grown);
  if (q == 0) return 0;
  if (len != 0) memory.copy(q, p, len);
  if (cap != 0) releaseRegion(p, cap);
  store<u32>(at, <u32>q);
  store<u32>(at, <u32>grown, 4);
  return q + len;
}

/** Writes key `k` of key group `group` into its scope's area of the export region; false when over `limit` or out of memory. */
function regionWrite(k: usize, group: i32, limit: usize): bool {
  const a = <i32>load<u8>(k + K_SCOPE) == SCOPE_PROPERTY ? AREA_PROPS : AREA_TITLES;
  const size = keyExportSize(k);
  const w = areaReserve(a, size, limit);
  if (w == 0) return false;
  writeExported(k, group, w);
  store<u32>(areaAt(a), load<u32>(areaAt(a), 8) + <u32>size, 8);
  return true;
}

/**
 * Writes the keys of `source` in key groups [lo, hi) into the export region in one pass, properties
 * and titles apart (exportAreaPtr/Len); returns the bytes written (exportedKeys() says how many
 * keys), or -1 when they would take more than `limit` bytes or memory runs out: the caller then
 * exports page by page (exportBytes, exportKeys), and nothing here was changed but the region.
 */
export function exportRegion(source: i32, lo: i32, hi: i32, groups: i32, limit: usize): i32 {
  if (hdrI32(H_EXPORTING) != 0) return -1;
  store<u32>(areaAt(AREA_PROPS), 0, 8);
  store<u32>(areaAt(AREA_TITLES), 0, 8);
  const len = hdrI32(H_KEY_HWM);
  // Every key takes its header and record at least: a source that cannot fit is not tried.
  const live = source == SOURCE_CHANGED ? hdrI32(H_CHANGED_LEN) : hdrI32(H_KEY_COUNT);
  if (<u64>live * <u64>(E_HEADER + E_KEY_BYTES) > <u64>limit) return -1;
  // Titles are most of it: room for that least size up front, so that the pass does not grow the
  // area (copying what it wrote) key by key from a small start.
  if (live > 0 && areaReserve(AREA_TITLES, <usize>live * (E_HEADER + E_KEY_BYTES), limit) == 0) return -1;
  let n: i32 = 0;
  for (let i = sourceNext(source, 0, len); i < len; i = sourceNext(source, i + 1, len)) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) == 0) continue;
    const group = keyGroup(k, groups);
    if (group < lo || group >= hi) continue;
    if (!regionWrite(k, group, limit)) return -1;
    n++;
  }
  sizedKeys = n;
  return <i32>(exportAreaLen(AREA_PROPS) + exportAreaLen(AREA_TITLES));
}

// An incremental export in the background (copy on write): exportBegin takes the keys changed since
// the last export as the keys to write (their bits move to the pending bits, and the changed bits start
// afresh, as after any export), then ingestion goes on. Each pending key is written into the export
// region by a slice (exportSlice, called between chunks) or by its own first change (store.ts
// markChanged and deleteKey call exportBeforeWrite before writing to the key), whichever comes
// first, so every key goes as it was when the export began. Nothing else of a key's state is ever
// written without that call before (the kernel's one rule for writes, store.ts markChanged), and
// what an export holds besides the keys (counters, event time, held records, the duplicate filter,
// the deleted keys) the caller takes at exportBegin. The worker's pause is exportBegin and each slice
// (a bounded number of keys), instead of the whole export.

/** Whether key `idx` is still to be written by the export in progress; clears it. */
@inline function takePending(idx: i32): bool {
  const w = hdrPtr(H_PENDING_PTR) + ((<usize>idx >> 6) << 3);
  const bit = <u64>1 << <u64>(idx & 63);
  const v = load<u64>(w);
  if ((v & bit) == 0) return false;
  store<u64>(w, v & ~bit);
  const left = hdrI32(H_PENDING_LEN) - 1;
  setHdrI32(H_PENDING_LEN, left);
  if (left == 0) setHdrI32(H_EXPORTING, 0);
  return true;
}

/** Writes pending key `idx` (taken) into the export region if it lives in the export's key groups; whether it did. */
function writePending(idx: i32): bool {
  const k = keyPtr(idx);
  if (load<u64>(k + K_HASH) == 0) return false; // deleted before the export began
  const group = keyGroup(k, hdrI32(H_EXPORT_GROUPS));
  if (group < hdrI32(H_EXPORT_LO) || group >= hdrI32(H_EXPORT_HI)) return false;
  if (hdrI32(H_EXPORT_FAILED) != 0) return false;
  if (!regionWrite(k, group, hdrPtr(H_EXPORT_LIMIT))) {
    // No room: the export is lost (the caller refuses it), and the next one must be full.
    setHdrI32(H_EXPORT_FAILED, 1);
    setHdrI32(H_CHANGES_LOST, 1);
    return false;
  }
  setHdrI32(H_EXPORT_KEYS, hdrI32(H_EXPORT_KEYS) + 1);
  return true;
}

/** Called before the first write to key `idx` (or its reuse) while an export is in progress: writes it first if it is pending. */
export function exportBeforeWrite(idx: i32): void {
  if (idx >= hdrI32(H_KEY_HWM) || !takePending(idx)) return;
  if (writePending(idx)) setHdrI32(H_EXPORT_COW, hdrI32(H_EXPORT_COW) + 1);
}

/**
 * Begins an incremental export of key groups [lo, hi) of `groups` (the keys changed since the last
 * export) in the background; the caller has taken the removed list (removedPtr) already, which this
 * empties. The export region may grow to `limit` bytes; `reserve` bytes of it are made ready for
 * titles up front (so that writes during ingestion rarely grow it). Returns the keys pending (0: the
 * export is complete at once), -1 when an export is in progress already, -2 out of memory (nothing is
 * changed then: the caller exports another way).
 */
export function exportBegin(lo: i32, hi: i32, groups: i32, limit: usize, reserve: usize): i32 {
  if (hdrI32(H_EXPORTING) != 0) return -1;
  let spare = hdrPtr(H_PENDING_PTR);
  if (spare == 0) {
    spare = heapAlloc(changedBytes(hdrI32(H_MAX_KEYS)));
    if (spare == 0) return -2;
  }
  // The pending bits are all clear between exports (each is cleared as its key is written): they
  // become the changed bits, and the changed bits the pending ones.
  setHdrPtr(H_PENDING_PTR, hdrPtr(H_CHANGED_PTR));
  store<usize>(HDR + H_CHANGED_PTR, spare);
  const pending = hdrI32(H_CHANGED_LEN);
  setHdrI32(H_PENDING_LEN, pending);
  setHdrI32(H_CHANGED_LEN, 0);
  setHdrI32(H_REMOVED_LEN, 0);
  setHdrI32(H_CHANGES_LOST, 0);
  setHdrI32(H_EXPORT_LO, lo);
  setHdrI32(H_EXPORT_HI, hi);
  setHdrI32(H_EXPORT_GROUPS, groups);
  setHdrPtr(H_EXPORT_LIMIT, limit);
  setHdrI32(H_EXPORT_CURSOR, 0);
  setHdrI32(H_EXPORT_KEYS, 0);
  setHdrI32(H_EXPORT_COW, 0);
  setHdrI32(H_EXPORT_FAILED, 0);
  store<u32>(areaAt(AREA_PROPS), 0, 8);
  store<u32>(areaAt(AREA_TITLES), 0, 8);
  if (reserve > 0) areaReserve(AREA_TITLES, reserve < limit ? reserve : limit, limit);
  setHdrI32(H_EXPORTING, pending > 0 ? 1 : 0);
  return pending;
}

/** Writes up to `maxKeys` pending keys of the export in progress (in key index order); returns the keys still pending. */
export function exportSlice(maxKeys: i32): i32 {
  if (hdrI32(H_EXPORTING) == 0) return 0;
  const len = hdrI32(H_KEY_HWM);
  const bits = hdrPtr(H_PENDING_PTR);
  let i = hdrI32(H_EXPORT_CURSOR);
  let n: i32 = 0;
  while (i < len && n < maxKeys && hdrI32(H_EXPORTING) != 0) {
    const v = load<u64>(bits + ((<usize>i >> 6) << 3)) >> <u64>(i & 63);
    if (v == 0) { i = (i | 63) + 1; continue; }
    i += <i32>ctz(v);
    if (i >= len) break;
    takePending(i);
    writePending(i);
    n++;
    i++;
  }
  setHdrI32(H_EXPORT_CURSOR, i);
  return hdrI32(H_PENDING_LEN);
}

/**
 * Of the export begun last: 0 keys written, 1 of them written before a change, 2 whether it failed
 * (no room); 3 the keys changed since (what the next export begins with).
 */
export function exportProgress(what: i32): i32 {
  if (what == 0) return hdrI32(H_EXPORT_KEYS);
  if (what == 1) return hdrI32(H_EXPORT_COW);
  if (what == 2) return hdrI32(H_EXPORT_FAILED);
  return hdrI32(H_CHANGED_LEN);
}

// Incremental export: the keys whose changed bit is set (store.ts markChanged) and the keys deleted since
// the last export. resetChanges() (store.ts) after every export.

/** Whether what changed since the last export is known (false after the removed list overflowed: export all). */
export function changesKnown(): bool { return hdrI32(H_CHANGES_LOST) == 0; }

/** Keys deleted since the last export (entries of 16 bytes: u64 hash, u32 key group, u32 0). */
export function removedCount(): i32 { return hdrI32(H_REMOVED_LEN); }
export function removedPtr(): usize { return hdrPtr(H_REMOVED_PTR); }

/**
 * Imports exported keys from [ptr, ptr+len): every link, list and table entry is rebuilt here, and
 * every name copied into this kernel's name store. Returns the number of keys imported, or a
 * negative code: -1 a key of a group this kernel does not own, -2 a title whose property is
 * missing, -3 the key or cell cap (or memory for the names), -4 a key that exists already, -5 a
 * record (or a name in it) that overruns the input.
 */
export function importKeys(ptr: usize, len: usize, groups: i32): i32 {
  const lo = hdrI32(H_GROUP_LO);
  const hi = hdrI32(H_GROUP_HI);
  const end = ptr + len;
  let p = ptr;
  let n: i32 = 0;
  while (p < end) {
    if (p + E_HEADER + E_KEY_BYTES > end) return -5;
    const cells = <i32>load<u32>(p + E_CELLS);
    const ext = <usize>load<u32>(p + E_EXT);
    const names = <usize>load<u32>(p + E_NAMES);
    // In u64: a damaged count must not wrap the size into a small one.
    const size64 = <u64>E_HEADER + <u64>E_KEY_BYTES + <u64>cells * (<u64>E_CELL_BYTES + <u64>ext) + <u64>names;
    if (size64 > <u64>(end - p)) return -5;
    const size = <usize>size64;
    const namesEnd = p + size;
    let np = namesEnd - names;
    if (!nameFits(np, namesEnd)) return -5;
    const src = p + E_HEADER;
    const hash = load<u64>(src + EK_HASH);
    const parentHash = load<u64>(p + E_PARENT_HASH);
    const scope = <i32>load<u8>(src + EK_SCOPE);
    const group = groupOf(parentHash != 0 ? parentHash : hash, groups);
    if (group < lo || group >= hi || <u32>group != load<u32>(p + E_GROUP)) return -1;
    if (findKey(hash) >= 0) return -4;
    if (ext != (scope == SCOPE_PROPERTY ? PX_DATA : 0)) return -5;
    let parent: i32 = -1;
    if (scope != SCOPE_PROPERTY) {
      parent = findKey(parentHash);
      if (parent < 0) return -2;
    }
    const key = createKey(hash, scope, parent, 0, -1);
    if (key < 0) return -3;
    const k = keyPtr(key);
    // Everything but the links: the counts, slots, baselines and flags of the exporting kernel; the
    // name from the record's names. An imported key is a change of this kernel (createKey listed it).
    // The ring comes as u32[SLOTS] and is kept as narrow as its counts allow (rings.ts).
    store<u8>(k + K_DIRTY, load<u8>(src + EK_DIRTY));
    const head = load<i64>(src + EK_HEAD_SLOT);
    const folded = load<i64>(src + EK_FOLDED_SLOT);
    if (head != -1) reachSlot(scope, head);
    if (folded != -1 && folded > head) reachSlot(scope, folded);
    setHeadSlot(k, head);
    setFoldedSlot(k, folded);
    setLastTs(k, load<i64>(src + EK_LAST_TS));
    store<u64>(k + K_BASE_VIEWS, load<u64>(src + EK_BASE_VIEWS));
    ringFree(k + K_RING);
    if (!ringImport(k + K_RING, src + EK_FIELDS)) return -3;
    const keyName = allocName(np + 4, <i32>load<u32>(np));
    if (keyName == 0) return -3;
    store<u32>(k + K_NAME, <u32>keyName);
    np += 4 + <usize>load<u32>(np);
    store<i32>(k + K_PARENT, parent); // a property: -1, no title keys yet
    store<i32>(k + K_FIRST_CELL, -1);
    store<u8>(k + K_PROFILE, parent < 0 ? <u8>profileOfHash(hash) : 0);
    if (parent >= 0) addChildren(keyPtr(parent), 1);
    if (load<u8>(k + K_DIRTY) != 0) {
      const dl = hdrI32(H_DIRTY_LEN);
      store<i32>(hdrPtr(H_DIRTY_PTR) + (<usize>dl << 2), key);
      setHdrI32(H_DIRTY_LEN, dl + 1);
    }
    // Cells in their exported order, linked in the same order.
    let first: i32 = -1;
    let last: i32 = -1;
    let cs = src + E_KEY_BYTES;
    let xs = cs + <usize>cells * E_CELL_BYTES;
    for (let i: i32 = 0; i < cells; i++) {
      if (!nameFits(np, namesEnd)) return -5;
      // A title cell shares its property cell's name (store.ts); the property came first.
      const c = createCell(key, load<u64>(cs), np + 4, <i32>load<u32>(np));
      if (c < 0) return -3;
      const cp = cellPtr(c);
      const myExt = cellExt(cp);
      if (!importCell(cs, cp, k)) return -3;
      np += 4 + <usize>load<u32>(np);
      if (myExt >= 0) { memory.copy(extPtr(myExt), xs, PX_DATA); xs += PX_DATA; }
      store<i32>(cp + C_NEXT, -1 - key);
      if (last < 0) first = c;
      else store<i32>(cellPtr(last) + C_NEXT, c);
      last = c;
      if (load<u8>(cp + C_STATUS) != 0) addOpen(c, <usize>load<u32>(cp + C_OPEN));
      cs += E_CELL_BYTES;
    }
    store<i32>(k + K_FIRST_CELL, first);
    p += size;
    n++;
  }
  return n;
}

/** Whether a name (a u32 length and its bytes) at `np` ends by `end`. */
@inline function nameFits(np: usize, end: usize): bool {
  return np + 4 <= end && <u64>load<u32>(np) <= <u64>(end - np - 4);
}

/** Sets the event-time state of a kernel being restored: the next tick to evaluate and the highest target reached. */
export function setEventTime(nextTick: i64, maxTs: i64): void {
  setHdrI64(H_NEXT_TICK, nextTick);
  setHdrI64(H_MAX_TS, maxTs);
}

let heldCursor: i32 = -1;

/** Where the next page of held records starts (after exportHeld); -1 when complete. */
export function exportHeldNextCursor(): i32 { return heldCursor; }

/**
 * Writes the held records (held.ts) of properties in key groups [lo, hi), from heap position
 * `cursor` on, into [out, out+cap) as packed records (R_TS their event time); returns the bytes.
 * In the order they are due (the first page sorts the heap so): an importer holds them in that order,
 * so records of one time keep the order they arrived in (held.ts).
 */
export function exportHeld(cursor: i32, out: usize, cap: usize, lo: i32, hi: i32, groups: i32): usize {
  if (cursor == 0) sortHeld();
  const n = heldCount();
  let w: usize = 0;
  let i = cursor;
  while (i < n) {
    const p = heldAt(i);
    const group = groupOf(load<u64>(p + R_PROP_HASH), groups);
    if (group >= lo && group < hi) {
      const size = recordSize(p);
      if (w + size > cap) break;
      memory.copy(out + w, p, size);
      w += size;
    }
    i++;
  }
  heldCursor = i < n ? i : -1;
  return w;
}

/** Holds exported held records again; returns how many, or -1 for a record of a group this kernel does not own, -3 when there is no room. */
export function importHeld(ptr: usize, len: usize, groups: i32): i32 {
  const lo = hdrI32(H_GROUP_LO);
  const hi = hdrI32(H_GROUP_HI);
  let p = ptr;
  let n: i32 = 0;
  while (p < ptr + len) {
    const group = groupOf(load<u64>(p + R_PROP_HASH), groups);
    if (group < lo || group >= hi) return -1;
    // Counted as held by the exporter already (its counters come with the part).
    if (!holdRecord(p, load<i64>(p + R_TS), false)) return -3;
    p += recordSize(p);
    n++;
  }
  return n;
}

/** Adds to one of the f64 counters of the state header (a restored kernel's history). */
export function addCounter(off: i32, v: f64): void {
  bumpF64(<usize>off, v);
}

// Reading names from JS: the address and length of the bytes of a live key's or cell's name.
/** The key's own name block (a title key's title; its property is keyParent's name). */
export function keyName(key: i32): usize { return <usize>load<u32>(keyPtr(key) + K_NAME); }
/** The property key of a title key, or the key itself for a property. */
export function keyProperty(key: i32): i32 {
  const parent = load<i32>(keyPtr(key) + K_PARENT);
  return parent >= 0 ? parent : key;
}
export function keyScope(key: i32): i32 { return <i32>load<u8>(keyPtr(key) + K_SCOPE); }
export function cellName(cell: i32): usize { return cellNameBlock(cellPtr(cell)); }
export function nameLength(p: usize): i32 { return nameLen(p); }
export function nameAddress(p: usize): usize { return nameBytes(p); }
