// Decoder side: turns a chunk of NDJSON bytes into packed records, one run per
// owner worker, so the owners never see JSON and the main thread only moves bytes.
import { decodeLine, decPropPtr, decPropLen, decTitlePtr, decTitleLen, decErrPtr, decErrLen, decTs, decViewPtr, decViewLen } from './decode';
import { DECODE_OK, DECODE_FALLBACK, DECODE_EMPTY } from './decode-status';
import { hashBytes } from './hash';
import { heapAlloc } from './state';
import {
  R_PROP_HASH, R_TITLE_HASH, R_ERR_HASH, R_TS, R_INDEX, R_PROP_LEN, R_TITLE_LEN, R_ERR_LEN, R_VIEW_HASH, R_HEADER,
  recordSize,
} from './ingest';

export const SEED_PROPERTY: u64 = 0x5049;
export const SEED_TITLE: u64 = 0x5449;
export const SEED_ERROR: u64 = 0x4552;
export const SEED_VIEW: u64 = 0x5649;

export const MAX_OWNERS: i32 = 64;
export const MAX_SAMPLES: i32 = 8;
export const REASONS: i32 = 16;

// I/O regions are transient (not state): their addresses sit in a static table
// that JS reads through the exported getters.
const IO: usize = memory.data(64, 16);
const IO_IN: usize = 0;       // input bytes
const IO_IN_CAP: usize = 4;
const IO_STAGE: usize = 8;    // records in input order
const IO_OUT: usize = 12;     // records grouped by owner
const IO_FIX: usize = 16;     // JS-written decisions for fallback lines
const IO_FIX_CAP: usize = 20;
const IO_TIMES: usize = 24;   // f64 event time of each valid record, in chunk order
const IO_PROPS: usize = 28;   // u32 low half of each valid record's property hash, in chunk order
const OWNER_OFF: usize = memory.data(MAX_OWNERS * 8, 8);  // u32 offset, u32 length per owner
const COUNTS: usize = memory.data(REASONS * 4, 8);         // i32 per status, this chunk
const SAMPLES: usize = memory.data(MAX_SAMPLES * 12, 8);   // (start u32, end u32, status i32)
const CHUNK: usize = memory.data(64, 8);
const C_MAX_TS: usize = 0;    // i64
const C_RECORDS: usize = 8;   // i32
const C_FALLBACKS: usize = 12;// i32 fallback lines without a fixup (0 when the chunk is complete)
const C_SAMPLES: usize = 16;  // i32
const C_FALLBACK_LIST: usize = 24; // usize pointer to (start u32, end u32) pairs
const C_FALLBACK_CAP: usize = 28;

/** Allocates the I/O regions for chunks of up to inCap bytes; false when memory is exhausted. */
export function initIo(inCap: i32): bool {
  const inBuf = heapAlloc(<usize>inCap + 16);
  // A packed record is at least 64 bytes; the shortest valid line with one-letter
  // field names (`{"p":1,"t":1}` and its newline) is 14, so output <= 5x input.
  const outCap = <usize>inCap * 5 + 4096;
  const stage = heapAlloc(outCap);
  const out = heapAlloc(outCap);
  const fixCap = <usize>inCap * 3 + 4096;
  const fix = heapAlloc(fixCap);
  const fallbacks = heapAlloc(<usize>inCap / 2 + 64);
  // At most one record per 14 input bytes (the shortest valid line, see above).
  const maxRecords = <usize>inCap / 14 + 16;
  const times = heapAlloc(maxRecords << 3);
  const props = heapAlloc(maxRecords << 2);
  if (inBuf == 0 || stage == 0 || out == 0 || fix == 0 || fallbacks == 0 || times == 0 || props == 0) return false;
  store<usize>(IO + IO_TIMES, times);
  store<usize>(IO + IO_PROPS, props);
  store<usize>(IO + IO_IN, inBuf);
  store<i32>(IO + IO_IN_CAP, inCap);
  store<usize>(IO + IO_STAGE, stage);
  store<usize>(IO + IO_OUT, out);
  store<usize>(IO + IO_FIX, fix);
  store<i32>(IO + IO_FIX_CAP, <i32>fixCap);
  store<usize>(CHUNK + C_FALLBACK_LIST, fallbacks);
  store<i32>(CHUNK + C_FALLBACK_CAP, <i32>((<usize>inCap / 2 + 64) >> 3));
  return true;
}

