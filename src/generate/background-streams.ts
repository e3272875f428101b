import type { ZipfSampler } from './zipf-sampler.ts';

/** One Poisson stream of background views: a property's catalog, or a single title at a fixed rate. */
export interface BackgroundStream {
  propertyIndex: number;
  /** Draws the title of each view; null for a single-title stream. */
  sampler: ZipfSampler | null;
  /** The title of a single-title stream (-1 otherwise). */
  titleIndex: number;
  viewsPerMs: number;
  /** Whether the daily cycle modulates the rate. */
  cycled: boolean;
  /** Time-zone offset of the stream's viewers (ms ahead of UTC) for its daily cycle; 0 when absent. */
  phaseMs?: number;
}

/**
 * The superposition of all background streams: one Poisson process at the summed rate, each arrival
 * assigned to a stream in proportion to its rate, which is the same process as the streams run apart
 * but needs no merge by time.
 */
export class BackgroundStreams {
  private readonly streams: BackgroundStream[];
  private readonly cumulativeRate: Float64Array;
  /** Summed rate in views per ms for the current tick. */
  totalRate = 0;

  /** Takes the streams in a fixed order (the order is part of the seeded output). */
  constructor(streams: BackgroundStream[]) {
    this.streams = streams;
    this.cumulativeRate = new Float64Array(streams.length);
  }

  /** Sets every stream's rate for a tick at `atMs`: `cycle(atMs + phase)` is the daily-cycle multiplier of a stream of that phase. */
  setCycle(atMs: number, cycle: (atMs: number) => number): void {
    let total = 0;
    // A run has a handful of time zones: one multiplier each.
    const phases: number[] = [];
    const multipliers: number[] = [];
    for (let s = 0; s < this.streams.length; s++) {
      const stream = this.streams[s];
      let multiplier = 1;
      if (stream.cycled) {
        const p = stream.phaseMs ?? 0;
        let i = phases.indexOf(p);
        if (i < 0) {
          i = phases.push(p) - 1;
          multipliers.push(cycle(atMs + p));
        }
        multiplier = multipliers[i];
      }
      total += stream.viewsPerMs * multiplier;
      this.cumulativeRate[s] = total;
    }
    this.totalRate = total;
  }

  /** Maps a uniform u in [0, 1) to the stream of an arrival. */
  pick(u: number): BackgroundStream {
    const target = u * this.totalRate;
    // The first stream whose cumulative rate exceeds the target (the last one at most), by bisection:
    // a field run has hundreds of streams.
    let lo = 0;
    let hi = this.streams.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (target >= this.cumulativeRate[mid]) lo = mid + 1;
      else hi = mid;
    }
    return this.streams[lo];
  }
}
