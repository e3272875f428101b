/** A raised failure probability for one property or one of its titles, in event time [startMs, endMs). */
export interface ErrorEffect {
  propertyIndex: number;
  /** Index into the property's title list, or -1 for every view of the property. */
  titleIndex: number;
  errorIndex: number;
  /** Probability that an affected view fails with this error before the baseline is consulted. */
  probability: number;
  /** A ramp: the probability moves linearly from `probability` at startMs to this at endMs. */
  endProbability?: number;
  startMs: number;
  endMs: number;
}

/** An extra view placed at an exact event time, on top of the Poisson background. */
export interface InjectedView {
  atMs: number;
  propertyIndex: number;
  /** Index into the property's title list. */
  titleIndex: number;
  /** Error type index, or -1 for a view that played fine. */
  errorIndex: number;
  /** The line's ts is atMs plus this (a device whose clock is wrong); the line still goes out at atMs. */
  tsOffsetMs?: number;
}

/** Probability to give an effect so that the affected views fail at `targetRatio` including the baseline. */
export function effectProbability(targetRatio: number, baselineRatio: number): number {
  return Math.max(0, (targetRatio - baselineRatio) / (1 - baselineRatio));
}