export function inputPtr(): usize { return load<usize>(IO + IO_IN); }
export function inputCap(): i32 { return load<i32>(IO + IO_IN_CAP); }
export function fixupPtr(): usize { return load<usize>(IO + IO_FIX); }
export function fixupCap(): i32 { return load<i32>(IO + IO_FIX_CAP); }
export function ownerOffset(o: i32): u32 { return load<u32>(OWNER_OFF + (<usize>o << 3)); }
export function ownerLength(o: i32): u32 { return load<u32>(OWNER_OFF + (<usize>o << 3) + 4); }
export function outputPtr(): usize { return load<usize>(IO + IO_OUT); }
/** Free between calls like the output region: ingest lands an owner's plan there (see ingest.ts). */
export function stagePtr(): usize { return load<usize>(IO + IO_STAGE); }
export function timesPtr(): usize { return load<usize>(IO + IO_TIMES); }
export function propsPtr(): usize { return load<usize>(IO + IO_PROPS); }
export function chunkMaxTs(): i64 { return load<i64>(CHUNK + C_MAX_TS); }
export function chunkRecords(): i32 { return load<i32>(CHUNK + C_RECORDS); }
export function chunkFallbacks(): i32 { return load<i32>(CHUNK + C_FALLBACKS); }
export function fallbackStart(i: i32): u32 { return load<u32>(load<usize>(CHUNK + C_FALLBACK_LIST) + (<usize>i << 3)); }
export function fallbackEnd(i: i32): u32 { return load<u32>(load<usize>(CHUNK + C_FALLBACK_LIST) + (<usize>i << 3) + 4); }
export function statusCount(s: i32): i32 { return load<i32>(COUNTS + (<usize>s << 2)); }
export function sampleCount(): i32 { return load<i32>(CHUNK + C_SAMPLES); }
export function sampleStart(i: i32): u32 { return load<u32>(SAMPLES + <usize>i * 12); }
export function sampleEnd(i: i32): u32 { return load<u32>(SAMPLES + <usize>i * 12 + 4); }
export function sampleStatus(i: i32): i32 { return load<i32>(SAMPLES + <usize>i * 12 + 8); }

/** Key group of a property hash; stable across versions (Kafka routing and checkpoints depend on it). */
export function groupOf(propHash: u64, groups: i32): i32 {
  return <i32>((propHash >> 32) % <u64>groups);
}

/** Owner of a key group when `owners` workers own contiguous ranges of `groups` groups. */
export function ownerOfGroup(group: i32, groups: i32, owners: i32): i32 {
  return <i32>((<i64>group * <i64>owners) / <i64>groups);
}

function writeRecord(
  dst: usize, propPtr: usize, propLen: i32, titlePtr: usize, titleLen: i32,
  errPtr: usize, errLen: i32, ts: i64, index: i32, viewPtr: usize, viewLen: i32,
): usize {
  const propHash = hashBytes(propPtr, propLen, SEED_PROPERTY);
  store<u64>(dst + R_PROP_HASH, propHash);
  store<u64>(dst + R_VIEW_HASH, viewLen > 0 ? hashBytes(viewPtr, viewLen, SEED_VIEW) : 0);
  // The main thread plans event time from these, in chunk order (src/engine/event-clock.ts).
  store<f64>(load<usize>(IO + IO_TIMES) + (<usize>index << 3), <f64>ts);
  store<u32>(load<usize>(IO + IO_PROPS) + (<usize>index << 2), <u32>propHash);
  store<u64>(dst + R_TITLE_HASH, titleLen > 0 ? hashBytes(titlePtr, titleLen, SEED_TITLE) : 0);
  store<u64>(dst + R_ERR_HASH, errLen > 0 ? hashBytes(errPtr, errLen, SEED_ERROR) : 0);
  store<i64>(dst + R_TS, ts);
  store<u32>(dst + R_INDEX, <u32>index);
  store<u32>(dst + R_INDEX + 4, 0);
  const tl = titleLen > 0 ? titleLen : 0;
  const el = errLen > 0 ? errLen : 0;
  store<u16>(dst + R_PROP_LEN, <u16>propLen);
  store<u16>(dst + R_TITLE_LEN, <u16>tl);
  store<u16>(dst + R_ERR_LEN, <u16>el);
  store<u16>(dst + 46, 0);
  let p = dst + R_HEADER;
  memory.copy(p, propPtr, propLen); p += <usize>propLen;
  if (tl > 0) { memory.copy(p, titlePtr, tl); p += <usize>tl; }
  if (el > 0) { memory.copy(p, errPtr, el); p += <usize>el; }
  const total = <usize>propLen + <usize>tl + <usize>el;
  const padded = (total + 7) & ~7;
  memory.fill(dst + R_HEADER + total, 0, padded - total);
  return R_HEADER + padded;
}

/** Position of the next '\n' in [p, end), or end: eight bytes at a time (SWAR), since this runs over every byte. */
@inline function nextNewline(p: usize, end: usize): usize {
  while (p + 8 <= end) {
    const w = load<u64>(p) ^ 0x0a0a0a0a0a0a0a0a;
    const t = (w - 0x0101010101010101) & ~w & 0x8080808080808080;
    if (t != 0) return p + <usize>(ctz<u64>(t) >> 3);
    p += 8;
  }
  while (p < end && load<u8>(p) != 10) p++;
  return p;
}

@inline function countStatus(s: i32): void {
  const a = COUNTS + (<usize>s << 2);
  store<i32>(a, load<i32>(a) + 1);
}

function sample(start: usize, end: usize, status: i32, base: usize): void {
  const n = load<i32>(CHUNK + C_SAMPLES);
  if (n >= MAX_SAMPLES) return;
  const s = SAMPLES + <usize>n * 12;
  store<u32>(s, <u32>(start - base));
  store<u32>(s + 4, <u32>(end - base));
  store<i32>(s + 8, status);
  store<i32>(CHUNK + C_SAMPLES, n + 1);
}

