import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { Verdict, VerdictKind } from '../src/kernel/verdict.ts';
import type { Incident, IncidentTransition } from '../src/incidents/incident.ts';
import { IncidentError } from '../src/incidents/incident-error.ts';
import { incidentKey } from '../src/incidents/incident-key.ts';
import { IncidentManager } from '../src/incidents/incident-manager.ts';
import type { IncidentManagerOptions } from '../src/incidents/incident-manager-options.ts';
import { INCIDENT_SCHEMA_VERSION } from '../src/incidents/incident-schema.ts';
import { formatErrorPercent, formatIncidentSummary } from '../src/incidents/incident-summary.ts';
import { openIncidentStore } from '../src/incidents/incident-store.ts';
import type { IncidentStore } from '../src/incidents/incident-store.ts';
import { toReplayRecord } from '../src/incidents/replay-record.ts';

const T0 = Date.UTC(2017, 2, 7, 7, 25, 0);
const SEC = 1000;
const MIN = 60 * SEC;

interface KeyParts {
  scope?: Verdict['scope'];
  propertyId?: string;
  videoTitle?: string | null;
  errorType?: string;
}

/** A verdict for the property-level networkError key of property 177 unless told otherwise. */
function verdict(kind: VerdictKind, atMs: number, fields: Partial<Verdict> & KeyParts = {}): Verdict {
  const scope = fields.scope ?? 'property';
  return {
    kind,
    scope,
    propertyId: '177',
    videoTitle: scope === 'title' ? 'Enlace' : null,
    errorType: 'networkError',
    atMs,
    errorRatio: 0.224,
    thresholdRatio: 0.147,
    baselineRatio: 0.05,
    windowViews: 1200,
    windowFailures: 269,
    windowSpanMs: 10 * MIN,
    minWindowViews: 1000,
    viewsPerHour: 5486,
    impactedViews: 269,
    openedAtMs: atMs,
    ...fields,
  };
}

/** A pino logger writing into an array, so tests see exactly what was logged. */
function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

function memoryManager(options: Partial<IncidentManagerOptions> = {}) {
  const store = openIncidentStore(':memory:');
  const { logger, lines } = captureLogger();
  const manager = new IncidentManager({ store, logger, ...options });
  const seen: IncidentTransition[] = [];
  manager.subscribe((t) => seen.push(t));
  return { store, manager, seen, lines };
}

const summary = (ts: readonly IncidentTransition[]) => ts.map((t) => `${t.type}#${t.incident.id}@${(t.atMs - T0) / SEC}s`);

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
function tempStorePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-incidents-'));
  tempDirs.push(dir);
  return join(dir, 'nested', 'incidents.sqlite');
}

