// The ring of SLOTS counts (views of a key, failures of a cell) in the narrowest width its counts fit:
// u2 (8 bytes), u4 (16), u8 (32), u16 (64) or u32 (128). Most titles of a catalogue see a few views an
// hour (rarely more than 3 in a 10-minute slot), so their rings stay u2 and a title with one error
// type keeps 16 bytes of rings instead of 64 (u8) or 256 (u32). A ring widens before a count would
// overflow its width (what it counts is never clipped) and narrows again once its counts fit a
// narrower width (checked when its key moves to a new slot: rotateTo in detector.ts).
//
// A u2 ring lives in its record, in the RING_INLINE_BYTES right after the record's ring field (a key
// or cell touched is then one place in memory, not two: with the ring in a block of its own, the
// re-hits of old titles scattered over millions cost ~10% more CPU); a wider one is a block of the
// name store's size classes (names.ts), and the record's bytes lie unused meanwhile. A ring is named
// by a u32 reference: its address (8-byte aligned in the record, 16 for a block) with the width code
// in the low 3 bits. The width is this kernel's business: an exported key carries its rings as
// u32[SLOTS] whatever their width here (key-groups.ts).
import { SLOTS, bumpF64, hdrF64, H_RING_BYTES } from './state';
import { allocBlock, freeBlock, blockClass } from './names';

// Width codes: a count takes 2 << code bits; code + 1 is the next wider width.
export const RING_U2: u32 = 0;
export const RING_U4: u32 = 1;
export const RING_U8: u32 = 2;
export const RING_U16: u32 = 3;
export const RING_U32: u32 = 4;
const TAG_MASK: u32 = 7;
/** Bytes a record keeps for its u2 ring, right after its ring field (store.ts). */
export const RING_INLINE_BYTES: usize = <usize>SLOTS >> 2;
/** Where a record's own ring is: 8 bytes after its ring field (store.ts K_RING_OWN, C_RING_OWN). */
@inline function inlineAt(field: usize): usize { return field + 8; }
const RING_MASK: i64 = <i64>SLOTS - 1;
/** Bytes of a ring as exported (u32 per slot). */
export const RING_WIDE_BYTES: usize = <usize>SLOTS << 2;

// SLOTS (32) counts of 2 << code bits: 8 << code bytes; a block (u4 and wider) of the name store's
// class of that size.
@inline function bytesOf(code: u32): usize { return (<usize>SLOTS << <usize>code) >> 2; }
@inline function classOf(code: u32): i32 { return blockClass(bytesOf(code)); }
@inline function limitOf(code: u32): u32 {
  return code == RING_U2 ? 3 : code == RING_U4 ? 15 : code == RING_U8 ? 0xff : code == RING_U16 ? 0xffff : 0xffffffff;
}
@inline function codeFor(max: u32): u32 {
  return max <= 3 ? RING_U2 : max <= 15 ? RING_U4 : max <= 0xff ? RING_U8 : max <= 0xffff ? RING_U16 : RING_U32;
}

@inline export function ringBase(ref: u32): usize { return <usize>(ref & ~TAG_MASK); }
@inline export function ringCode(ref: u32): u32 { return ref & TAG_MASK; }

/** The count at slot `s` of a ring given by its base and width code (decoded once for a loop over slots). */
@inline export function rget(base: usize, code: u32, s: i64): u32 {
  const pos = <usize>(s & RING_MASK);
  if (code == RING_U2) return (<u32>load<u8>(base + (pos >> 2)) >> (<u32>(pos & 3) << 1)) & 3;
  if (code == RING_U4) return (<u32>load<u8>(base + (pos >> 1)) >> (<u32>(pos & 1) << 2)) & 15;
  if (code == RING_U8) return <u32>load<u8>(base + pos);
  if (code == RING_U16) return <u32>load<u16>(base + (pos << 1));
  return load<u32>(base + (pos << 2));
}

@inline export function ringGet(ref: u32, s: i64): u32 { return rget(ringBase(ref), ringCode(ref), s); }

@inline function rset(base: usize, code: u32, pos: usize, v: u32): void {
  if (code == RING_U2) {
    const at = base + (pos >> 2);
    const shift = <u32>(pos & 3) << 1;
    store<u8>(at, <u8>((<u32>load<u8>(at) & ~(<u32>3 << shift)) | (v << shift)));
  } else if (code == RING_U4) {
    const at = base + (pos >> 1);
    const shift = <u32>(pos & 1) << 2;
    store<u8>(at, <u8>((<u32>load<u8>(at) & ~(<u32>15 << shift)) | (v << shift)));
  } else if (code == RING_U8) store<u8>(base + pos, <u8>v);
  else if (code == RING_U16) store<u16>(base + (pos << 1), <u16>v);
  else store<u32>(base + (pos << 2), v);
}

