// Test and benchmark entry for decode.ts: JS writes lines at inputBase() and
// reads results through these wrappers. The kernel imports decode.ts directly.

import {
  decodeLine, setFieldName, setMaxLineBytes,
  decPropPtr, decPropLen, decTitlePtr, decTitleLen, decErrPtr, decErrLen, decTs, decViewPtr, decViewLen,
} from "./decode";
import { DECODE_OK } from "./decode-status";

export { decodeLine, setFieldName, setMaxLineBytes };

/** First free byte after the static data, 16-aligned: JS may use memory from here on (growing it as needed). */
export function inputBase(): usize {
  return (__heap_base + 15) & ~<usize>15;
}

/** Pointer to the property id of the last DECODE_OK line. */
export function propPtr(): usize { return decPropPtr; }
/** Byte length of the property id of the last DECODE_OK line. */
export function propLen(): i32 { return decPropLen; }
/** Pointer to the title of the last DECODE_OK line. */
export function titlePtr(): usize { return decTitlePtr; }
/** Title byte length of the last DECODE_OK line, -1 when absent. */
export function titleLen(): i32 { return decTitleLen; }
/** Pointer to the error type of the last DECODE_OK line. */
export function errPtr(): usize { return decErrPtr; }
/** Error type byte length of the last DECODE_OK line, -1 when absent. */
export function errLen(): i32 { return decErrLen; }
/** Pointer to the view id of the last DECODE_OK line. */
export function viewPtr(): usize { return decViewPtr; }
/** View id byte length of the last DECODE_OK line, -1 when there is none to suppress duplicates by. */
export function viewLen(): i32 { return decViewLen; }
/** ts of the last DECODE_OK line as f64 (exact: ts < 2^53). */
export function tsValue(): f64 { return <f64>decTs; }

/**
 * Decodes every '\n'-separated line of [ptr, ptr+len) as the kernel would and returns how many
 * were DECODE_OK; the per-status counts are written as 16 i32 at `counts`.
 */
export function decodeBatch(ptr: usize, len: usize, counts: usize): i32 {
  let end = ptr + len;
  let p = ptr;
  let ok = 0;
  memory.fill(counts, 0, 64);
  while (p < end) {
    let q = p;
    // Newline search 8 bytes at a time (lowest zero byte of x ^ '\n'...).
    while (q + 8 <= end) {
      let x = load<u64>(q) ^ 0x0A0A0A0A0A0A0A0A;
      let m = (x - 0x0101010101010101) & ~x & 0x8080808080808080;
      if (m != 0) {
        q += <usize>(ctz(m) >> 3);
        break;
      }
      q += 8;
    }
    while (q < end && load<u8>(q) != 0x0A) q++;
    let s = decodeLine(p, q);
    let a = counts + (<usize>(s & 15) << 2);
    store<i32>(a, load<i32>(a) + 1);
    if (s == DECODE_OK) ok++;
    p = q + 1;
  }
  return ok;
}
