// Keys (a property, or a property x title) and cells (a key x error type) in
// fixed-size records allocated in blocks of 4096, plus an open-addressing hash
// table from key hash to key index. Indices are stable while a key lives, so JS
// can ask for the name of key i (names.ts) while it lives.
import {
  HDR, SLOTS, BLOCK_SHIFT, BLOCK_MASK, heapAlloc,
  hdrI32, setHdrI32, hdrPtr,
  H_KEY_BLOCKS, H_CELL_BLOCKS, H_TABLE_PTR, H_TABLE_MASK, H_KEY_COUNT, H_CELL_COUNT,
  H_KEY_HWM, H_CELL_HWM, H_KEY_FREE, H_CELL_FREE, H_MAX_KEYS, H_MAX_CELLS,
  H_PX_BLOCKS, H_PX_HWM, H_PX_FREE, H_KEY_GROUPS, H_TABLE_INDEX_MASK, H_SLOT_BASE, H_SLOT_BASE_SET,
  H_CHANGED_PTR, H_CHANGED_LEN, H_REMOVED_PTR, H_REMOVED_LEN, H_REMOVED_CAP, H_CHANGES_LOST, H_EXPORTING,
} from './state';
import { exportBeforeWrite } from './key-groups';
import { profileBase, profileOfHash, profParam, slotMsOf, S_FAST_SHARE } from './params';
import { allocName, freeName, releaseRegion, allocBlock, freeBlock, blockClass, allocErrorName, freeErrorName, errorNameHash } from './names';
import { ringInit, ringFree } from './rings';
import { groupOf } from './chunk';

// Key record (KEY_SIZE bytes). Its ring of view counts is the 8 bytes at K_RING, its width code the
// byte before (rings.ts: a u2 ring is those bytes, a wider one a block they point to). A property key
// has no parent: its K_PARENT is -1 - (its live title keys), so `parent >= 0` tells a title key and
// the count needs no field of its own (childCount, addChildren). Its slots are i32 counted from its
// scope's base slot, its latest event time an i32 from the start of its head slot (headSlot, lastTs
// below). An exported key has the fields of the layout before (key-groups.ts EK_*), whatever the
// layout here.
export const K_HASH: usize = 0;        // u64, 0 = free
export const K_PARENT: usize = 8;      // i32 property key of a title key; a property: -1 - its live title keys
export const K_SCOPE: usize = 12;      // u8
export const K_DIRTY: usize = 13;      // u8 1 while in the dirty list
export const K_PROFILE: usize = 14;    // u8 parameter profile of a property key (params.ts); titles use their property's
export const K_RING_CODE: usize = 15;  // u8 width code of the ring (rings.ts, K_RING - 1)
export const K_RING: usize = 16;       // ring of views per slot (rings.ts: RING_RECORD_BYTES)
export const K_BASE_VIEWS: usize = 24; // f64 decayed views folded into the baseline (never frozen)
export const K_HEAD_SLOT: usize = 32;  // i32 newest slot with counts (headSlot: -1 none)
export const K_FOLDED_SLOT: usize = 36;// i32 slots <= this are folded into the baselines (foldedSlot)
export const K_LAST_TS: usize = 40;    // i32 latest event time (lastTs)
export const K_FIRST_CELL: usize = 44; // i32
export const K_NEXT_FREE: usize = 44;  // i32 free-list link (a free key has no cells)
export const K_NAME: usize = 48;       // u32 name block (names.ts): a property's id, a title key's title; 0 none
export const KEY_SIZE: usize = 52;

// A key's slots (its head and folded slots) are kept as i32 from a base slot per scope, set at the
// first slot a key takes and moved forward (rebaseSlots) before a slot would reach past SLOT_REACH
// from it: 2^30 slots (2,000 years of 1-minute slots, 12 days of 1-ms ones). A key more than 2^31
// slots behind the base (idle that long, or created by a record of such an age) is held at the
// bound (SLOT_LOW): nothing a detection can tell apart. Slot -1 (none) is SLOT_NONE.
const SLOT_NONE: i32 = i32.MIN_VALUE;
const SLOT_LOW: i64 = <i64>i32.MIN_VALUE + 1;
const SLOT_HIGH: i64 = <i64>i32.MAX_VALUE;
const SLOT_REACH: i64 = 1 << 30;

