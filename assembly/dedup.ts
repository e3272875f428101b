// Duplicate suppression on the owner side. At-least-once pipelines deliver some records twice (a
// producer retry, an upstream replay); counted twice, they can open an incident on failures that
// exist only as copies. A copy is the same view (property and view id) with the same event time, as
// such a pipeline repeats a record; it is dropped and counted as a duplicate while the original's
// event time is within the horizon of the watermark. A view id seen before with another time is a
// new record and counts; a record already older than the horizon is neither dropped nor remembered.
// Records the engine's clock judged to be from the future (counted at another time than their own)
// are neither dropped nor remembered: a copy of one counts again.
//
// Every record is looked up, so a lookup must not wait for memory. The filter is a ring of
// positions in event-time order (2^shift ms each, spanning at least two horizons): a record's entry
// goes to the position of its time (plus up to 7 by its hash, against clusters) or the next free
// one, so the records of a chunk, close in time, touch a few neighbouring cache lines (a ring laid
// out by hash instead cost a cache miss per record: +50% on the kernel's ingest). Behind the
// watermark a sweep empties the positions of times more than a horizon (and a margin for displaced
// entries) old, one position at a time as time moves on, so chains stay short and nothing is ever
// deleted from inside a chain. A copy has its original's event time, so when the copy is within the
// horizon so is the original, and its entry is still there: exact for every record within the
// horizon. Records are counted when due (the engine holds those ahead of event time), at most the
// out-of-orderness after the watermark, so the ring (two horizons plus that) never wraps onto
// what it remembers.
// The ring is sized at first use for dedupMaxViews views per horizon; beyond that, or past 64
// positions of probing, a view is not remembered and is counted as dedupFull (never dropped), so an
// overloaded filter can only let copies through; which views overflow depends on how groups share
// a worker: like the key cap, a safety net with a metric.
//
// An entry is 8 bytes: 48 bits of a mix of the property's and view id's hashes and the event time, and the key
// group (16 bits), so the entries of a group can be told apart and a false match can only involve
// views of one group (the same whatever the number of workers). Two different records of one group
// in one probe chain collide with probability 2^-48 per comparison: with ~2 comparisons per record,
// a real view is wrongly dropped about once in 10^14 records. All of it is in linear memory, so a
// snapshot carries it.
import {
  hdrI32, setHdrI32, hdrI64, setHdrI64, hdrPtr, setHdrPtr, bumpF64, heapAlloc,
  H_NEXT_TICK, H_DUPLICATES, H_DEDUP_FULL, H_DEDUP_SWEPT, H_DEDUP_PTR, H_DEDUP_MASK,
  H_DEDUP_SHIFT, H_KEY_GROUPS, H_DEDUP_HORIZON,
} from './state';
import { param, P_DEDUP_MS, P_DEDUP_VIEWS, P_OOO_MS } from './params';

const ENTRY: usize = 8;       // u64 word (0: empty)
const JITTER: i64 = 8;        // positions a record's home may be after its time's position
const MAX_PROBE: i32 = 64;    // positions searched before giving up (dedupFull)
const MARGIN: i64 = JITTER + <i64>MAX_PROBE; // positions the sweep stays behind the horizon

@inline function at(base: usize, pos: i64, mask: i64): usize { return base + (<usize>(pos & mask)) * ENTRY; }

/** Lays the ring out for the current horizon and capacity; false when memory is exhausted. */
function layout(horizon: i64): bool {
  const views = <i64>param(P_DEDUP_VIEWS);
  if (views < 1) return false;
  let positions: i64 = 1024;
  while (positions < views * 2 && positions < (<i64>1 << 27)) positions <<= 1;
  // The ring spans two horizons plus the out-of-orderness: what is remembered (times from a horizon
  // before the watermark to the out-of-orderness after it) never wraps onto itself.
  const span = horizon * 2 + <i64>param(P_OOO_MS);
  let shift = 0;
  while ((positions << shift) < span && shift < 40) shift++;
  const base = heapAlloc(<usize>positions * ENTRY);
  if (base == 0) return false;
  setHdrPtr(H_DEDUP_PTR, base);
  setHdrI32(H_DEDUP_MASK, <i32>(positions - 1));
  setHdrI32(H_DEDUP_SHIFT, shift);
  setHdrI64(H_DEDUP_HORIZON, horizon);
  setHdrI64(H_DEDUP_SWEPT, i64.MIN_VALUE);
  return true;
}

