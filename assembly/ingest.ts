// Owner side: applies packed records (see src/partition/packed-record.ts) to the
// keys this worker owns, advancing event time and evaluating ticks in between.
import {
  hdrI64, setHdrI64, hdrI32, bumpF64,
  H_NEXT_TICK, H_MAX_TS, H_EVENTS, H_LATE, H_LATE_DROPPED, H_KEYS_DROPPED, H_CELLS_DROPPED,
  H_DIRTY_LEN, H_OPEN_LEN, H_FUTURE_DROPPED, H_HELD_OVERFLOW,
} from './state';
import { holdRecord, popHeld, heldCount, heldMinTs } from './held';
import {
  keyPtr, cellPtr, findKey, createKey, findCell, createCell,
  headSlot, lastTsAt, setLastTsAt, reachSlot, K_RING, addChildren, C_RING, C_PENDING,
} from './store';
import { slotMsOf, param, P_TICK_MS, P_OOO_MS, P_LATE_DROP, P_SWEEP_MS, SCOPE_PROPERTY, SCOPE_TITLE } from './params';
import { rotateTo, markDirty, evaluateTick, sweep } from './detector';
import { combineHash } from './hash';
import { isDuplicate } from './dedup';
import { floorDiv } from './stats';
import { ringAdd } from './rings';

// Packed record layout: a 56-byte header, then property, title and error bytes, padded to 8.
export const R_PROP_HASH: usize = 0;
export const R_TITLE_HASH: usize = 8;
export const R_ERR_HASH: usize = 16;
export const R_TS: usize = 24;
export const R_INDEX: usize = 32;      // u32 position of the record among the chunk's valid records (its row in the plan)
export const R_PROP_LEN: usize = 40;
export const R_TITLE_LEN: usize = 42;
export const R_ERR_LEN: usize = 44;
export const R_VIEW_HASH: usize = 48;  // u64 hash of the view id, 0 when the line has none (never suppressed)
export const R_HEADER: usize = 56;

@inline export function recordSize(p: usize): usize {
  const len = <usize>load<u16>(p + R_PROP_LEN) + <usize>load<u16>(p + R_TITLE_LEN) + <usize>load<u16>(p + R_ERR_LEN);
  return R_HEADER + ((len + 7) & ~7);
}

/** Evaluates every tick boundary up to the watermark implied by `maxTs`. */
export function advanceTo(maxTs: i64): void {
  const tick = <i64>param(P_TICK_MS);
  const wm = maxTs - <i64>param(P_OOO_MS);
  // Boundaries are absolute multiples of the tick, so every worker evaluates the same instants.
  const ooo = <i64>param(P_OOO_MS);
  let next = hdrI64(H_NEXT_TICK);
  if (next == i64.MIN_VALUE) {
    // The first advance: ticks start after the first event, as if event time had advanced to it
    // before it was counted; records held before it (partitions held back until the last one
    // delivered) move the start to the earliest of them.
    let first = maxTs;
    if (heldCount() > 0 && heldMinTs() < first) first = heldMinTs();
    next = (floorDiv(first - ooo, tick) + 1) * tick;
  }
  const sweepMs = <i64>param(P_SWEEP_MS);
  while (next <= wm) {
    setHdrI64(H_NEXT_TICK, next);
    releaseHeld(next);
    if (hdrI32(H_DIRTY_LEN) == 0 && hdrI32(H_OPEN_LEN) == 0) {
      // Nothing can change in an empty stretch but evictions; run the last sweep in it. Not past
      // the tick before which the earliest held record is due.
      let last = floorDiv(wm, tick) * tick;
      if (heldCount() > 0) {
        const due = floorDiv(heldMinTs(), tick) * tick;
        if (due < last) last = due;
      }
      if (last > next) {
        const s = floorDiv(last, sweepMs) * sweepMs;
        if (s >= next) sweep(s);
        next = last + tick;
        continue;
      }
    }
    evaluateTick(next);
    next += tick;
  }
  setHdrI64(H_NEXT_TICK, next);
  releaseHeld(next);
}

/** Counts the held records whose event time is before `bound`, earliest first. */
function releaseHeld(bound: i64): void {
  while (heldCount() > 0 && heldMinTs() < bound) {
    const p = popHeld();
    ingestRecord(p, load<i64>(p + R_TS), false);
  }
}

function touch(key: i32, scope: i32, ts: i64, errHash: u64, errPtr: usize, errLen: i32): void {
  const k = keyPtr(key);
  markDirty(key, k); // before any write to the key (store.ts markChanged)
  const slotMs = slotMsOf(scope);
  const s = floorDiv(ts, slotMs);
  reachSlot(scope, s);
  // The latest event time is kept from the start of the head slot: taken before the ring moves
  // (rotateTo moves the head to `s` when it is newer, or when there is none: -1).
  const head = headSlot(k);
  const last = lastTsAt(k, head, slotMs);
  const slot = rotateTo(key, s, head);
  setLastTsAt(k, s > head ? s : head, slotMs, ts > last ? ts : last);
  // A ring that cannot widen for lack of memory (never within the caps, which are sized for full
  // width) drops the view as a key beyond the cap does: counted, never silently (the key's latest
  // event time moves all the same).
  if (!ringAdd(k + K_RING, slot)) { bumpF64(H_KEYS_DROPPED, 1); return; }
  if (errHash == 0) return;
  let c = findCell(key, errHash);
  if (c < 0) {
    c = createCell(key, errHash, errPtr, errLen);
    if (c < 0) { bumpF64(H_CELLS_DROPPED, 1); return; }
  }
  const cp = cellPtr(c);
  if (!ringAdd(cp + C_RING, slot)) { bumpF64(H_CELLS_DROPPED, 1); return; }
  store<i32>(cp + C_PENDING, load<i32>(cp + C_PENDING) + 1);
}

