/** Why a broker record was skipped before it reached the engine. */
export type SkipReason = 'empty' | 'too_large' | 'newline';

/** Counters of skipped records, by reason. */
export type SkipCounts = Record<SkipReason, number>;

/** Fresh zeroed skip counters. */
export function emptySkipCounts(): SkipCounts {
  return { empty: 0, too_large: 0, newline: 0 };
}
