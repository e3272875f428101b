// Every piece of mutable kernel state lives at a fixed place in linear memory, so
// that a snapshot is a plain copy of memory and a restore is a copy back.
// WASM globals are used only for transient per-call values.

export const STATE_FORMAT_VERSION: i32 = 4; // 2: per-property parameter profiles; 3: held records; 4: property cell extensions, duplicate filter
export const SLOTS: i32 = 32; // ring length of per-key / per-cell count slots

// The header region is reserved in the data segment; its address is a compile-time constant.
export const HDR: usize = memory.data(4096, 16);

// Header field offsets (bytes).
export const H_MAGIC: usize = 0;          // u32 'VGLK'
export const H_VERSION: usize = 4;        // i32 state format version
export const H_HEAP_TOP: usize = 8;       // usize bump pointer of the manual heap
export const H_INITIALIZED: usize = 12;   // i32 1 after init()
export const H_MAX_KEYS: usize = 16;      // i32
export const H_MAX_CELLS: usize = 20;     // i32
export const H_KEY_COUNT: usize = 24;     // i32 live keys
export const H_CELL_COUNT: usize = 28;    // i32 live cells
export const H_KEY_HWM: usize = 32;       // i32 highest key index ever used + 1
export const H_CELL_HWM: usize = 36;      // i32
export const H_KEY_FREE: usize = 40;      // i32 head of the free list (-1 none)
export const H_CELL_FREE: usize = 44;     // i32
export const H_TABLE_PTR: usize = 48;     // usize hash table (store.ts: u32 slots, key index + 1 and hash bits)
export const H_TABLE_MASK: usize = 52;    // i32 capacity - 1
export const H_KEY_BLOCKS: usize = 56;    // usize table of key block pointers
export const H_CELL_BLOCKS: usize = 60;   // usize table of cell block pointers
export const H_DIRTY_PTR: usize = 64;     // usize i32 array of dirty key indices
export const H_DIRTY_LEN: usize = 68;     // i32
export const H_OPEN_PTR: usize = 72;      // usize i32 array of open cell indices
export const H_OPEN_LEN: usize = 76;      // i32
export const H_NEXT_TICK: usize = 80;     // i64 next evaluation boundary (event ms); 0 = not started
export const H_MAX_TS: usize = 88;        // i64 highest event time seen (global, from the records)
export const H_NEXT_SWEEP: usize = 96;    // i64
export const H_EVENTS: usize = 104;       // f64 counters (f64 so they never wrap)
export const H_LATE: usize = 112;         // f64 late events
export const H_LATE_DROPPED: usize = 120; // f64
export const H_KEYS_DROPPED: usize = 128; // f64 events whose key could not be tracked (cap)
export const H_CELLS_DROPPED: usize = 136;// f64
export const H_EVICTED: usize = 144;      // f64 keys evicted as idle
export const H_GROUP_LO: usize = 152;     // i32 first owned key group (informational)
export const H_GROUP_HI: usize = 156;     // i32 last owned key group + 1
export const H_PROFILE_HWM: usize = 160;  // i32 highest bound parameter profile (params.ts)
export const H_FUTURE_DROPPED: usize = 168; // f64 events dropped as from the future (the main thread's clock decides)
export const H_HOLD_ARENA: usize = 176;   // usize held records (held.ts): the current arena
export const H_HOLD_OTHER: usize = 180;   // usize the other arena (compaction target)
export const H_HOLD_CAP: usize = 184;     // i32 bytes of each arena
export const H_HOLD_USED: usize = 188;    // i32 bytes used in the current arena
export const H_HOLD_HEAP: usize = 192;    // usize min-heap of (event time, offset)
export const H_HOLD_LEN: usize = 196;     // i32 held records
export const H_HOLD_HEAP_CAP: usize = 200;// i32
export const H_HOLD_MAX: usize = 204;     // i32 bytes an arena may grow to
export const H_HELD: usize = 208;         // f64 records ever held (counter)
export const H_HELD_OVERFLOW: usize = 216;// f64 records counted early because the held set was full
export const H_SLOT_BASE: usize = 224;    // i64[2] by scope: the slot key records count their slots from (store.ts reachSlot)
export const H_SLOT_BASE_SET: usize = 240;// u32 bit per scope: its base is set
export const H_PARAMS: usize = 256;       // params block (see params.ts), up to 1 KiB
export const H_PX_BLOCKS: usize = 1280;   // usize table of property-cell extension block pointers (store.ts)
export const H_PX_HWM: usize = 1284;      // i32 highest extension index ever used + 1
export const H_PX_FREE: usize = 1288;     // i32 head of the extension free list (-1 none)
export const H_KEY_GROUPS: usize = 1292;  // i32 key groups of the deployment (a dedup entry records its group)
export const H_DUPLICATES: usize = 1296;  // f64 views dropped as duplicates (dedup.ts)
export const H_DEDUP_FULL: usize = 1304;  // f64 views the duplicate filter could not remember (full)
export const H_DEDUP_SWEPT: usize = 1312; // i64 positions of times before this are cleared (dedup.ts)
export const H_DEDUP_PTR: usize = 1320;   // usize the ring of the duplicate filter (0: not allocated)
export const H_DEDUP_MASK: usize = 1324;  // i32 positions - 1
export const H_DEDUP_SHIFT: usize = 1328; // i32 event-time ms per position = 2^shift
export const H_DEDUP_HORIZON: usize = 1336;// i64 the horizon the ring was laid out for
// An export in progress (key-groups.ts exportBegin): the keys still to write, each written by a slice or
// before its first change, whichever comes first (copy on write), so ingestion goes on meanwhile.
export const H_PENDING_PTR: usize = 1344; // usize bits by key index of the keys still to export (allocated at the first exportBegin)
export const H_PENDING_LEN: usize = 1348; // i32 bits set
export const H_EXPORTING: usize = 1352;   // i32 1 while an export is in progress
export const H_EXPORT_LO: usize = 1356;   // i32 its key groups [lo, hi) of `groups`
export const H_EXPORT_HI: usize = 1360;   // i32
export const H_EXPORT_GROUPS: usize = 1364; // i32
export const H_EXPORT_CURSOR: usize = 1368; // i32 the key index the next slice scans from
export const H_EXPORT_KEYS: usize = 1372; // i32 keys written
export const H_EXPORT_COW: usize = 1376;  // i32 of them, written before a change (not by a slice)
export const H_EXPORT_FAILED: usize = 1380; // i32 1 when the export region could not grow (the export is lost)
export const H_EXPORT_LIMIT: usize = 1384; // usize bytes the export region may take
export const H_TABLE_INDEX_MASK: usize = 1388; // u32 the key-index bits of a hash table slot (store.ts); the bits above them are the key hash's
// 1392..1400 unused
export const H_NAME_SLAB: usize = 1400;   // usize next free byte of the current name slab (names.ts)
export const H_NAME_SLAB_END: usize = 1404; // usize its end
export const H_SPARE: usize = 1408;       // usize list of released regions (an old hash table) names are cut from
// What changed since the last export (store.ts markChanged): an incremental checkpoint exports only these.
export const H_CHANGED_PTR: usize = 1412; // usize bits by key index (a bit per key of the cap): the keys changed
export const H_CHANGED_LEN: usize = 1416; // i32 bits set
export const H_REMOVED_PTR: usize = 1420; // usize 16-byte entries (u64 hash, u32 key group, u32 0) of keys deleted
export const H_REMOVED_LEN: usize = 1424; // i32
export const H_REMOVED_CAP: usize = 1428; // i32 entries the removed list holds
export const H_CHANGES_LOST: usize = 1432;// i32 1 when the removed list overflowed: the next export must be full
export const H_HOLD_SEQ: usize = 1440;    // i64 arrival number of the next held record (held.ts: ties in event time go in arrival order)
export const H_RING_BYTES: usize = 1448;  // f64 bytes of count rings allocated (rings.ts): how narrow the kernel keeps them
export const H_NAME_FREE: usize = 1456;   // u32[NAME_CLASSES] (27) free lists of name blocks by size class (names.ts), to 1564

