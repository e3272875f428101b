// Hot-path NDJSON field extractor (ARCHITECTURE.md, "Decoding scales with workers").
//
// One pass over the line validates it as JSON (RFC 8259 as JSON.parse reads it)
// and UTF-8, records where the five configured top-level fields' values are,
// then interprets those values. It never allocates: the only memory it writes is
// the static scratch below, so the kernel's state stays "its linear memory".
// src/ingest/reference-decode.ts defines the semantics; test/decode.test.ts
// checks both agree.

import {
  DECODE_OK, DECODE_FALLBACK, DECODE_EMPTY,
  REJECT_NOT_JSON, REJECT_NOT_OBJECT, REJECT_MISSING_PROPERTY, REJECT_MISSING_TS,
  REJECT_BAD_PROPERTY, REJECT_BAD_TITLE, REJECT_BAD_ERROR_TYPE, REJECT_BAD_TS,
  REJECT_INVALID_UTF8, REJECT_TOO_LARGE, REJECT_FIELD_TOO_LONG, REJECT_BAD_VIEW_ID,
} from "./decode-status";
import {
  F_STOP, F_WS, F_DIGIT, F_HEX, F_ESC, CLASS, NAMES, CONFIG, NAME_CAP, FIELD_COUNT,
  SAME_NAME, PREDICTED, PREDICTED_KEYS,
} from "./decode-tables";
import { parseIsoMs, TS_MAX } from "./decode-iso-time";

// Field indexes, as setFieldName takes them.
const FLD_VIEW: i32 = 0;
const FLD_PROP: i32 = 1;
const FLD_TITLE: i32 = 2;
const FLD_ERR: i32 = 3;
const FLD_TS: i32 = 4;

const PROP_CAP: i32 = 256;
const TITLE_CAP: i32 = 1024;
const ERR_CAP: i32 = 128;
// A longer view id is accepted but not used to suppress duplicates.
const VIEW_CAP: i32 = 256;
// Longest ISO form is 35 bytes; anything longer can only be a digit string.
const TS_CAP: i32 = 64;

// Unescaped outputs. Separate regions so all three pointers stay valid together.
const PROP_BUF: usize = memory.data(PROP_CAP, 16);
const TITLE_BUF: usize = memory.data(TITLE_CAP, 16);
const ERR_BUF: usize = memory.data(ERR_CAP, 16);
const VIEW_BUF: usize = memory.data(VIEW_CAP, 16);
const KEY_BUF: usize = memory.data(NAME_CAP, 16);
const TS_BUF: usize = memory.data(TS_CAP, 16);

// One bit per open container (1 = object). 65600 levels: a line of the default
// 64 KiB cannot open more containers than it has bytes, so with the default
// limit the depth fallback is unreachable.
const STACK_BYTES: i32 = 8200;
const STACK_BITS: i32 = STACK_BYTES * 8;
const STACK: usize = memory.data(STACK_BYTES, 16);

// Where each field's last top-level value sits: 4 x u32 per field
// (start, end, type, hasEscape). Strings are recorded without their quotes.
const SLOTS: usize = memory.data(FIELD_COUNT * 16, 16);

const T_ABSENT: u32 = 0;
const T_NULL: u32 = 1;
const T_STRING: u32 = 2;
const T_NUMBER: u32 = 3; // an integer without fraction or exponent
const T_NUMBER_X: u32 = 4; // a number with fraction and/or exponent
const T_BOOL: u32 = 5;
const T_OBJECT: u32 = 6;
const T_ARRAY: u32 = 7;

// Error sentinel for scanner positions; a real position never reaches it in wasm32
// because the line's end byte would have to be the last byte of a 4 GiB memory.
const ERR: usize = <usize>-1;

/** Property id of the last DECODE_OK line: pointer into the line (a string without escapes) or into static scratch, valid until the next decodeLine. */
export let decPropPtr: usize = 0;
/** Byte length of the property id (string UTF-8, or canonical integer text). */
export let decPropLen: i32 = 0;
/** Video title (unescaped UTF-8) of the last DECODE_OK line: in the line, or in scratch when it had escapes. */
export let decTitlePtr: usize = 0;
/** Title byte length, -1 when absent, null or "". */
export let decTitleLen: i32 = -1;
/** Error type (unescaped UTF-8) of the last DECODE_OK line. */
export let decErrPtr: usize = 0;
/** Error type byte length, -1 when absent, null or "" (the view played fine). */
export let decErrLen: i32 = -1;
/** Event time of the last DECODE_OK line, epoch ms. */
export let decTs: i64 = 0;
/** View id (unescaped UTF-8) of the last DECODE_OK line: the identity duplicate suppression uses. */
export let decViewPtr: usize = 0;
/** View id byte length, -1 when absent, null, "", a number or longer than VIEW_CAP (no duplicate suppression). */
export let decViewLen: i32 = -1;

// Why the scanner returned ERR (REJECT_NOT_JSON, REJECT_INVALID_UTF8 or DECODE_FALLBACK).
let gErr: i32 = 0;
// Whether the string just scanned contained a backslash.
let gEsc: bool = false;
// Whether the last unescape produced U+FFFD for a lone surrogate.
let gLone: bool = false;
// Whether the number just scanned had a fraction or exponent.
let gNumX: bool = false;

