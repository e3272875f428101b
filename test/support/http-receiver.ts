/** A real HTTP receiver on 127.0.0.1 (ephemeral port) that records every request and answers as told. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** How the receiver answers: 200, 500, 429 with Retry-After, 400 with a body, or never (until release/mode change). */
export type ReceiverMode = 'ok' | 'fail500' | 'throttle429' | 'reject400' | 'never';

/** One request as received. */
export interface ReceivedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked field by field in the tests
  json: any;
  /** What the receiver answered with (0: held, never answered). */
  answered: number;
  /** When the request arrived (wall clock). */
  atMs: number;
}

export interface TestReceiver {
  url: string;
  requests: ReceivedRequest[];
  mode: ReceiverMode;
  /** Retry-After value sent with 429. */
  retryAfter: string;
  /** Answers 200 to every request held by 'never' and switches to 'ok'. */
  release(): void;
  close(): Promise<void>;
}

/** Starts a receiver; the mode can be changed at any time through the returned object. */
export async function startReceiver(mode: ReceiverMode = 'ok'): Promise<TestReceiver> {
  const held: Array<{ res: ServerResponse; req: ReceivedRequest }> = [];
  const r: TestReceiver = {
    url: '', requests: [], mode, retryAfter: '1',
    release() {
      r.mode = 'ok';
      for (const h of held.splice(0)) if (!h.res.destroyed) { h.req.answered = 200; h.res.end('ok'); }
    },
    close: () => new Promise((resolve) => { for (const h of held.splice(0)) h.res.destroy(); server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown = null;
      try { json = JSON.parse(body); } catch { /* recorded as text */ }
      const rec: ReceivedRequest = { path: req.url ?? '', headers: req.headers, body, json, answered: 0, atMs: Date.now() };
      r.requests.push(rec);
      const answer = (status: number, text: string, headers: Record<string, string> = {}) => { rec.answered = status; res.writeHead(status, headers).end(text); };
      switch (r.mode) {
        case 'ok': return answer(200, 'ok');
        case 'fail500': return answer(500, 'internal error');
        case 'throttle429': return answer(429, 'slow down', { 'retry-after': r.retryAfter });
        case 'reject400': return answer(400, 'invalid_payload: no such channel');
        case 'never': held.push({ res, req: rec }); return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as { port: number };
  r.url = `http://127.0.0.1:${addr.port}`;
  return r;
}