const KEY_BLOCK_SHIFT: i32 = 12; // 4096 records a block
export const BLOCK_SHIFT = KEY_BLOCK_SHIFT;
export const BLOCK_MASK: i32 = (1 << KEY_BLOCK_SHIFT) - 1;

@inline export function hdrI32(off: usize): i32 { return load<i32>(HDR + off); }
@inline export function setHdrI32(off: usize, v: i32): void { store<i32>(HDR + off, v); }
@inline export function hdrI64(off: usize): i64 { return load<i64>(HDR + off); }
@inline export function setHdrI64(off: usize, v: i64): void { store<i64>(HDR + off, v); }
@inline export function hdrF64(off: usize): f64 { return load<f64>(HDR + off); }
@inline export function setHdrF64(off: usize, v: f64): void { store<f64>(HDR + off, v); }
@inline export function hdrPtr(off: usize): usize { return load<usize>(HDR + off); }
@inline export function setHdrPtr(off: usize, v: usize): void { store<usize>(HDR + off, v); }
@inline export function bumpF64(off: usize, by: f64): void { store<f64>(HDR + off, load<f64>(HDR + off) + by); }

/**
 * Allocates zeroed bytes from the manual heap (never freed); grows memory as needed. Returns 0 when
 * memory is exhausted. Memory above the heap top is never written (nothing but this allocator hands
 * it out), so it is still zero as WASM gave it: no fill here, and a region sized for a cap (the dirty
 * list, the open list) costs resident memory only for the pages that get used. Memory grows by at
 * least an eighth of its size (a grow is a call into the engine, far dearer than the bytes).
 */
export function heapAlloc(bytes: usize): usize {
  let top = hdrPtr(H_HEAP_TOP);
  if (top == 0) top = (__heap_base + 15) & ~15;
  const ptr = (top + 15) & ~15;
  const end = ptr + bytes;
  if (end < ptr) return 0;
  const pages = <i32>memory.size();
  const have = (<usize>pages) << 16;
  if (end > have) {
    const need = <i32>((end - have + 0xffff) >> 16);
    let more = pages >> 3;
    if (more < need) more = need;
    if (memory.grow(more) < 0 && (more == need || memory.grow(need) < 0)) return 0;
  }
  setHdrPtr(H_HEAP_TOP, end);
  return ptr;
}