@inline function cls(c: u32): u8 {
  return load<u8>(CLASS + <usize>c);
}

/** Sets the top-level key name of a field (0 view_id, 1 property_id, 2 video_title, 3 error_type, 4 ts) from UTF-8 bytes at [ptr, ptr+len); traps when field or len (max 64) is out of range. */
export function setFieldName(field: i32, ptr: usize, len: i32): void {
  // A bad configuration must fail loudly at startup, not mis-decode every line.
  if (<u32>field >= <u32>FIELD_COUNT || <u32>len > <u32>NAME_CAP) unreachable();
  memory.copy(NAMES + <usize>(field * NAME_CAP), ptr, <usize>len);
  store<i32>(CONFIG + <usize>(4 + field * 4), len);
  for (let f = 0; f < FIELD_COUNT; f++) {
    const n = load<i32>(CONFIG + <usize>(4 + f * 4));
    const name = NAMES + <usize>(f * NAME_CAP);
    let mask = 0;
    let plain = true;
    for (let i = 0; i < n; i++) {
      const c = load<u8>(name + <usize>i);
      if (c == 0x22 || c == 0x5C || c < 0x20) plain = false;
    }
    for (let g = 0; g < FIELD_COUNT; g++) {
      if (load<i32>(CONFIG + <usize>(4 + g * 4)) == n && bytesEqual(name, NAMES + <usize>(g * NAME_CAP), <usize>n)) mask |= 1 << g;
    }
    store<i32>(SAME_NAME + <usize>(f << 2), plain ? mask : 0);
  }
  memory.fill(PREDICTED, 0, <usize>PREDICTED_KEYS << 2);
}

/** Sets the longest line, in bytes, that decodeLine accepts (REJECT_TOO_LARGE above it; default 65536); traps when n < 0. */
export function setMaxLineBytes(n: i32): void {
  if (n < 0) unreachable();
  store<i32>(CONFIG, n);
}

@inline function skipWs(p: usize, end: usize): usize {
  while (p < end && (cls(load<u8>(p)) & F_WS) != 0) p++;
  return p;
}

// Validates one UTF-8 sequence whose lead byte (>= 0x80) is at p, with the
// WHATWG decoder's rules (no overlongs, surrogates or > U+10FFFF).
function utf8Seq(p: usize, end: usize): usize {
  let c = <u32>load<u8>(p);
  if (c < 0xC2) return ERR;
  if (c < 0xE0) {
    if (p + 1 >= end || (load<u8>(p + 1) & 0xC0) != 0x80) return ERR;
    return p + 2;
  }
  if (c < 0xF0) {
    if (p + 2 >= end) return ERR;
    let b1 = <u32>load<u8>(p + 1);
    let lo: u32 = c == 0xE0 ? 0xA0 : 0x80;
    let hi: u32 = c == 0xED ? 0x9F : 0xBF;
    if (b1 < lo || b1 > hi || (load<u8>(p + 2) & 0xC0) != 0x80) return ERR;
    return p + 3;
  }
  if (c < 0xF5) {
    if (p + 3 >= end) return ERR;
    let b1 = <u32>load<u8>(p + 1);
    let lo: u32 = c == 0xF0 ? 0x90 : 0x80;
    let hi: u32 = c == 0xF4 ? 0x8F : 0xBF;
    if (b1 < lo || b1 > hi || (load<u8>(p + 2) & 0xC0) != 0x80 || (load<u8>(p + 3) & 0xC0) != 0x80) return ERR;
    return p + 4;
  }
  return ERR;
}

// Whole-line UTF-8 check, only run once a line already failed as JSON, because
// invalid UTF-8 anywhere must win over a syntax error earlier in the line.
function validUtf8(p: usize, end: usize): bool {
  while (p < end) {
    if (load<u8>(p) < 0x80) { p++; continue; }
    p = utf8Seq(p, end);
    if (p == ERR) return false;
  }
  return true;
}

