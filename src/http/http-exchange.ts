import { randomUUID } from 'node:crypto';
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

/** Told of every failure that is not an HttpError (a bug, a store error), with the id the client was given. */
export type ErrorReporter = (err: unknown, requestId: string) => void;

/** A path parameter, percent-decoded; 400 BAD_REQUEST for a malformed encoding (never a URIError escaping the handler). */
export function pathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `malformed percent-encoding in the path: ${JSON.stringify(raw.slice(0, 100))}`);
  }
}

function readRequest(req: HttpRequest, paramCount: number): RequestInfo {
  return {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ''),
    params: Array.from({ length: paramCount }, (_, i) => pathParam(req.getParameter(i))),
    headers: Object.fromEntries(HEADERS.map((h) => [h, req.getHeader(h)])),
    body: Buffer.alloc(0),
  };
}

/**
 * Runs a handler on a uWS request: reads what it needs synchronously (uWS frees the request after the
 * first return), reads a POST body up to maxBodyBytes (413 beyond), and writes the reply corked,
 * unless the client went away meanwhile. Nothing escapes it: a throw inside uWS's callback would end
 * the process, so every failure becomes a JSON error (an HttpError as it is; anything else a 500
 * INTERNAL whose request id is reported to onError and sent to the client).
 */
export function exchange(
  res: HttpResponse, req: HttpRequest, paramCount: number, maxBodyBytes: number, handler: Handler,
  onError: ErrorReporter,
): void {
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  // HEAD: the GET answer's status and headers, its length, no body (RFC 9110 9.3.2).
  const head = req.getMethod().toUpperCase() === 'HEAD';
  const send = (reply: Reply, closeConnection = false): void => {
    if (aborted) return;
    try {
      res.cork(() => writeReply(res, reply, closeConnection, head));
    } catch (err) {
      // A reply uWS refused to write (e.g. the socket closed meanwhile): nothing more can be sent.
      aborted = true;
      onError(err, randomUUID());
    }
  };
  const fail = (err: unknown): void => {
    let e: HttpError;
    if (err instanceof HttpError) {
      e = err;
    } else {
      const requestId = randomUUID();
      onError(err, requestId);
      e = new HttpError(500, 'INTERNAL', `internal error (request id ${requestId})`, true, requestId);
    }
    send({ status: e.status, json: errorBody(e), headers: e.headers });
  };
  let info: RequestInfo;
  try {
    info = readRequest(req, paramCount);
  } catch (err) {
    fail(err);
    return;
  }
  const run = (): void => {
    Promise.resolve()
      .then(() => handler(info))
      .then((reply) => send(reply), fail)
      .catch((err) => onError(err, randomUUID()));
  };
  if (info.method !== 'POST' && info.method !== 'PUT' && info.method !== 'PATCH') {
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

function writeReply(res: HttpResponse, reply: Reply, closeConnection: boolean, head: boolean): void {
  const status = reply.status ?? 200;
  res.writeStatus(STATUS_TEXT[status] ?? `${status} Status`);
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
  res.writeHeader('x-content-type-options', 'nosniff');
  if ('json' in reply) {
    res.writeHeader('content-type', 'application/json; charset=utf-8');
    res.writeHeader('cache-control', 'no-store');
    const body = JSON.stringify(reply.json);
    if (head) res.endWithoutBody(Buffer.byteLength(body), closeConnection);
    else res.end(body, closeConnection);
  } else {
    res.writeHeader('content-type', reply.contentType);
    if (head) res.endWithoutBody(typeof reply.body === 'string' ? Buffer.byteLength(reply.body) : reply.body.byteLength, closeConnection);
    else res.end(reply.body, closeConnection);
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
