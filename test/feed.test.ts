import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHarness, connectFeed, verdict, waitFor, T0 } from './support/http-harness.ts';
import { UpdateThrottle } from '../src/http/update-throttle.ts';
import { CLOSE_TOO_SLOW } from '../src/http/feed-hub.ts';
import type { IncidentTransition } from '../src/incidents/incident.ts';

const tr = (type: IncidentTransition['type'], id: number, atMs = 0) => ({ type, atMs, incident: { id } }) as unknown as IncidentTransition;

test('update throttle: at most one update per incident per interval, the latest wins, opened/closed pass at once', () => {
  let now = 0;
  const t = new UpdateThrottle(3000, () => now);
  assert.deepEqual(t.offer(tr('opened', 1)).map((x) => x.type), ['opened']);
  assert.deepEqual(t.offer(tr('updated', 1, 10)), []);
  now = 1000;
  assert.deepEqual(t.offer(tr('updated', 1, 20)), []);
  assert.deepEqual(t.due(), []);
  now = 3000;
  assert.deepEqual(t.due().map((x) => x.atMs), [20]);
  assert.deepEqual(t.due(), []);
  now = 4000;
  assert.deepEqual(t.offer(tr('updated', 1, 30)), []);
  assert.deepEqual(t.offer(tr('resolved', 1, 40)).map((x) => x.type), ['resolved']);
  now = 10_000;
  assert.deepEqual(t.due(), [], 'a pending update is dropped once its incident closed');
  assert.deepEqual(t.offer(tr('updated', 2, 50)).map((x) => x.atMs), [50], 'an incident opened before the feed started');
});

test('feed: snapshot on connect, then opened/updated/silenced/unsilenced/resolved/expired deltas; subscribe to one property', async () => {
  const h = await startHarness();
  try {
    h.manager.applyBatch([verdict('open', T0, { propertyId: 'A' })]);
    const all = await connectFeed(h.wsBase);
    const onlyB = await connectFeed(h.wsBase, '?property=B');
    assert.equal(all.messages[0].type, 'snapshot');
    assert.deepEqual(all.messages[0].incidents.map((i: { id: number }) => i.id), [1]);
    assert.deepEqual(onlyB.messages[0].incidents, []);
    h.manager.applyBatch([verdict('open', T0 + 10_000, { propertyId: 'B' }), verdict('update', T0 + 10_000, { propertyId: 'A', errorRatio: 0.3 })]);
    h.manager.silence(2);
    h.manager.unsilence(2);
    h.manager.applyBatch([verdict('resolve', T0 + 20_000, { propertyId: 'A' }), verdict('expire', T0 + 20_000, { propertyId: 'B' })]);
    await waitFor('all deltas', () => all.messages.length === 7);
    assert.deepEqual(all.messages.map((m) => `${m.type}:${m.incident?.id ?? '-'}`), ['snapshot:-', 'opened:2', 'updated:1', 'silenced:2', 'unsilenced:2', 'resolved:1', 'expired:2']);
    assert.equal(all.messages[2].incident.current.error_ratio, 0.3);
    await waitFor('B deltas', () => onlyB.messages.length === 5);
    assert.deepEqual(onlyB.messages.map((m) => m.type), ['snapshot', 'opened', 'silenced', 'unsilenced', 'expired']);
    onlyB.ws.send(JSON.stringify({ type: 'subscribe', property_id: null }));
    await waitFor('the new snapshot', () => onlyB.messages.length === 7);
    assert.deepEqual(onlyB.messages.slice(5).map((m) => m.type), ['subscribed', 'snapshot']);
    onlyB.ws.send('not json');
    await waitFor('the error', () => onlyB.messages.length === 8);
    assert.equal(onlyB.messages[7].error.code, 'BAD_JSON');
    all.ws.close();
    onlyB.ws.close();
  } finally {
    h.close();
  }
});

test('feed: updates are coalesced per incident within the interval', async () => {
  const h = await startHarness({ VIGIL_FEED_UPDATE_MS: '600000' });
  try {
    const c = await connectFeed(h.wsBase);
    h.manager.applyBatch([verdict('open', T0)]);
    for (let k = 1; k <= 20; k++) h.manager.applyBatch([verdict('update', T0 + k * 10_000, { errorRatio: 0.2 + k / 100 })]);
    h.manager.applyBatch([verdict('resolve', T0 + 300_000)]);
    await waitFor('the resolve', () => c.messages.some((m) => m.type === 'resolved'));
    assert.deepEqual(c.messages.map((m) => m.type), ['snapshot', 'opened', 'resolved']);
    c.ws.close();
  } finally {
    h.close();
  }
});

test('slow clients: hundreds of clients, some never reading, are dropped with a close code and buffers stay bounded', async () => {
  const bound = 64 * 1024;
  const h = await startHarness({ VIGIL_FEED_MAX_BUFFERED_BYTES: String(bound) });
  const sockets: WebSocket[] = [];
  try {
    const N = 300;
    const STALLED = 100;
    const closes = new Map<WebSocket, number>();
    let readerMessages = 0;
    for (let k = 0; k < N; k++) {
      const ws = new WebSocket(`${h.wsBase}/feed`);
      sockets.push(ws);
      ws.on('close', (code) => closes.set(ws, code));
      if (k >= STALLED) ws.on('message', () => { readerMessages++; });
    }
    await Promise.all(sockets.map((ws) => new Promise((r) => ws.once('open', r))));
    await waitFor('every client registered', () => h.server.feed.clientCount === N);
    // Stalled clients stop reading from their TCP sockets: their bytes pile up in the server.
    for (const ws of sockets.slice(0, STALLED)) (ws as unknown as { _socket: { pause(): void } })._socket.pause();

    // Big deltas (long titles) until every stalled client has been dropped; bounded in count.
    const title = 'T'.repeat(4000);
    let maxBuffered = 0;
    let at = T0;
    for (let round = 0; round < 2000 && h.server.feed.stats.dropped < STALLED; round++) {
      at += 10_000;
      h.manager.applyBatch([verdict(round === 0 ? 'open' : 'update', at, { scope: 'title', videoTitle: title, errorRatio: 0.5 })]);
      maxBuffered = Math.max(maxBuffered, h.server.feed.bufferedBytes());
      // Let the event loop run so readers read and the kernel's socket buffers fill for the stalled ones.
      if (round % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(h.server.feed.stats.dropped, STALLED, 'exactly the stalled clients are dropped');
    // One message past the bound at most per client: memory is bounded by clients x (bound + message).
    assert.ok(maxBuffered <= N * (bound + 8192), `buffered ${maxBuffered} bytes`);
    assert.equal(h.server.feed.clientCount, N - STALLED);
    // The readers got everything; the stalled ones see the close code once they read again.
    for (const ws of sockets.slice(0, STALLED)) (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await waitFor('the stalled clients to see their close', () => sockets.slice(0, STALLED).every((ws) => closes.has(ws)), 60_000);
    assert.ok(sockets.slice(0, STALLED).every((ws) => closes.get(ws) === CLOSE_TOO_SLOW), `close codes: ${[...new Set(closes.values())]}`);
    assert.ok(readerMessages > 0);
    assert.equal(sockets.slice(STALLED).filter((ws) => closes.has(ws)).length, 0, 'no reading client was dropped');
  } finally {
    for (const ws of sockets) ws.terminate();
    h.close();
  }
});
