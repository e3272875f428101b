// Unit tests of the cluster's incident view (src/cluster/): ids from identities, the mirror's rules,
// the outbox and the IncidentManager's mirrored transitions.
// Two in-memory stores stand for two nodes; the transitions topic is the outbox's rows passed along.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Verdict, VerdictKind } from '../src/kernel/verdict.ts';
import type { IncidentTransition } from '../src/incidents/incident.ts';
import { IncidentManager } from '../src/incidents/incident-manager.ts';
import { openIncidentStore, type IncidentStore } from '../src/incidents/incident-store.ts';
import { clusterIncidentId, decodeTransitionRecord, incidentIdentity } from '../src/cluster/transition-record.ts';
import { TransitionsMirror } from '../src/cluster/transitions-mirror.ts';
import { TransitionsOutbox } from '../src/cluster/transitions-outbox.ts';

const T0 = Date.UTC(2026, 11, 7, 3, 0, 0);
const MIN = 60_000;
const TOPIC = 'c.transitions';
const log = pino({ level: 'silent' });

function verdict(kind: VerdictKind, atMs: number, errorType = 'networkError'): Verdict {
  return {
    kind, scope: 'property', propertyId: '177', videoTitle: null, errorType, atMs, errorRatio: 0.2, thresholdRatio: 0.1, baselineRatio: 0.05,
    windowViews: 1200, windowFailures: 240, windowSpanMs: 10 * MIN, minWindowViews: 1000, viewsPerHour: 5000, impactedViews: 240, openedAtMs: atMs,
  };
}

/** One node: a store numbering by identity, its outbox, its mirror and its manager. */
interface TestNode {
  store: IncidentStore;
  outbox: TransitionsOutbox;
  mirror: TransitionsMirror;
  manager: IncidentManager;
  seen: IncidentTransition[];
  /** Offset of the next record this node reads from the shared topic. */
  read: number;
}

function node(name: string): TestNode {
  const store = openIncidentStore(':memory:');
  store.useClusterIdentity(clusterIncidentId, 'cluster:c', name);
  const outbox = new TransitionsOutbox(store, name, TOPIC, log);
  const mirror = new TransitionsMirror(store, name, log);
  const manager = new IncidentManager({ store, logger: log, beforeCommit: outbox.beforeCommit, sharedStore: { toleranceMs: 10_000 } });
  // As a cluster node's task engines do at start: open incidents come back with their tasks.
  manager.release(() => true);
  const seen: IncidentTransition[] = [];
  manager.subscribe((t) => seen.push(t));
  return { store, outbox, mirror, manager, seen, read: 0 };
}

/** The shared topic: every record either node published, in order. */
const topic: Buffer[] = [];

/** Moves a node's outbox rows to the topic (what the publisher does). */
function publish(n: TestNode): void {
  const rows = n.store.database.prepare('SELECT seq, record FROM cluster_outbox ORDER BY seq').all() as Array<{ seq: number; record: string }>;
  for (const r of rows) topic.push(Buffer.from(r.record));
  n.store.database.prepare('DELETE FROM cluster_outbox').run();
}

/** A node reads the topic from where it is (what its mirror consumer does); returns what changed its store. */
function catchUp(n: TestNode): IncidentTransition[] {
  const records = topic.slice(n.read).map((value, i) => ({ offset: n.read + i, value }));
  n.read = topic.length;
  const changed = n.mirror.applyBatch(TOPIC, 0, records);
  n.manager.mirrored(changed);
  return changed;
}

test('cluster ids: the same from the identity alone, growing with the opening second, safe and canonical for the API', () => {
  const fields = { scope: 'property' as const, propertyId: '177', videoTitle: null, errorType: 'networkError', openedAtMs: T0 };
  assert.equal(clusterIncidentId(fields), clusterIncidentId({ ...fields }));
  assert.notEqual(clusterIncidentId(fields), clusterIncidentId({ ...fields, errorType: 'drmError' }));
  assert.ok(clusterIncidentId({ ...fields, openedAtMs: T0 + 1000 }) > clusterIncidentId({ ...fields, errorType: 'zzz' }));
  assert.ok(Number.isSafeInteger(clusterIncidentId(fields)) && String(clusterIncidentId(fields)).length <= 16);
  assert.equal(incidentIdentity(fields), 'property|177||networkError|' + T0);
});