/** Sets slot `s` to 0. */
@inline export function ringZero(ref: u32, s: i64): void {
  rset(ringBase(ref), ringCode(ref), <usize>(s & RING_MASK), 0);
}

/** A new ring of width `code` for the record whose ring field is at `field`, all zero; 0 when memory is exhausted. */
function ringNew(field: usize, code: u32): u32 {
  bumpF64(H_RING_BYTES, <f64>bytesOf(code));
  if (code == RING_U2) {
    const p = inlineAt(field);
    memory.fill(p, 0, RING_INLINE_BYTES);
    return <u32>p | RING_U2;
  }
  const p = allocBlock(classOf(code));
  if (p == 0) { bumpF64(H_RING_BYTES, -<f64>bytesOf(code)); return 0; }
  memory.fill(p, 0, bytesOf(code));
  return <u32>p | code;
}

/** Gives the record whose ring field is at `field` an empty u2 ring (its own bytes: never fails). */
export function ringInit(field: usize): void {
  store<u32>(field, ringNew(field, RING_U2));
}

/** Frees a ring (0: none; a record's own u2 ring goes with the record). */
export function ringFree(ref: u32): void {
  if (ref == 0) return;
  if (ringCode(ref) != RING_U2) freeBlock(ringBase(ref), classOf(ringCode(ref)));
  bumpF64(H_RING_BYTES, -<f64>bytesOf(ringCode(ref)));
}

/** Bytes the live rings take (u2 rings are 8 bytes, u4 16, u8 32, u16 64, u32 128). */
export function ringBytes(): f64 { return hdrF64(H_RING_BYTES); }

/** The ring at `field` (`ref`) copied into a new ring of width `code` (counts that fit it); 0 when memory is exhausted (`ref` is kept). */
function recode(field: usize, ref: u32, code: u32): u32 {
  const to = ringNew(field, code);
  if (to == 0) return 0;
  const base = ringBase(ref);
  const from = ringCode(ref);
  const dst = ringBase(to);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) rset(dst, code, pos, rget(base, from, <i64>pos));
  ringFree(ref);
  return to;
}

/**
 * Adds one to slot `s` of the ring referenced at `field` (a record's ring field), widening it first
 * when the count would not fit; false when there was no memory to widen (nothing counted).
 */
export function ringAdd(field: usize, s: i64): bool {
  let ref = load<u32>(field);
  let code = ringCode(ref);
  const pos = <usize>(s & RING_MASK);
  const v = rget(ringBase(ref), code, s) + 1;
  if (code != RING_U32 && v > limitOf(code)) {
    const wider = recode(field, ref, code + 1);
    if (wider == 0) return false;
    ref = wider;
    code++;
    store<u32>(field, ref);
  }
  rset(ringBase(ref), code, pos, v);
  return true;
}

/** Narrows the ring referenced at `field` to the narrowest width its counts fit (when there is memory for it). */
export function ringSettle(field: usize): void {
  const ref = load<u32>(field);
  const code = ringCode(ref);
  if (code == RING_U2) return;
  const base = ringBase(ref);
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = rget(base, code, <i64>pos);
    if (v > max) max = v;
  }
  const fit = codeFor(max);
  if (fit >= code) return;
  const narrower = recode(field, ref, fit);
  if (narrower != 0) store<u32>(field, narrower);
}

/** Writes the ring as u32[SLOTS] at `out` (the exported form). */
export function ringExport(ref: u32, out: usize): void {
  const base = ringBase(ref);
  const code = ringCode(ref);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) store<u32>(out + (pos << 2), rget(base, code, <i64>pos));
}

/**
 * Gives the record whose ring field is at `field` (its ring freed already) a ring holding the u32[SLOTS]
 * at `src` in the narrowest width they fit; false when memory is exhausted.
 */
export function ringImport(field: usize, src: usize): bool {
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = load<u32>(src + (pos << 2));
    if (v > max) max = v;
  }
  const code = codeFor(max);
  const ref = ringNew(field, code);
  store<u32>(field, ref);
  if (ref == 0) return false;
  const base = ringBase(ref);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) rset(base, code, pos, load<u32>(src + (pos << 2)));
  return true;
}
