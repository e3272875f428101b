import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { HttpError, errorBody } from './http-error.ts';

/** A request as the handlers see it: everything read synchronously from uWS before any await. */
export interface RequestInfo {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  /** Lower-case header name -> value, for the headers handlers ask for. */
  headers: Record<string, string>;
  /** The body (POST); empty when none. */
  body: Buffer;
}

/** A handler's answer: JSON (any value) or raw bytes with a content type. */
export type Reply =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; body: string | Buffer; contentType: string; headers?: Record<string, string> };

/** A route handler; throwing HttpError gives its status and code, anything else a 500 INTERNAL. */
export type Handler = (req: RequestInfo) => Reply | Promise<Reply>;

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 202: '202 Accepted', 204: '204 No Content', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden',
  404: '404 Not Found', 405: '405 Method Not Allowed', 409: '409 Conflict', 413: '413 Payload Too Large',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

const HEADERS = ['authorization', 'content-type', 'content-length', 'accept', 'host'];

/**
 * Runs a handler on a uWS request: reads what it needs synchronously (uWS frees the request after the
 * first return), reads a POST body up to maxBodyBytes (413 beyond), and writes the reply corked,
 * unless the client went away meanwhile.
 */
export function exchange(
  res: HttpResponse, req: HttpRequest, paramCount: number, maxBodyBytes: number, handler: Handler,
  onError: (err: unknown) => void,
): void {
  const method = req.getMethod().toUpperCase();
  const info: RequestInfo = {
    method,
    path: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ''),
    params: Array.from({ length: paramCount }, (_, i) => decodeURIComponent(req.getParameter(i))),
    headers: Object.fromEntries(HEADERS.map((h) => [h, req.getHeader(h)])),
    body: Buffer.alloc(0),
  };
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  const send = (reply: Reply, closeConnection = false): void => {
    if (aborted) return;
    res.cork(() => writeReply(res, reply, closeConnection));
  };
  const run = (): void => {
    Promise.resolve()
      .then(() => handler(info))
      .then(send, (err) => {
        if (!(err instanceof HttpError)) onError(err);
        const e = err instanceof HttpError ? err : new HttpError(500, 'INTERNAL', 'internal error', true);
        send({ status: e.status, json: errorBody(e), headers: e.headers });
      });
  };
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') {
    run();
    return;
  }
  const declared = Number(info.headers['content-length'] || 0);
  if (declared > maxBodyBytes) {
    // Answer before reading: the client learns the limit without uploading the whole body.
    send({ status: 413, json: errorBody(new HttpError(413, 'BODY_TOO_LARGE', `request body over ${maxBodyBytes} bytes`)) }, true);
    aborted = true;
    return;
  }
  const parts: Buffer[] = [];
  let size = 0;
  res.onData((chunk, isLast) => {
    if (aborted) return;
    size += chunk.byteLength;
    if (size > maxBodyBytes) {
      send({ status: 413, json: errorBody(new HttpError(413, 'BODY_TOO_LARGE', `request body over ${maxBodyBytes} bytes`)) }, true);
      aborted = true;
      return;
    }
    // uWS reuses the chunk's memory after this callback: copy it.
    parts.push(Buffer.from(chunk.slice(0)));
    if (isLast) {
      info.body = Buffer.concat(parts);
      run();
    }
  });
}

function writeReply(res: HttpResponse, reply: Reply, closeConnection: boolean): void {
  const status = reply.status ?? 200;
  res.writeStatus(STATUS_TEXT[status] ?? `${status} Status`);
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
  res.writeHeader('x-content-type-options', 'nosniff');
  if ('json' in reply) {
    res.writeHeader('content-type', 'application/json; charset=utf-8');
    res.writeHeader('cache-control', 'no-store');
    res.end(JSON.stringify(reply.json), closeConnection);
  } else {
    res.writeHeader('content-type', reply.contentType);
    res.end(reply.body, closeConnection);
  }
}

/** Parses a JSON body; 400 BAD_JSON when it is not JSON, an empty body gives `{}`. */
export function jsonBody(req: RequestInfo): unknown {
  if (req.body.length === 0) return {};
  try {
    return JSON.parse(req.body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
}