test('two nodes: one derives, the other mirrors; the same ids and states; duplicates and old records change nothing', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  a.manager.applyBatch([verdict('open', T0)]);
  a.manager.applyBatch([verdict('update', T0 + 2 * MIN)]);
  publish(a);
  assert.equal(catchUp(b).length, 2);
  const id = a.manager.openIncidents()[0].id;
  assert.equal(id, clusterIncidentId({ ...verdict('open', T0), openedAtMs: T0 }));
  assert.deepEqual(b.store.get(id), a.store.get(id));
  assert.equal(b.store.nodeOf(id), 'a');
  assert.equal(b.seen.length, 2);
  assert.ok(b.seen.every((t) => t.mirroredFrom === 'a'));
  assert.deepEqual(b.store.timeline(id).map((s) => s.atMs), a.store.timeline(id).map((s) => s.atMs));
  // The position moved with the records: reading again from the start (a duplicate topic) changes nothing.
  assert.equal(b.mirror.position(TOPIC, 0), 2);
  b.read = 0;
  assert.equal(catchUp(b).length, 0);
  // A record published twice (a crash between the ack and the outbox delete) changes nothing either.
  topic.push(topic[1]);
  assert.equal(catchUp(b).length, 0);
  a.manager.applyBatch([verdict('resolve', T0 + 5 * MIN)]);
  publish(a);
  catchUp(b);
  assert.deepEqual(b.store.get(id), a.store.get(id));
  assert.equal(b.store.get(id)!.status, 'resolved');
  // An update older than the close (a task's previous owner, late): closed stays closed.
  const stale = JSON.parse(topic[1].toString());
  stale.node = 'c';
  topic.push(Buffer.from(JSON.stringify(stale)));
  assert.equal(catchUp(b).length, 0);
  assert.equal(b.store.get(id)!.status, 'resolved');
  assert.equal(a.read, 0);
  catchUp(a);
  assert.equal(a.mirror.stats.applied, 0, 'a node\'s own records are in its store already');
});

test('a task moves: the new owner re-derives the opening and continues the same incident (no second incident, no second opened)', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  a.manager.applyBatch([verdict('open', T0), verdict('update', T0 + MIN)]);
  publish(a);
  catchUp(b);
  const id = a.manager.openIncidents()[0].id;
  // b restored a checkpoint from before the opening: it derives it again, then what a never saw.
  const out = b.manager.applyBatch([verdict('open', T0), verdict('update', T0 + MIN), verdict('update', T0 + 2 * MIN), verdict('resolve', T0 + 3 * MIN)]);
  assert.deepEqual(out.map((t) => [t.type, t.incident.id]), [['updated', id], ['resolved', id]]);
  assert.equal(b.manager.stats.opened, 0);
  assert.equal(b.store.list().incidents.length, 1);
  publish(b);
  catchUp(a);
  assert.equal(a.store.get(id)!.status, 'resolved');
  assert.equal(a.manager.openIncidents().length, 0);
  // a let go of it: its own verdicts for the key no longer go to that incident.
  assert.equal(a.store.nodeOf(id), 'b');
});


test('a moved task\'s first update of an incident open in the store continues it', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  a.manager.applyBatch([verdict('open', T0), verdict('update', T0 + MIN)]);
  publish(a);
  catchUp(b);
  const id = a.manager.openIncidents()[0].id;
  const out = b.manager.applyBatch([verdict('update', T0 + MIN), verdict('update', T0 + 2 * MIN)]);
  assert.deepEqual(out.map((t) => [t.type, t.incident.id]), [['updated', id]]);
  assert.equal(b.manager.stats.orphanUpdates, 0);
});


