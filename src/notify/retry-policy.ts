/** Exponential backoff settings: the first retry waits about baseMs, each next one twice as long, never more than maxMs. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (1 = after the first failure): exponential with "equal jitter",
 * half fixed and half random, so receivers that failed together do not get retried in lockstep.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Most a Retry-After may hold a receiver back (a receiver asking for a day is asking for too much). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * The wait a Retry-After header asks for (delta-seconds or an HTTP date), capped at MAX_RETRY_AFTER_MS;
 * null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return null;
    ms = at - nowMs;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}
