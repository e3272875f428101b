// State by key group: keys (with their cells) are exported and imported as self-contained
// records, so a checkpoint taken by W workers restores into any number of workers (each imports
// the key groups it owns, as Flink moves key groups on rescale). Indices are local to a kernel:
// a record carries hashes, never indices, and import rebuilds every link, list and table.
import {
  hdrI32, setHdrI32, setHdrI64, hdrPtr, bumpF64,
  H_KEY_HWM, H_GROUP_LO, H_GROUP_HI, H_DIRTY_PTR, H_DIRTY_LEN, H_OPEN_PTR, H_OPEN_LEN, H_NEXT_TICK, H_MAX_TS,
  H_CHANGED_PTR, H_CHANGED_LEN, H_REMOVED_PTR, H_REMOVED_LEN, H_CHANGES_LOST,
} from './state';
import {
  keyPtr, cellPtr, extPtr, findKey, createKey, createCell, KEY_SIZE, CELL_SIZE, PX_DATA,
  K_HASH, K_PARENT, K_SCOPE, K_DIRTY, K_FIRST_CELL, K_CHILDREN, K_NEXT_FREE, K_PROFILE,
  C_KEY, C_NEXT, C_STATUS, C_OPEN_POS, C_NEXT_FREE, C_EXT, K_NAME, C_NAME, K_CHANGED,
} from './store';
import { allocName, nameLen, nameBytes } from './names';
import { groupOf } from './chunk';
import { profileOfHash, SCOPE_PROPERTY } from './params';
import { heldCount, heldAt, holdRecord, sortHeld } from './held';
import { recordSize, R_PROP_HASH, R_TS } from './ingest';

// An exported key: a 24-byte header, the key record, its cell records, for a property each cell's
// extension data (store.ts PX_DATA bytes), then the names: the key's own name (a title key's title,
// a property's id) and each cell's error type, each a u32 length and its UTF-8 bytes, the whole
// padded to 8 bytes. Names go as bytes straight from the name store, so exporting decodes no text.
// JS reads the layout from these exported constants.
export const E_GROUP: usize = 0;       // u32 key group (of the property)
export const E_CELLS: usize = 4;       // u32 cells that follow
export const E_PARENT_HASH: usize = 8; // u64 the property's hash for a title key, 0 for a property
export const E_NAMES: usize = 16;      // u32 bytes of the names at the record's end (a multiple of 8)
export const E_EXT: usize = 20;        // u32 extension bytes per cell after the cells (PX_DATA for a property, 0 for a title)
export const E_HEADER: usize = 24;
export const E_KEY_BYTES: usize = KEY_SIZE;
export const E_CELL_BYTES: usize = CELL_SIZE;

let exportCursor: i32 = -1;

/** Where the next export page starts (after exportKeys); -1 when the pass is complete. */
export function exportNextCursor(): i32 { return exportCursor; }

/** Bytes of one exported key with `cells` cells, `ext` extension bytes per cell and `names` bytes of names. */
@inline function exportedSize(cells: i32, ext: usize, names: usize): usize {
  return E_HEADER + KEY_SIZE + <usize>cells * CELL_SIZE + <usize>cells * ext + names;
}

