import { NotifyError } from './notify-error.ts';
import { parseRetryAfter } from './retry-policy.ts';

/** An HTTP request an integration wants sent (always a POST of a JSON body). */
export interface HttpRequestSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What came of one attempt: delivered, worth retrying (maybe after retryAfterMs), or permanently refused. */
export type DeliveryOutcome =
  | { result: 'delivered'; status: number }
  | { result: 'retry'; error: NotifyError; retryAfterMs: number | null }
  | { result: 'permanent'; error: NotifyError };

const MAX_BODY_LOGGED = 1024;

/**
 * POSTs the request with a timeout and classifies the answer: 2xx delivered; timeouts, network errors,
 * 5xx and 429 retriable (Retry-After honoured); any other status (4xx, an unfollowed 3xx) permanent,
 * with the start of the response body in the error. Never throws; `signal` aborts it as retriable.
 */
export async function sendHttp(req: HttpRequestSpec, timeoutMs: number, signal: AbortSignal, now: () => number): Promise<DeliveryOutcome> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: 'POST', headers: { 'content-type': 'application/json', ...req.headers }, body: req.body,
      // A receiver URL is configuration; following a redirect would send an incident to somewhere nobody configured.
      redirect: 'manual', signal: AbortSignal.any([timeout, signal]),
    });
  } catch (err) {
    if (signal.aborted) return { result: 'retry', error: new NotifyError('NOTIFY_STOPPED', 'stopped while sending', { retriable: true, cause: err }), retryAfterMs: null };
    if (timeout.aborted) return { result: 'retry', error: new NotifyError('NOTIFY_TIMEOUT', `no answer within ${timeoutMs} ms`, { retriable: true, cause: err }), retryAfterMs: null };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { result: 'retry', error: new NotifyError('NOTIFY_NETWORK', `network error: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { retriable: true, cause: err }), retryAfterMs: null };
  }
  let text = '';
  try {
    text = (await res.text()).slice(0, MAX_BODY_LOGGED);
  } catch {
    // The status is what decides; a body cut short only loses detail for the log.
  }
  if (res.status >= 200 && res.status < 300) return { result: 'delivered', status: res.status };
  const error = new NotifyError('NOTIFY_HTTP_STATUS', `HTTP ${res.status}${text ? `: ${text}` : ''}`, { retriable: res.status >= 500 || res.status === 429, status: res.status });
  if (error.retriable) return { result: 'retry', error, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), now()) };
  return { result: 'permanent', error };
}