/**
 * Empties the positions from `from` (the last sweep's end) up to `to` (unwrapped; at most the whole
 * ring: everything remembered is then older than `to`). The first sweep only marks where it is: a
 * fresh ring holds nothing older.
 */
function sweep(from: i64, to: i64, base: usize, mask: i64): void {
  if (from != i64.MIN_VALUE) {
    if (to - from > mask + 1) from = to - mask - 1;
    for (let p = from; p < to; p++) store<u64>(at(base, p, mask), 0);
  }
  setHdrI64(H_DEDUP_SWEPT, to);
}

/** Empties the positions of times more than the horizon (and the margin) behind the watermark, up to where the last call stopped. */
function sweepBehind(): void {
  const wm = hdrI64(H_NEXT_TICK);
  const base = hdrPtr(H_DEDUP_PTR);
  if (wm == i64.MIN_VALUE || base == 0) return;
  const shift = hdrI32(H_DEDUP_SHIFT);
  const to = (wm - hdrI64(H_DEDUP_HORIZON) - (MARGIN << shift)) >> shift; // first position (unwrapped) to keep
  const swept = hdrI64(H_DEDUP_SWEPT);
  if (to > swept) sweep(swept, to, base, <i64>hdrI32(H_DEDUP_MASK));
}

/** (propHash >> 32) mod groups by a multiplication: exact, since both are below 2^32 and the f64 quotient is off by at most one. */
@inline function groupOf(propHash: u64, groups: i32): u64 {
  const hi = <i64>(propHash >> 32);
  const g = <i64>groups;
  let q = <i64>(<f64>hi / <f64>g);
  let r = hi - q * g;
  if (r < 0) r += g;
  else if (r >= g) r -= g;
  return <u64>r;
}

/**
 * True when this record repeats a view (property, view id, event time) whose original is within
 * the horizon: then it is counted as a duplicate and must not be counted; otherwise it is
 * remembered. Records without a view id are never duplicates.
 */
export function isDuplicate(propHash: u64, viewHash: u64, ts: i64): bool {
  if (viewHash == 0) return false;
  const horizon = <i64>param(P_DEDUP_MS);
  if (horizon <= 0) return false;
  if (hdrI64(H_DEDUP_HORIZON) != horizon || hdrPtr(H_DEDUP_PTR) == 0) {
    // First use, or the horizon changed: a fresh ring (what was remembered is forgotten).
    if (!layout(horizon)) return false;
  }
  const base = hdrPtr(H_DEDUP_PTR);
  const mask = <i64>hdrI32(H_DEDUP_MASK);
  const shift = hdrI32(H_DEDUP_SHIFT);
  const wm = hdrI64(H_NEXT_TICK);
  if (wm != i64.MIN_VALUE && ts < wm - horizon) return false;
  sweepBehind();
  const groups = hdrI32(H_KEY_GROUPS);
  const group = groups > 0 ? groupOf(propHash, groups) : 0;
  // Property and view id are hashed already: one multiply-rotate mixes them with the time.
  let word = ((rotl<u64>(viewHash * 0x9e3779b97f4a7c15 ^ propHash, 27) ^ <u64>ts * 0xc2b2ae3d27d4eb4f) & 0xffffffffffff0000) | (group & 0xffff);
  if (word >> 16 == 0) word |= <u64>1 << 16;
  let pos = (ts >> shift) + <i64>(word >> 61);
  for (let i = 0; i < MAX_PROBE; i++) {
    const e = at(base, pos, mask);
    const w = load<u64>(e);
    if (w == 0) {
      store<u64>(e, word);
      return false;
    }
    if (w == word) {
      bumpF64(H_DUPLICATES, 1);
      return true;
    }
    pos++;
  }
  bumpF64(H_DEDUP_FULL, 1);
  return false;
}

