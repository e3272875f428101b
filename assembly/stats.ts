// Interval arithmetic shared, operation for operation, with src/kernel/reference-stats.ts:
// only + - * / and sqrt, which IEEE 754 rounds identically in WASM and V8, so the
// kernel and the TypeScript reference model reach bit-identical decisions.

/** Lower bound of the Wilson score interval for x successes in n trials at z; 0 when n <= 0. */
export function wilsonLower(x: f64, n: f64, z: f64): f64 {
  if (n <= 0) return 0;
  const p = x / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  const lo = (centre - spread) / (1 + z2 / n);
  return lo < 0 ? 0 : lo;
}

/** A Wilson lower bound at x = 0 is below this (0 give or take 1e-15): a threshold at least this settles it. */
export const ZERO_BOUND_ABOVE: f64 = 1e-9;

/**
 * wilsonLower(x, n, z) > thr, without the square root when the rate itself is not above thr: the lower
 * bound is below x / n by at least z^2 x / n^2 / (1 + z^2 / n) (far more than rounding at any count a
 * window holds), so x / n <= thr settles it. At x = 0 the bound is 0 give or take 1e-15, which a
 * threshold of at least 1e-9 settles too; below that, the bound is computed.
 */
export function lowerAbove(x: f64, n: f64, z: f64, thr: f64): bool {
  if (x / n <= thr && (x > 0 || thr >= ZERO_BOUND_ABOVE)) return false;
  return wilsonLower(x, n, z) > thr;
}

/** Upper bound of the Wilson score interval; 1 when n <= 0. */
export function wilsonUpper(x: f64, n: f64, z: f64): f64 {
  if (n <= 0) return 1;
  const p = x / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  const hi = (centre + spread) / (1 + z2 / n);
  return hi > 1 ? 1 : hi;
}

/** base^k for k >= 0 by repeated squaring (same sequence of multiplications as the reference). */
export function powi(base: f64, k: i64): f64 {
  let result: f64 = 1;
  let b = base;
  let e = k;
  while (e > 0) {
    if (e & 1) result *= b;
    b *= b;
    e >>= 1;
  }
  return result;
}

/** Floor division for possibly negative numerators. */
@inline export function floorDiv(a: i64, b: i64): i64 {
  const q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