/**
 * Decodes the `len` input bytes (whole lines; a last line without '\n' counts) into
 * packed records grouped by owner. With `fixups` > 0, fallback lines take their
 * decisions, in order, from the fixup region; with 0, they are listed and the
 * chunk is incomplete (chunkFallbacks() > 0): JS decides them and calls again.
 */
export function decodeChunk(len: i32, owners: i32, groups: i32, fixups: i32): i32 {
  const base = load<usize>(IO + IO_IN);
  const stage = load<usize>(IO + IO_STAGE);
  const end = base + <usize>len;
  memory.fill(COUNTS, 0, REASONS * 4);
  store<i32>(CHUNK + C_SAMPLES, 0);
  const fbList = load<usize>(CHUNK + C_FALLBACK_LIST);
  const fbCap = load<i32>(CHUNK + C_FALLBACK_CAP);
  let fallbacks: i32 = 0;
  let fix = load<usize>(IO + IO_FIX);
  let fixLeft = fixups;
  let maxTs: i64 = i64.MIN_VALUE;
  let records: i32 = 0;
  let w = stage;
  let p = base;
  while (p < end) {
    const e = nextNewline(p, end);
    let status = decodeLine(p, e);
    if (status == DECODE_OK) {
      if (decTs > maxTs) maxTs = decTs;
      w += writeRecord(w, decPropPtr, decPropLen, decTitlePtr, decTitleLen, decErrPtr, decErrLen, decTs, records, decViewPtr, decViewLen);
      records++;
    } else if (status == DECODE_FALLBACK) {
      if (fixLeft > 0) {
        status = load<i32>(fix);
        const pl = load<i32>(fix + 4);
        const tl = load<i32>(fix + 8);
        const el = load<i32>(fix + 12);
        const ts = load<i64>(fix + 16);
        const vl = load<i32>(fix + 24);
        const bytes = fix + 32;
        const tp = bytes + <usize>pl;
        const ep = tp + (tl > 0 ? <usize>tl : 0);
        const vp = ep + (el > 0 ? <usize>el : 0);
        if (status == DECODE_OK) {
          if (ts > maxTs) maxTs = ts;
          w += writeRecord(w, bytes, pl, tp, tl, ep, el, ts, records, vp, vl);
          records++;
        }
        const blen = <usize>pl + (tl > 0 ? <usize>tl : 0) + (el > 0 ? <usize>el : 0) + (vl > 0 ? <usize>vl : 0);
        fix += 32 + ((blen + 7) & ~7);
        fixLeft--;
      } else if (fallbacks < fbCap) {
        store<u32>(fbList + (<usize>fallbacks << 3), <u32>(p - base));
        store<u32>(fbList + (<usize>fallbacks << 3) + 4, <u32>(e - base));
        fallbacks++;
      }
    }
    if (status != DECODE_OK && status != DECODE_FALLBACK) {
      if (status != DECODE_EMPTY) sample(p, e, status, base);
    }
    if (status != DECODE_FALLBACK) countStatus(status);
    p = e + 1;
  }
  store<i32>(CHUNK + C_FALLBACKS, fallbacks);
  store<i64>(CHUNK + C_MAX_TS, maxTs);
  store<i32>(CHUNK + C_RECORDS, records);
  if (fallbacks > 0) return records;

  // Group the records by owner: count bytes, then copy each run into place.
  const out = load<usize>(IO + IO_OUT);
  const stageEnd = w;
  if (owners <= 1) {
    memory.copy(out, stage, stageEnd - stage);
    store<u32>(OWNER_OFF, 0);
    store<u32>(OWNER_OFF + 4, <u32>(stageEnd - stage));
    return records;
  }
  memory.fill(OWNER_OFF, 0, <usize>owners << 3);
  let r = stage;
  while (r < stageEnd) {
    const o = ownerOfGroup(groupOf(load<u64>(r + R_PROP_HASH), groups), groups, owners);
    const a = OWNER_OFF + (<usize>o << 3) + 4;
    store<u32>(a, load<u32>(a) + <u32>recordSize(r));
    r += recordSize(r);
  }
  let off: u32 = 0;
  for (let o = 0; o < owners; o++) {
    store<u32>(OWNER_OFF + (<usize>o << 3), off);
    off += load<u32>(OWNER_OFF + (<usize>o << 3) + 4);
    store<u32>(OWNER_OFF + (<usize>o << 3) + 4, 0); // reused as a cursor below
  }
  r = stage;
  while (r < stageEnd) {
    const size = recordSize(r);
    const o = ownerOfGroup(groupOf(load<u64>(r + R_PROP_HASH), groups), groups, owners);
    const slot = OWNER_OFF + (<usize>o << 3);
    const cur = load<u32>(slot + 4);
    memory.copy(out + <usize>load<u32>(slot) + <usize>cur, r, size);
    store<u32>(slot + 4, cur + <u32>size);
    r += size;
  }
  return records;
}
