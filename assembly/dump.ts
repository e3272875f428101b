// Read-only figures of every live cell (key x error type) for the dump-error-rates command.
// It walks cells by index from a cursor and writes at most a page of fixed-size records,
// so JS pages through a worker's state between chunks and ingestion never waits long.
// It reuses the detector's own window, recent-window and threshold functions and never
// folds, rotates or evaluates: a dump must not change what the detector will decide.
import { hdrI32, hdrI64, H_CELL_HWM, H_NEXT_TICK } from './state';
import {
  keyPtr, cellPtr, findCell,
  K_PARENT, K_SCOPE, K_LAST_TS, K_BASE_VIEWS,
  C_ERR_HASH, C_KEY, C_STATUS, C_HOT, C_BASE_VIEWS, C_BASE_FAILS, C_OPENED_AT, C_OPEN_THR, C_IMPACTED,
  C_EVIDENCE, C_OPEN_BASE,
} from './store';
import {
  param, scopeParam, P_TICK_MS, SCOPE_PROPERTY, SCOPE_TITLE,
  S_MIN_VIEWS, S_RESOLVE_MS, S_RESOLVE_VIEWS, S_WARMUP_VIEWS, S_PRIOR_VIEWS,
} from './params';
import {
  slotMsOf, windowOf, recentOf, spanRatio, thresholdOf,
  wViews, wFails, wOldest, rViews, rFails, rOldest,
} from './detector';
import { floorDiv } from './stats';

// One record: DUMP_FIELDS f64 values (see src/kernel/dump-record.ts for the names).
export const DUMP_FIELDS: i32 = 20;
const RECORD_BYTES: usize = <usize>DUMP_FIELDS << 3;

let nextCursor: i32 = 0;

/** Number of f64 fields per dump record. */
export function dumpFields(): i32 { return DUMP_FIELDS; }

/** The cell index the next page starts at (after dumpCells); -1 when the walk is complete. */
export function dumpNextCursor(): i32 { return nextCursor; }

/** The evaluation time the figures refer to: the latest evaluated tick, or i64.MIN before any. */
export function dumpAtMs(): i64 {
  const next = hdrI64(H_NEXT_TICK);
  return next == i64.MIN_VALUE ? next : next - <i64>param(P_TICK_MS);
}

/**
 * Writes the figures of live cells with index >= cursor into [out, out + maxRecords records),
 * at most maxRecords of them; returns how many were written, and dumpNextCursor() says where to go on.
 */
export function dumpCells(cursor: i32, maxRecords: i32, out: usize): i32 {
  const hwm = hdrI32(H_CELL_HWM);
  const t = dumpAtMs();
  let written: i32 = 0;
  let c = cursor;
  if (t == i64.MIN_VALUE) { nextCursor = -1; return 0; }
  while (c < hwm && written < maxRecords) {
    const cp = cellPtr(c);
    if (load<u64>(cp + C_ERR_HASH) != 0) {
      writeRecord(c, cp, t, out + <usize>written * RECORD_BYTES);
      written++;
    }
    c++;
  }
  nextCursor = c < hwm ? c : -1;
  return written;
}

