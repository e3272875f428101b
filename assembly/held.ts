// Records held until they are due: a record at or after the next tick to evaluate (from a source
// partition ahead of event time, or within the out-of-orderness of an ordered stream). Counting it at
// once would let evaluations of earlier ticks see it, and which ones did would depend on the order
// records came in; so they wait here, in copies, and are counted right before the first tick they
// belong before (ingest.ts releaseHeld), in event-time order: a tick sees exactly the records before it. Two arenas of packed-record copies (live records move to the other one when one is full,
// and to a pair twice as large when that does not make room, up to H_HOLD_MAX bytes) and a binary
// min-heap of (event time, arrival number, offset) over them; all of it in linear memory, so a
// snapshot carries it and an export can take it by key group. Arenas given up are not reused (the
// heap never frees): at most the final size again.
//
// Records of equal event time are released in the order they arrived. Their order matters: of two
// records with one property, view id and time the first counts and the second is dropped as its copy
// (dedup.ts), and a key's cells are listed in the order their error types first came. A heap ordered by
// time alone released ties in an order that depended on the other records in the heap, that is on
// which key groups share the worker: the same input counted a different record of such a pair with 1,
// 2 or 3 workers, and after a checkpoint restored into another worker count. Arrival order within a
// key group is the same in any layout (each owner gets its groups' records in input order), and an
// export writes the held records in the order they are due, so an importer numbers them in that order
// again.
import {
  heapAlloc, hdrI32, setHdrI32, hdrPtr, setHdrPtr, bumpF64,
  hdrI64, setHdrI64,
  H_HOLD_ARENA, H_HOLD_OTHER, H_HOLD_CAP, H_HOLD_USED, H_HOLD_HEAP, H_HOLD_LEN, H_HOLD_HEAP_CAP, H_HOLD_MAX, H_HELD, H_HOLD_SEQ,
} from './state';
import { recordSize, R_TS, R_VIEW_HASH } from './ingest';

const ENTRY: usize = 24; // i64 event time, u64 arrival number, u32 offset in the arena, pad
const E_SEQ: usize = 8;
const E_OFF: usize = 16;

/** Allocates the held-record arenas (capBytes each, growing up to maxBytes) and heap; false when memory is exhausted. */
export function initHeld(capBytes: i32, maxBytes: i32): bool {
  setHdrI32(H_HOLD_MAX, maxBytes);
  setHdrI32(H_HOLD_USED, 0);
  setHdrI32(H_HOLD_LEN, 0);
  setHdrI64(H_HOLD_SEQ, 0);
  return allocate(capBytes, false);
}

/** A new pair of arenas of capBytes each and a heap for them, the live records moved over. */
function allocate(capBytes: i32, move: bool): bool {
  const a = heapAlloc(<usize>capBytes);
  const b = heapAlloc(<usize>capBytes);
  // A packed record is at least 56 bytes: no more entries than that fit in an arena.
  const entries = capBytes / 56 + 16;
  const heap = heapAlloc(<usize>entries * ENTRY);
  if (a == 0 || b == 0 || heap == 0) return false;
  if (move) {
    memory.copy(heap, hdrPtr(H_HOLD_HEAP), <usize>hdrI32(H_HOLD_LEN) * ENTRY);
    setHdrPtr(H_HOLD_HEAP, heap);
    setHdrPtr(H_HOLD_OTHER, a);
    compact();
    setHdrPtr(H_HOLD_OTHER, b);
  } else {
    setHdrPtr(H_HOLD_ARENA, a);
    setHdrPtr(H_HOLD_OTHER, b);
    setHdrPtr(H_HOLD_HEAP, heap);
  }
  setHdrI32(H_HOLD_CAP, capBytes);
  setHdrI32(H_HOLD_HEAP_CAP, entries);
  return true;
}

/** Makes room for `size` more bytes and one more entry; false when the held set is at its maximum. */
function room(size: usize): bool {
  if (<usize>hdrI32(H_HOLD_USED) + size <= <usize>hdrI32(H_HOLD_CAP) && hdrI32(H_HOLD_LEN) < hdrI32(H_HOLD_HEAP_CAP)) return true;
  compact();
  if (<usize>hdrI32(H_HOLD_USED) + size <= <usize>hdrI32(H_HOLD_CAP) && hdrI32(H_HOLD_LEN) < hdrI32(H_HOLD_HEAP_CAP)) return true;
  const cap = hdrI32(H_HOLD_CAP);
  if (cap >= hdrI32(H_HOLD_MAX)) return false;
  const next = cap * 2 < hdrI32(H_HOLD_MAX) ? cap * 2 : hdrI32(H_HOLD_MAX);
  return allocate(next, true) && <usize>hdrI32(H_HOLD_USED) + size <= <usize>hdrI32(H_HOLD_CAP);
}

/** Records held now. */
export function heldCount(): i32 { return hdrI32(H_HOLD_LEN); }

@inline function entry(i: i32): usize { return hdrPtr(H_HOLD_HEAP) + <usize>i * ENTRY; }

/** Event time of the earliest held record (only when heldCount() > 0). */
export function heldMinTs(): i64 { return load<i64>(entry(0)); }

/** Whether entry `e` is due before a record at `ts` that arrived as number `seq`. */
@inline function before(e: usize, ts: i64, seq: u64): bool {
  const t = load<i64>(e);
  return t < ts || (t == ts && load<u64>(e + E_SEQ) < seq);
}