describe('incident lifecycle', () => {
  test('open, updates, resolve: transitions in order, figures and timeline kept', () => {
    const { manager, seen } = memoryManager();
    assert.deepEqual(summary(manager.applyBatch([verdict('open', T0)])), ['opened#1@0s']);
    manager.applyBatch([verdict('update', T0 + 10 * SEC, { errorRatio: 0.3, windowViews: 1500, viewsPerHour: 6000, impactedViews: 400 })]);
    manager.applyBatch([verdict('update', T0 + 70 * SEC, { errorRatio: 0.25, impactedViews: 600 })]);
    const closed = manager.applyBatch([verdict('resolve', T0 + 12 * MIN, { errorRatio: 0.04, windowViews: 1100, impactedViews: 670 })]);

    assert.deepEqual(summary(seen), ['opened#1@0s', 'updated#1@10s', 'updated#1@70s', 'resolved#1@720s']);
    assert.deepEqual(closed[0].incident, manager.get(1));
    const incident = manager.get(1) as Incident;
    assert.equal(incident.status, 'resolved');
    assert.equal(incident.openedAtMs, T0);
    assert.equal(incident.closedAtMs, T0 + 12 * MIN);
    assert.equal(incident.initialErrorRatio, 0.224);
    assert.equal(incident.initialViewsPerHour, 5486);
    assert.equal(incident.thresholdRatio, 0.147);
    assert.equal(incident.minWindowViews, 1000);
    assert.equal(incident.currentErrorRatio, 0.04);
    assert.equal(incident.currentWindowViews, 1100);
    assert.equal(incident.impactedViews, 670);
    assert.equal(incident.notifications, 'on');
    // 10 s is inside the 60 s sampling step; 70 s is not; the resolve always records its final figures.
    assert.deepEqual(
      manager.timeline(1).map((s) => [(s.atMs - T0) / SEC, s.errorRatio]),
      [[0, 0.224], [70, 0.25], [720, 0.04]],
    );
    assert.deepEqual(manager.openIncidents(), []);
    assert.equal(manager.stats.opened, 1);
    assert.equal(manager.stats.updated, 2);
    assert.equal(manager.stats.resolved, 1);
  });

  test('expire verdict closes as expired; verdicts for keys without an open incident are counted, not created', () => {
    const { manager, seen } = memoryManager();
    manager.applyBatch([
      verdict('update', T0),
      verdict('resolve', T0),
      verdict('open', T0 + 10 * SEC, { scope: 'title' }),
    ]);
    manager.applyBatch([verdict('expire', T0 + 30 * MIN, { scope: 'title', impactedViews: 97 })]);
    assert.deepEqual(summary(seen), ['opened#1@10s', 'expired#1@1800s']);
    assert.equal(manager.get(1)?.status, 'expired');
    assert.equal(manager.get(1)?.closedAtMs, T0 + 30 * MIN);
    assert.equal(manager.stats.orphanUpdates, 1);
    assert.equal(manager.stats.orphanCloses, 1);
    assert.equal(manager.list().incidents.length, 1);
  });

  test('an open verdict for a key that is already open continues that incident', () => {
    const { manager, seen } = memoryManager();
    manager.applyBatch([verdict('open', T0, { impactedViews: 300 })]);
    manager.applyBatch([verdict('update', T0 + 5 * MIN, { impactedViews: 500 })]);
    // The detector restarted without state and opened the key again, counting impact from zero.
    manager.applyBatch([verdict('open', T0 + 20 * MIN, { errorRatio: 0.31, impactedViews: 40 })]);
    manager.applyBatch([verdict('update', T0 + 21 * MIN, { impactedViews: 90 })]);
    assert.deepEqual(summary(seen), ['opened#1@0s', 'updated#1@300s', 'updated#1@1200s', 'updated#1@1260s']);
    const open = manager.openIncidents();
    assert.equal(open.length, 1);
    assert.equal(open[0].id, 1);
    assert.equal(open[0].openedAtMs, T0, 'keeps the original trigger');
    assert.equal(open[0].initialErrorRatio, 0.224);
    assert.equal(open[0].impactedViews, 590);
    assert.equal(manager.stats.continued, 1);
  });

  test('a failing batch keeps nothing, in the store or in memory', () => {
    const { manager, seen } = memoryManager();
    const bad = verdict('open', T0, { scope: 'bogus' as Verdict['scope'] });
    assert.throws(() => manager.applyBatch([verdict('open', T0), bad]), /CHECK constraint/);
    assert.deepEqual(seen, []);
    assert.deepEqual(manager.list().incidents, []);
    manager.applyBatch([verdict('update', T0 + 10 * SEC)]);
    assert.equal(manager.stats.orphanUpdates, 1, 'the rolled-back open is not remembered');
    assert.deepEqual(summary(manager.applyBatch([verdict('open', T0 + 20 * SEC)])), ['opened#1@20s']);
  });

  test('a batch that failed while the store could not even be read is applied again exactly as if it had never failed', () => {
    const batches = [
      [verdict('open', T0), verdict('open', T0, { scope: 'title' })],
      [verdict('update', T0 + MIN), verdict('open', T0 + MIN, { propertyId: '178' }), verdict('resolve', T0 + MIN, { scope: 'title' })],
      [verdict('update', T0 + 2 * MIN, { propertyId: '178' }), verdict('resolve', T0 + 2 * MIN)],
    ];
    const control = memoryManager();
    for (const b of batches) control.manager.applyBatch(b);
    // The same batches against a store that fails, reads included, on every second attempt of each batch.
    let failing = false;
    const subject = memoryManager({ beforeCommit: () => { if (failing) throw new Error('database disk image is malformed'); } });
    const store = subject.store as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const name of ['openIncidents', 'tracking', 'timelineExtent', 'get']) {
      const real = store[name].bind(subject.store);
      store[name] = (...a: unknown[]) => { if (failing) throw new Error('database disk image is malformed'); return real(...a); };
    }
    for (const b of batches) {
      failing = true;
      assert.throws(() => subject.manager.applyBatch(b), /malformed/);
      failing = false;
      subject.manager.applyBatch(b);
    }
    assert.deepEqual(subject.seen, control.seen);
    assert.deepEqual(subject.manager.stats, control.manager.stats);
    assert.deepEqual(subject.manager.list().incidents, control.manager.list().incidents);
  });

  test('expireStale expires only incidents that heard nothing for maxSilenceMs', () => {
    const { manager, seen } = memoryManager();
    manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title' })]);
    manager.applyBatch([verdict('update', T0 + 20 * MIN)]);
    assert.deepEqual(manager.expireStale(T0 + 30 * MIN - 1, 30 * MIN), []);
    const expired = manager.expireStale(T0 + 30 * MIN, 30 * MIN);
    assert.deepEqual(summary(expired), ['expired#2@1800s']);
    assert.deepEqual(seen.at(-1), expired[0]);
    assert.equal(manager.get(2)?.closedAtMs, T0 + 30 * MIN);
    assert.deepEqual(manager.openIncidents().map((i) => i.id), [1]);
    assert.equal(manager.stats.staleExpired, 1);
    // A later verdict for the expired key is an orphan, not a resurrection.
    manager.applyBatch([verdict('update', T0 + 31 * MIN, { scope: 'title' })]);
    assert.equal(manager.stats.orphanUpdates, 1);
  });

  test('silence and unsilence persist and publish; the isSilenced hook applies at open', () => {
    const { manager, seen } = memoryManager({ isSilenced: (i) => i.scope === 'title' });
    manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title' })]);
    assert.deepEqual(manager.openIncidents().map((i) => i.notifications), ['on', 'silenced']);
    assert.equal(manager.silence(1)?.notifications, 'silenced');
    assert.equal(manager.get(1)?.notifications, 'silenced');
    assert.equal(manager.unsilence(2)?.notifications, 'on');
    assert.equal(manager.unsilence(2)?.notifications, 'on', 'no change, no transition');
    assert.equal(manager.silence(99), null);
    assert.deepEqual(summary(seen), ['opened#1@0s', 'opened#2@0s', 'updated#1@0s', 'updated#2@0s']);
    // The live copy follows, so the next update does not undo the silence.
    manager.applyBatch([verdict('update', T0 + 10 * SEC)]);
    assert.equal(manager.get(1)?.notifications, 'silenced');
  });

  test('a throwing silence matcher is logged and the incident notifies', () => {
    const { manager, lines } = memoryManager({
      isSilenced: () => {
        throw new Error('bad matcher');
      },
    });
    manager.applyBatch([verdict('open', T0)]);
    assert.equal(manager.get(1)?.notifications, 'on');
    assert.equal(lines.filter((l) => l.msg === 'silence matcher failed; incident notifies').length, 1);
  });
});

