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

  /** Sets every stream's rate for a tick whose daily-cycle multiplier is `cycle`. */
  setCycle(cycle: number): void {
    let total = 0;
    for (let s = 0; s < this.streams.length; s++) {
      const stream = this.streams[s];
      total += stream.viewsPerMs * (stream.cycled ? cycle : 1);
      this.cumulativeRate[s] = total;
    }
    this.totalRate = total;
  }

  /** Maps a uniform u in [0, 1) to the stream of an arrival. */
  pick(u: number): BackgroundStream {
    const target = u * this.totalRate;
    const last = this.streams.length - 1;
    let s = 0;
    while (s < last && target >= this.cumulativeRate[s]) s++;
    return this.streams[s];
  }
}
