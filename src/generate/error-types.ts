/** The playback error types the generator emits, in the order used by every per-type array. */
export const ERROR_TYPES = ['networkError', 'decodeError', 'manifestError', 'drmError', 'timeoutError'] as const;

/** One playback error type. */
export type ErrorType = (typeof ERROR_TYPES)[number];

/** Index of an error type in ERROR_TYPES. */
export function errorIndex(type: ErrorType): number {
  return ERROR_TYPES.indexOf(type);
}