describe('listeners', () => {
  test('a throwing listener is logged and does not stop the others; unsubscribe stops delivery', () => {
    const { manager, seen, lines } = memoryManager();
    manager.subscribe(() => {
      throw new Error('listener broke');
    });
    const late: string[] = [];
    const unsubscribe = manager.subscribe((t) => late.push(t.type));
    manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title' })]);
    assert.deepEqual(summary(seen), ['opened#1@0s', 'opened#2@0s']);
    assert.deepEqual(late, ['opened', 'opened']);
    assert.equal(manager.stats.listenerErrors, 2);
    const errors = lines.filter((l) => l.msg === 'incident listener failed');
    assert.deepEqual(errors.map((l) => [l.incidentId, l.transition, (l.err as { message: string }).message]), [
      [1, 'opened', 'listener broke'],
      [2, 'opened', 'listener broke'],
    ]);
    unsubscribe();
    unsubscribe();
    manager.applyBatch([verdict('update', T0 + MIN)]);
    assert.deepEqual(late, ['opened', 'opened']);
    assert.equal(seen.length, 3);
  });

  test('transitions are frozen snapshots', () => {
    const { manager, seen } = memoryManager();
    manager.applyBatch([verdict('open', T0)]);
    manager.applyBatch([verdict('update', T0 + MIN, { errorRatio: 0.5 })]);
    assert.equal(seen[0].incident.currentErrorRatio, 0.224);
    assert.throws(() => {
      (seen[0].incident as Incident).status = 'resolved';
    }, TypeError);
  });
});

