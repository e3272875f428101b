// Names of keys and cells (property id, video title, error type), kept in the kernel next to the
// records that use them: a key costs no JS object, so creating millions of keys makes no garbage and
// the JS heap the collector walks does not grow with them. JS reads a name only when it reports one
// (a verdict, a dump, a key-group export).
//
// A name is a block of a size class: a u32 length, then the bytes. The classes go up by halves of a
// power of two (16, 24, 32, 48, 64, 96, 128, ... up to 128 KiB), so a block holds at most a third
// more than it needs (a 20-byte title takes 24 bytes, not 32; power-of-two classes wasted up to
// half). Blocks are 8-byte aligned (ring references keep their width code in the low 3 bits,
// rings.ts). Freed blocks go to their class's free list (the link in the block's first word), so a
// name of an evicted key is reused by the next name of its class and memory follows the live keys,
// not their history. A title key names its title only (its property's name is its parent's).
import { HDR, heapAlloc, hdrPtr, setHdrPtr, H_NAME_FREE, H_NAME_SLAB, H_NAME_SLAB_END, H_SPARE } from './state';

const MIN_SHIFT: i32 = 4;      // the smallest class: 16 bytes
export const NAME_CLASSES: i32 = 27; // 16 B .. 128 KiB (a packed record's names are at most 64 KiB each)
export const NAME_HEADER: usize = 4;

/** Bytes of a block of class `c`: 16 << (c / 2) for an even class, 24 << (c / 2) for an odd one. */
@inline export function blockBytes(c: i32): usize { return (<usize>((c & 1) != 0 ? 24 : 16)) << <usize>(c >> 1); }

/** The smallest class whose blocks hold `need` bytes. */
@inline export function blockClass(need: usize): i32 {
  // k = ceil(log2(need)), at least MIN_SHIFT: 2^k holds it; 3 << (k - 2) (class 2(k - 5) + 1) may too.
  const k = 32 - <i32>clz<u32>((<u32>need - 1) | ((1 << MIN_SHIFT) - 1));
  if (k > MIN_SHIFT && need <= (<usize>3 << <usize>(k - 2))) return ((k - MIN_SHIFT - 1) << 1) + 1;
  return (k - MIN_SHIFT) << 1;
}

/** Size class of a name of `len` bytes: the block holds the header and the bytes. */
@inline function classOf(len: i32): i32 { return blockClass(<usize>len + NAME_HEADER); }

const SLAB: usize = 65536;     // names are cut from slabs of this size
const SLAB_CLASSES: i32 = 13;  // classes up to 1 KiB come from slabs; larger names from the heap

/** Copies `len` bytes at `src` into a new name block; returns its address, or 0 when memory is exhausted. */
export function allocName(src: usize, len: i32): usize {
  const c = classOf(len);
  if (c >= NAME_CLASSES) return 0;
  const p = allocBlock(c);
  if (p == 0) return 0;
  store<u32>(p, <u32>len);
  memory.copy(p + NAME_HEADER, src, <usize>len);
  return p;
}

/**
 * A block of class `c` (blockBytes(c) bytes, 8-byte aligned, contents undefined) from the class's free
 * list or a slab; 0 when memory is exhausted. Names and count rings (rings.ts) share the classes, so memory
 * freed by one is reused by the other.
 */
export function allocBlock(c: i32): usize {
  const head = HDR + H_NAME_FREE + (<usize>c << 2);
  let p = <usize>load<u32>(head);
  if (p != 0) {
    store<u32>(head, load<u32>(p));
    return p;
  }
  const size = blockBytes(c);
  return c < SLAB_CLASSES ? fromSlab(size) : heapAlloc(size);
}

/** Returns a block of class `c` to its free list. */
export function freeBlock(p: usize, c: i32): void {
  const head = HDR + H_NAME_FREE + (<usize>c << 2);
  store<u32>(p, load<u32>(head));
  store<u32>(head, <u32>p);
}

/** `size` bytes (a multiple of 8, at most 1 KiB) of the current slab; a new slab when it is used up. */
function fromSlab(size: usize): usize {
  let p = hdrPtr(H_NAME_SLAB);
  let end = hdrPtr(H_NAME_SLAB_END);
  if (p + size > end) {
    // The rest of the slab (under 1 KiB) is left; a released region is used before new memory.
    const spare = hdrPtr(H_SPARE);
    if (spare != 0) {
      setHdrPtr(H_SPARE, load<usize>(spare));
      end = spare + load<usize>(spare, 4);
      p = spare;
    } else {
      p = heapAlloc(SLAB);
      if (p == 0) return 0;
      end = p + SLAB;
    }
    setHdrPtr(H_NAME_SLAB_END, end);
  }
  setHdrPtr(H_NAME_SLAB, p + size);
  return p;
}

/**
 * Gives a region no longer used (an outgrown hash table, 16-byte aligned, at least 16 bytes) to the
 * name slabs: its bytes hold names next instead of lying idle.
 */
export function releaseRegion(p: usize, bytes: usize): void {
  store<usize>(p, hdrPtr(H_SPARE));
  store<usize>(p, bytes & ~15, 4);
  setHdrPtr(H_SPARE, p);
}

/** Returns a name block to its class's free list (0: nothing). */
export function freeName(p: usize): void {
  if (p == 0) return;
  freeBlock(p, classOf(<i32>load<u32>(p)));
}

// An error type's name block also holds the error's hash, in the 8 bytes before the name (which is
// where the block's address points), so a cell names its error type and knows its hash with one u32.
const ERROR_PREFIX: usize = 8;

/** A name block for an error type of hash `hash` named by the `len` bytes at `src`; 0 when memory is exhausted. */
export function allocErrorName(hash: u64, src: usize, len: i32): usize {
  const c = blockClass(<usize>len + NAME_HEADER + ERROR_PREFIX);
  if (c >= NAME_CLASSES) return 0;
  const p = allocBlock(c);
  if (p == 0) return 0;
  store<u64>(p, hash);
  store<u32>(p + ERROR_PREFIX, <u32>len);
  memory.copy(p + ERROR_PREFIX + NAME_HEADER, src, <usize>len);
  return p + ERROR_PREFIX;
}

/** The hash of the error type named by error name block `p`. */
@inline export function errorNameHash(p: usize): u64 { return load<u64>(p - ERROR_PREFIX); }

/** Returns an error name block to its class's free list. */
export function freeErrorName(p: usize): void {
  freeBlock(p - ERROR_PREFIX, blockClass(<usize>load<u32>(p) + NAME_HEADER + ERROR_PREFIX));
}

@inline export function nameLen(p: usize): i32 { return p == 0 ? 0 : <i32>load<u32>(p); }
@inline export function nameBytes(p: usize): usize { return p + NAME_HEADER; }