/** Whether entry `a` is due before entry `b`. */
@inline function entryBefore(a: usize, b: usize): bool { return before(a, load<i64>(b), load<u64>(b + E_SEQ)); }

/**
 * Copies a packed record (counted at `ts`) into the held set; false when there is no room. `fresh`:
 * a record arriving (counted in `held`), not one a restore holds again (counted by its exporter).
 */
export function holdRecord(p: usize, ts: i64, fresh: bool = true): bool {
  const size = recordSize(p);
  if (!room(size)) return false;
  const len = hdrI32(H_HOLD_LEN);
  const used = <usize>hdrI32(H_HOLD_USED);
  const dst = hdrPtr(H_HOLD_ARENA) + used;
  memory.copy(dst, p, size);
  // Held at another time than its own (late, or from the future): not recognised as a copy (dedup.ts).
  if (load<i64>(dst + R_TS) != ts) store<u64>(dst + R_VIEW_HASH, 0);
  store<i64>(dst + R_TS, ts);
  setHdrI32(H_HOLD_USED, <i32>(used + size));
  const seq = <u64>hdrI64(H_HOLD_SEQ);
  setHdrI64(H_HOLD_SEQ, <i64>(seq + 1));
  // Sift up.
  let i = len;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pe = entry(parent);
    if (before(pe, ts, seq)) break;
    memory.copy(entry(i), pe, ENTRY);
    i = parent;
  }
  const e = entry(i);
  store<i64>(e, ts);
  store<u64>(e + E_SEQ, seq);
  store<u32>(e + E_OFF, <u32>used);
  setHdrI32(H_HOLD_LEN, len + 1);
  if (fresh) bumpF64(H_HELD, 1);
  return true;
}

/** Removes the earliest held record; returns its address (valid until the next holdRecord). */
export function popHeld(): usize {
  const len = hdrI32(H_HOLD_LEN) - 1;
  const top = hdrPtr(H_HOLD_ARENA) + <usize>load<u32>(entry(0) + E_OFF);
  setHdrI32(H_HOLD_LEN, len);
  if (len == 0) {
    // Nothing held: the arena starts over (the popped record stays readable until the next hold).
    setHdrI32(H_HOLD_USED, 0);
    return top;
  }
  // Sift the last entry down from the root.
  const lastTs = load<i64>(entry(len));
  const lastSeq = load<u64>(entry(len) + E_SEQ);
  const lastOff = load<u32>(entry(len) + E_OFF);
  let i: i32 = 0;
  while (true) {
    const l = 2 * i + 1;
    if (l >= len) break;
    let c = l;
    if (l + 1 < len && entryBefore(entry(l + 1), entry(l))) c = l + 1;
    if (!before(entry(c), lastTs, lastSeq)) break;
    memory.copy(entry(i), entry(c), ENTRY);
    i = c;
  }
  store<i64>(entry(i), lastTs);
  store<u64>(entry(i) + E_SEQ, lastSeq);
  store<u32>(entry(i) + E_OFF, lastOff);
  return top;
}

/** Moves the live held records to the other arena, packed, and makes it the current one. */
function compact(): void {
  const from = hdrPtr(H_HOLD_ARENA);
  const to = hdrPtr(H_HOLD_OTHER);
  const len = hdrI32(H_HOLD_LEN);
  let w: usize = 0;
  for (let i: i32 = 0; i < len; i++) {
    const e = entry(i);
    const src = from + <usize>load<u32>(e + E_OFF);
    const size = recordSize(src);
    memory.copy(to + w, src, size);
    store<u32>(e + E_OFF, <u32>w);
    w += size;
  }
  setHdrPtr(H_HOLD_ARENA, to);
  setHdrPtr(H_HOLD_OTHER, from);
  setHdrI32(H_HOLD_USED, <i32>w);
}

/** Address of the i-th held record in heap order (for exports: in due order after sortHeld); 0 <= i < heldCount(). */
export function heldAt(i: i32): usize {
  return hdrPtr(H_HOLD_ARENA) + <usize>load<u32>(entry(i) + E_OFF);
}

/**
 * Sorts the heap's entries into the order they are due (event time, then arrival), in place: a
 * sorted array is a min-heap still, so what is released and when does not change. An export walks
 * the entries in this order, and an importer holding them in it numbers ties as they arrived.
 * Heapsort (no memory beyond the entries): a max-heap, whose largest entry goes to the end each round.
 */
export function sortHeld(): void {
  const n = hdrI32(H_HOLD_LEN);
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDownMax(i, n);
  for (let end = n - 1; end > 0; end--) {
    swapEntries(0, end);
    siftDownMax(0, end);
  }
}

function swapEntries(a: i32, b: i32): void {
  const ea = entry(a);
  const eb = entry(b);
  const ts = load<i64>(ea);
  const seq = load<u64>(ea + E_SEQ);
  const off = load<u32>(ea + E_OFF);
  memory.copy(ea, eb, ENTRY);
  store<i64>(eb, ts);
  store<u64>(eb + E_SEQ, seq);
  store<u32>(eb + E_OFF, off);
}

/** Sifts entry i down in a max-heap (by due order) of the first n entries. */
function siftDownMax(i: i32, n: i32): void {
  while (true) {
    const l = 2 * i + 1;
    if (l >= n) return;
    let c = l;
    if (l + 1 < n && entryBefore(entry(l), entry(l + 1))) c = l + 1;
    if (!entryBefore(entry(i), entry(c))) return;
    swapEntries(i, c);
    i = c;
  }
}