/** Bytes of the names of key `k` (its own, then each cell's: a u32 length and the bytes each), padded to 8. */
function namesSize(k: usize): usize {
  let n: usize = 4 + <usize>nameLen(<usize>load<u32>(k + K_NAME));
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    n += 4 + <usize>nameLen(<usize>load<u32>(cp + C_NAME));
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

let sizedKeys: i32 = 0;

/** How many keys the last exportBytes counted. */
export function exportedKeys(): i32 { return sizedKeys; }

/**
 * Bytes the keys of key groups [lo, hi) take exported (both scopes, every page): the exporter sizes
 * its part once and copies each page straight into it. exportedKeys() says how many keys.
 */
export function exportBytes(lo: i32, hi: i32, groups: i32): usize {
  const hwm = hdrI32(H_KEY_HWM);
  let bytes: usize = 0;
  let n: i32 = 0;
  for (let i: i32 = 0; i < hwm; i++) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) == 0) continue;
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
  memory.copy(r + E_HEADER, k, KEY_SIZE);
  // Name blocks are addresses in this kernel: the names travel as bytes at the record's end. Whether
  // the key is in the changed list is this kernel's bookkeeping, not state.
  // Links (indices) are local to this kernel too: an importer rebuilds them, so they go as 0 and a
  // key's exported bytes depend on its state only (not on the order keys were created or imported).
  const ke = r + E_HEADER;
  store<u32>(ke + K_NAME, 0);
  store<u8>(ke + K_CHANGED, 0);
  store<i32>(ke + K_PARENT, 0);
  store<i32>(ke + K_FIRST_CELL, 0);
  store<i32>(ke + K_CHILDREN, 0);
  store<i32>(ke + K_NEXT_FREE, 0);
  let p = r + E_HEADER + KEY_SIZE;
  let x = p + <usize>cells * CELL_SIZE;
  const namesAt = r + size - names;
  let nw = writeName(namesAt, <usize>load<u32>(k + K_NAME));
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    memory.copy(p, cp, CELL_SIZE);
    store<u32>(p + C_NAME, 0);
    store<i32>(p + C_KEY, 0);
    store<i32>(p + C_NEXT, 0);
    store<i32>(p + C_OPEN_POS, 0);
    store<i32>(p + C_NEXT_FREE, 0);
    store<i32>(p + C_EXT, 0);
    nw = writeName(nw, <usize>load<u32>(cp + C_NAME));
    // A property cell's extension (fast baseline, hot mark) goes with it.
    if (ext != 0) { memory.copy(x, extPtr(load<i32>(cp + C_EXT)), PX_DATA); x += PX_DATA; }
    p += CELL_SIZE;
    c = load<i32>(cp + C_NEXT);
  }
  memory.fill(nw, 0, namesAt + names - nw);
}

/**
 * Writes the keys of one scope (properties pass first, then titles, so an importer always has a
 * title's property) whose key group is in [lo, hi), from key index `cursor` on, into [out, out+cap);
 * returns the bytes written, and exportNextCursor() says where the next page starts.
 */
export function exportKeys(scope: i32, cursor: i32, out: usize, cap: usize, lo: i32, hi: i32, groups: i32): usize {
  const hwm = hdrI32(H_KEY_HWM);
  let w: usize = 0;
  let i = cursor;
  while (i < hwm) {
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
    i++;
  }
  exportCursor = i < hwm ? i : -1;
  return w;
}

// Incremental export: the keys in the changed list (store.ts markChanged) and the keys deleted since
// the last export, in time proportional to what changed. resetChanges() (store.ts) after every export.

/** Whether what changed since the last export is known (false after the removed list overflowed: export all). */
export function changesKnown(): bool { return hdrI32(H_CHANGES_LOST) == 0; }

/** Bytes the changed keys of key groups [lo, hi) take exported; exportedKeys() says how many. */
export function exportChangedBytes(lo: i32, hi: i32, groups: i32): usize {
  const list = hdrPtr(H_CHANGED_PTR);
  const len = hdrI32(H_CHANGED_LEN);
  let bytes: usize = 0;
  let n: i32 = 0;
  for (let i: i32 = 0; i < len; i++) {
    const k = keyPtr(load<i32>(list + (<usize>i << 2)));
    if (load<u64>(k + K_HASH) == 0) continue; // freed since it changed
    const group = keyGroup(k, groups);
    if (group < lo || group >= hi) continue;
    bytes += keyExportSize(k);
    n++;
  }
  sizedKeys = n;
  return bytes;
}

/** exportKeys over the changed list: `cursor` is a position in that list. */
export function exportChanged(scope: i32, cursor: i32, out: usize, cap: usize, lo: i32, hi: i32, groups: i32): usize {
  const list = hdrPtr(H_CHANGED_PTR);
  const len = hdrI32(H_CHANGED_LEN);
  let w: usize = 0;
  let i = cursor;
  while (i < len) {
    const k = keyPtr(load<i32>(list + (<usize>i << 2)));
    if (load<u64>(k + K_HASH) != 0 && <i32>load<u8>(k + K_SCOPE) == scope) {
      const group = keyGroup(k, groups);
      if (group >= lo && group < hi) {
        const size = keyExportSize(k);
        if (w + size > cap) break;
        writeExported(k, group, out + w);
        w += size;
      }
    }
    i++;
  }
  exportCursor = i < len ? i : -1;
  return w;
}

