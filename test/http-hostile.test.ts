// Hostile requests against the real server of a real `vigil run`: nothing a client sends may end the
// process, every handler failure is a JSON error, and ids in paths are decimal only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, killLeftoverDaemons, loggedHttpPort } from './support/daemon-process.ts';
import { waitUntil } from './support/services-env.ts';
import { Prng } from '../src/generate/prng.ts';

let daemon: ReturnType<typeof startDaemon>;
let port = 0;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hostile-'));
  // stdin is closed at once: the daemon runs with an idle source, which is all the HTTP side needs.
  daemon = startDaemon({ VIGIL_DATA_DIR: join(dir, 'data'), VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '1' });
  await waitUntil('the daemon to listen', () => loggedHttpPort(daemon.stderr()) !== null, 30_000);
  port = loggedHttpPort(daemon.stderr())!;
});
after(killLeftoverDaemons);

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends raw bytes as one request on a fresh connection; resolves with the parsed response, or null when the server closed without one or the time ran out. */
function raw(request: Buffer | string, timeoutMs = 2000): Promise<RawResponse | null> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (r: RawResponse | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(parse()), timeoutMs);
    const parse = (): RawResponse | null => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      // An answer to HEAD has the GET answer's Content-Length and no body (RFC 9110 9.3.2).
      const head = (typeof request === 'string' ? request : request.toString('latin1', 0, 5)).startsWith('HEAD ');
      const length = head ? 0 : Number(headers['content-length'] ?? 0);
      const body = all.subarray(end + 4);
      if (body.length < length) return null;
      return { status: Number(statusLine.split(' ')[1]), headers, body: body.subarray(0, length).toString('utf8') };
    };
    socket.on('data', (d) => {
      chunks.push(d);
      const r = parse();
      if (r) finish(r);
    });
    socket.on('error', () => finish(parse()));
    socket.on('close', () => finish(parse()));
    socket.write(request);
  });
}

