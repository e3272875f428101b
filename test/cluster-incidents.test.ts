// The incident manager as a cluster node uses it: each task's verdicts under their own scope
// (progress and replay window), a task's open incidents taken over from its checkpoint (adopt),
// released when the task leaves, and a released incident that is over making room for the key's next.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import type { Verdict, VerdictKind } from '../src/kernel/verdict.ts';
import type { IncidentTransition } from '../src/incidents/incident.ts';
import { IncidentManager } from '../src/incidents/incident-manager.ts';
import { openIncidentStore } from '../src/incidents/incident-store.ts';

const T0 = Date.UTC(2026, 10, 27, 0, 0, 0);
const MIN = 60_000;
const TICK = 10_000;
const logger = pino({ level: 'silent' });

function verdict(kind: VerdictKind, atMs: number, propertyId = 'a'): Verdict {
  return {
    kind, scope: 'property', propertyId, videoTitle: null, errorType: 'networkError', atMs, errorRatio: 0.2, thresholdRatio: 0.1,
    baselineRatio: 0.05, windowViews: 1200, windowFailures: 240, windowSpanMs: 10 * MIN, minWindowViews: 1000, viewsPerHour: 5000,
    impactedViews: 240, openedAtMs: atMs,
  };
}

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function storePath(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-cluster-incidents-'));
  dirs.push(d);
  return join(d, 'incidents.db');
}

function manager(path: string): { m: IncidentManager; seen: IncidentTransition[]; notified: IncidentTransition[]; close: () => void } {
  const store = openIncidentStore(path);
  const notified: IncidentTransition[] = [];
  const m = new IncidentManager({ store, logger, beforeCommit: (ts) => { notified.push(...ts); } });
  const seen: IncidentTransition[] = [];
  m.subscribe((t) => seen.push(t));
  return { m, seen, notified, close: () => store.close() };
}

const types = (ts: IncidentTransition[]) => ts.map((t) => `${t.type} ${t.incident.propertyId} +${(t.incident.openedAtMs - T0) / MIN}m`);

test('each task replays its own tail: another task\'s newer verdicts do not end its window', () => {
  const path = storePath();
  const first = manager(path);
  first.m.applyBatch([verdict('open', T0, 'a')], 'topic:0');
  first.m.applyBatch([verdict('resolve', T0 + 5 * MIN, 'a')], 'topic:0');
  first.m.applyBatch([verdict('open', T0 + 20 * MIN, 'b')], 'topic:1');
  assert.equal(first.m.latestVerdictMs('topic:0'), T0 + 5 * MIN);
  assert.equal(first.m.latestVerdictMs('topic:1'), T0 + 20 * MIN);
  first.close();

  // A restart: both tasks restored from checkpoints behind the store (task 0 before its incident).
  const again = manager(path);
  again.m.replayAfterRestore(T0 - MIN, TICK, 'topic:0');
  again.m.replayAfterRestore(T0 + 10 * MIN, TICK, 'topic:1');
  again.m.applyBatch([verdict('open', T0 + 20 * MIN, 'b')], 'topic:1');
  // Task 1 runs ahead of task 0's tail...
  again.m.applyBatch([verdict('resolve', T0 + 30 * MIN, 'b')], 'topic:1');
  // ... which task 0 then re-derives: recognised, neither stored nor published again.
  again.m.applyBatch([verdict('open', T0, 'a')], 'topic:0');
  again.m.applyBatch([verdict('resolve', T0 + 5 * MIN, 'a')], 'topic:0');
  assert.deepEqual(types(again.seen), ['resolved b +20m']);
  assert.equal(again.m.list().incidents.length, 2);
  again.close();
});

test('a task\'s open incident taken over from its checkpoint: stored without a transition, closed here by its resolve', () => {
  const elsewhere = manager(storePath());
  elsewhere.m.applyBatch([verdict('open', T0, 'a')], 'topic:0');
  const carried = elsewhere.m.openIncidentsOf((i) => i.propertyId === 'a');
  elsewhere.close();

  const here = manager(storePath());
  const adopted = here.m.adopt('topic:0', T0 + MIN, carried, (i) => i.propertyId === 'a');
  assert.equal(adopted, 1);
  assert.deepEqual(here.seen, [], 'no transition, nothing notified: the node it opened on did');
  assert.deepEqual(here.notified, []);
  assert.equal(here.m.latestVerdictMs('topic:0'), T0 + MIN);
  here.m.applyBatch([verdict('resolve', T0 + 8 * MIN, 'a')], 'topic:0');
  assert.deepEqual(types(here.seen), ['resolved a +0m'], 'the resolution, with the opening it had on the other node');
  // Taken over again (the same identity): the store's row, not a second one.
  assert.equal(here.m.adopt('topic:0', T0 + MIN, carried, (i) => i.propertyId === 'a'), 0);
  assert.equal(here.m.list().incidents.length, 1);
  here.close();
});

test('a released incident that is over makes room for the key\'s next one, without a transition', () => {
  const here = manager(storePath());
  here.m.applyBatch([verdict('open', T0, 'a')], 'topic:0');
  // The task leaves; when it comes back its checkpoint holds no open incident (another node closed it).
  here.m.release((i) => i.propertyId === 'a');
  here.m.adopt('topic:0', T0 + 30 * MIN, [], (i) => i.propertyId === 'a');
  here.seen.length = 0;
  here.m.applyBatch([verdict('open', T0 + 40 * MIN, 'a')], 'topic:0');
  assert.deepEqual(types(here.seen), ['opened a +40m'], 'a new incident, not an update of the old one');
  const all = here.m.list().incidents.sort((x, y) => x.id - y.id);
  assert.deepEqual(all.map((i) => i.status), ['expired', 'open']);
  here.close();
});

test('a task taken back from a checkpoint older than the key\'s open incident: that incident is continued by the tail, not closed', () => {
  const here = manager(storePath());
  // The task's checkpoint is taken while the key's first incident is open...
  here.m.applyBatch([verdict('open', T0, 'a')], 'topic:0');
  const carried = here.m.openIncidentsOf((i) => i.propertyId === 'a');
  // ... then that incident resolves and the key's next one opens, and the task leaves this node.
  here.m.applyBatch([verdict('resolve', T0 + 5 * MIN, 'a')], 'topic:0');
  here.m.applyBatch([verdict('open', T0 + 20 * MIN, 'a')], 'topic:0');
  here.m.release((i) => i.propertyId === 'a');
  here.seen.length = 0;
  // The task comes back from that checkpoint (as a cluster task does: the replay window, then adopt).
  here.m.replayAfterRestore(T0 + MIN, TICK, 'topic:0');
  here.m.adopt('topic:0', T0 + MIN, carried, (i) => i.propertyId === 'a');
  assert.deepEqual(here.m.list().incidents.sort((x, y) => x.id - y.id).map((i) => i.status), ['resolved', 'open'],
    'the incident that opened after the checkpoint is not over');
  // Its tail read again: recognised; then the open incident's own resolution, published once.
  here.m.applyBatch([verdict('resolve', T0 + 5 * MIN, 'a')], 'topic:0');
  here.m.applyBatch([verdict('open', T0 + 20 * MIN, 'a')], 'topic:0');
  here.m.applyBatch([verdict('resolve', T0 + 30 * MIN, 'a')], 'topic:0');
  assert.deepEqual(types(here.seen), ['resolved a +20m']);
  assert.deepEqual(here.m.list().incidents.sort((x, y) => x.id - y.id).map((i) => i.status), ['resolved', 'resolved']);
  here.close();
});
