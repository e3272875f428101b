/** Stable codes of the notification component's errors. */
export type NotifyErrorCode = 'NOTIFY_HTTP_STATUS' | 'NOTIFY_TIMEOUT' | 'NOTIFY_NETWORK' | 'NOTIFY_RENDER' | 'NOTIFY_STOPPED';

/** A delivery failure: a stable code, whether a retry can help, the HTTP status when there was one. */
export class NotifyError extends Error {
  readonly code: NotifyErrorCode;
  readonly retriable: boolean;
  readonly status: number | null;

  constructor(code: NotifyErrorCode, message: string, options: { retriable: boolean; status?: number | null; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NotifyError';
    this.code = code;
    this.retriable = options.retriable;
    this.status = options.status ?? null;
  }
}
