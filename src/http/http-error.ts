/** An API failure with an HTTP status, a stable code clients can switch on, and whether retrying may help. */
export class HttpError extends Error {
  /** Headers the error answer carries (405: Allow). */
  headers?: Record<string, string>;

  constructor(readonly status: number, readonly code: string, message: string, readonly retriable = false) {
    super(message);
  }
}

/** The JSON body of every error response: `{"error": {"code", "message", "retriable"}}`. */
export function errorBody(err: HttpError): { error: { code: string; message: string; retriable: boolean } } {
  return { error: { code: err.code, message: err.message, retriable: err.retriable } };
}