// The same arithmetic as evalCell (detector.ts) up to its decision, without side effects.
function writeRecord(c: i32, cp: usize, t: i64, r: usize): void {
  const key = load<i32>(cp + C_KEY);
  const k = keyPtr(key);
  const scope = <i32>load<u8>(k + K_SCOPE);
  const slotMs = slotMsOf(scope);
  let notBefore: i64 = <i64>-0x7fffffffffffffff;
  let pc: i32 = -1;
  let parent: i32 = -1;
  if (scope == SCOPE_TITLE) {
    parent = load<i32>(k + K_PARENT);
    pc = findCell(parent, load<u64>(cp + C_ERR_HASH));
    if (pc >= 0) {
      const pe = load<i64>(cellPtr(pc) + C_EVIDENCE);
      if (pe >= 0) notBefore = floorDiv((pe + 1) * slotMsOf(SCOPE_PROPERTY) + slotMs - 1, slotMs);
    }
  }
  windowOf(k, cp, scopeParam(scope, S_MIN_VIEWS), notBefore);
  const n = wViews;
  const x = wFails;
  const oldest = wOldest;
  let spanMs = <f64>(t - oldest * slotMs);
  if (spanMs < 1) spanMs = 1;
  const resolveMs = <i64>scopeParam(scope, S_RESOLVE_MS);
  recentOf(k, cp, floorDiv(t - resolveMs, slotMs), scopeParam(scope, S_RESOLVE_VIEWS), notBefore);
  const rn = rViews;
  const rx = rFails;
  let rSpanMs = <f64>(t - rOldest * slotMs);
  if (rSpanMs < 1) rSpanMs = 1;

  let base: f64 = 0;
  let warm = false;
  let reference: f64 = 0;
  let recentReference: f64 = 0;
  const nb = load<f64>(cp + C_BASE_VIEWS);
  const xb = load<f64>(cp + C_BASE_FAILS);
  if (scope == SCOPE_PROPERTY) {
    base = nb > 0 ? xb / nb : 0;
    warm = load<f64>(k + K_BASE_VIEWS) >= scopeParam(SCOPE_PROPERTY, S_WARMUP_VIEWS);
    reference = base;
    recentReference = base;
  } else {
    const pk = keyPtr(parent);
    let parentBase: f64 = 0;
    let parentRatio: f64 = 0;
    let parentRecentRatio: f64 = 0;
    if (pc >= 0) {
      const pcp = cellPtr(pc);
      const pnb = load<f64>(pcp + C_BASE_VIEWS);
      parentBase = pnb > 0 ? load<f64>(pcp + C_BASE_FAILS) / pnb : 0;
      const pSlotMs = slotMsOf(SCOPE_PROPERTY);
      parentRatio = spanRatio(pk, pcp, floorDiv(oldest * slotMs, pSlotMs));
      parentRecentRatio = spanRatio(pk, pcp, floorDiv(rOldest * slotMs, pSlotMs));
    }
    const prior = scopeParam(SCOPE_TITLE, S_PRIOR_VIEWS);
    base = (xb + prior * parentBase) / (nb + prior);
    warm = load<f64>(pk + K_BASE_VIEWS) >= scopeParam(SCOPE_PROPERTY, S_WARMUP_VIEWS);
    reference = base > parentRatio ? base : parentRatio;
    recentReference = base > parentRecentRatio ? base : parentRecentRatio;
  }
  const open = load<u8>(cp + C_STATUS) != 0;
  store<f64>(r, <f64>key);
  store<f64>(r, <f64>c, 8);
  store<f64>(r, <f64>scope, 16);
  store<f64>(r, open ? 1 : 0, 24);
  store<f64>(r, n, 32);
  store<f64>(r, x, 40);
  store<f64>(r, spanMs, 48);
  store<f64>(r, rn, 56);
  store<f64>(r, rx, 64);
  store<f64>(r, rSpanMs, 72);
  store<f64>(r, base, 80);
  store<f64>(r, thresholdOf(scope, reference), 88);
  store<f64>(r, thresholdOf(scope, recentReference), 96);
  store<f64>(r, open ? load<f64>(cp + C_OPEN_THR) : NaN, 104);
  store<f64>(r, open ? load<f64>(cp + C_OPEN_BASE) : NaN, 112);
  store<f64>(r, open ? <f64>load<i64>(cp + C_OPENED_AT) : NaN, 120);
  store<f64>(r, open ? load<f64>(cp + C_IMPACTED) : 0, 128);
  store<f64>(r, warm ? 1 : 0, 136);
  store<f64>(r, load<u8>(cp + C_HOT) != 0 ? 1 : 0, 144);
  store<f64>(r, <f64>load<i64>(k + K_LAST_TS), 152);
}
