// State by key group: keys (with their cells) are exported and imported as self-contained
// records, so a checkpoint taken by W workers restores into any number of workers (each imports
// the key groups it owns, as Flink moves key groups on rescale). Indices are local to a kernel:
// a record carries hashes, never indices, and import rebuilds every link, list and table.
import {
  hdrI32, setHdrI32, setHdrI64, hdrPtr, bumpF64,
  H_KEY_HWM, H_GROUP_LO, H_GROUP_HI, H_DIRTY_PTR, H_DIRTY_LEN, H_OPEN_PTR, H_OPEN_LEN, H_NEXT_TICK, H_MAX_TS,
} from './state';
import {
  keyPtr, cellPtr, extPtr, findKey, createKey, createCell, KEY_SIZE, CELL_SIZE, PX_DATA,
  K_HASH, K_PARENT, K_SCOPE, K_DIRTY, K_FIRST_CELL, K_CHILDREN, K_NEXT_FREE, K_PROFILE,
  C_KEY, C_NEXT, C_STATUS, C_OPEN_POS, C_NEXT_FREE, C_EXT, K_NAME, C_NAME,
} from './store';
import { allocName, freeName, nameLen, nameBytes } from './names';
import { groupOf } from './chunk';
import { profileOfHash, SCOPE_PROPERTY } from './params';
import { heldCount, heldAt, holdRecord } from './held';
import { recordSize, R_PROP_HASH, R_TS } from './ingest';

// An exported key: a 24-byte header, the key record, its cell records, each cell's index in the
// exporting kernel (u32, padded to 8 bytes), then for a property each cell's extension data (store.ts
// PX_DATA bytes). JS reads the layout from these exported constants.
export const E_GROUP: usize = 0;       // u32 key group (of the property)
export const E_CELLS: usize = 4;       // u32 cells that follow
export const E_PARENT_HASH: usize = 8; // u64 the property's hash for a title key, 0 for a property
export const E_KEY_INDEX: usize = 16;  // u32 index in the exporting kernel (JS keeps names by index)
export const E_EXT: usize = 20;        // u32 extension bytes per cell after the indices (PX_DATA for a property, 0 for a title)
export const E_HEADER: usize = 24;
export const E_KEY_BYTES: usize = KEY_SIZE;
export const E_CELL_BYTES: usize = CELL_SIZE;

let exportCursor: i32 = -1;

/** Where the next export page starts (after exportKeys); -1 when the pass is complete. */
export function exportNextCursor(): i32 { return exportCursor; }

/** Bytes of one exported key with `cells` cells and `ext` extension bytes per cell. */
@inline function exportedSize(cells: i32, ext: usize): usize {
  return E_HEADER + KEY_SIZE + <usize>cells * CELL_SIZE + ((<usize>cells * 4 + 7) & ~7) + <usize>cells * ext;
}

function cellCount(k: usize): i32 {
  let n: i32 = 0;
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) { n++; c = load<i32>(cellPtr(c) + C_NEXT); }
  return n;
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
    const hash = load<u64>(k + K_HASH);
    if (hash != 0 && <i32>load<u8>(k + K_SCOPE) == scope) {
      const parent = load<i32>(k + K_PARENT);
      const propHash = parent >= 0 ? load<u64>(keyPtr(parent) + K_HASH) : hash;
      const group = groupOf(propHash, groups);
      if (group >= lo && group < hi) {
        const cells = cellCount(k);
        const ext: usize = parent >= 0 ? 0 : PX_DATA;
        const size = exportedSize(cells, ext);
        if (w + size > cap) break;
        const r = out + w;
        store<u32>(r + E_GROUP, <u32>group);
        store<u32>(r + E_CELLS, <u32>cells);
        store<u64>(r + E_PARENT_HASH, parent >= 0 ? propHash : 0);
        store<u32>(r + E_KEY_INDEX, <u32>i);
        store<u32>(r + E_EXT, <u32>ext);
        memory.copy(r + E_HEADER, k, KEY_SIZE);
        // Names travel as text next to the records (they are addresses in this kernel).
        store<u32>(r + E_HEADER + K_NAME, 0);
        let p = r + E_HEADER + KEY_SIZE;
        let q = p + <usize>cells * CELL_SIZE;
        let x = q + ((<usize>cells * 4 + 7) & ~7);
        let c = load<i32>(k + K_FIRST_CELL);
        while (c >= 0) {
          const cp = cellPtr(c);
          memory.copy(p, cp, CELL_SIZE);
          store<u32>(p + C_NAME, 0);
          store<u32>(q, <u32>c);
          // A property cell's extension (fast baseline, hot mark) goes with it.
          if (ext != 0) { memory.copy(x, extPtr(load<i32>(cp + C_EXT)), PX_DATA); x += PX_DATA; }
          p += CELL_SIZE;
          q += 4;
          c = load<i32>(cp + C_NEXT);
        }
        if ((cells & 1) != 0) store<u32>(q, 0);
        w += size;
      }
    }
    i++;
  }
  exportCursor = i < hwm ? i : -1;
  return w;
}