@inline function slotBase(scope: i32): i64 { return load<i64>(HDR + H_SLOT_BASE + (<usize>scope << 3)); }
@inline function keySlot(k: usize, at: usize): i64 {
  const r = load<i32>(k + at);
  return r == SLOT_NONE ? -1 : slotBase(<i32>load<u8>(k + K_SCOPE)) + <i64>r;
}
@inline function setKeySlot(k: usize, at: usize, slot: i64): void {
  let r: i64 = 0;
  if (slot == -1) {
    r = <i64>SLOT_NONE;
  } else {
    r = slot - slotBase(<i32>load<u8>(k + K_SCOPE));
    if (r < SLOT_LOW) r = SLOT_LOW;
    else if (r > SLOT_HIGH) r = SLOT_HIGH;
  }
  store<i32>(k + at, <i32>r);
}
/** The newest slot with counts of key record `k`; -1 none. */
@inline export function headSlot(k: usize): i64 { return keySlot(k, K_HEAD_SLOT); }
@inline export function setHeadSlot(k: usize, slot: i64): void { setKeySlot(k, K_HEAD_SLOT, slot); }
/** Slots of key record `k` up to this one are folded into its baselines. */
@inline export function foldedSlot(k: usize): i64 { return keySlot(k, K_FOLDED_SLOT); }
@inline export function setFoldedSlot(k: usize, slot: i64): void { setKeySlot(k, K_FOLDED_SLOT, slot); }

/**
 * Makes `slot` one that keys of `scope` can take: the scope's first slot sets its base; a slot
 * SLOT_REACH or more past it moves the base (and every key of the scope) forward.
 */
@inline export function reachSlot(scope: i32, slot: i64): void {
  if ((load<u32>(HDR + H_SLOT_BASE_SET) & (1 << <u32>scope)) == 0 || slot - slotBase(scope) >= SLOT_REACH) moveSlotBase(scope, slot);
}

function moveSlotBase(scope: i32, slot: i64): void {
  const bit: u32 = 1 << <u32>scope;
  const set = load<u32>(HDR + H_SLOT_BASE_SET);
  if ((set & bit) == 0) {
    store<i64>(HDR + H_SLOT_BASE + (<usize>scope << 3), slot);
    store<u32>(HDR + H_SLOT_BASE_SET, set | bit);
  } else {
    rebaseSlots(scope, slot - (SLOT_REACH >> 1));
  }
}

/** Moves the base slot of `scope` to `base`, keeping every key's slots (held at SLOT_LOW when further behind). */
function rebaseSlots(scope: i32, base: i64): void {
  const d = base - slotBase(scope);
  const hwm = hdrI32(H_KEY_HWM);
  for (let i = 0; i < hwm; i++) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) == 0 || <i32>load<u8>(k + K_SCOPE) != scope) continue;
    for (let at = K_HEAD_SLOT; at <= K_FOLDED_SLOT; at += 4) {
      const r = load<i32>(k + at);
      if (r == SLOT_NONE) continue;
      const moved = <i64>r - d;
      store<i32>(k + at, <i32>(moved < SLOT_LOW ? SLOT_LOW : moved));
    }
  }
  store<i64>(HDR + H_SLOT_BASE + (<usize>scope << 3), base);
}

/**
 * The latest event time counted for key record `k` (0 before any), whose head slot is `head` (-1
 * none) in slots of `slotMs`: kept from the start of its head slot, where it is (its head slot is its
 * latest event's; held within the i32's range).
 */
@inline export function lastTsAt(k: usize, head: i64, slotMs: i64): i64 {
  const r = <i64>load<i32>(k + K_LAST_TS);
  return head == -1 ? r : head * slotMs + r;
}
/** Sets the latest event time of key record `k`, whose head slot is `head` (set already). */
@inline export function setLastTsAt(k: usize, head: i64, slotMs: i64, ts: i64): void {
  let r = head == -1 ? ts : ts - head * slotMs;
  if (r < <i64>i32.MIN_VALUE) r = <i64>i32.MIN_VALUE;
  else if (r > <i64>i32.MAX_VALUE) r = <i64>i32.MAX_VALUE;
  store<i32>(k + K_LAST_TS, <i32>r);
}
@inline export function lastTs(k: usize): i64 { return lastTsAt(k, headSlot(k), slotMsOf(<i32>load<u8>(k + K_SCOPE))); }
@inline export function setLastTs(k: usize, ts: i64): void { setLastTsAt(k, headSlot(k), slotMsOf(<i32>load<u8>(k + K_SCOPE)), ts); }

/** Live title keys under property key record `pk`. */
@inline export function childCount(pk: usize): i32 { return -1 - load<i32>(pk + K_PARENT); }
/** Adds `d` to the live title keys under property key record `pk`. */
@inline export function addChildren(pk: usize, d: i32): void { store<i32>(pk + K_PARENT, load<i32>(pk + K_PARENT) - d); }