describe('timeline bounds', () => {
  test('one sample per step, every update still published', () => {
    const { manager, seen } = memoryManager({ timelineSampleMs: 60 * SEC });
    manager.applyBatch([verdict('open', T0)]);
    for (let t = 10; t <= 300; t += 10) manager.applyBatch([verdict('update', T0 + t * SEC)]);
    assert.equal(seen.length, 31);
    assert.deepEqual(manager.timeline(1).map((s) => (s.atMs - T0) / SEC), [0, 60, 120, 180, 240, 300]);
  });

  test('a full timeline is thinned to every other sample and its step doubles; the bound holds across a restart', () => {
    const path = tempStorePath();
    const { logger } = captureLogger();
    let store = openIncidentStore(path);
    let manager = new IncidentManager({ store, logger, timelineSampleMs: MIN, maxTimelineSamples: 8 });
    manager.applyBatch([verdict('open', T0)]);
    for (let m = 1; m <= 8; m++) manager.applyBatch([verdict('update', T0 + m * MIN)]);
    // Samples 0..7 filled the timeline; minute 8 thinned it to 0,2,4,6 and was appended.
    assert.deepEqual(manager.timeline(1).map((s) => (s.atMs - T0) / MIN), [0, 2, 4, 6, 8]);
    store.close();

    store = openIncidentStore(path);
    manager = new IncidentManager({ store, logger, timelineSampleMs: MIN, maxTimelineSamples: 8 });
    for (let m = 9; m <= 40; m++) manager.applyBatch([verdict('update', T0 + m * MIN)]);
    manager.applyBatch([verdict('resolve', T0 + 41 * MIN)]);
    const minutes = manager.timeline(1).map((s) => (s.atMs - T0) / MIN);
    assert.ok(minutes.length <= 8, `at most 8 samples, got ${minutes.join(',')}`);
    assert.equal(minutes[0], 0, 'the opening sample survives thinning');
    assert.equal(minutes.at(-1), 41, 'the final sample is kept');
    assert.deepEqual(minutes, [0, 8, 16, 24, 32, 40, 41]);
    store.close();
  });
});