/**
 * Imports exported keys from [ptr, ptr+len): every link, list and table entry is rebuilt here.
 * For each key it writes its new index, then each of its cells' new index, as i32 to `idxOut` (JS
 * names them). Returns the number of keys imported, or a negative code: -1 a key of a group this
 * kernel does not own, -2 a title whose property is missing, -3 the key or cell cap, -4 a key that
 * exists already, -5 a record that overruns the input.
 */
export function importKeys(ptr: usize, len: usize, groups: i32, idxOut: usize): i32 {
  const lo = hdrI32(H_GROUP_LO);
  const hi = hdrI32(H_GROUP_HI);
  const end = ptr + len;
  let p = ptr;
  let o = idxOut;
  let n: i32 = 0;
  while (p < end) {
    if (p + E_HEADER + KEY_SIZE > end) return -5;
    const cells = <i32>load<u32>(p + E_CELLS);
    const ext = <usize>load<u32>(p + E_EXT);
    const size = exportedSize(cells, ext);
    if (p + size > end) return -5;
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
    // Everything but the links: the counts, slots, baselines and flags of the exporting kernel. The
    // name comes after, from the part's names (setKeyName).
    memory.copy(k, src, KEY_SIZE);
    store<u32>(k + K_NAME, 0);
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
    store<i32>(o, key);
    o += 4;
    // Cells in their exported order, linked in the same order.
    let first: i32 = -1;
    let last: i32 = -1;
    let cs = src + KEY_SIZE;
    let xs = cs + <usize>cells * CELL_SIZE + ((<usize>cells * 4 + 7) & ~7);
    for (let i: i32 = 0; i < cells; i++) {
      const c = createCell(key, load<u64>(cs), 0, -1);
      if (c < 0) return -3;
      const cp = cellPtr(c);
      const myExt = load<i32>(cp + C_EXT);
      memory.copy(cp, cs, CELL_SIZE);
      store<i32>(cp + C_EXT, myExt);
      store<u32>(cp + C_NAME, 0);
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
      store<i32>(o, c);
      o += 4;
      cs += CELL_SIZE;
    }
    store<i32>(k + K_FIRST_CELL, first);
    p += size;
    n++;
  }
  return n;
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
 */
export function exportHeld(cursor: i32, out: usize, cap: usize, lo: i32, hi: i32, groups: i32): usize {
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
    if (!holdRecord(p, load<i64>(p + R_TS))) return -3;
    p += recordSize(p);
    n++;
  }
  return n;
}

/** Adds to one of the f64 counters of the state header (a restored kernel's history). */
export function addCounter(off: i32, v: f64): void {
  bumpF64(<usize>off, v);
}

/** Names key `key` (an import) by the `len` bytes at `ptr`; false when memory is exhausted. */
export function setKeyName(key: i32, ptr: usize, len: i32): bool {
  const k = keyPtr(key);
  const name = allocName(ptr, len);
  if (name == 0) return false;
  freeName(<usize>load<u32>(k + K_NAME));
  store<u32>(k + K_NAME, <u32>name);
  return true;
}

/** Names cell `cell` (an import) by the `len` bytes at `ptr`; false when memory is exhausted. */
export function setCellName(cell: i32, ptr: usize, len: i32): bool {
  const c = cellPtr(cell);
  const name = allocName(ptr, len);
  if (name == 0) return false;
  freeName(<usize>load<u32>(c + C_NAME));
  store<u32>(c + C_NAME, <u32>name);
  return true;
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
