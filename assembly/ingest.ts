// Owner side: applies packed records (see src/partition/packed-record.ts) to the
// keys this worker owns, advancing event time and evaluating ticks in between.
import {
  hdrI64, setHdrI64, hdrI32, bumpF64,
  H_NEXT_TICK, H_MAX_TS, H_EVENTS, H_LATE, H_LATE_DROPPED, H_KEYS_DROPPED, H_CELLS_DROPPED,
  H_DIRTY_LEN, H_OPEN_LEN,
} from './state';
import {
  keyPtr, cellPtr, findKey, createKey, findCell, createCell,
  K_LAST_TS, K_RING, K_CHILDREN, C_RING, C_PENDING,
} from './store';
import { param, P_TICK_MS, P_OOO_MS, P_LATE_DROP, P_SWEEP_MS, SCOPE_PROPERTY, SCOPE_TITLE } from './params';
import { rotateTo, markDirty, evaluateTick, sweep, slotMsOf } from './detector';
import { combineHash } from './hash';
import { floorDiv } from './stats';
import { SLOTS } from './state';

// Packed record layout: a 48-byte header, then property, title and error bytes, padded to 8.
export const R_PROP_HASH: usize = 0;
export const R_TITLE_HASH: usize = 8;
export const R_ERR_HASH: usize = 16;
export const R_TS: usize = 24;
export const R_PREFIX_MAX: usize = 32;
export const R_PROP_LEN: usize = 40;
export const R_TITLE_LEN: usize = 42;
export const R_ERR_LEN: usize = 44;
export const R_HEADER: usize = 48;

@inline export function recordSize(p: usize): usize {
  const len = <usize>load<u16>(p + R_PROP_LEN) + <usize>load<u16>(p + R_TITLE_LEN) + <usize>load<u16>(p + R_ERR_LEN);
  return R_HEADER + ((len + 7) & ~7);
}

@external("env", "newKey")
declare function onNewKey(key: i32, scope: i32, propPtr: usize, propLen: i32, titlePtr: usize, titleLen: i32): void;
@external("env", "newCell")
declare function onNewCell(cell: i32, key: i32, errPtr: usize, errLen: i32): void;

/** Evaluates every tick boundary up to the watermark implied by `maxTs`. */
export function advanceTo(maxTs: i64): void {
  const tick = <i64>param(P_TICK_MS);
  const wm = maxTs - <i64>param(P_OOO_MS);
  // Boundaries are absolute multiples of the tick, so every worker evaluates the same
  // instants; before the first event (next = i64.MIN) the empty-stretch step below jumps there.
  let next = hdrI64(H_NEXT_TICK);
  const sweepMs = <i64>param(P_SWEEP_MS);
  while (next <= wm) {
    if (hdrI32(H_DIRTY_LEN) == 0 && hdrI32(H_OPEN_LEN) == 0) {
      // Nothing can change in an empty stretch but evictions; run the last sweep in it.
      const last = floorDiv(wm, tick) * tick;
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
}

function touch(key: i32, scope: i32, ts: i64, errHash: u64, errPtr: usize, errLen: i32): void {
  const k = keyPtr(key);
  const slot = rotateTo(key, floorDiv(ts, slotMsOf(scope)));
  const off = <usize>(slot & (<i64>SLOTS - 1)) << 2;
  store<u32>(k + K_RING + off, load<u32>(k + K_RING + off) + 1);
  if (ts > load<i64>(k + K_LAST_TS)) store<i64>(k + K_LAST_TS, ts);
  markDirty(key, k);
  if (errHash == 0) return;
  let c = findCell(key, errHash);
  if (c < 0) {
    c = createCell(key, errHash);
    if (c < 0) { bumpF64(H_CELLS_DROPPED, 1); return; }
    onNewCell(c, key, errPtr, errLen);
  }
  const cp = cellPtr(c);
  store<u32>(cp + C_RING + off, load<u32>(cp + C_RING + off) + 1);
  store<i32>(cp + C_PENDING, load<i32>(cp + C_PENDING) + 1);
}

/** Applies one packed record whose watermark has already been advanced. */
function ingestRecord(p: usize): void {
  let ts = load<i64>(p + R_TS);
  const next = hdrI64(H_NEXT_TICK);
  const tick = <i64>param(P_TICK_MS);
  if (next != i64.MIN_VALUE && ts < next - tick) {
    // Late: its tick has been evaluated already.
    bumpF64(H_LATE, 1);
    if (param(P_LATE_DROP) != 0) { bumpF64(H_LATE_DROPPED, 1); return; }
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
    pk = createKey(propHash, SCOPE_PROPERTY, -1);
    if (pk < 0) { bumpF64(H_KEYS_DROPPED, 1); return; }
    onNewKey(pk, SCOPE_PROPERTY, propPtr, propLen, 0, -1);
  }
  touch(pk, SCOPE_PROPERTY, ts, errHash, errPtr, errLen);
  const titleHash = load<u64>(p + R_TITLE_HASH);
  if (titleHash == 0) return;
  const th = combineHash(propHash, titleHash);
  let tk = findKey(th);
  if (tk < 0) {
    tk = createKey(th, SCOPE_TITLE, pk);
    if (tk < 0) { bumpF64(H_KEYS_DROPPED, 1); return; }
    const ppk = keyPtr(pk);
    store<i32>(ppk + K_CHILDREN, load<i32>(ppk + K_CHILDREN) + 1);
    onNewKey(tk, SCOPE_TITLE, propPtr, propLen, titlePtr, titleLen);
  }
  touch(tk, SCOPE_TITLE, ts, errHash, errPtr, errLen);
}

/**
 * Applies the packed records in [ptr, ptr+len): each record's watermark is the max of
 * `baseMaxTs` (every earlier chunk) and its prefix max within the chunk (at most `capTs`);
 * then advances to the chunk's own max, so the same input gives the same evaluations at any
 * batch size.
 */
export function ingestPacked(ptr: usize, len: usize, baseMaxTs: i64, chunkMaxTs: i64, capTs: i64, ownCap: i32): void {
  let p = ptr;
  const end = ptr + len;
  while (p < end) {
    const pm = load<i64>(p + R_PREFIX_MAX);
    advanceCapped(pm > baseMaxTs ? pm : baseMaxTs, capTs, ownCap != 0 ? pm : i64.MAX_VALUE);
    ingestRecord(p);
    p += recordSize(p);
  }
  const mx = chunkMaxTs > baseMaxTs ? chunkMaxTs : baseMaxTs;
  advanceCapped(mx, capTs, ownCap != 0 ? chunkMaxTs : i64.MAX_VALUE);
  if (mx > hdrI64(H_MAX_TS)) setHdrI64(H_MAX_TS, mx);
}

/**
 * Advances to `maxTs`, but not past `capTs` nor `ownTs`: the engine's caps while several source
 * partitions deliver backlogs (the event time the other partitions still catching up have reached,
 * and this chunk's own partition's, record by record). i64.MAX = no cap, i64.MIN = not at all yet.
 */
@inline function advanceCapped(maxTs: i64, capTs: i64, ownTs: i64): void {
  let w = maxTs < capTs ? maxTs : capTs;
  if (ownTs < w) w = ownTs;
  if (w != i64.MIN_VALUE) advanceTo(w);
}
