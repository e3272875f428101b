/** Stable codes of the errors the incidents component throws; callers branch on these, never on messages. */
export type IncidentErrorCode =
  | 'INCIDENT_SCHEMA_TOO_NEW'
  | 'INCIDENT_FILTER_INVALID'
  | 'INCIDENT_OPTION_INVALID';

/** An error of the incidents component: a stable code, whether retrying can help, and the underlying cause. */
export class IncidentError extends Error {
  readonly code: IncidentErrorCode;
  readonly retriable: boolean;

  constructor(code: IncidentErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IncidentError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}
