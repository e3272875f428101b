/** Stable codes of source failures. */
export type SourceErrorCode = 'SOURCE_CONNECT' | 'SOURCE_READ' | 'SOURCE_COMMIT' | 'SOURCE_CONFIG' | 'SOURCE_POSITIONS';

/** A source failure with a stable code and whether retrying may help. */
export class SourceError extends Error {
  constructor(readonly code: SourceErrorCode, message: string, readonly retriable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceError';
  }
}
