// Vose's alias method: O(1) per draw from one uniform, so picking among 3000 titles costs the same
// as picking among 50, whatever the skew.

/** Draws ranks 0..n-1 with P(rank k) proportional to 1 / (k + 1)^exponent. */
export class ZipfSampler {
  /** Number of ranks. */
  readonly size: number;
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;
  /** Share of draws that land on each rank (for tests and for choosing titles by popularity). */
  readonly shares: Float64Array;

  /** Builds the alias table for `size` ranks with the given Zipf exponent. */
  constructor(size: number, exponent: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`ZipfSampler size must be a positive integer, got ${size}`);
    this.size = size;
    const shares = new Float64Array(size);
    let total = 0;
    for (let k = 0; k < size; k++) {
      shares[k] = 1 / Math.pow(k + 1, exponent);
      total += shares[k];
    }
    for (let k = 0; k < size; k++) shares[k] /= total;
    this.shares = shares;

    const prob = new Float64Array(size);
    const alias = new Int32Array(size);
    const scaled = new Float64Array(size);
    const small: number[] = [];
    const large: number[] = [];
    for (let k = 0; k < size; k++) {
      scaled[k] = shares[k] * size;
      (scaled[k] < 1 ? small : large).push(k);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      prob[s] = scaled[s];
      alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1;
      (scaled[l] < 1 ? small : large).push(l);
    }
    // Leftovers are 1 up to rounding error.
    for (const k of large) prob[k] = 1;
    for (const k of small) prob[k] = 1;
    this.prob = prob;
    this.alias = alias;
  }

  /** Maps one uniform u in [0, 1) to a rank. */
  sample(u: number): number {
    const x = u * this.size;
    const i = x | 0;
    return x - i < this.prob[i] ? i : this.alias[i];
  }
}