// Cell record (CELL_SIZE bytes), in its key's list of cells (K_FIRST_CELL, C_NEXT). Its ring of
// failure counts is the 8 bytes at C_RING, its width code the byte before (rings.ts). Its error type
// (name and hash) is an error name block (names.ts allocErrorName), most often its property cell's.
// The state of an incident (below) is a record of its own from the cell's first opening (or freeze)
// on (most cells never have one); a property cell has one from its creation on, which also names its
// extension record. An exported cell has every field at its own place (key-groups.ts EC_*).
export const C_NEXT: usize = 0;        // i32 next cell of the same key; the last cell's: -1 - its key (cellKey)
export const C_NEXT_FREE: usize = 0;   // i32 free-list link (a free cell is in no key's list)
export const C_PENDING: usize = 4;     // i32 failures since the latest evaluation
export const C_STATUS: usize = 8;      // u8 0 idle, 1 open
export const C_HOT: usize = 9;         // u8 1 while the baseline is frozen
export const C_OWN_VIEWS: usize = 10;  // u8 1: the baseline views are the cell's own (O_BASE_VIEWS), 0: its key's (cellBaseViews)
export const C_RING_CODE: usize = 11;  // u8 width code of the ring (rings.ts, C_RING - 1)
export const C_RING: usize = 12;       // ring of failures per slot (rings.ts: RING_RECORD_BYTES)
export const C_BASE_FAILS: usize = 20; // f64
export const C_NAME: usize = 28;       // u32 error name block (names.ts), | NAME_SHARED when it is the property cell's; 0 free
export const C_OPEN: usize = 32;       // u32 incident record (below) since the cell first opened or was hot (a property cell: since created); 0 none
export const CELL_SIZE: usize = 36;

/**
 * The key of cell record `cp`: the end of its key's list of cells names it (a cell needs no field
 * for it; a title's list is its one cell, a property's one per error type).
 */
export function cellKey(cp: usize): i32 {
  let n = load<i32>(cp + C_NEXT);
  while (n >= 0) n = load<i32>(cellPtr(n) + C_NEXT);
  return -1 - n;
}

// Incident record (a 64-byte block of the name store, names.ts): what a cell keeps about its incident,
// from its first opening (or its baseline's first freeze: O_BASE_VIEWS) on, kept after it closes (the
// values stay part of the cell's state, as exported). A cell that never opened reads as opened at 0,
// never calm, thresholds and impact 0, no evidence mark (and a record holds those values until the
// cell opens).
export const O_OPEN_POS: usize = 0;    // i32 position in the open list (-1 not open)
export const O_EXT: usize = 4;         // i32 a property cell's extension record (below); -1 a title cell's
export const O_OPENED_AT: usize = 8;   // i64
export const O_CALM_SINCE: usize = 16; // i64 -1 when not calm
export const O_OPEN_THR: usize = 24;   // f64 threshold crossed at opening
export const O_IMPACTED: usize = 32;   // f64 failures since opening
export const O_OPEN_BASE: usize = 40;  // f64 baseline at opening
export const O_EVIDENCE: usize = 48;   // i64 slots <= this are not evidence (set when an incident ends; -1 before)
export const O_BASE_VIEWS: usize = 56; // f64 the cell's baseline views, once they are its own (C_OWN_VIEWS)
const OPEN_BYTES: usize = 64;
const OPEN_CLASS: i32 = blockClass(OPEN_BYTES);

/** A new incident record as a cell that never opened has it; 0 when memory is exhausted. */
export function openRecordNew(): usize {
  const o = allocBlock(OPEN_CLASS);
  if (o == 0) return 0;
  memory.fill(o, 0, OPEN_BYTES);
  store<i32>(o + O_OPEN_POS, -1);
  store<i32>(o + O_EXT, -1);
  store<i64>(o + O_CALM_SINCE, -1);
  store<i64>(o + O_EVIDENCE, -1);
  return o;
}

/** Slots of cell record `cp` up to this one are not evidence (its latest incident ended there); -1 none. */
@inline export function cellEvidence(cp: usize): i64 {
  const o = <usize>load<u32>(cp + C_OPEN);
  return o == 0 ? -1 : load<i64>(o + O_EVIDENCE);
}

// A cell's baseline views start as its key's (createCell) and take the same decays and folds while
// the cell is not hot, so they are its key's, bit for bit, until the cell's baseline first freezes:
// a title cell keeps no copy of them until then (most never get hot). From then on (and for a
// property cell from its creation: folding its slot reads its reference between its key's fold and
// its own) they are the cell's own, in its incident record, which the cell has by then.
/** The baseline views of cell record `cp` of key record `k`. */
@inline export function cellBaseViews(cp: usize, k: usize): f64 {
  return load<u8>(cp + C_OWN_VIEWS) != 0 ? load<f64>(<usize>load<u32>(cp + C_OPEN) + O_BASE_VIEWS) : load<f64>(k + K_BASE_VIEWS);
}

