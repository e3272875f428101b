// Read-only figures of every live cell (key x error type) for the dump-error-rates command.
// It walks cells by index from a cursor and writes at most a page of fixed-size records,
// so JS pages through a worker's state between chunks and ingestion never waits long.
// It reuses the detector's own window, recent-window and threshold functions and never
// folds, rotates or evaluates: a dump must not change what the detector will decide.
import { hdrI32, hdrI64, H_CELL_HWM, H_NEXT_TICK } from './state';
import {
  keyPtr, cellPtr,
  K_SCOPE, lastTs,
  C_NAME, cellKey, C_STATUS, C_HOT, C_OPEN, O_OPENED_AT, O_OPEN_THR, O_IMPACTED, O_OPEN_BASE,
} from './store';
import { param, P_TICK_MS } from './params';
import {
  cellFigures, fN, fX, fSpanMs, fRN, fRX, fRSpanMs, fBase, fWarm, fThr, fRecentThr,
} from './detector';

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
    if (load<u32>(cp + C_NAME) != 0) { // a live cell (a free one has no name)
      writeRecord(c, cp, t, out + <usize>written * RECORD_BYTES);
      written++;
    }
    c++;
  }
  nextCursor = c < hwm ? c : -1;
  return written;
}

// The figures come from the detector's own cellFigures: what a dump shows is what it decides on.
function writeRecord(c: i32, cp: usize, t: i64, r: usize): void {
  const key = cellKey(cp);
  const k = keyPtr(key);
  const scope = <i32>load<u8>(k + K_SCOPE);
  cellFigures(cp, k, t);
  const open = load<u8>(cp + C_STATUS) != 0;
  store<f64>(r, <f64>key);
  store<f64>(r, <f64>c, 8);
  store<f64>(r, <f64>scope, 16);
  store<f64>(r, open ? 1 : 0, 24);
  store<f64>(r, fN, 32);
  store<f64>(r, fX, 40);
  store<f64>(r, fSpanMs, 48);
  store<f64>(r, fRN, 56);
  store<f64>(r, fRX, 64);
  store<f64>(r, fRSpanMs, 72);
  store<f64>(r, fBase, 80);
  store<f64>(r, fThr, 88);
  store<f64>(r, fRecentThr, 96);
  // An open cell has its incident record.
  const op = <usize>load<u32>(cp + C_OPEN);
  store<f64>(r, open ? load<f64>(op + O_OPEN_THR) : NaN, 104);
  store<f64>(r, open ? load<f64>(op + O_OPEN_BASE) : NaN, 112);
  store<f64>(r, open ? <f64>load<i64>(op + O_OPENED_AT) : NaN, 120);
  store<f64>(r, open ? load<f64>(op + O_IMPACTED) : 0, 128);
  store<f64>(r, fWarm ? 1 : 0, 136);
  store<f64>(r, load<u8>(cp + C_HOT) != 0 ? 1 : 0, 144);
  store<f64>(r, <f64>lastTs(k), 152);
}