/** The changed list (i32 key indices), for JS to sort in place before an incremental export (index order reads the key blocks in address order). */
export function changedPtr(): usize { return hdrPtr(H_CHANGED_PTR); }
export function changedCount(): i32 { return hdrI32(H_CHANGED_LEN); }

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
    if (p + E_HEADER + KEY_SIZE > end) return -5;
    const cells = <i32>load<u32>(p + E_CELLS);
    const ext = <usize>load<u32>(p + E_EXT);
    const names = <usize>load<u32>(p + E_NAMES);
    // In u64: a damaged count must not wrap the size into a small one.
    const size64 = <u64>E_HEADER + <u64>KEY_SIZE + <u64>cells * (<u64>CELL_SIZE + <u64>ext) + <u64>names;
    if (size64 > <u64>(end - p)) return -5;
    const size = <usize>size64;
    const namesEnd = p + size;
    let np = namesEnd - names;
    if (!nameFits(np, namesEnd)) return -5;
    const src = p + E_HEADER;
    const hash = load<u64>(src + K_HASH);
    const parentHash = load<u64>(p + E_PARENT_HASH);
    const scope = <i32>load<u8>(src + K_SCOPE);
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
    const listed = load<u8>(k + K_CHANGED);
    memory.copy(k, src, KEY_SIZE);
    store<u8>(k + K_CHANGED, listed);
    const keyName = allocName(np + 4, <i32>load<u32>(np));
    if (keyName == 0) return -3;
    store<u32>(k + K_NAME, <u32>keyName);
    np += 4 + <usize>load<u32>(np);
    store<i32>(k + K_PARENT, parent);
    store<i32>(k + K_FIRST_CELL, -1);
    store<i32>(k + K_CHILDREN, 0);
    store<i32>(k + K_NEXT_FREE, 0);
    store<u8>(k + K_PROFILE, parent < 0 ? <u8>profileOfHash(hash) : 0);
    if (parent >= 0) {
      const pk = keyPtr(parent);
      store<i32>(pk + K_CHILDREN, load<i32>(pk + K_CHILDREN) + 1);
    }
    if (load<u8>(k + K_DIRTY) != 0) {
      const dl = hdrI32(H_DIRTY_LEN);
      store<i32>(hdrPtr(H_DIRTY_PTR) + (<usize>dl << 2), key);
      setHdrI32(H_DIRTY_LEN, dl + 1);
    }
    // Cells in their exported order, linked in the same order.
    let first: i32 = -1;
    let last: i32 = -1;
    let cs = src + KEY_SIZE;
    let xs = cs + <usize>cells * CELL_SIZE;
    for (let i: i32 = 0; i < cells; i++) {
      if (!nameFits(np, namesEnd)) return -5;
      const c = createCell(key, load<u64>(cs), 0, -1);
      if (c < 0) return -3;
      const cp = cellPtr(c);
      const myExt = load<i32>(cp + C_EXT);
      memory.copy(cp, cs, CELL_SIZE);
      store<i32>(cp + C_EXT, myExt);
      const cellName = allocName(np + 4, <i32>load<u32>(np));
      if (cellName == 0) return -3;
      store<u32>(cp + C_NAME, <u32>cellName);
      np += 4 + <usize>load<u32>(np);
      if (myExt >= 0) { memory.copy(extPtr(myExt), xs, PX_DATA); xs += PX_DATA; }
      store<i32>(cp + C_KEY, key);
      store<i32>(cp + C_NEXT, -1);
      store<i32>(cp + C_NEXT_FREE, 0);
      store<i32>(cp + C_OPEN_POS, -1);
      if (last < 0) first = c;
      else store<i32>(cellPtr(last) + C_NEXT, c);
      last = c;
      if (load<u8>(cp + C_STATUS) != 0) {
        const ol = hdrI32(H_OPEN_LEN);
        store<i32>(hdrPtr(H_OPEN_PTR) + (<usize>ol << 2), c);
        store<i32>(cp + C_OPEN_POS, ol);
        setHdrI32(H_OPEN_LEN, ol + 1);
      }
      cs += CELL_SIZE;
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
export function cellName(cell: i32): usize { return <usize>load<u32>(cellPtr(cell) + C_NAME); }
export function nameLength(p: usize): i32 { return nameLen(p); }
export function nameAddress(p: usize): usize { return nameBytes(p); }
