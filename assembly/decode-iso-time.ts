// ISO-8601 timestamp parsing for decode.ts, on raw ASCII bytes (no allocation).

/** Largest accepted timestamp: 9999-12-31T23:59:59.999Z in epoch ms. */
export const TS_MAX: i64 = 253402300799999;

@inline function dig(p: usize): i32 {
  return <i32>load<u8>(p) - 48;
}

// Reads two ASCII digits; a result above 99 (or negative) means "not two digits",
// which every caller rejects through its own range check.
@inline function two(p: usize): i32 {
  let a = dig(p), b = dig(p + 1);
  if (<u32>a > 9 || <u32>b > 9) return -1;
  return a * 10 + b;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil), exact for every year we accept without a calendar table.
function daysFromCivil(y: i64, m: i64, d: i64): i64 {
  y -= m <= 2 ? 1 : 0;
  let era = (y >= 0 ? y : y - 399) / 400;
  let yoe = y - era * 400;
  let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

@inline function daysInMonth(y: i32, m: i32): i32 {
  if (m == 2) {
    let leap = (y & 3) == 0 && (y % 100 != 0 || y % 400 == 0);
    return leap ? 29 : 28;
  }
  // 30 days in April, June, September, November.
  return (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
}

/**
 * Epoch ms of `YYYY-MM-DD(T|t| )HH:MM:SS[.f{1,9}](Z|z|±HH:MM)` in [p, p+n), fraction truncated
 * to ms, or -1 when the text is not exactly that form, names an impossible date or time, or
 * falls outside [0, TS_MAX].
 */
export function parseIsoMs(p: usize, n: i32): i64 {
  // Shortest form is 20 bytes (…SSZ), longest 35 (….fffffffff+HH:MM).
  if (n < 20 || n > 35) return -1;
  let y0 = two(p), y1 = two(p + 2);
  if (<u32>y0 > 99 || <u32>y1 > 99) return -1;
  let year = y0 * 100 + y1;
  if (load<u8>(p + 4) != 0x2D || load<u8>(p + 7) != 0x2D) return -1;
  let month = two(p + 5);
  let day = two(p + 8);
  if (month < 1 || month > 12) return -1;
  if (day < 1 || day > daysInMonth(year, month)) return -1;
  let sep = load<u8>(p + 10);
  if (sep != 0x54 && sep != 0x74 && sep != 0x20) return -1;
  if (load<u8>(p + 13) != 0x3A || load<u8>(p + 16) != 0x3A) return -1;
  let hh = two(p + 11), mi = two(p + 14), ss = two(p + 17);
  if (<u32>hh > 23 || <u32>mi > 59 || <u32>ss > 59) return -1;

  let i: i32 = 19;
  let ms: i32 = 0;
  if (load<u8>(p + 19) == 0x2E) {
    i = 20;
    let nd: i32 = 0;
    while (i < n) {
      let d = dig(p + <usize>i);
      if (<u32>d > 9) break;
      if (nd < 3) ms = ms * 10 + d;
      nd++;
      i++;
    }
    if (nd < 1 || nd > 9) return -1;
    // Pad to milliseconds: ".5" is 500 ms.
    if (nd == 1) ms *= 100;
    else if (nd == 2) ms *= 10;
  }
  if (i >= n) return -1;
  let z = load<u8>(p + <usize>i);
  let offMin: i64 = 0;
  if (z == 0x5A || z == 0x7A) {
    if (i + 1 != n) return -1;
  } else if (z == 0x2B || z == 0x2D) {
    if (i + 6 != n) return -1;
    let oh = two(p + <usize>i + 1);
    let om = two(p + <usize>i + 4);
    if (load<u8>(p + <usize>i + 3) != 0x3A) return -1;
    if (<u32>oh > 23 || <u32>om > 59) return -1;
    offMin = <i64>(oh * 60 + om);
    if (z == 0x2D) offMin = -offMin;
  } else {
    return -1;
  }

  let days = daysFromCivil(<i64>year, <i64>month, <i64>day);
  let t = ((days * 24 + <i64>hh) * 60 + <i64>mi - offMin) * 60000 + <i64>ss * 1000 + <i64>ms;
  if (t < 0 || t > TS_MAX) return -1;
  return t;
}
