// The interval arithmetic of assembly/stats.ts, operation for operation. Only
// + - * / and sqrt are used, which IEEE 754 rounds identically in WASM and V8;
// any reordering here (even an algebraically equal one) would let the reference
// model and the kernel disagree on a borderline decision.

/** Lower bound of the Wilson score interval for x successes in n trials at z; 0 when n <= 0. */
export function wilsonLower(x: number, n: number, z: number): number {
  if (n <= 0) return 0;
  const p = x / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  const lo = (centre - spread) / (1 + z2 / n);
  return lo < 0 ? 0 : lo;
}

/** assembly/stats.ts ZERO_BOUND_ABOVE: a Wilson lower bound at x = 0 is below it. */
const ZERO_BOUND_ABOVE = 1e-9;

/**
 * wilsonLower(x, n, z) > thr as assembly/stats.ts lowerAbove decides it: the rate itself first. The
 * kernel decides with it and this model with wilsonLower; test/kernel-differential.test.ts checks
 * that the two never differ (the lower bound never above the rate, nor above 1e-9 at x = 0).
 */
export function lowerAbove(x: number, n: number, z: number, thr: number): boolean {
  if (x / n <= thr && (x > 0 || thr >= ZERO_BOUND_ABOVE)) return false;
  return wilsonLower(x, n, z) > thr;
}

/** Upper bound of the Wilson score interval for x successes in n trials at z; 1 when n <= 0. */
export function wilsonUpper(x: number, n: number, z: number): number {
  if (n <= 0) return 1;
  const p = x / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  const hi = (centre + spread) / (1 + z2 / n);
  return hi > 1 ? 1 : hi;
}

/** base^k for an integer k >= 0 by the kernel's sequence of squarings (Math.pow may round differently). */
export function powi(base: number, k: number): number {
  let result = 1;
  let b = base;
  let e = k;
  // Arithmetic instead of & and >>: a gap of many slots may exceed 32 bits.
  while (e > 0) {
    if (e % 2 === 1) result *= b;
    b *= b;
    e = Math.floor(e / 2);
  }
  return result;
}

/** Floor division of integers (exact for |a| < 2^53, where a plain Math.floor(a / b) may round). */
export function floorDiv(a: number, b: number): number {
  const r = a % b;
  const q = (a - r) / b;
  return r !== 0 && (a < 0) !== (b < 0) ? q - 1 : q;
}