describe('durable store', () => {
  test('after a restore, a re-derived tail is recognised: an earlier incident of a key that is open again is not merged into the open one', () => {
    // Before the crash: incident 1 of the key opened and resolved, incident 2 of the same key opened
    // and still open. The checkpoint restored is older than all of it, so the tail derives it again.
    const { store, manager, seen } = memoryManager();
    manager.applyBatch([verdict('open', T0), verdict('update', T0 + MIN)]);
    manager.applyBatch([verdict('resolve', T0 + 9 * MIN)]);
    manager.applyBatch([verdict('open', T0 + 35 * MIN), verdict('update', T0 + 36 * MIN)]);
    const before = seen.length;
    const restarted = new IncidentManager({ store, logger: captureLogger().logger });
    const again: IncidentTransition[] = [];
    restarted.subscribe((t) => again.push(t));
    restarted.replayAfterRestore(T0 - MIN, 10 * SEC);
    restarted.applyBatch([verdict('open', T0), verdict('update', T0 + MIN)]);
    restarted.applyBatch([verdict('resolve', T0 + 9 * MIN)]);
    restarted.applyBatch([verdict('open', T0 + 35 * MIN), verdict('update', T0 + 36 * MIN)]);
    assert.deepEqual(summary(again), [], 'nothing stored or published twice');
    assert.equal(restarted.get(1)?.status, 'resolved');
    assert.equal(restarted.get(1)?.closedAtMs, T0 + 9 * MIN);
    assert.equal(restarted.get(2)?.status, 'open', 'the open incident is not closed by the earlier one\'s resolution');
    assert.equal(restarted.get(2)?.openedAtMs, T0 + 35 * MIN);
    // Past the store's progress, verdicts apply again, to the open incident.
    restarted.applyBatch([verdict('resolve', T0 + 45 * MIN)]);
    assert.deepEqual(summary(again), ['resolved#2@2700s']);
    assert.equal(seen.length, before);

    // A checkpoint taken while incident 1 was open: its opening is in the restored state, only the
    // rest of its life is derived again, and must not land on the open incident 3 of the key.
    const { store: store2, manager: first } = memoryManager();
    first.applyBatch([verdict('open', T0), verdict('update', T0 + MIN)]);
    first.applyBatch([verdict('resolve', T0 + 9 * MIN)]);
    first.applyBatch([verdict('open', T0 + 35 * MIN), verdict('update', T0 + 36 * MIN)]);
    const second = new IncidentManager({ store: store2, logger: captureLogger().logger });
    const again2: IncidentTransition[] = [];
    second.subscribe((t) => again2.push(t));
    second.replayAfterRestore(T0 + 30 * SEC, 10 * SEC);
    second.applyBatch([verdict('update', T0 + MIN), verdict('resolve', T0 + 9 * MIN)]);
    second.applyBatch([verdict('open', T0 + 35 * MIN), verdict('update', T0 + 36 * MIN)]);
    assert.deepEqual(summary(again2), []);
    assert.equal(second.get(2)?.status, 'open');
  });

  test('ids are monotonic across restarts, open incidents continue, nothing is lost', () => {
    const path = tempStorePath();
    const { logger, lines } = captureLogger();
    let store = openIncidentStore(path);
    assert.ok(existsSync(path), 'parent directory created');
    let manager = new IncidentManager({ store, logger });
    manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title' })]);
    manager.applyBatch([verdict('resolve', T0 + 5 * MIN, { scope: 'title' })]);
    manager.silence(1);
    assert.ok(existsSync(`${path}-wal`), 'WAL journal in use');
    store.close();
    store.close();

    store = openIncidentStore(path);
    manager = new IncidentManager({ store, logger });
    assert.equal(lines.at(-1)?.openIncidents, 1);
    const seen: IncidentTransition[] = [];
    manager.subscribe((t) => seen.push(t));
    manager.applyBatch([
      verdict('update', T0 + 6 * MIN, { impactedViews: 700 }),
      verdict('open', T0 + 6 * MIN, { scope: 'title' }),
      verdict('open', T0 + 6 * MIN, { errorType: 'decodeError' }),
    ]);
    assert.deepEqual(summary(seen), ['updated#1@360s', 'opened#3@360s', 'opened#4@360s']);
    assert.equal(manager.get(1)?.impactedViews, 700);
    assert.equal(manager.get(1)?.notifications, 'silenced', 'silence survives the restart');
    assert.equal(manager.get(2)?.status, 'resolved');
    assert.deepEqual(manager.timeline(1).map((s) => (s.atMs - T0) / MIN), [0, 6]);
    store.close();

    // AUTOINCREMENT: even a deleted newest row's id is never handed out again.
    const raw = new Database(path);
    assert.equal(raw.pragma('user_version', { simple: true }), INCIDENT_SCHEMA_VERSION);
    raw.prepare('DELETE FROM timeline_samples WHERE incident_id = 4').run();
    raw.prepare('DELETE FROM incidents WHERE id = 4').run();
    raw.close();
    store = openIncidentStore(path);
    manager = new IncidentManager({ store, logger });
    assert.deepEqual(summary(manager.applyBatch([verdict('open', T0 + 7 * MIN, { errorType: 'timeout' })])), ['opened#5@420s']);
    store.close();
  });

  test('an installation id is made with the database, kept across opens, different in every data directory, and added to an older database', () => {
    const path = tempStorePath();
    const first = openIncidentStore(path);
    const id = first.installationId;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    first.close();
    const again = openIncidentStore(path);
    assert.equal(again.installationId, id);
    again.close();
    const other = openIncidentStore(tempStorePath());
    assert.notEqual(other.installationId, id);
    other.close();
    // A database of schema version 2 (before installation ids) gets one when it is opened.
    const old = tempStorePath();
    const raw = openIncidentStore(old);
    raw.database.prepare("DELETE FROM meta WHERE key = 'installation_id'").run();
    // And without what versions 4 and 5 added (the cluster's tables and column, the audit file's outbox).
    raw.database.exec('DROP TABLE cluster_outbox; DROP TABLE cluster_positions; ALTER TABLE incidents DROP COLUMN node; DROP TABLE audit_outbox');
    raw.database.pragma('user_version = 2');
    raw.close();
    const upgraded = openIncidentStore(old);
    assert.match(upgraded.installationId, /^[0-9a-f-]{36}$/);
    assert.notEqual(upgraded.installationId, id);
    upgraded.close();
  });

  test('a store written by a newer schema is refused with a stable code', () => {
    const path = tempStorePath();
    openIncidentStore(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => openIncidentStore(path), (err: unknown) => {
      assert.ok(err instanceof IncidentError);
      assert.equal(err.code, 'INCIDENT_SCHEMA_TOO_NEW');
      assert.match(err.message, new RegExp(`schema version 99; this Vigil understands up to ${INCIDENT_SCHEMA_VERSION}`));
      return true;
    });
  });

  test('one open incident per key is enforced by the store itself', () => {
    const store = openIncidentStore(':memory:');
    const { logger } = captureLogger();
    new IncidentManager({ store, logger }).applyBatch([verdict('open', T0)]);
    const copy = { ...(store.get(1) as Incident) } as Partial<Incident>;
    delete copy.id;
    assert.throws(
      () => store.insertIncident(copy as Omit<Incident, 'id'>, { impactedBaseViews: 0, timelineStepMs: MIN }),
      /UNIQUE constraint failed/,
    );
  });

  test('incident keys are injective even with separators in names', () => {
    const a = incidentKey({ scope: 'title', propertyId: 'a|b', videoTitle: 'c', errorType: 'e' });
    const b = incidentKey({ scope: 'title', propertyId: 'a', videoTitle: 'b|c', errorType: 'e' });
    assert.notEqual(a, b);
    assert.equal(incidentKey({ scope: 'property', propertyId: '177', videoTitle: null, errorType: 'networkError' }), 'property|177||networkError');
  });
});

