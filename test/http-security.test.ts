import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, connectFeed, verdict, waitFor, T0, type Harness, type FeedClient } from './support/http-harness.ts';
import { loadConfig, ConfigError } from '../src/config/config.ts';

const ADMIN = 'admin-token-0123456789';
const READER_A = 'reader-a-0123456789ab';
const READER_AC = 'reader-ac-0123456789a';

let h: Harness;
before(async () => {
  h = await startHarness({ VIGIL_ADMIN_TOKEN: ADMIN, VIGIL_READ_TOKENS: `${READER_A}=A;${READER_AC}=A,C` });
});
after(() => h.close());

const call = async (path: string, token: string | null, init: RequestInit = {}) => {
  const res = await fetch(h.base + path, { ...init, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.json() };
};

test('with no tokens the server refuses to listen beyond loopback, and says why at start', () => {
  assert.throws(() => loadConfig({ VIGIL_HTTP_HOST: '0.0.0.0' }), (err: unknown) =>
    err instanceof ConfigError && err.problems.some((p) => /VIGIL_HTTP_HOST: refusing to listen on 0\.0\.0\.0 \(beyond loopback\) with no tokens/.test(p)));
  assert.equal(loadConfig({ VIGIL_HTTP_HOST: '0.0.0.0', VIGIL_ADMIN_TOKEN: ADMIN }).http.host, '0.0.0.0');
  assert.equal(loadConfig({}).http.host, '127.0.0.1');
  assert.throws(() => loadConfig({ VIGIL_ADMIN_TOKEN: 'short', VIGIL_READ_TOKENS: 'x', VIGIL_HTTP_PORT: '-1' }), (err: unknown) =>
    err instanceof ConfigError && ['VIGIL_ADMIN_TOKEN', 'VIGIL_READ_TOKENS', 'VIGIL_HTTP_PORT'].every((n) => err.problems.some((p) => p.startsWith(n))));
});

test('tokens from a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-tokens-'));
  const file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify({ admin: [ADMIN], read: { [READER_A]: ['A'] } }));
  const c = loadConfig({ VIGIL_TOKENS_FILE: file });
  assert.equal(c.http.tokens.get(ADMIN)?.admin, true);
  assert.deepEqual([...c.http.tokens.get(READER_A)!.properties!], ['A']);
  writeFileSync(file, '{"read":{"t":"A"}}');
  assert.throws(() => loadConfig({ VIGIL_TOKENS_FILE: file }), /VIGIL_TOKENS_FILE/);
});

test('API: no token 401, read token 403 on admin actions, admin may do everything', async () => {
  h.manager.applyBatch([verdict('open', T0, { propertyId: 'A' }), verdict('open', T0, { propertyId: 'B' })]);
  const none = await call('/api/incidents', null);
  assert.equal(none.status, 401);
  assert.equal(none.body.error.code, 'UNAUTHORIZED');
  assert.equal((await call('/api/incidents', 'wrong-token-0123456789')).status, 401);
  const forbidden = await call('/api/incidents/1/silence', READER_A, { method: 'POST' });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.error.code, 'FORBIDDEN');
  assert.equal((await call('/api/commands', READER_A, { method: 'POST', body: '{"command":"status"}' })).status, 403);
  assert.equal((await call('/api/incidents', ADMIN)).body.incidents.length, 2);
  assert.equal((await call('/api/incidents/2/silence', ADMIN, { method: 'POST' })).status, 200);
  // Health and metrics stay open for probes and scrapers; they carry no property data.
  assert.equal((await fetch(h.base + '/healthz')).status, 200);
  assert.equal((await fetch(h.base + '/metrics')).status, 200);
  assert.doesNotMatch(await (await fetch(h.base + '/metrics')).text(), /"B"|property_id/);
});

test('a token for property A never receives anything about property B, on the API and on the feed', async () => {
  const feedA = await connectFeed(h.wsBase, `?access_token=${READER_A}`);
  const feedAC = await connectFeed(h.wsBase, '', { authorization: `Bearer ${READER_AC}` });
  const admin = await connectFeed(h.wsBase, `?access_token=${ADMIN}`);
  await assert.rejects(connectFeed(h.wsBase, ''), /401/);
  await assert.rejects(connectFeed(h.wsBase, `?access_token=${READER_A}&property=B`), /403/);

  // Transitions of every kind for B (and C), interleaved with A's.
  h.manager.applyBatch([verdict('open', T0 + 60_000, { propertyId: 'C' }), verdict('update', T0 + 60_000, { propertyId: 'B', errorRatio: 0.5 })]);
  h.manager.silence(2);
  h.manager.unsilence(2);
  h.manager.applyBatch([verdict('resolve', T0 + 120_000, { propertyId: 'B' }), verdict('update', T0 + 120_000, { propertyId: 'A', errorRatio: 0.3 })]);
  h.manager.applyBatch([verdict('open', T0 + 180_000, { propertyId: 'B', errorType: 'decodeError' }), verdict('resolve', T0 + 180_000, { propertyId: 'A' })]);
  await waitFor('the admin to see every transition', () => admin.messages.some((m) => m.type === 'opened' && m.incident.error_type === 'decodeError'));
  await waitFor('reader A to see A resolve', () => feedA.messages.some((m) => m.type === 'resolved'));
  await waitFor('reader A,C to see A resolve', () => feedAC.messages.some((m) => m.type === 'resolved'));

  const props = (c: FeedClient) => new Set(c.messages.flatMap((m) => (m.incident ? [m.incident.property_id] : (m.incidents ?? []).map((i: { property_id: string }) => i.property_id))));
  assert.deepEqual([...props(feedA)].sort(), ['A']);
  assert.deepEqual([...props(feedAC)].sort(), ['A', 'C']);
  assert.deepEqual([...props(admin)].sort(), ['A', 'B', 'C']);
  for (const c of [feedA, feedAC]) assert.doesNotMatch(JSON.stringify(c.messages), /"B"/);
  // Subscribing to B over the socket is refused too.
  feedA.ws.send(JSON.stringify({ type: 'subscribe', property_id: 'B' }));
  await waitFor('the refusal', () => feedA.messages.some((m) => m.type === 'error'));
  assert.equal(feedA.messages.at(-1)!.error.code, 'FORBIDDEN');

  const listA = await call('/api/incidents', READER_A);
  assert.deepEqual([...new Set(listA.body.incidents.map((i: { property_id: string }) => i.property_id))], ['A']);
  const listAC = await call('/api/incidents?limit=1', READER_AC);
  assert.equal(listAC.body.incidents[0].property_id, 'C');
  const page2 = await call(`/api/incidents?limit=5&cursor=${listAC.body.next_cursor}`, READER_AC);
  assert.deepEqual(page2.body.incidents.map((i: { property_id: string }) => i.property_id), ['A']);
  assert.equal((await call('/api/incidents?property_id=B', READER_A)).body.incidents.length, 0);
  const b = await call('/api/incidents/2', READER_A);
  assert.equal(b.status, 404, 'another property\'s incident looks missing');
  assert.equal((await call('/api/properties/B/error-rates', READER_A)).status, 404);
  assert.equal((await call('/api/properties/A/error-rates', READER_A)).status, 200);
  for (const c of [feedA, feedAC, admin]) c.ws.close();
});