/**
 * Makes the baseline views of cell record `cp` of key record `k` its own (before its baseline
 * freezes), with the incident record that keeps them; false when memory is exhausted.
 */
export function ownBaseViews(cp: usize, k: usize): bool {
  if (load<u8>(cp + C_OWN_VIEWS) != 0) return true;
  let op = <usize>load<u32>(cp + C_OPEN);
  if (op == 0) {
    op = openRecordNew();
    if (op == 0) return false;
    store<u32>(cp + C_OPEN, <u32>op);
  }
  store<f64>(op + O_BASE_VIEWS, load<f64>(k + K_BASE_VIEWS));
  store<u8>(cp + C_OWN_VIEWS, 1);
  return true;
}

/** The error type's hash of live cell record `cp` (kept in its name block). */
@inline export function cellErrHash(cp: usize): u64 { return errorNameHash(cellNameBlock(cp)); }

// A title cell names its error type with its property cell's name block when the property has a cell
// of that error type (it nearly always has: a view counts for the property first): one block per
// property and error type instead of one per title cell, and the cell record keeps no hash of its
// own. The low bit of C_NAME (blocks are 8-byte aligned) marks a borrowed block, which the title cell
// never frees. The property cell outlives it: a property key is evicted only once no title key is left
// under it, and its cells go only with it.
const NAME_SHARED: u32 = 1;
/** The name block of cell record `cp` (its own or its property cell's). */
@inline export function cellNameBlock(cp: usize): usize { return <usize>(load<u32>(cp + C_NAME) & ~NAME_SHARED); }

// Property-cell extension (PX_SIZE bytes): state only property cells need, kept out of the cell
// record that titles share, so title memory does not grow. Allocated with the cell, freed with it.
export const X_FAST_VIEWS: usize = 0;  // f64 fast baseline: decayed views
export const X_FAST_FAILS: usize = 8;  // f64 fast baseline: decayed failures, each slot clipped
export const X_FAST_LEVEL: usize = 16; // f64 the fast baseline's rate, rising at most fastRisePerHour
export const X_HOT_LAST: usize = 24;   // i64 newest key slot at which the cell was hot (-1 never)
export const X_NEXT_FREE: usize = 32;  // i32 free-list link
export const PX_SIZE: usize = 40;
/** The extension's state (everything before the free-list link): what a key-group export carries. */
export const PX_DATA: usize = 32;

/** The extension record of cell record `cp`: a property cell's (named by its incident record), -1 for a title cell. */
@inline export function cellExt(cp: usize): i32 {
  const o = <usize>load<u32>(cp + C_OPEN);
  return o == 0 ? -1 : load<i32>(o + O_EXT);
}

const BLOCK: i32 = 1 << BLOCK_SHIFT;

@inline export function keyPtr(i: i32): usize {
  return load<usize>(hdrPtr(H_KEY_BLOCKS) + (<usize>(i >> BLOCK_SHIFT) << 2)) + <usize>(i & BLOCK_MASK) * KEY_SIZE;
}
@inline export function cellPtr(i: i32): usize {
  return load<usize>(hdrPtr(H_CELL_BLOCKS) + (<usize>(i >> BLOCK_SHIFT) << 2)) + <usize>(i & BLOCK_MASK) * CELL_SIZE;
}
@inline export function extPtr(i: i32): usize {
  return load<usize>(hdrPtr(H_PX_BLOCKS) + (<usize>(i >> BLOCK_SHIFT) << 2)) + <usize>(i & BLOCK_MASK) * PX_SIZE;
}

// The hash table: open addressing with linear probing over u32 slots, each the key index + 1 (0:
// empty) in its low bits and, above them, as many bits of the key hash's high word as the key cap
// leaves (10 at 4M keys a worker): a probe confirms a slot against the key record's full hash only
// when those bits match (1 in 1,024 of the others at 4M keys), and a lookup reads the record next
// anyway. The home slot is the hash's low bits. The table starts small and doubles when it is three
// quarters full, so its memory follows the live keys, not the cap (4-11 bytes a key, was 8-21 with
// 8-byte slots of a u32 tag and the index); an outgrown table's memory goes to the name slabs (names.ts).
const TABLE_MIN: i32 = 4096;
const SLOT: usize = 4;