@inline function failJson(): usize {
  gErr = REJECT_NOT_JSON;
  return ERR;
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

// High bit set in each byte of x that is '"', '\\', < 0x20 or >= 0x80 (the
// F_STOP bytes). Borrows can flag bytes above a real hit but never below it,
// so the lowest flagged byte is exactly the first stop byte.
@inline function stopMask(x: u64): u64 {
  let q = x ^ 0x2222222222222222;
  let b = x ^ 0x5C5C5C5C5C5C5C5C;
  return ((x - 0x2020202020202020) | x | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

// Scans string content starting after the opening quote; returns the position
// of the closing quote. Sets gEsc.
function scanString(p: usize, end: usize): usize {
  let esc = false;
  while (true) {
    // Plain ASCII runs are most of a line's bytes: test 8 at a time.
    while (p + 8 <= end) {
      let m = stopMask(load<u64>(p));
      if (m != 0) {
        p += <usize>(ctz(m) >> 3);
        break;
      }
      p += 8;
    }
    while (p < end && (cls(load<u8>(p)) & F_STOP) == 0) p++;
    if (p >= end) return failJson();
    let c = <u32>load<u8>(p);
    if (c == 0x22) {
      gEsc = esc;
      return p;
    }
    if (c == 0x5C) {
      esc = true;
      if (p + 1 >= end) return failJson();
      let e = <u32>load<u8>(p + 1);
      if (e == 0x75) {
        if (p + 6 > end) return failJson();
        if ((cls(load<u8>(p + 2)) & cls(load<u8>(p + 3)) & cls(load<u8>(p + 4)) & cls(load<u8>(p + 5)) & F_HEX) == 0) {
          return failJson();
        }
        p += 6;
      } else if ((cls(e) & F_ESC) != 0) {
        p += 2;
      } else {
        return failJson();
      }
    } else if (c < 0x20) {
      return failJson();
    } else {
      p = utf8Seq(p, end);
      if (p == ERR) {
        gErr = REJECT_INVALID_UTF8;
        return ERR;
      }
    }
  }
  return ERR;
}

// Scans a number starting at p ('-' or digit) per the JSON grammar; sets gNumX.
function scanNumber(p: usize, end: usize): usize {
  let x = false;
  if (load<u8>(p) == 0x2D) {
    p++;
    if (p >= end) return failJson();
  }
  let c = load<u8>(p);
  if (c == 0x30) {
    p++;
  } else if (c >= 0x31 && c <= 0x39) {
    p++;
    while (p < end && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
  } else {
    return failJson();
  }
  if (p < end && load<u8>(p) == 0x2E) {
    p++;
    if (p >= end || (cls(load<u8>(p)) & F_DIGIT) == 0) return failJson();
    p++;
    while (p < end && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
    x = true;
  }
  if (p < end && (load<u8>(p) | 0x20) == 0x65) {
    p++;
    if (p < end && (load<u8>(p) == 0x2B || load<u8>(p) == 0x2D)) p++;
    if (p >= end || (cls(load<u8>(p)) & F_DIGIT) == 0) return failJson();
    p++;
    while (p < end && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
    x = true;
  }
  gNumX = x;
  return p;
}

// "true" / "false" / "null" at p, or ERR.
@inline function scanLiteral(p: usize, end: usize, c: u32): usize {
  if (c == 0x74) { // true
    if (p + 4 <= end && load<u32>(p) == 0x65757274) return p + 4;
  } else if (c == 0x66) { // false
    if (p + 5 <= end && load<u32>(p + 1) == 0x65736C61) return p + 5;
  } else if (c == 0x6E) { // null
    if (p + 4 <= end && load<u32>(p) == 0x6C6C756E) return p + 4;
  }
  return failJson();
}

// Scans a string, number or literal at p (first byte c); ERR if c starts none.
@inline function scanScalar(p: usize, end: usize, c: u32): usize {
  if (c == 0x22) {
    p = scanString(p + 1, end);
    return p == ERR ? ERR : p + 1;
  }
  if (c == 0x2D || (cls(c) & F_DIGIT) != 0) return scanNumber(p, end);
  return scanLiteral(p, end, c);
}

@inline function setBit(i: i32, v: bool): void {
  let a = STACK + <usize>(i >>> 3);
  let m = <u8>(<u32>1 << <u32>(i & 7));
  store<u8>(a, v ? (load<u8>(a) | m) : (load<u8>(a) & ~m));
}

@inline function getBit(i: i32): bool {
  return ((<u32>load<u8>(STACK + <usize>(i >>> 3)) >> <u32>(i & 7)) & 1) != 0;
}

// Expects `"key" ws : ws` at p; returns the position of the value (< end).
@inline function scanKeyColon(p: usize, end: usize): usize {
  if (load<u8>(p) != 0x22) return failJson();
  p = scanString(p + 1, end);
  if (p == ERR) return ERR;
  p = skipWs(p + 1, end);
  if (p >= end || load<u8>(p) != 0x3A) return failJson();
  p = skipWs(p + 1, end);
  if (p >= end) return failJson();
  return p;
}

// Validates and skips the object or array opening at p, whose nesting level is
// `base` (0 for the top level). Iterative so malicious depth cannot blow the
// wasm stack; the bit stack says which closer each level expects.
function skipComposite(p: usize, end: usize, base: i32): usize {
  let depth = base;
  while (true) {
    // p < end, at the start of a value.
    let c = <u32>load<u8>(p);
    if (c == 0x7B || c == 0x5B) {
      if (depth >= STACK_BITS) {
        gErr = DECODE_FALLBACK;
        return ERR;
      }
      let isObj = c == 0x7B;
      setBit(depth, isObj);
      depth++;
      p = skipWs(p + 1, end);
      if (p >= end) return failJson();
      c = <u32>load<u8>(p);
      if (c == (isObj ? 0x7D : 0x5D)) {
        p++;
        depth--;
      } else {
        if (isObj) {
          p = scanKeyColon(p, end);
          if (p == ERR) return ERR;
        }
        continue;
      }
    } else {
      p = scanScalar(p, end, c);
      if (p == ERR) return ERR;
    }
    // After a value: close as many containers as the input closes.
    while (true) {
      if (depth == base) return p;
      p = skipWs(p, end);
      if (p >= end) return failJson();
      c = <u32>load<u8>(p);
      let isObj = getBit(depth - 1);
      if (c == 0x2C) {
        p = skipWs(p + 1, end);
        if (p >= end) return failJson();
        if (isObj) {
          p = scanKeyColon(p, end);
          if (p == ERR) return ERR;
        }
        break;
      }
      if (c != (isObj ? 0x7D : 0x5D)) return failJson();
      p++;
      depth--;
    }
  }
  return ERR;
}

@inline function hexVal(c: u32): u32 {
  // '0'-'9' -> 0-9; letters: (c | 0x20) - 'a' + 10. Input is already validated.
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

@inline function hex4(p: usize): u32 {
  return (hexVal(load<u8>(p)) << 12) | (hexVal(load<u8>(p + 1)) << 8)
    | (hexVal(load<u8>(p + 2)) << 4) | hexVal(load<u8>(p + 3));
}

// Writes the UTF-8 of a code point below 0x10000 that is not a surrogate.
@inline function put3(dst: usize, cp: u32): i32 {
  if (cp < 0x80) {
    store<u8>(dst, <u8>cp);
    return 1;
  }
  if (cp < 0x800) {
    store<u8>(dst, <u8>(0xC0 | (cp >> 6)));
    store<u8>(dst + 1, <u8>(0x80 | (cp & 0x3F)));
    return 2;
  }
  store<u8>(dst, <u8>(0xE0 | (cp >> 12)));
  store<u8>(dst + 1, <u8>(0x80 | ((cp >> 6) & 0x3F)));
  store<u8>(dst + 2, <u8>(0x80 | (cp & 0x3F)));
  return 3;
}

// Unescapes validated string content [s, e) into dst as the UTF-8 of the
// string JSON.parse would build, with lone surrogates as U+FFFD like
// TextEncoder. Returns the byte length, or -1 as soon as it would exceed cap.
// Sets gLone.
function unescape(s: usize, e: usize, dst: usize, cap: i32): i32 {
  gLone = false;
  let o: i32 = 0;
  while (true) {
    let q = s;
    while (q < e && load<u8>(q) != 0x5C) q++;
    let run = <i32>(q - s);
    if (o + run > cap) return -1;
    memory.copy(dst + <usize>o, s, <usize>run);
    o += run;
    if (q >= e) return o;
    let c = <u32>load<u8>(q + 1);
    if (c == 0x75) {
      let cu = hex4(q + 2);
      q += 6;
      if ((cu & 0xF800) == 0xD800) {
        let lo: u32 = 0;
        // JSON.parse pairs a high surrogate only with an immediately following \u low one.
        if (cu < 0xDC00 && q + 6 <= e && load<u8>(q) == 0x5C && load<u8>(q + 1) == 0x75) {
          lo = hex4(q + 2);
        }
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          if (o + 4 > cap) return -1;
          let cp = 0x10000 + ((cu - 0xD800) << 10) + (lo - 0xDC00);
          let d = dst + <usize>o;
          store<u8>(d, <u8>(0xF0 | (cp >> 18)));
          store<u8>(d + 1, <u8>(0x80 | ((cp >> 12) & 0x3F)));
          store<u8>(d + 2, <u8>(0x80 | ((cp >> 6) & 0x3F)));
          store<u8>(d + 3, <u8>(0x80 | (cp & 0x3F)));
          o += 4;
          q += 6;
        } else {
          if (o + 3 > cap) return -1;
          o += put3(dst + <usize>o, 0xFFFD);
          gLone = true;
        }
      } else {
        let need: i32 = cu < 0x80 ? 1 : (cu < 0x800 ? 2 : 3);
        if (o + need > cap) return -1;
        o += put3(dst + <usize>o, cu);
      }
    } else {
      if (o + 1 > cap) return -1;
      let b: u32 = c; // '"', '\\', '/'
      if (c == 0x62) b = 0x08;
      else if (c == 0x66) b = 0x0C;
      else if (c == 0x6E) b = 0x0A;
      else if (c == 0x72) b = 0x0D;
      else if (c == 0x74) b = 0x09;
      store<u8>(dst + <usize>o, <u8>b);
      o += 1;
      q += 2;
    }
    s = q;
  }
  return -1;
}

@inline function bytesEqual(a: usize, b: usize, n: usize): bool {
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8; b += 8; n -= 8;
  }
  while (n > 0) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++; b++; n--;
  }
  return true;
}

// Bit mask of the configured fields whose name equals key content [s, e).
// Several fields may share a name; each of them then takes the value.
function matchKey(s: usize, e: usize, esc: bool): i32 {
  let k = s;
  let n = <i32>(e - s);
  if (esc) {
    n = unescape(s, e, KEY_BUF, NAME_CAP);
    // A key holding a lone surrogate is not equal to any well-formed name, even
    // though its UTF-8 form (U+FFFD) might be.
    if (n < 0 || gLone) return 0;
    k = KEY_BUF;
  }
  let mask = 0;
  for (let f = 0; f < FIELD_COUNT; f++) {
    if (load<i32>(CONFIG + <usize>(4 + f * 4)) == n && bytesEqual(k, NAMES + <usize>(f * NAME_CAP), <usize>n)) {
      mask |= 1 << f;
    }
  }
  return mask;
}

@inline function slot(f: i32): usize {
  return SLOTS + <usize>(f << 4);
}

// Turns a NOT_JSON scan failure into INVALID_UTF8 when the line also has bad UTF-8.
function scanFailure(start: usize, end: usize): i32 {
  if (gErr == REJECT_NOT_JSON && !validUtf8(start, end)) return REJECT_INVALID_UTF8;
  return gErr;
}

/** Decodes the NDJSON line in [start, end) (no '\n') and returns a decode-status code; on DECODE_OK the dec* globals hold the fields until the next call. */
export function decodeLine(start: usize, end: usize): i32 {
  if (end - start > <usize>load<i32>(CONFIG)) return REJECT_TOO_LARGE;
  for (let f = 0; f < FIELD_COUNT; f++) store<u32>(slot(f) + 8, T_ABSENT);
  gErr = REJECT_NOT_JSON;

  let p = skipWs(start, end);
  if (p >= end) return DECODE_EMPTY;
  let c = <u32>load<u8>(p);
  if (c != 0x7B) {
    if (c == 0x5B) p = skipComposite(p, end, 0);
    else p = scanScalar(p, end, c);
    if (p != ERR) {
      p = skipWs(p, end);
      if (p == end) return REJECT_NOT_OBJECT;
      gErr = REJECT_NOT_JSON;
    }
    return scanFailure(start, end);
  }

  // Top-level object: the only level whose keys are compared.
  p = skipWs(p + 1, end);
  if (p >= end) return scanFailure(start, end);
  if (load<u8>(p) == 0x7D) {
    p++;
  } else {
    let key = 0;
    while (true) {
      if (load<u8>(p) != 0x22) return scanFailure(start, end);
      // Lines of one producer have their keys in one order: the field the previous line had at this
      // position is tried first, its name in quotes and the colon compared as bytes. A name with no
      // byte a key would escape matches so only a key equal to it, which scanning would accept.
      let mask = 0;
      const f = key < PREDICTED_KEYS ? load<i32>(PREDICTED + (<usize>key << 2)) - 1 : -1;
      if (f >= 0) {
        const n = <usize>load<i32>(CONFIG + <usize>(4 + f * 4));
        mask = load<i32>(SAME_NAME + (<usize>f << 2));
        if (mask == 0 || p + n + 2 >= end || load<u8>(p + n + 1) != 0x22 || load<u8>(p + n + 2) != 0x3A
          || !bytesEqual(p + 1, NAMES + <usize>(f * NAME_CAP), n)) {
          mask = 0;
        } else {
          p += n + 3;
        }
      }
      if (mask == 0) {
        let ks = p + 1;
        p = scanString(ks, end);
        if (p == ERR) return scanFailure(start, end);
        mask = matchKey(ks, p, gEsc);
        if (key < PREDICTED_KEYS) store<i32>(PREDICTED + (<usize>key << 2), mask != 0 ? ctz(mask) + 1 : 0);
        p = skipWs(p + 1, end);
        if (p >= end || load<u8>(p) != 0x3A) return scanFailure(start, end);
        p++;
      }
      key++;
      p = skipWs(p, end);
      if (p >= end) return scanFailure(start, end);

      let vs = p;
      let ve: usize;
      let t: u32;
      let esc: u32 = 0;
      c = <u32>load<u8>(p);
      if (c == 0x22) {
        p = scanString(p + 1, end);
        if (p == ERR) return scanFailure(start, end);
        vs++;
        ve = p;
        p++;
        t = T_STRING;
        esc = <u32>gEsc;
      } else if (c == 0x7B || c == 0x5B) {
        p = skipComposite(p, end, 1);
        if (p == ERR) return scanFailure(start, end);
        ve = p;
        t = c == 0x7B ? T_OBJECT : T_ARRAY;
      } else if (c == 0x2D || (cls(c) & F_DIGIT) != 0) {
        p = scanNumber(p, end);
        if (p == ERR) return scanFailure(start, end);
        ve = p;
        t = gNumX ? T_NUMBER_X : T_NUMBER;
      } else {
        p = scanLiteral(p, end, c);
        if (p == ERR) return scanFailure(start, end);
        ve = p;
        t = c == 0x6E ? T_NULL : T_BOOL;
      }
      while (mask != 0) {
        let f = ctz(mask);
        mask &= mask - 1;
        let a = slot(f);
        store<u32>(a, <u32>vs);
        store<u32>(a + 4, <u32>ve);
        store<u32>(a + 8, t);
        store<u32>(a + 12, esc);
      }

      p = skipWs(p, end);
      if (p >= end) return scanFailure(start, end);
      c = <u32>load<u8>(p);
      if (c == 0x2C) {
        p = skipWs(p + 1, end);
        if (p >= end) return scanFailure(start, end);
        continue;
      }
      if (c != 0x7D) return scanFailure(start, end);
      p++;
      break;
    }
  }
  p = skipWs(p, end);
  if (p != end) return scanFailure(start, end);

  return interpretFields();
}

// The string recorded in slot a: without escapes its bytes in the line (no copy), with escapes
// unescaped into dst. Returns its byte length, or -1 when over cap; sets gStrPtr to where it is.
let gStrPtr: usize = 0;
@inline function stringField(a: usize, dst: usize, cap: i32): i32 {
  let s = <usize>load<u32>(a);
  let e = <usize>load<u32>(a + 4);
  gStrPtr = dst;
  if (load<u32>(a + 12) != 0) return unescape(s, e, dst, cap);
  let n = <i32>(e - s);
  if (n > cap) return -1;
  gStrPtr = s;
  return n;
}

// Checks the recorded fields in the contract's order: property, ts, title, error type, view id.
function interpretFields(): i32 {
  let a = slot(FLD_PROP);
  let t = load<u32>(a + 8);
  if (t == T_ABSENT || t == T_NULL) return REJECT_MISSING_PROPERTY;
  if (t == T_STRING) {
    let n = stringField(a, PROP_BUF, PROP_CAP);
    if (n < 0) return REJECT_FIELD_TOO_LONG;
    if (n == 0) return REJECT_BAD_PROPERTY;
    decPropLen = n;
    decPropPtr = gStrPtr;
  } else if (t == T_NUMBER || t == T_NUMBER_X) {
    let r = propertyNumber(<usize>load<u32>(a), <usize>load<u32>(a + 4), t == T_NUMBER_X);
    if (r < 0) return -r;
    decPropLen = r;
    decPropPtr = PROP_BUF;
  } else {
    return REJECT_BAD_PROPERTY;
  }

  a = slot(FLD_TS);
  t = load<u32>(a + 8);
  if (t == T_ABSENT || t == T_NULL) return REJECT_MISSING_TS;
  let ts: i64 = -1;
  if (t == T_STRING) {
    ts = tsString(<usize>load<u32>(a), <usize>load<u32>(a + 4), load<u32>(a + 12) != 0);
  } else if (t == T_NUMBER) {
    ts = tsPlainInteger(<usize>load<u32>(a), <usize>load<u32>(a + 4));
  } else if (t == T_NUMBER_X) {
    ts = tsDecimal(<usize>load<u32>(a), <usize>load<u32>(a + 4));
    if (ts == TS_FALLBACK) return DECODE_FALLBACK;
  }
  if (ts < 0) return REJECT_BAD_TS;
  decTs = ts;

  a = slot(FLD_TITLE);
  t = load<u32>(a + 8);
  decTitlePtr = TITLE_BUF;
  decTitleLen = -1;
  if (t == T_STRING) {
    let n = stringField(a, TITLE_BUF, TITLE_CAP);
    if (n < 0) return REJECT_FIELD_TOO_LONG;
    if (n > 0) { decTitleLen = n; decTitlePtr = gStrPtr; }
  } else if (t != T_ABSENT && t != T_NULL) {
    return REJECT_BAD_TITLE;
  }

  a = slot(FLD_ERR);
  t = load<u32>(a + 8);
  decErrPtr = ERR_BUF;
  decErrLen = -1;
  if (t == T_STRING) {
    let n = stringField(a, ERR_BUF, ERR_CAP);
    if (n < 0) return REJECT_FIELD_TOO_LONG;
    if (n > 0) { decErrLen = n; decErrPtr = gStrPtr; }
  } else if (t != T_ABSENT && t != T_NULL) {
    return REJECT_BAD_ERROR_TYPE;
  }

  a = slot(FLD_VIEW);
  t = load<u32>(a + 8);
  if (t == T_BOOL || t == T_OBJECT || t == T_ARRAY) return REJECT_BAD_VIEW_ID;
  decViewPtr = VIEW_BUF;
  decViewLen = -1;
  if (t == T_STRING) {
    let n = stringField(a, VIEW_BUF, VIEW_CAP);
    if (n > 0) { decViewLen = n; decViewPtr = gStrPtr; }
  }
  return DECODE_OK;
}

// ---- numbers -------------------------------------------------------------

const TS_FALLBACK: i64 = -2;
const E18: u64 = 1000000000000000000;

// 9007199254740991 = Number.MAX_SAFE_INTEGER, compared as text.
const MAX_SAFE_TEXT: usize = memory.data<u8>([57, 48, 48, 55, 49, 57, 57, 50, 53, 52, 55, 52, 48, 57, 57, 49]);

// Property id from an integer literal [s, e) without fraction/exponent: writes
// String(value) to PROP_BUF and returns its length, or -status.
function propertyNumber(s: usize, e: usize, x: bool): i32 {
  if (x) return propertyDecimal(s, e);
  let neg = load<u8>(s) == 0x2D;
  let d = neg ? s + 1 : s;
  let n = <i32>(e - d);
  if (n == 1 && load<u8>(d) == 0x30) {
    // -0 prints as "0".
    store<u8>(PROP_BUF, 0x30);
    return 1;
  }
  if (n > 16) return -REJECT_BAD_PROPERTY;
  if (n == 16 && memory.compare(d, MAX_SAFE_TEXT, 16) > 0) return -REJECT_BAD_PROPERTY;
  let o: usize = PROP_BUF;
  if (neg) { store<u8>(o, 0x2D); o++; }
  memory.copy(o, d, <usize>n);
  return n + (neg ? 1 : 0);
}

// The decimal digits of a number literal, seen as one digit string D = int ++ frac
// with the decimal point `point` digits from D's start (after the exponent).
let nNeg: bool = false;
let nIntS: usize = 0;
let nIntLen: i32 = 0;
let nFracS: usize = 0;
let nLen: i32 = 0;
let nFirst: i32 = -1; // first nonzero digit of D, -1 when the value is zero
let nLast: i32 = -1;  // last nonzero digit of D
let nPoint: i64 = 0;

@inline function digitAt(i: i64): u32 {
  if (i < 0 || i >= <i64>nLen) return 0;
  let p = i < <i64>nIntLen ? nIntS + <usize>i : nFracS + <usize>(i - <i64>nIntLen);
  return <u32>load<u8>(p) - 0x30;
}

function analyzeNumber(s: usize, e: usize): void {
  let p = s;
  nNeg = load<u8>(p) == 0x2D;
  if (nNeg) p++;
  nIntS = p;
  while (p < e && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
  nIntLen = <i32>(p - nIntS);
  let fracLen: i32 = 0;
  nFracS = p;
  if (p < e && load<u8>(p) == 0x2E) {
    p++;
    nFracS = p;
    while (p < e && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
    fracLen = <i32>(p - nFracS);
  }
  let exp: i64 = 0;
  if (p < e) {
    p++; // 'e' / 'E'
    let eneg = false;
    let c = load<u8>(p);
    if (c == 0x2B || c == 0x2D) { eneg = c == 0x2D; p++; }
    while (p < e) {
      // Saturate: beyond 1e9 every caller's answer is already decided.
      if (exp < 1000000000) exp = exp * 10 + <i64>(load<u8>(p) - 0x30);
      p++;
    }
    if (eneg) exp = -exp;
  }
  nLen = nIntLen + fracLen;
  nFirst = -1;
  nLast = -1;
  for (let i: i32 = 0; i < nLen; i++) {
    if (digitAt(i) != 0) { nFirst = i; break; }
  }
  if (nFirst >= 0) {
    for (let i: i32 = nLen - 1; i >= 0; i--) {
      if (digitAt(i) != 0) { nLast = i; break; }
    }
  }
  nPoint = <i64>nIntLen + exp;
}

const MAX_SAFE: u64 = 9007199254740991;

// Writes String(±v) (v > 0) to PROP_BUF and returns its length.
function writeInteger(neg: bool, v: u64): i32 {
  let n: i32 = 1;
  for (let t = v; t >= 10; t /= 10) n++;
  let o: usize = PROP_BUF;
  if (neg) { store<u8>(o, 0x2D); o++; }
  for (let i = n - 1; i >= 0; i--) {
    store<u8>(o + <usize>i, <u8>(0x30 + v % 10));
    v /= 10;
  }
  return n + (neg ? 1 : 0);
}

// The integer part of the analyzed number (caller ensures at most 16 digits).
function intPart(): u64 {
  let v: u64 = 0;
  for (let i = <i64>nFirst; i < nPoint; i++) v = v * 10 + <u64>digitAt(i);
  return v;
}

// F = the first 18 fraction digits as an integer: the fraction f lies in
// [F, F+1) / 10^18.
function fraction18(): u64 {
  let f: u64 = 0;
  for (let i: i64 = 0; i < 18; i++) f = f * 10 + <u64>digitAt(nPoint + i);
  return f;
}

// Where the double nearest to v + f lies (v = intPart(), 0 < f < 1 the
// fraction, v < 2^52): ROUND_DOWN (the double is v), ROUND_UP (v + 1),
// ROUND_BETWEEN (a non-integer between them) or ROUND_UNSURE.
// For v in [2^k, 2^(k+1)) the spacing of doubles is ulp = 2^(k-52), so the
// answer is decided by f against ulp/2 and 1 - ulp/2. F = fraction18() brackets
// f in [F, F+1) / 10^18. For k >= 35, H = 10^18 * ulp/2 = 5^(53-k) * 10^(k-35)
// is an exact integer and the comparison is exact; a tie goes to the even
// mantissa, which is v's (v < 2^52 has a zero low mantissa bit) on the low side
// and v + 1's on the high side. Below 2^35 H is rounded up and an f within it
// of an integer stays unsure.
const ROUND_DOWN: i32 = 0;
const ROUND_UP: i32 = 1;
const ROUND_BETWEEN: i32 = 2;
const ROUND_UNSURE: i32 = 3;

function roundFraction(v: u64, lowMatters: bool): i32 {
  let f = fraction18();
  // v = 0 uses k = 0, whose spacing bounds the doubles in (0, 1) too; callers
  // exclude values small enough to round to 0.
  let k: u64 = v == 0 ? 0 : 63 - clz(v);
  if (k >= 35) {
    let h = E18 >> (53 - k);
    if (f < h || (f == h && <i64>nLast < nPoint + 18)) return ROUND_DOWN;
    if (f >= E18 - h) return ROUND_UP;
    return ROUND_BETWEEN;
  }
  let h = (E18 >> (53 - k)) + 1;
  if (f + 1 + h > E18) return ROUND_UNSURE;
  // Callers that only floor do not care whether f rounds down onto v.
  return (f > h || v == 0 || !lowMatters) ? ROUND_BETWEEN : ROUND_UNSURE;
}

// Property id from a number with fraction/exponent: the double JSON.parse
// would produce, worked out from the decimal digits so that only values near
// the subnormal range or within ~4e-6 of an integer below 2^35 fall back.
function propertyDecimal(s: usize, e: usize): i32 {
  analyzeNumber(s, e);
  // Below 1e-324 the double is ±0 (String(-0) is "0").
  if (nFirst < 0 || nPoint - <i64>nFirst <= -324) {
    store<u8>(PROP_BUF, 0x30);
    return 1;
  }
  let intDigits = nPoint - <i64>nFirst;
  if (<i64>nLast < nPoint) {
    // An exact integer, written out digit by digit.
    if (intDigits > 16) return -REJECT_BAD_PROPERTY;
    let n = <i32>intDigits;
    let o: usize = PROP_BUF;
    if (nNeg) { store<u8>(o, 0x2D); o++; }
    for (let i: i32 = 0; i < n; i++) store<u8>(o + <usize>i, <u8>(0x30 + digitAt(<i64>(nFirst + i))));
    if (n == 16 && memory.compare(o, MAX_SAFE_TEXT, 16) > 0) return -REJECT_BAD_PROPERTY;
    return n + (nNeg ? 1 : 0);
  }
  // A nonzero fraction: bad unless the double rounds onto a safe integer.
  if (intDigits - 1 < -300) return -DECODE_FALLBACK; // subnormal territory
  if (intDigits > 16) return -REJECT_BAD_PROPERTY;
  // With at most 15 significant digits a non-integer below 10^15 is at least
  // 10^-15 * v from an integer, far more than half a double's spacing.
  if (nLast - nFirst + 1 <= 15) return -REJECT_BAD_PROPERTY;
  let v = intPart();
  if (v >= (<u64>1 << 52)) {
    // Doubles in [2^52, 2^53) are the integers: v + f rounds to the nearer of
    // v and v + 1, a tie to the even one; only 2^53 is unsafe.
    let f = fraction18();
    let half = E18 / 2;
    if (f > half || (f == half && (<i64>nLast >= nPoint + 18 || (v & 1) != 0))) v++;
    return v > MAX_SAFE ? -REJECT_BAD_PROPERTY : writeInteger(nNeg, v);
  }
  let r = roundFraction(v, true);
  if (r == ROUND_BETWEEN) return -REJECT_BAD_PROPERTY;
  if (r == ROUND_UNSURE) return -DECODE_FALLBACK;
  // v >= 2^35 here, so the integer is nonzero.
  return writeInteger(nNeg, r == ROUND_UP ? v + 1 : v);
}

// ts from an integer literal without fraction/exponent, or -1.
function tsPlainInteger(s: usize, e: usize): i64 {
  if (load<u8>(s) == 0x2D) {
    // Only "-0" is in range.
    return (e - s == 2 && load<u8>(s + 1) == 0x30) ? 0 : -1;
  }
  let n = e - s;
  if (n > 15) return -1;
  let v: i64 = 0;
  for (let p = s; p < e; p++) v = v * 10 + <i64>(load<u8>(p) - 0x30);
  return v > TS_MAX ? -1 : v;
}

// Math.floor of a number with fraction/exponent as ts, or -1, or TS_FALLBACK.
function tsDecimal(s: usize, e: usize): i64 {
  analyzeNumber(s, e);
  // Zero, or below 1e-324 where the double is ±0 (and Math.floor(-0) + 0 is 0).
  if (nFirst < 0 || nPoint - <i64>nFirst <= -324) return 0;
  let intDigits = nPoint - <i64>nFirst;
  if (nNeg) {
    // A negative double floors to -1 or below; only a subnormal may still be -0.
    return intDigits - 1 >= -300 ? -1 : TS_FALLBACK;
  }
  if (intDigits > 15) return -1;
  let v = <i64>intPart();
  if (v > TS_MAX) return -1;
  if (<i64>nLast >= nPoint) {
    let r = roundFraction(<u64>v, false);
    if (r == ROUND_UNSURE) return TS_FALLBACK;
    if (r == ROUND_UP) v++;
  }
  return v > TS_MAX ? -1 : v;
}

// ---- ts strings ----------------------------------------------------------

// ts from string content [s, e): epoch-ms digit string or ISO-8601; -1 when bad.
function tsString(s: usize, e: usize, esc: bool): i64 {
  if (esc) {
    let n = unescape(s, e, TS_BUF, TS_CAP);
    if (n < 0) return tsLongEscapedDigits(s, e);
    s = TS_BUF;
    e = TS_BUF + <usize>n;
  }
  let n = <i32>(e - s);
  if (n == 0) return -1;
  // All digits? ISO text has '-' at index 4, so checking 5 bytes sorts most out.
  let p = s;
  while (p < e && (cls(load<u8>(p)) & F_DIGIT) != 0) p++;
  if (p == e) {
    p = s;
    while (p < e && load<u8>(p) == 0x30) p++;
    if (e - p > 15) return -1;
    let v: i64 = 0;
    for (; p < e; p++) v = v * 10 + <i64>(load<u8>(p) - 0x30);
    return v > TS_MAX ? -1 : v;
  }
  return parseIsoMs(s, n);
}

// An escaped ts string longer than TS_CAP can only be a digit string padded with
// leading zeros; decides it by walking the escapes instead of buffering.
function tsLongEscapedDigits(s: usize, e: usize): i64 {
  let v: i64 = 0;
  let sig: i32 = 0;
  let p = s;
  while (p < e) {
    let c = <u32>load<u8>(p);
    if (c == 0x5C) {
      if (load<u8>(p + 1) != 0x75) return -1;
      c = hex4(p + 2);
      p += 6;
    } else {
      p++;
    }
    if (c < 0x30 || c > 0x39) return -1;
    if (sig > 0 || c != 0x30) {
      sig++;
      if (sig > 15) return -1;
      v = v * 10 + <i64>(c - 0x30);
    }
  }
  return v > TS_MAX ? -1 : v;
}