// ---- by key group (checkpoints, rescaling) --------------------------------------------------
// A group's entries leave as (ring position, word) pairs; an importer with the same ring geometry
// (the same horizon and dedupMaxViews: the same parameters) puts each back at its position, so
// copies of records seen before a checkpoint are still recognized after it, in whichever worker.
// An entry sits at the first free position from its home, past entries of any group: a lookup finds
// it only if no position between is empty. So an importer puts back the entries of every part it
// reads, its groups' and the others' (those never match its lookups, which carry their own group,
// and the sweep clears them within a horizon): imported alone, an entry that had been pushed past
// another worker's entries sat behind a gap, and a copy of its record after a restore into another
// worker count counted again. An export first sweeps what the next lookup would sweep, so it
// carries the live entries only (the same whichever worker held them).

let dedupCursor: i32 = -1;

/** Where the next page of exportDedup starts; -1 when the pass is complete. */
export function exportDedupNextCursor(): i32 { return dedupCursor; }

/** The ring's geometry for an export: 0 mask, 1 shift, 2 horizon, 3 swept (-1 / i64.MIN when there is no ring). */
export function dedupGeometry(field: i32): i64 {
  if (hdrPtr(H_DEDUP_PTR) == 0) return field == 3 ? i64.MIN_VALUE : -1;
  if (field == 0) return <i64>hdrI32(H_DEDUP_MASK);
  if (field == 1) return <i64>hdrI32(H_DEDUP_SHIFT);
  if (field == 2) return hdrI64(H_DEDUP_HORIZON);
  return hdrI64(H_DEDUP_SWEPT);
}

/** Writes the entries of key groups [lo, hi) from ring position `cursor` on into [out, out+cap) as 16-byte (u32 position, pad, u64 word) records; returns the bytes. */
export function exportDedup(cursor: i32, out: usize, cap: usize, lo: i32, hi: i32): usize {
  if (cursor == 0) sweepBehind();
  const base = hdrPtr(H_DEDUP_PTR);
  if (base == 0) { dedupCursor = -1; return 0; }
  const mask = <i64>hdrI32(H_DEDUP_MASK);
  let w: usize = 0;
  let i = <i64>cursor;
  while (i <= mask && w + 16 <= cap) {
    const word = load<u64>(at(base, i, mask));
    const group = <i32>(word & 0xffff);
    if (word != 0 && group >= lo && group < hi) {
      store<u32>(out + w, <u32>i);
      store<u32>(out + w + 4, 0);
      store<u64>(out + w + 8, word);
      w += 16;
    }
    i++;
  }
  dedupCursor = i <= mask ? <i32>i : -1;
  return w;
}

/**
 * Puts exported entries back, of every group (see above: they keep the probe chains of this kernel's
 * entries unbroken); returns how many, or -1 when the ring they come from has another geometry (then
 * nothing is imported: copies of records seen before may count). `swept` is the exporter's sweep mark.
 */
export function importDedup(ptr: usize, len: usize, mask: i32, shift: i32, horizon: i64, swept: i64): i32 {
  if (<i64>param(P_DEDUP_MS) != horizon || horizon <= 0) return -1;
  if (hdrI64(H_DEDUP_HORIZON) != horizon || hdrPtr(H_DEDUP_PTR) == 0) {
    if (!layout(horizon)) return -1;
  }
  if (hdrI32(H_DEDUP_MASK) != mask || hdrI32(H_DEDUP_SHIFT) != shift) return -1;
  const base = hdrPtr(H_DEDUP_PTR);
  const m = <i64>mask;
  let n: i32 = 0;
  for (let p = ptr; p + 16 <= ptr + len; p += 16) {
    const word = load<u64>(p + 8);
    let pos = <i64>load<u32>(p);
    for (let i = 0; i < MAX_PROBE; i++) {
      const e = at(base, pos, m);
      const w = load<u64>(e);
      if (w == word) break;
      if (w == 0) { store<u64>(e, word); n++; break; }
      pos++;
    }
  }
  if (swept > hdrI64(H_DEDUP_SWEPT)) setHdrI64(H_DEDUP_SWEPT, swept);
  return n;
}