@inline function homeOf(hash: u64): u32 { return <u32>hash; }
/** The slot of key `idx` with hash `hash`, for index mask `im`. */
@inline function slotOf(hash: u64, idx: i32, im: u32): u32 { return (<u32>(hash >> 32) & ~im) | <u32>(idx + 1); }

/** Allocates the first hash table and the block tables; returns false when memory is exhausted. */
export function initStore(maxKeys: i32, maxCells: i32): bool {
  setHdrI32(H_MAX_KEYS, maxKeys);
  setHdrI32(H_MAX_CELLS, maxCells);
  // Key index + 1 <= maxKeys: the bits that hold maxKeys.
  store<u32>(HDR + H_TABLE_INDEX_MASK, <u32>0xffffffff >> <u32>clz<u32>(<u32>maxKeys));
  const table = heapAlloc(<usize>TABLE_MIN * SLOT);
  const kb = heapAlloc(<usize>((maxKeys + BLOCK - 1) >> BLOCK_SHIFT) * 4 + 4);
  const cb = heapAlloc(<usize>((maxCells + BLOCK - 1) >> BLOCK_SHIFT) * 4 + 4);
  // At most one extension per cell: the same block table size.
  const xb = heapAlloc(<usize>((maxCells + BLOCK - 1) >> BLOCK_SHIFT) * 4 + 4);
  // Change tracking: a bit per key index; removals until the list is full (then the next export is full).
  const changed = heapAlloc(changedBytes(maxKeys));
  const removed = heapAlloc(<usize>maxKeys * 16 + 16);
  if (table == 0 || kb == 0 || cb == 0 || xb == 0 || changed == 0 || removed == 0) return false;
  store<usize>(HDR + H_CHANGED_PTR, changed);
  store<usize>(HDR + H_REMOVED_PTR, removed);
  setHdrI32(H_REMOVED_CAP, maxKeys);
  store<usize>(HDR + H_PX_BLOCKS, xb);
  setHdrI32(H_PX_FREE, -1);
  store<usize>(HDR + H_TABLE_PTR, table);
  setHdrI32(H_TABLE_MASK, TABLE_MIN - 1);
  store<usize>(HDR + H_KEY_BLOCKS, kb);
  store<usize>(HDR + H_CELL_BLOCKS, cb);
  setHdrI32(H_KEY_FREE, -1);
  setHdrI32(H_CELL_FREE, -1);
  return true;
}

/** Index of the key with this hash, or -1. */
export function findKey(hash: u64): i32 {
  const table = hdrPtr(H_TABLE_PTR);
  const mask = <u32>hdrI32(H_TABLE_MASK);
  const im = load<u32>(HDR + H_TABLE_INDEX_MASK);
  const bits = <u32>(hash >> 32) & ~im;
  let pos = homeOf(hash) & mask;
  while (true) {
    const v = load<u32>(table + (<usize>pos << 2));
    if (v == 0) return -1;
    if ((v & ~im) == bits) {
      const idx = <i32>(v & im) - 1;
      if (load<u64>(keyPtr(idx) + K_HASH) == hash) return idx;
    }
    pos = (pos + 1) & mask;
  }
  return -1;
}

/** Puts key `idx` of hash `hash` in the first free slot from its home. */
@inline function place(table: usize, mask: u32, hash: u64, idx: i32): void {
  let pos = homeOf(hash) & mask;
  while (load<u32>(table + (<usize>pos << 2)) != 0) pos = (pos + 1) & mask;
  store<u32>(table + (<usize>pos << 2), slotOf(hash, idx, load<u32>(HDR + H_TABLE_INDEX_MASK)));
}

/**
 * Doubles the hash table; false when memory is exhausted (the old one stays). The live keys are
 * placed again from their records, read in index order (the slots hold no home).
 */
function growTable(): bool {
  const old = hdrPtr(H_TABLE_PTR);
  const oldCap = <u32>hdrI32(H_TABLE_MASK) + 1;
  const cap = oldCap << 1;
  const table = heapAlloc(<usize>cap * SLOT);
  if (table == 0) return false;
  const mask = cap - 1;
  const hwm = hdrI32(H_KEY_HWM);
  for (let i: i32 = 0; i < hwm; i++) {
    const h = load<u64>(keyPtr(i) + K_HASH);
    if (h != 0) place(table, mask, h, i);
  }
  store<usize>(HDR + H_TABLE_PTR, table);
  setHdrI32(H_TABLE_MASK, <i32>mask);
  releaseRegion(old, <usize>oldCap * SLOT);
  return true;
}