/**
 * A copy of a record already counted (same property, view id and event time as written). Not for a
 * record the engine's clock judged to be from the future (counted before its own time): a late record
 * is counted after it, and matched at its own time.
 */
function isDuplicateRecord(p: usize, eventTs: i64): bool {
  const own = load<i64>(p + R_TS);
  return eventTs >= own && isDuplicate(load<u64>(p + R_PROP_HASH), load<u64>(p + R_VIEW_HASH), own);
}

/** Applies one packed record whose watermark has already been advanced. */
function ingestRecord(p: usize, eventTs: i64, counted: bool): void {
  if (isDuplicateRecord(p, eventTs)) return;
  let ts = eventTs;
  const next = hdrI64(H_NEXT_TICK);
  const tick = <i64>param(P_TICK_MS);
  if (next != i64.MIN_VALUE && ts < next - tick) {
    // Late: its tick has been evaluated already (`counted`: found late by its plan already).
    if (!counted) {
      bumpF64(H_LATE, 1);
      if (param(P_LATE_DROP) != 0) { bumpF64(H_LATE_DROPPED, 1); return; }
    }
    ts = next - tick;
  }
  bumpF64(H_EVENTS, 1);
  const propHash = load<u64>(p + R_PROP_HASH);
  const propLen = <i32>load<u16>(p + R_PROP_LEN);
  const titleLen = <i32>load<u16>(p + R_TITLE_LEN);
  const errLen = <i32>load<u16>(p + R_ERR_LEN);
  const propPtr = p + R_HEADER;
  const titlePtr = propPtr + <usize>propLen;
  const errPtr = titlePtr + <usize>titleLen;
  const errHash = load<u64>(p + R_ERR_HASH);
  let pk = findKey(propHash);
  if (pk < 0) {
    pk = createKey(propHash, SCOPE_PROPERTY, -1, propPtr, propLen);
    if (pk < 0) { bumpF64(H_KEYS_DROPPED, 1); return; }
  }
  touch(pk, SCOPE_PROPERTY, ts, errHash, errPtr, errLen);
  const titleHash = load<u64>(p + R_TITLE_HASH);
  if (titleHash == 0) return;
  const th = combineHash(propHash, titleHash);
  let tk = findKey(th);
  if (tk < 0) {
    tk = createKey(th, SCOPE_TITLE, pk, titlePtr, titleLen);
    if (tk < 0) { bumpF64(H_KEYS_DROPPED, 1); return; }
    const ppk = keyPtr(pk);
    addChildren(ppk, 1);
  }
  touch(tk, SCOPE_TITLE, ts, errHash, errPtr, errLen);
}

/**
 * Applies the packed records in [ptr, ptr+len) by the main thread's plan for their chunk
 * (src/engine/event-clock.ts): `n` f64 targets at `plan`, then `n` f64 event times, then `n` f64
 * marks of each record's own partition. Before record i (its R_INDEX) event time advances to
 * target[i] (the watermark trails it by outOfOrdernessMs); the record is then counted at time[i],
 * its own time unless the clock judged it to be from the future (clamped), or dropped when time[i]
 * is NaN. A record older than the last tick its own partition had reached (by mark[i]) is late, as
 * in a replay of that partition alone. At the end event time advances to `endTarget`. Targets are
 * -Infinity while event time must not advance at all yet. Every owner gets the same plan, so all of
 * them evaluate the same ticks at the same points of the input.
 */
export function ingestPacked(ptr: usize, len: usize, plan: usize, n: i32, endTarget: f64): void {
  let p = ptr;
  const end = ptr + len;
  const times = plan + (<usize>n << 3);
  const marks = plan + (<usize>n << 4);
  const tick = <i64>param(P_TICK_MS);
  const ooo = <i64>param(P_OOO_MS);
  while (p < end) {
    const i = <usize>load<u32>(p + R_INDEX);
    advanceToTarget(load<f64>(plan + (i << 3)));
    const t = load<f64>(times + (i << 3));
    if (t != t) {
      bumpF64(H_FUTURE_DROPPED, 1);
    } else {
      let ts = <i64>t;
      let late = false;
      const mark = load<f64>(marks + (i << 3));
      if (mark != -Infinity) {
        // For one ordered stream this is exactly the evaluated tick (the mark is the target).
        const seen = floorDiv(<i64>mark - ooo, tick) * tick;
        if (ts < seen) {
          bumpF64(H_LATE, 1);
          late = true;
          ts = seen;
        }
      }
      if (late && param(P_LATE_DROP) != 0) {
        bumpF64(H_LATE_DROPPED, 1);
      } else {
        const next = hdrI64(H_NEXT_TICK);
        // Not due before the next tick: held until it is, so that the evaluation of a tick sees
        // exactly the records before it whatever order they came in (a replay, partitions merged
        // in any interleaving); when there is no room, counted now (early) rather than lost.
        if (next != i64.MIN_VALUE && ts < next) {
          ingestRecord(p, ts, late);
        } else if (!holdRecord(p, ts)) {
          bumpF64(H_HELD_OVERFLOW, 1);
          ingestRecord(p, ts, late);
        }
      }
    }
    p += recordSize(p);
  }
  advanceToTarget(endTarget);
}

/** Advances event time to a plan target (-Infinity: not yet) and remembers the highest one. */
@inline function advanceToTarget(target: f64): void {
  if (target == -Infinity) return;
  const ts = <i64>target;
  advanceTo(ts);
  if (ts > hdrI64(H_MAX_TS)) setHdrI64(H_MAX_TS, ts);
}
