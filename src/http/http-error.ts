/** An API failure with an HTTP status, a stable code clients can switch on, and whether retrying may help. */
export class HttpError extends Error {
  /** Headers the error answer carries (405: Allow). */
  headers?: Record<string, string>;

  constructor(
    readonly status: number, readonly code: string, message: string, readonly retriable = false,
    /** Set on 500s: the id under which the failure was logged, for the caller to quote. */
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** The JSON body of every error response: `{"error": {"code", "message", "retriable"[, "request_id"]}}`. */
export function errorBody(err: HttpError): { error: { code: string; message: string; retriable: boolean; request_id?: string } } {
  const error: { code: string; message: string; retriable: boolean; request_id?: string } = { code: err.code, message: err.message, retriable: err.retriable };
  if (err.requestId !== undefined) error.request_id = err.requestId;
  return { error };
}
