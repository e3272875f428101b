// sfc32: four 32-bit words, passes PractRand to large sizes and costs a handful of integer ops per
// draw, which matters when every generated line takes about eight draws.

/** A seeded pseudo-random generator whose sequence depends only on (seed, stream). */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds the generator; different `stream` values give independent sequences for the same seed. */
  constructor(seed: number, stream: number) {
    // Seeds may exceed 32 bits: both halves feed the state so 1 and 2**32 + 1 differ.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = splitmix32(lo ^ 0x243f6a88);
    x = splitmix32(x ^ hi);
    x = splitmix32(x ^ Math.imul(stream | 0, 0x9e3779b1));
    this.a = splitmix32(x);
    this.b = splitmix32(this.a ^ 0x85a308d3);
    this.c = splitmix32(this.b ^ 0x13198a2e);
    this.d = 1;
    // The first outputs of sfc32 are weakly mixed: burn them.
    for (let i = 0; i < 15; i++) this.nextU32();
  }

  /** Returns a uniform integer in [0, 2^32). */
  nextU32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const t = (((a + b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Returns a uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Returns a uniform integer in [0, n) for n up to 2^32. */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Scrambles a 32-bit integer into a well-mixed 32-bit integer (used to derive seeds). */
export function splitmix32(input: number): number {
  let z = (input + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
