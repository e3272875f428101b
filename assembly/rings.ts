// The ring of SLOTS counts (views of a key, failures of a cell) in the narrowest width its counts fit:
// u2 (8 bytes), u8 (32), u16 (64) or u32 (128). Most titles of a catalogue see a few views an hour
// (rarely more than 3 in a 10-minute slot), so their rings stay u2 and a title with one error type
// keeps 16 bytes of rings instead of 64 (u8) or 256 (u32). A ring widens before a count would
// overflow its width (what it counts is never clipped) and narrows again once its counts fit a
// narrower width (checked when its key moves to a new slot: rotateTo in detector.ts). No u4: a busy
// title's cell (a few failures a slot) and a property's cell would be u4, and reading u4 counts slot
// by slot in every evaluation cost 9% more CPU per event on a catalogue of busy titles (bench/keys.ts
// BENCH_MODE=kernel, stream "few"); u8 reads cost what they did, for 16 bytes more a ring.
//
// A record (store.ts) keeps 8 bytes for its ring and, in the byte before them, the ring's width code.
// A u2 ring is those 8 bytes (a key or cell touched is then one place in memory, not two: with the
// ring in a block of its own, the re-hits of old titles scattered over millions cost ~10% more CPU);
// a wider one is a block of the name store's size classes (names.ts) whose address the 8 bytes hold.
// A ring is named by the address of its 8 bytes (`at`). The width is this kernel's business: an
// exported key carries its rings as u32[SLOTS] whatever their width here (key-groups.ts).
import { SLOTS, bumpF64, hdrF64, H_RING_BYTES } from './state';
import { allocBlock, freeBlock, blockClass } from './names';

// Width codes: a count takes 2 << code bits (code 1, u4, is not used: above); the next wider width
// is code + 1, u8 after u2.
export const RING_U2: u32 = 0;
export const RING_U8: u32 = 2;
export const RING_U16: u32 = 3;
export const RING_U32: u32 = 4;
/** The code of a record with no ring (freed, or an import that found no memory for it). */
const RING_NONE: u32 = 7;
/** Bytes a record keeps for its ring (a u2 ring, or a wider one's address), after its width code byte. */
export const RING_RECORD_BYTES: usize = <usize>SLOTS >> 2;
const RING_MASK: i64 = <i64>SLOTS - 1;
/** Bytes of a ring as exported (u32 per slot). */
export const RING_WIDE_BYTES: usize = <usize>SLOTS << 2;

// SLOTS (32) counts of 2 << code bits: 8 << code bytes; a block (u8 and wider) of the name store's
// class of that size.
@inline function bytesOf(code: u32): usize { return (<usize>SLOTS << <usize>code) >> 2; }
@inline function classOf(code: u32): i32 { return blockClass(bytesOf(code)); }
/** The largest count of width `code` (2 << code bits). */
@inline function limitOf(code: u32): u32 { return <u32>0xffffffff >> (<u32>32 - (<u32>2 << code)); }
@inline function codeFor(max: u32): u32 {
  return max <= 3 ? RING_U2 : max <= 0xff ? RING_U8 : max <= 0xffff ? RING_U16 : RING_U32;
}

/** The width code of the ring at `at`. */
@inline export function ringCode(at: usize): u32 { return <u32>load<u8>(at - 1); }
/** Where the counts of the ring at `at` (width `code`) are: its record's bytes, or its block. */
@inline export function ringBase(at: usize, code: u32): usize { return code == RING_U2 ? at : <usize>load<u32>(at); }

/**
 * The count at slot `s` of a ring given by its base and width code (decoded once for a loop over
 * slots). u8 is tested first: the rings read most (in evaluations, slot by slot) are those of busy
 * keys, whose rings are u8 and wider.
 */
@inline export function rget(base: usize, code: u32, s: i64): u32 {
  const pos = <usize>(s & RING_MASK);
  if (code == RING_U8) return <u32>load<u8>(base + pos);
  if (code == RING_U2) return (<u32>load<u8>(base + (pos >> 2)) >> (<u32>(pos & 3) << 1)) & 3;
  return code == RING_U16 ? <u32>load<u16>(base + (pos << 1)) : load<u32>(base + (pos << 2));
}

/** The count at slot `s` of the ring at `at`. */
@inline export function ringGet(at: usize, s: i64): u32 {
  const code = ringCode(at);
  return rget(ringBase(at, code), code, s);
}

@inline function rset(base: usize, code: u32, pos: usize, v: u32): void {
  if (code == RING_U8) store<u8>(base + pos, <u8>v);
  else if (code == RING_U16) store<u16>(base + (pos << 1), <u16>v);
  else if (code == RING_U32) store<u32>(base + (pos << 2), v);
  else {
    const p = base + (pos >> 2);
    const shift = <u32>(pos & 3) << 1;
    store<u8>(p, <u8>((<u32>load<u8>(p) & ~(<u32>3 << shift)) | (v << shift)));
  }
}

