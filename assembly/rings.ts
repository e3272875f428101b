// The ring of SLOTS counts (views of a key, failures of a cell) kept outside the key and cell records,
// in the narrowest width its counts fit: u8 (32 bytes), u16 (64) or u32 (128). Most titles of a
// catalogue see a few views an hour, so their rings stay u8 and a title with one error type keeps 64
// bytes of rings instead of 256. A ring widens before a count would overflow its width (what it counts
// is never clipped) and narrows again once its counts fit a narrower width (checked when its key
// moves to a new slot: rotateTo in detector.ts).
//
// A ring is named by a u32 reference: the block's address (16-byte aligned, from the name store's
// size classes, names.ts) with the width code in its low bits. The width is this kernel's business:
// an exported key carries its rings as u32[SLOTS] whatever their width here (key-groups.ts).
import { SLOTS, bumpF64, hdrF64, H_RING_BYTES } from './state';
import { allocBlock, freeBlock } from './names';

export const RING_U8: u32 = 0;
export const RING_U16: u32 = 1;
export const RING_U32: u32 = 2;
const CODE_MASK: u32 = 15;
const RING_MASK: i64 = <i64>SLOTS - 1;
/** Bytes of a ring as exported (u32 per slot). */
export const RING_WIDE_BYTES: usize = <usize>SLOTS << 2;

// SLOTS (32) counts of 1 << code bytes: 32 << code bytes, the name store's class code + 1 (16 << class).
@inline function classOf(code: u32): i32 { return <i32>code + 1; }
@inline function bytesOf(code: u32): usize { return <usize>SLOTS << <usize>code; }
@inline function limitOf(code: u32): u32 { return code == RING_U8 ? 0xff : code == RING_U16 ? 0xffff : 0xffffffff; }
@inline function codeFor(max: u32): u32 { return max <= 0xff ? RING_U8 : max <= 0xffff ? RING_U16 : RING_U32; }

@inline export function ringBase(ref: u32): usize { return <usize>(ref & ~CODE_MASK); }
@inline export function ringCode(ref: u32): u32 { return ref & CODE_MASK; }

/** The count at slot `s` of a ring given by its base and width code (decoded once for a loop over slots). */
@inline export function rget(base: usize, code: u32, s: i64): u32 {
  const pos = <usize>(s & RING_MASK);
  if (code == RING_U8) return <u32>load<u8>(base + pos);
  if (code == RING_U16) return <u32>load<u16>(base + (pos << 1));
  return load<u32>(base + (pos << 2));
}

@inline export function ringGet(ref: u32, s: i64): u32 { return rget(ringBase(ref), ringCode(ref), s); }

@inline function rset(base: usize, code: u32, pos: usize, v: u32): void {
  if (code == RING_U8) store<u8>(base + pos, <u8>v);
  else if (code == RING_U16) store<u16>(base + (pos << 1), <u16>v);
  else store<u32>(base + (pos << 2), v);
}

/** Sets slot `s` to 0. */
@inline export function ringZero(ref: u32, s: i64): void {
  rset(ringBase(ref), ringCode(ref), <usize>(s & RING_MASK), 0);
}

/** A new ring of width `code`, all zero; 0 when memory is exhausted. */
export function ringNew(code: u32 = RING_U8): u32 {
  const p = allocBlock(classOf(code));
  if (p == 0) return 0;
  memory.fill(p, 0, bytesOf(code));
  bumpF64(H_RING_BYTES, <f64>bytesOf(code));
  return <u32>p | code;
}

/** Frees a ring (0: none). */
export function ringFree(ref: u32): void {
  if (ref == 0) return;
  freeBlock(ringBase(ref), classOf(ringCode(ref)));
  bumpF64(H_RING_BYTES, -<f64>bytesOf(ringCode(ref)));
}

/** Bytes the live rings take (u8 rings are 32 bytes, u16 64, u32 128). */
export function ringBytes(): f64 { return hdrF64(H_RING_BYTES); }

/** The ring `ref` copied into a new ring of width `code` (counts that fit it); 0 when memory is exhausted (`ref` is kept). */
function recode(ref: u32, code: u32): u32 {
  const to = ringNew(code);
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
    const wider = recode(ref, code + 1);
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
  if (code == RING_U8) return;
  const base = ringBase(ref);
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = rget(base, code, <i64>pos);
    if (v > max) max = v;
  }
  const fit = codeFor(max);
  if (fit >= code) return;
  const narrower = recode(ref, fit);
  if (narrower != 0) store<u32>(field, narrower);
}

/** Writes the ring as u32[SLOTS] at `out` (the exported form). */
export function ringExport(ref: u32, out: usize): void {
  const base = ringBase(ref);
  const code = ringCode(ref);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) store<u32>(out + (pos << 2), rget(base, code, <i64>pos));
}

/** A new ring holding the u32[SLOTS] at `src` in the narrowest width they fit; 0 when memory is exhausted. */
export function ringImport(src: usize): u32 {
  let max: u32 = 0;
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) {
    const v = load<u32>(src + (pos << 2));
    if (v > max) max = v;
  }
  const code = codeFor(max);
  const ref = ringNew(code);
  if (ref == 0) return 0;
  const base = ringBase(ref);
  for (let pos: usize = 0; pos < <usize>SLOTS; pos++) rset(base, code, pos, load<u32>(src + (pos << 2)));
  return ref;
}