const get = (target: string, method = 'GET', extra = '') => raw(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Content-Length: 0\r\n\r\n`);

async function stillAnswers(): Promise<void> {
  assert.equal(daemon.child.exitCode, null, `the daemon exited:\n${daemon.stderr().slice(-3000)}`);
  const r = await get('/healthz');
  assert.equal(r?.status, 200, 'the daemon answers /healthz');
}

function jsonError(r: RawResponse | null, where: string): { code: string; message: string } {
  assert.ok(r, `${where}: an answer`);
  assert.match(r.headers['content-type'] ?? '', /application\/json/, `${where}: JSON`);
  const body = JSON.parse(r.body);
  assert.equal(typeof body.error?.code, 'string', `${where}: {"error":{"code"}}`);
  return body.error;
}

test('the URLs that used to end the process are 4xx JSON errors; the daemon still answers', async () => {
  const cases: Array<[string, string]> = [
    ['GET', '/static/%'], ['GET', '/static/%ZZ'], ['GET', '/static/%C0%AF'], ['GET', '/static/%ED%A0%80'],
    ['GET', '/api/incidents/%'], ['GET', '/api/properties/%FF/error-rates'], ['POST', '/api/incidents/%ZZ/silence'],
    ['POST', '/api/incidents/%/unsilence'], ['GET', '/api/properties/%E0%80/error-rates'],
  ];
  for (const [method, path] of cases) {
    const r = await get(path, method);
    assert.ok(r && r.status >= 400 && r.status < 500, `${method} ${path}: ${r?.status} ${r?.body}`);
    jsonError(r, `${method} ${path}`);
  }
  await stillAnswers();
});

test('ids in paths are decimal only', async () => {
  for (const id of ['0x10', '1e1', '+1', '%201', '1.0', '0b1', '0o7', '010', 'Infinity', '9007199254740993', '-1', '0']) {
    const r = await get(`/api/incidents/${id}`);
    assert.ok(r && (r.status === 400 || r.status === 404), `/api/incidents/${id}: ${r?.status} ${r?.body}`);
    jsonError(r, `/api/incidents/${id}`);
    const s = await get(`/api/incidents/${id}/silence`, 'POST');
    assert.ok(s && (s.status === 400 || s.status === 404), `POST /api/incidents/${id}/silence: ${s?.status} ${s?.body}`);
  }
  for (const q of ['limit=0x10', 'cursor=0x10', 'limit=1e1', 'cursor=+5', 'limit=%205']) {
    const r = await get(`/api/incidents?${q}`);
    assert.equal(r?.status, 400, `/api/incidents?${q}: ${r?.status} ${r?.body}`);
  }
  // A plain decimal id of an incident that does not exist is a 404.
  assert.equal((await get('/api/incidents/16'))?.status, 404);
  await stillAnswers();
});

// Malformed pieces a fuzzer combines: broken and overlong percent-encodings, surrogates, NULs,
// traversal, ids in every notation, very long segments.
const PIECES = [
  '%', '%Z', '%ZZ', '%1', '%FF', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', '%E0%80', '%00', '%2F', '%25', '%%', '%u0041',
  '..', '.', '//', ';', ',', '~', '!', '$', '&', "'", '(', '*', '+', '=', '@', ':', '[', ']', '|', '\\', '^', '`', '{', '}',
  '0x10', '1e3', '-1', '0', '00012', '9999999999999999999999', '1.5', 'NaN', 'Infinity', encodeURIComponent('\u00e9\u{1F600}'),
  'incidents', 'silence', 'unsilence', 'error-rates', 'static', 'api', 'properties', 'feed', 'app.css', 'index.html',
];
const PREFIXES = [
  '/', '/api/incidents/', '/api/incidents', '/api/properties/', '/static/', '/incidents/', '/properties/', '/api/commands',
  '/feed', '/healthz', '/readyz', '/metrics', '/api/openapi.json', '/api/', '/x',
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'];
const QUERY_KEYS = ['status', 'scope', 'property_id', 'error_type', 'from', 'to', 'limit', 'cursor', 'access_token', 'property', 'x'];
const HEADER_VALUES = ['Bearer %ZZ', 'Bearer ', 'Basic Zm9vOmJhcg==', 'bearer x', '\u00ff\u00fe', 'a'.repeat(2000), '', ' ', 'Bearer admin-token-0123456789'];

function pick<T>(rnd: Prng, xs: readonly T[]): T {
  return xs[Math.floor(rnd.next() * xs.length)];
}

function fuzzSegment(rnd: Prng): string {
  let s = '';
  const n = 1 + Math.floor(rnd.next() * 4);
  // Visible ASCII only: the request line stays HTTP, so the router (not uWS's parser) sees every case.
  for (let i = 0; i < n; i++) s += rnd.next() < 0.8 ? pick(rnd, PIECES) : String.fromCharCode(33 + Math.floor(rnd.next() * 94));
  return s;
}

function fuzzRequest(rnd: Prng): Buffer {
  const method = pick(rnd, METHODS);
  let path = pick(rnd, PREFIXES);
  const segments = Math.floor(rnd.next() * 4);
  for (let i = 0; i < segments; i++) path += (i > 0 || path.endsWith('/') ? '' : '/') + fuzzSegment(rnd) + (rnd.next() < 0.5 ? '/' : '');
  if (rnd.next() < 0.5) {
    const params: string[] = [];
    const n = 1 + Math.floor(rnd.next() * 4);
    for (let i = 0; i < n; i++) params.push(`${rnd.next() < 0.8 ? pick(rnd, QUERY_KEYS) : fuzzSegment(rnd)}=${fuzzSegment(rnd)}`);
    path += `?${params.join(rnd.next() < 0.9 ? '&' : ';')}`;
  }
  const headers: string[] = ['Host: 127.0.0.1'];
  if (rnd.next() < 0.4) headers.push(`Authorization: ${pick(rnd, HEADER_VALUES)}`);
  if (rnd.next() < 0.2) headers.push(`Content-Type: ${pick(rnd, ['application/json', 'text/plain', '%ZZ', '\u00ff', ''])}`);
  if (rnd.next() < 0.2) headers.push(`X-${fuzzSegment(rnd).replace(/[^A-Za-z0-9-]/g, 'a')}: ${pick(rnd, HEADER_VALUES)}`);
  let body = '';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    body = pick(rnd, ['', '{', '{"command":"status"}', '{"command":"%ZZ","args":{"incident_id":"0x10"}}', '[]', 'null', '\u00ff'.repeat(50), '{"id":1}']);
  }
  const bytes = Buffer.from(body, 'latin1');
  // The declared length is the real one: a short body would only make the server wait for the rest.
  headers.push(`Content-Length: ${bytes.length}`);
  return Buffer.concat([Buffer.from(`${method} ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'), bytes]);
}

test('fuzz: thousands of malformed paths, percent-encodings, queries, headers and methods; no 5xx, JSON errors, the daemon still answers', async () => {
  const rnd = new Prng(20261206, 12);
  const CASES = 5000;
  const deadline = Date.now() + 90_000;
  const statuses = new Map<number, number>();
  let answered = 0;
  let sent = 0;
  let next = 0;
  const failures: string[] = [];
  const requests = Array.from({ length: CASES }, () => fuzzRequest(rnd));
  const worker = async () => {
    while (next < requests.length && Date.now() < deadline) {
      const req = requests[next++];
      sent++;
      const r = await raw(req);
      if (r === null) {
        failures.push(`${req.toString('latin1').split('\r\n')[0]} -> no answer`);
        continue;
      }
      answered++;
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const line = req.toString('latin1').split('\r\n')[0];
      if (r.status >= 500) failures.push(`${line} -> ${r.status} ${r.body}`);
      if (r.status >= 400 && /application\/json/.test(r.headers['content-type'] ?? '') && !line.startsWith('HEAD ')) {
        try {
          const body = JSON.parse(r.body);
          if (typeof body.error?.code !== 'string') failures.push(`${line} -> ${r.status} without error.code: ${r.body}`);
        } catch {
          failures.push(`${line} -> ${r.status} invalid JSON: ${r.body}`);
        }
      }
      if (daemon.child.exitCode !== null) break;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await stillAnswers();
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} bad answers`);
  assert.ok(sent >= 1000, `at least 1000 requests within the time bound (sent ${sent})`);
  assert.equal(answered, sent, `every request answered: ${JSON.stringify([...statuses])}`);
});

test('requests that are not well-formed HTTP (NUL bytes, no target, unknown methods, bare LF, huge headers, garbage) do not end the process', async () => {
  const garbage: Array<Buffer | string> = [
    'GET  HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /api/incidents/\u00001 HTTP/1.1\r\n\r\n',
    'GET /static/\u00ff\u00fe HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\nHost: x\n\n', 'GET /\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n',
    '\r\n\r\n', 'HELLO\r\n\r\n', ' / HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nX: ' + 'a'.repeat(64 * 1024) + '\r\n\r\n',
    'GET / HTTP/1.1\r\n' + 'X-A: b\r\n'.repeat(500) + '\r\n', 'GET /' + 'a'.repeat(100_000) + ' HTTP/1.1\r\n\r\n',
    'POST /api/commands HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}', 'POST /api/commands HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}',
    'POST /api/commands HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 'POST /api/commands HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'POST /api/incidents/%ZZ/silence HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /static/%E0%80 HTTP/1.1\r\nHost: x\r\nX: \u00ff\u00fe\r\nConnection: keep-alive\r\n\r\nGET /static/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /feed HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'get /api/incidents/%ZZ HTTP/1.1\r\n\r\n', 'FOO /static/%ZZ HTTP/1.1\r\n\r\n', 'G\u00e9T / HTTP/1.1\r\n\r\n',
    'GET /feed?access_token=%ZZ HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %%%\r\nSec-WebSocket-Version: 13\r\n\r\n',
  ];
  const rnd = new Prng(7, 12);
  for (let i = 0; i < 40; i++) garbage.push(Buffer.from(Array.from({ length: 1 + rnd.int(300) }, () => rnd.int(256))));
  // uWS may drop or hold such connections: bounded waits, in parallel.
  await Promise.all(garbage.map((g) => raw(g, 1000)));
  await stillAnswers();
});

test('a second vigil run on a taken port fails at start naming the port; the first keeps every request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hostile-2-'));
  const second = startDaemon({ VIGIL_DATA_DIR: join(dir, 'data'), VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '1', VIGIL_HTTP_PORT: String(port) });
  const code = await second.exit;
  assert.equal(code, 1, second.stderr());
  assert.match(second.stderr(), new RegExp(`vigil: cannot listen on 127\\.0\\.0\\.1:${port}: port ${port} is in use`));
  assert.doesNotMatch(second.stderr(), /\n\s+at /, 'no stack trace');
  // Had both bound the port (SO_REUSEPORT), the kernel would have spread these over the two.
  for (let i = 0; i < 20; i++) assert.equal((await get('/healthz'))?.status, 200);
  await stillAnswers();
});