/** Sets slot `s` of the ring at `at` to 0. */
@inline export function ringZero(at: usize, s: i64): void {
  const code = ringCode(at);
  rset(ringBase(at, code), code, <usize>(s & RING_MASK), 0);
}

/** Gives the record whose ring is at `at` an empty u2 ring (its own bytes: never fails). */
export function ringInit(at: usize): void {
  store<u64>(at, 0);
  store<u8>(at - 1, <u8>RING_U2);
  bumpF64(H_RING_BYTES, <f64>bytesOf(RING_U2));
}

/** Frees the ring at `at` (none after it; a u2 ring is its record's bytes). */
export function ringFree(at: usize): void {
  const code = ringCode(at);
  if (code == RING_NONE) return;
  if (code != RING_U2) freeBlock(<usize>load<u32>(at), classOf(code));
  bumpF64(H_RING_BYTES, -<f64>bytesOf(code));
  store<u64>(at, 0);
  store<u8>(at - 1, <u8>RING_NONE);
}

/** Bytes the live rings take (u2 rings are 8 bytes, u8 32, u16 64, u32 128). */
export function ringBytes(): f64 { return hdrF64(H_RING_BYTES); }

/**
 * The ring at `at` in width `code` (its counts fit it): a u2 ring's counts go into the record's
 * bytes, a wider ring's into a new block; false when memory is exhausted (the ring is as it was).
 */
function recode(at: usize, code: u32): bool {
  const from = ringCode(at);
  const base = ringBase(at, from);
  if (code == RING_U2) {
    // The counts go where the block's address is: gathered first.
    let v: u64 = 0;
    for (let pos: usize = 0; pos < <usize>SLOTS; pos++) v |= <u64>rget(base, from, <i64>pos) << <u64>(pos << 1);
    ringFree(at);
    store<u64>(at, v);
  } else {
    const p = allocBlock(classOf(code));
    if (p == 0) return false;
    memory.fill(p, 0, bytesOf(code));
    for (let pos: usize = 0; pos < <usize>SLOTS; pos++) rset(p, code, pos, rget(base, from, <i64>pos));
    ringFree(at);
    store<u32>(at, <u32>p);
  }
  store<u8>(at - 1, <u8>code);
  bumpF64(H_RING_BYTES, <f64>bytesOf(code));
  return true;
}

/**
 * Adds one to slot `s` of the ring at `at`, widening it first when the count would not fit; false
 * when there was no memory to widen (nothing counted).
 */
export function ringAdd(at: usize, s: i64): bool {
  let code = ringCode(at);
  const pos = <usize>(s & RING_MASK);
  const v = rget(ringBase(at, code), code, s) + 1;
  if (code != RING_U32 && v > limitOf(code)) {
    const wider = code == RING_U2 ? RING_U8 : code + 1;
    if (!recode(at, wider)) return false;
    code = wider;
  }
  rset(ringBase(at, code), code, pos, v);
  return true;
}

/** Narrows the ring at `at` to the narrowest width its counts fit (when there is memory for it). */
export function ringSettle(at: usize): void {
  const code = ringCode(at);
  if (code == RING_U2) return;
  const base = ringBase(at, code);
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = rget(base, code, <i64>pos);
    if (v > max) max = v;
  }
  const fit = codeFor(max);
  if (fit < code) recode(at, fit);
}

/** Writes the ring at `at` as u32[SLOTS] at `out` (the exported form). */
export function ringExport(at: usize, out: usize): void {
  const code = ringCode(at);
  const base = ringBase(at, code);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) store<u32>(out + (pos << 2), rget(base, code, <i64>pos));
}

/**
 * Gives the record whose ring is at `at` (freed already) a ring holding the u32[SLOTS] at `src` in the
 * narrowest width they fit; false when memory is exhausted (no ring then).
 */
export function ringImport(at: usize, src: usize): bool {
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = load<u32>(src + (pos << 2));
    if (v > max) max = v;
  }
  const code = codeFor(max);
  let base = at;
  if (code != RING_U2) {
    base = allocBlock(classOf(code));
    if (base == 0) return false;
    memory.fill(base, 0, bytesOf(code));
    store<u32>(at, <u32>base);
  } else {
    store<u64>(at, 0);
  }
  store<u8>(at - 1, <u8>code);
  bumpF64(H_RING_BYTES, <f64>bytesOf(code));
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) rset(base, code, pos, load<u32>(src + (pos << 2)));
  return true;
}