test('an opening of an incident closed already (the new owner re-derives a finished one): nothing until after its close', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  a.manager.applyBatch([verdict('open', T0), verdict('resolve', T0 + 3 * MIN)]);
  publish(a);
  catchUp(b);
  const out = b.manager.applyBatch([verdict('open', T0), verdict('update', T0 + MIN), verdict('resolve', T0 + 3 * MIN), verdict('open', T0 + 10 * MIN)]);
  assert.deepEqual(out.map((t) => t.type), ['opened']);
  assert.equal(b.store.list().incidents.length, 2);
});


test('one open incident per key: a new opening ends another node\'s open incident of the key, the same way on every node', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  const c = node('c');
  a.manager.applyBatch([verdict('open', T0), verdict('update', T0 + 2 * MIN)]);
  publish(a);
  catchUp(b);
  catchUp(c);
  // b took the key over without its state (no checkpoint): it opens a new incident later.
  const out = b.manager.applyBatch([verdict('open', T0 + 20 * MIN)]);
  assert.deepEqual(out.map((t) => t.type), ['opened']);
  publish(b);
  catchUp(a);
  catchUp(c);
  for (const n of [a, b, c]) {
    assert.deepEqual(n.store.list().incidents.map((i) => [i.id, i.status, i.closedAtMs]), b.store.list().incidents.map((i) => [i.id, i.status, i.closedAtMs]));
  }
  assert.deepEqual(b.store.list().incidents.map((i) => [i.status, i.closedAtMs]), [['open', null], ['expired', T0 + 2 * MIN]]);
  // a let go of its incident: the store closed it.
  assert.deepEqual(a.manager.openIncidentsOf(() => true), []);
});
test('a silence on any node is the cluster\'s: the deriving node takes it and its later transitions carry it', () => {
  topic.length = 0;
  const a = node('a');
  const b = node('b');
  a.manager.applyBatch([verdict('open', T0)]);
  publish(a);
  catchUp(b);
  const id = a.manager.openIncidents()[0].id;
  assert.equal(b.manager.silence(id)!.notifications, 'silenced');
  publish(b);
  catchUp(a);
  assert.equal(a.store.get(id)!.notifications, 'silenced');
  assert.equal(a.store.nodeOf(id), 'a', 'still a\'s own incident');
  const [t] = a.manager.applyBatch([verdict('update', T0 + 2 * MIN)]);
  assert.equal(t.incident.notifications, 'silenced');
});

test('the outbox is written in the transaction of the transitions: a batch that rolls back leaves nothing to publish', () => {
  const store = openIncidentStore(':memory:');
  store.useClusterIdentity(clusterIncidentId, 'cluster:c', 'a');
  const outbox = new TransitionsOutbox(store, 'a', TOPIC, log);
  let fail = true;
  const manager = new IncidentManager({ store, logger: log, beforeCommit: (t) => {
    outbox.beforeCommit(t);
    if (fail) throw new Error('disk full');
  } });
  assert.throws(() => manager.applyBatch([verdict('open', T0)]), /disk full/);
  assert.equal(outbox.pending(), 0);
  assert.equal(store.list().incidents.length, 0);
  fail = false;
  manager.applyBatch([verdict('open', T0)]);
  assert.equal(outbox.pending(), 1);
});

test('records that cannot be read are skipped and counted; the position still moves past them', () => {
  const b = node('b');
  const changed = b.mirror.applyBatch(TOPIC, 3, [{ offset: 0, value: Buffer.from('{"v":99}') }, { offset: 1, value: Buffer.from('nope') }]);
  assert.equal(changed.length, 0);
  assert.equal(b.mirror.stats.unreadable, 2);
  assert.equal(b.mirror.position(TOPIC, 3), 2);
  assert.match(String(decodeTransitionRecord(Buffer.from('{"v":99}'))), /version 99/);
});