describe('queries', () => {
  /** Builds the history: three occurrences of property 177 networkError, and other keys around them. */
  function history(): { manager: IncidentManager; store: IncidentStore } {
    const { manager, store } = memoryManager();
    manager.applyBatch([verdict('open', T0)]); // 1
    manager.applyBatch([verdict('open', T0 + MIN, { scope: 'title' })]); // 2
    manager.applyBatch([verdict('resolve', T0 + 23 * MIN)]);
    manager.applyBatch([verdict('open', T0 + 60 * MIN)]); // 3
    manager.applyBatch([verdict('open', T0 + 61 * MIN, { propertyId: '200' })]); // 4
    manager.applyBatch([verdict('expire', T0 + 84 * MIN)]);
    manager.applyBatch([verdict('open', T0 + 120 * MIN, { errorType: 'decodeError' })]); // 5
    manager.applyBatch([verdict('open', T0 + 180 * MIN)]); // 6
    return { manager, store };
  }

  test('other occurrences of the same key, newest first, without itself', () => {
    const { manager } = history();
    assert.deepEqual(manager.otherOccurrences(6), [
      { id: 3, status: 'expired', openedAtMs: T0 + 60 * MIN, closedAtMs: T0 + 84 * MIN, durationMs: 24 * MIN },
      { id: 1, status: 'resolved', openedAtMs: T0, closedAtMs: T0 + 23 * MIN, durationMs: 23 * MIN },
    ]);
    assert.deepEqual(manager.otherOccurrences(1).map((o) => [o.id, o.durationMs]), [[6, null], [3, 24 * MIN]]);
    assert.deepEqual(manager.otherOccurrences(6, 1).map((o) => o.id), [3]);
    assert.deepEqual(manager.otherOccurrences(2), []);
    assert.deepEqual(manager.otherOccurrences(999), []);
  });

  test('filters combine with AND', () => {
    const { manager } = history();
    const ids = (filter: Parameters<IncidentManager['list']>[0]) => manager.list(filter).incidents.map((i) => i.id);
    assert.deepEqual(ids({}), [6, 5, 4, 3, 2, 1]);
    assert.deepEqual(ids({ status: 'open' }), [6, 5, 4, 2]);
    assert.deepEqual(ids({ status: 'expired' }), [3]);
    assert.deepEqual(ids({ propertyId: '200' }), [4]);
    assert.deepEqual(ids({ scope: 'title' }), [2]);
    assert.deepEqual(ids({ errorType: 'decodeError' }), [5]);
    assert.deepEqual(ids({ openedFromMs: T0 + MIN, openedBeforeMs: T0 + 120 * MIN }), [4, 3, 2]);
    assert.deepEqual(ids({ status: 'open', propertyId: '177', scope: 'property', errorType: 'networkError' }), [6]);
  });

  test('cursor pagination walks every incident once, newest first', () => {
    const { manager } = history();
    const pages: number[][] = [];
    let cursor: number | undefined;
    for (;;) {
      const page = manager.list({ limit: 4, cursor });
      pages.push(page.incidents.map((i) => i.id));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(pages, [[6, 5, 4, 3], [2, 1]]);
    assert.deepEqual(manager.list({ limit: 3, status: 'open' }), {
      incidents: [6, 5, 4].map((id) => manager.get(id)),
      nextCursor: 4,
    });
    assert.equal(manager.list({ limit: 3, status: 'open', cursor: 4 }).nextCursor, null);
  });

  test('invalid filters are refused with the field named', () => {
    const { manager } = history();
    const refused = (filter: object, pattern: RegExp) =>
      assert.throws(() => manager.list(filter), (err: unknown) => err instanceof IncidentError && err.code === 'INCIDENT_FILTER_INVALID' && pattern.test(err.message));
    refused({ limit: 0 }, /^limit must be an integer from 1 to 500, got 0$/);
    refused({ limit: 501 }, /^limit must be/);
    refused({ cursor: 1.5 }, /^cursor must be a positive integer incident id, got 1.5$/);
    refused({ openedFromMs: Number.NaN }, /^openedFromMs must be a finite epoch ms, got NaN$/);
  });

  test('manager options are validated with precise messages', () => {
    const store = openIncidentStore(':memory:');
    const { logger } = captureLogger();
    const refused = (options: object, message: string) =>
      assert.throws(
        () => new IncidentManager({ store, logger, ...options } as IncidentManagerOptions),
        (err: unknown) => err instanceof IncidentError && err.code === 'INCIDENT_OPTION_INVALID' && err.message === message,
      );
    refused({ logger: undefined }, 'logger must have info and error methods (a pino logger)');
    refused({ store: undefined }, 'store is required');
    refused({ isSilenced: true }, 'isSilenced must be a function');
    refused({ timelineSampleMs: 0 }, 'timelineSampleMs must be a positive integer, got 0');
    refused({ maxTimelineSamples: 1 }, 'maxTimelineSamples must be an integer of at least 2, got 1');
  });
});

describe('replay record and summary', () => {
  test('records have the exact fields in the exact order', () => {
    const { manager } = memoryManager();
    const [opened] = manager.applyBatch([
      verdict('open', T0, { scope: 'title', videoTitle: 'Enlace', errorRatio: 0.86012345678, thresholdRatio: 0.1470000004, windowViews: 1203.6 }),
    ]);
    const expectedOpened = {
      type: 'opened',
      incident_id: 1,
      scope: 'title',
      property_id: '177',
      video_title: 'Enlace',
      error_type: 'networkError',
      at: '2017-03-07T07:25:00.000Z',
      error_rate: 0.860123,
      threshold: 0.147,
      views: 1204,
      opened_at: '2017-03-07T07:25:00.000Z',
    };
    assert.deepEqual(toReplayRecord(opened), expectedOpened);
    assert.equal(JSON.stringify(toReplayRecord(opened)), JSON.stringify(expectedOpened));

    manager.applyBatch([verdict('open', T0 + MIN)]);
    const [updated] = manager.applyBatch([verdict('update', T0 + 2 * MIN)]);
    assert.equal(toReplayRecord(updated), null);
    const [resolved] = manager.applyBatch([verdict('resolve', T0 + 13 * MIN, { errorRatio: 0.0312, windowViews: 1000, impactedViews: 670 })]);
    const expectedResolved = {
      type: 'resolved',
      incident_id: 2,
      scope: 'property',
      property_id: '177',
      error_type: 'networkError',
      at: '2017-03-07T07:38:00.000Z',
      error_rate: 0.0312,
      threshold: 0.147,
      views: 1000,
      opened_at: '2017-03-07T07:26:00.000Z',
      duration_ms: 12 * MIN,
      impacted_views: 670,
    };
    assert.equal(JSON.stringify(toReplayRecord(resolved)), JSON.stringify(expectedResolved));
  });

  test('summaries use the reference wording in plain text', () => {
    const { manager } = memoryManager();
    manager.applyBatch([
      verdict('open', T0, { errorRatio: 0.224 }),
      verdict('open', T0, { scope: 'title', videoTitle: 'Grupo Formula 104.1', errorRatio: 0.86 }),
    ]);
    assert.equal(formatIncidentSummary(manager.get(1) as Incident), 'Overall error-rate is significantly high (22.4%) due to an error of networkError');
    assert.equal(
      formatIncidentSummary(manager.get(2) as Incident),
      'Video Title Grupo Formula 104.1 is failing at a significant rate (86.0%) due to an error of networkError',
    );
    assert.equal(formatErrorPercent(0.2245), '22.5%');
    assert.equal(formatErrorPercent(0.147), '14.7%');
  });
});