/**
 * Creates a key (caller checked it is absent) named by the `nameLen` bytes at `namePtr` (no name when
 * nameLen < 0: an import names it next); returns -1 when the key cap is reached or memory is exhausted.
 */
export function createKey(hash: u64, scope: i32, parent: i32, namePtr: usize, nameLen: i32): i32 {
  const count = hdrI32(H_KEY_COUNT);
  if (count >= hdrI32(H_MAX_KEYS)) return -1;
  // Three quarters full: double (with no memory for it, go on fuller while a slot is free).
  const slots = hdrI32(H_TABLE_MASK) + 1;
  if ((count + 1) * 4 > slots * 3 && !growTable() && count + 1 >= slots) return -1;
  let name: usize = 0;
  if (nameLen >= 0) {
    name = allocName(namePtr, nameLen);
    if (name == 0) return -1;
  }
  let idx = hdrI32(H_KEY_FREE);
  let k: usize;
  if (idx >= 0) {
    // A key deleted before an export in progress began may still be marked to export: not the new one.
    if (hdrI32(H_EXPORTING) != 0) exportBeforeWrite(idx);
    k = keyPtr(idx);
    setHdrI32(H_KEY_FREE, load<i32>(k + K_NEXT_FREE));
    memory.fill(k, 0, KEY_SIZE);
  } else {
    idx = hdrI32(H_KEY_HWM);
    if ((idx & BLOCK_MASK) == 0) {
      const blk = heapAlloc(<usize>BLOCK * KEY_SIZE);
      if (blk == 0) { freeName(name); return -1; }
      store<usize>(hdrPtr(H_KEY_BLOCKS) + (<usize>(idx >> BLOCK_SHIFT) << 2), blk);
    }
    setHdrI32(H_KEY_HWM, idx + 1);
    k = keyPtr(idx);
  }
  store<u64>(k + K_HASH, hash);
  store<i32>(k + K_PARENT, parent);
  store<u8>(k + K_SCOPE, <u8>scope);
  store<i32>(k + K_HEAD_SLOT, SLOT_NONE);
  store<i32>(k + K_FOLDED_SLOT, SLOT_NONE);
  store<i32>(k + K_FIRST_CELL, -1);
  store<u32>(k + K_NAME, <u32>name);
  ringInit(k + K_RING);
  if (parent < 0) store<u8>(k + K_PROFILE, <u8>profileOfHash(hash));
  setHdrI32(H_KEY_COUNT, count + 1);
  place(hdrPtr(H_TABLE_PTR), <u32>hdrI32(H_TABLE_MASK), hash, idx);
  markChanged(idx);
  return idx;
}

/** Bytes of the changed bits for `keys` key indices (whole u64 words). */
@inline export function changedBytes(keys: i32): usize { return ((<usize>keys + 63) >> 6) << 3; }

/**
 * Notes that key `idx` changed since the last export: every write to a key or its cells comes after a
 * call of this (in the same call of the kernel), so that an incremental export (key-groups.ts) can
 * write only these keys, and an export in progress can write the key before it changes. Quiet keys
 * are never touched by a tick (rings rotate and baselines fold lazily, when a key is counted or evaluated), so the bits are those of the keys that saw events or
 * have an open incident since the last export. A bit per key index of the cap (an eighth of a byte a
 * key; a list of indices took 4 bytes a changed key, and a byte in the record to keep each index in
 * it once): an index freed and reused between two exports is one bit, exported once.
 */
@inline export function markChanged(idx: i32): void {
  const w = hdrPtr(H_CHANGED_PTR) + ((<usize>idx >> 6) << 3);
  const bit = <u64>1 << <u64>(idx & 63);
  const v = load<u64>(w);
  if ((v & bit) != 0) return;
  // The key's first change since an export began: while that export is in progress, the key is
  // written to it now, as it was at the export's start, if no slice has written it yet (copy on write).
  if (hdrI32(H_EXPORTING) != 0) exportBeforeWrite(idx);
  store<u64>(w, v | bit);
  setHdrI32(H_CHANGED_LEN, hdrI32(H_CHANGED_LEN) + 1);
}


/** Notes a deleted key (its hash and key group) for the next incremental export. */
function noteRemoved(hash: u64, propHash: u64): void {
  const len = hdrI32(H_REMOVED_LEN);
  if (len >= hdrI32(H_REMOVED_CAP)) { setHdrI32(H_CHANGES_LOST, 1); return; }
  const e = hdrPtr(H_REMOVED_PTR) + (<usize>len << 4);
  store<u64>(e, hash);
  const groups = hdrI32(H_KEY_GROUPS);
  store<u32>(e + 8, groups > 0 ? <u32>groupOf(propHash, groups) : 0);
  store<u32>(e + 12, 0);
  setHdrI32(H_REMOVED_LEN, len + 1);
}

