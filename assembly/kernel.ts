// Lifecycle of one kernel instance: init, the state header, counters for JS.
import {
  HDR, STATE_FORMAT_VERSION, heapAlloc, hdrI32, setHdrI32, hdrI64, setHdrI64, hdrF64, setHdrPtr, hdrPtr,
  H_MAGIC, H_VERSION, H_INITIALIZED, H_DIRTY_PTR, H_OPEN_PTR, H_NEXT_TICK, H_MAX_TS, H_NEXT_SWEEP,
  H_KEY_COUNT, H_CELL_COUNT, H_OPEN_LEN, H_GROUP_LO, H_GROUP_HI, H_HEAP_TOP, H_KEY_GROUPS,
} from './state';
import { initStore } from './store';
import { initIo } from './chunk';
import { initHeld } from './held';
import { advanceTo } from './ingest';
import { param, P_OOO_MS, P_TICK_MS } from './params';
import { floorDiv } from './stats';

const MAGIC: u32 = 0x4b4c4756; // 'VGLK'

/** Sets up an empty kernel; returns 0 on success, 1 when memory is exhausted, 2 when already initialized. */
export function init(maxKeys: i32, maxCells: i32, chunkBytes: i32, groupLo: i32, groupHi: i32, keyGroups: i32): i32 {
  if (hdrI32(H_INITIALIZED) == 1) return 2;
  store<u32>(HDR + H_MAGIC, MAGIC);
  setHdrI32(H_VERSION, STATE_FORMAT_VERSION);
  setHdrI32(H_GROUP_LO, groupLo);
  setHdrI32(H_GROUP_HI, groupHi);
  setHdrI32(H_KEY_GROUPS, keyGroups);
  if (!initIo(chunkBytes)) return 1;
  // Held records start small and grow with what partitions ahead deliver (bounded: then counted early).
  if (!initHeld(chunkBytes, chunkBytes < 0x1000000 ? chunkBytes * 64 : 0x40000000)) return 1;
  if (!initStore(maxKeys, maxCells)) return 1;
  const dirty = heapAlloc(<usize>maxKeys * 4 + 16);
  const open = heapAlloc(<usize>maxCells * 4 + 16);
  if (dirty == 0 || open == 0) return 1;
  setHdrPtr(H_DIRTY_PTR, dirty);
  setHdrPtr(H_OPEN_PTR, open);
  setHdrI64(H_NEXT_TICK, i64.MIN_VALUE);
  setHdrI64(H_MAX_TS, i64.MIN_VALUE);
  setHdrI64(H_NEXT_SWEEP, 0);
  setHdrI32(H_INITIALIZED, 1);
  return 0;
}

/**
 * Evaluates everything up to the latest event seen, as if no more events could arrive (end of a
 * replay): through the first tick after it, the one that sees the last records (a tick sees the
 * records before it).
 */
export function finish(): void {
  const mx = hdrI64(H_MAX_TS);
  if (mx == i64.MIN_VALUE) return;
  const tick = <i64>param(P_TICK_MS);
  advanceTo((floorDiv(mx, tick) + 1) * tick + <i64>param(P_OOO_MS));
}

export function stateVersion(): i32 { return hdrI32(H_VERSION); }
/** The state format version this build reads and writes. */
export function supportedStateVersion(): i32 { return STATE_FORMAT_VERSION; }
export function stateMagic(): u32 { return load<u32>(HDR + H_MAGIC); }
export function keyCount(): i32 { return hdrI32(H_KEY_COUNT); }
export function cellCount(): i32 { return hdrI32(H_CELL_COUNT); }
export function openCount(): i32 { return hdrI32(H_OPEN_LEN); }
export function maxTs(): i64 { return hdrI64(H_MAX_TS); }
export function nextTick(): i64 { return hdrI64(H_NEXT_TICK); }
export function counter(off: i32): f64 { return hdrF64(<usize>off); }
export function heapTop(): usize { return hdrPtr(H_HEAP_TOP); }
export function headerPtr(): usize { return HDR; }