/** Forgets what changed (after an export, full or incremental, has written it). */
export function resetChanges(): void {
  // Only the words up to the high-water mark were ever set.
  if (hdrI32(H_CHANGED_LEN) != 0) memory.fill(hdrPtr(H_CHANGED_PTR), 0, changedBytes(hdrI32(H_KEY_HWM)));
  setHdrI32(H_CHANGED_LEN, 0);
  setHdrI32(H_REMOVED_LEN, 0);
  setHdrI32(H_CHANGES_LOST, 0);
}

/** Removes a key from the table (backward-shift deletion keeps probes short) and frees it and its cells. */
export function deleteKey(idx: i32): void {
  if (hdrI32(H_EXPORTING) != 0) exportBeforeWrite(idx);
  const k = keyPtr(idx);
  const hash = load<u64>(k + K_HASH);
  const table = hdrPtr(H_TABLE_PTR);
  const mask = <u32>hdrI32(H_TABLE_MASK);
  const im = load<u32>(HDR + H_TABLE_INDEX_MASK);
  let pos = homeOf(hash) & mask;
  while ((load<u32>(table + (<usize>pos << 2)) & im) != <u32>(idx + 1)) pos = (pos + 1) & mask;
  const parent = load<i32>(k + K_PARENT);
  noteRemoved(hash, parent >= 0 ? load<u64>(keyPtr(parent) + K_HASH) : hash);
  // backward shift
  let hole = pos;
  let next = (pos + 1) & mask;
  while (true) {
    const v = load<u32>(table + (<usize>next << 2));
    if (v == 0) break;
    const home = homeOf(load<u64>(keyPtr(<i32>(v & im) - 1) + K_HASH)) & mask;
    // move the slot into the hole if its home is not cyclically in (hole, next]
    const dist = (next - home) & mask;
    const holeDist = (next - hole) & mask;
    if (dist >= holeDist) {
      store<u32>(table + (<usize>hole << 2), v);
      hole = next;
    }
    next = (next + 1) & mask;
  }
  store<u32>(table + (<usize>hole << 2), 0);
  // free cells
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    const nx = load<i32>(cp + C_NEXT);
    freeCell(c);
    c = nx;
  }
  freeName(<usize>load<u32>(k + K_NAME));
  store<u32>(k + K_NAME, 0);
  ringFree(k + K_RING);
  store<u64>(k + K_HASH, 0);
  store<i32>(k + K_NEXT_FREE, hdrI32(H_KEY_FREE));
  setHdrI32(H_KEY_FREE, idx);
  setHdrI32(H_KEY_COUNT, hdrI32(H_KEY_COUNT) - 1);
}

/** Finds the cell of a key for an error hash, or -1. */
export function findCell(key: i32, errHash: u64): i32 {
  let c = load<i32>(keyPtr(key) + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    if (cellErrHash(cp) == errHash) return c;
    c = load<i32>(cp + C_NEXT);
  }
  return -1;
}

/**
 * Creates a cell for (key, error) named by the `nameLen` bytes at `namePtr`; -1 at the cell cap or
 * when memory is exhausted. The new cell inherits the key's baseline views with no failures; a
 * property cell gets its extension, whose fast baseline starts the same way.
 */
export function createCell(key: i32, errHash: u64, namePtr: usize, nameLen: i32): i32 {
  const count = hdrI32(H_CELL_COUNT);
  if (count >= hdrI32(H_MAX_CELLS)) return -1;
  markChanged(key);
  const k = keyPtr(key);
  // A title cell shares its property cell's name when there is one.
  const parent = load<i32>(k + K_PARENT);
  const pc = parent >= 0 ? findCell(parent, errHash) : -1;
  let name: usize = 0;
  if (pc >= 0) {
    name = cellNameBlock(cellPtr(pc)) | NAME_SHARED;
  } else {
    name = allocErrorName(errHash, namePtr, nameLen);
    if (name == 0) return -1;
  }
  // A property cell: its extension, named by its incident record (had from the start).
  let ext: i32 = -1;
  let op: usize = 0;
  if (parent < 0) {
    ext = createExt();
    if (ext < 0) { freeCellName(name); return -1; }
    op = openRecordNew();
    if (op == 0) { freeExt(ext); freeCellName(name); return -1; }
    store<i32>(op + O_EXT, ext);
    const xp = extPtr(ext);
    store<f64>(xp + X_FAST_VIEWS, load<f64>(k + K_BASE_VIEWS) * profParam(keyParams(k), 0, S_FAST_SHARE));
    store<i64>(xp + X_HOT_LAST, -1);
  }
  let idx = hdrI32(H_CELL_FREE);
  let c: usize;
  if (idx >= 0) {
    c = cellPtr(idx);
    setHdrI32(H_CELL_FREE, load<i32>(c + C_NEXT_FREE));
    memory.fill(c, 0, CELL_SIZE);
  } else {
    idx = hdrI32(H_CELL_HWM);
    if ((idx & BLOCK_MASK) == 0) {
      const blk = heapAlloc(<usize>BLOCK * CELL_SIZE);
      if (blk == 0) {
        if (ext >= 0) { freeExt(ext); freeBlock(op, OPEN_CLASS); }
        freeCellName(name);
        return -1;
      }
      store<usize>(hdrPtr(H_CELL_BLOCKS) + (<usize>(idx >> BLOCK_SHIFT) << 2), blk);
    }
    setHdrI32(H_CELL_HWM, idx + 1);
    c = cellPtr(idx);
  }
  store<u32>(c + C_OPEN, <u32>op);
  store<u32>(c + C_NAME, <u32>name);
  ringInit(c + C_RING);
  const first = load<i32>(k + K_FIRST_CELL);
  store<i32>(c + C_NEXT, first >= 0 ? first : -1 - key);
  store<i32>(k + K_FIRST_CELL, idx);
  if (op != 0) {
    store<f64>(op + O_BASE_VIEWS, load<f64>(k + K_BASE_VIEWS));
    store<u8>(c + C_OWN_VIEWS, 1);
  }
  setHdrI32(H_CELL_COUNT, count + 1);
  return idx;
}

/** Frees a cell's name block unless it is borrowed from its property cell. */
function freeCellName(name: usize): void {
  if ((name & NAME_SHARED) == 0) freeErrorName(name);
}

/** Allocates a zeroed property-cell extension; -1 when memory is exhausted (there is never more than one per cell). */
function createExt(): i32 {
  let idx = hdrI32(H_PX_FREE);
  if (idx >= 0) {
    const x = extPtr(idx);
    setHdrI32(H_PX_FREE, load<i32>(x + X_NEXT_FREE));
    memory.fill(x, 0, PX_SIZE);
    return idx;
  }
  idx = hdrI32(H_PX_HWM);
  if ((idx & BLOCK_MASK) == 0) {
    const blk = heapAlloc(<usize>BLOCK * PX_SIZE);
    if (blk == 0) return -1;
    store<usize>(hdrPtr(H_PX_BLOCKS) + (<usize>(idx >> BLOCK_SHIFT) << 2), blk);
  }
  setHdrI32(H_PX_HWM, idx + 1);
  return idx;
}

function freeExt(idx: i32): void {
  store<i32>(extPtr(idx) + X_NEXT_FREE, hdrI32(H_PX_FREE));
  setHdrI32(H_PX_FREE, idx);
}

function freeCell(idx: i32): void {
  const c = cellPtr(idx);
  const ext = cellExt(c);
  if (ext >= 0) freeExt(ext);
  freeCellName(<usize>load<u32>(c + C_NAME));
  store<u32>(c + C_NAME, 0);
  ringFree(c + C_RING);
  const o = <usize>load<u32>(c + C_OPEN);
  if (o != 0) freeBlock(o, OPEN_CLASS);
  store<u32>(c + C_OPEN, 0);
  store<i32>(c + C_NEXT_FREE, hdrI32(H_CELL_FREE));
  setHdrI32(H_CELL_FREE, idx);
  setHdrI32(H_CELL_COUNT, hdrI32(H_CELL_COUNT) - 1);
}

/** Parameter block of a key: its property's profile (params.ts). */
@inline export function keyParams(k: usize): usize {
  const parent = load<i32>(k + K_PARENT);
  const pk = parent >= 0 ? keyPtr(parent) : k;
  return profileBase(<i32>load<u8>(pk + K_PROFILE));
}

/** Gives every property key the profile bound to its hash (after the profiles changed). */
export function rebindProfiles(): void {
  const hwm = hdrI32(H_KEY_HWM);
  for (let i = 0; i < hwm; i++) {
    const k = keyPtr(i);
    const h = load<u64>(k + K_HASH);
    if (h == 0 || load<i32>(k + K_PARENT) >= 0) continue;
    const profile = <u8>profileOfHash(h);
    if (load<u8>(k + K_PROFILE) == profile) continue;
    markChanged(i);
    store<u8>(k + K_PROFILE, profile);
  }
}
