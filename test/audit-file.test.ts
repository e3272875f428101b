// The audit file (VIGIL_TRANSITIONS_FILE) and the incident store agree across a crash: a process killed
// after a transaction's commit and before its lines reached the file (the restart derives those
// transitions again, finds them stored and does not publish them again) gets the lines from the store
// at its next start, once each, a line cut short included. A real SQLite store and a real file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Verdict, VerdictKind } from '../src/kernel/verdict.ts';
import type { IncidentTransition } from '../src/incidents/incident.ts';
import { IncidentManager } from '../src/incidents/incident-manager.ts';
import { openIncidentStore, type IncidentStore } from '../src/incidents/incident-store.ts';
import { AuditFile } from '../src/incidents/audit-file.ts';
import { toReplayRecord } from '../src/incidents/replay-record.ts';

const T0 = Date.UTC(2026, 11, 7);
const MIN = 60_000;

function verdict(kind: VerdictKind, atMs: number, propertyId: string): Verdict {
  return {
    kind, scope: 'property', propertyId, videoTitle: null, errorType: 'networkError', atMs,
    errorRatio: 0.224, thresholdRatio: 0.147, baselineRatio: 0.05, windowViews: 1200, windowFailures: 269,
    windowSpanMs: 10 * MIN, minWindowViews: 1000, viewsPerHour: 5486, impactedViews: 269, openedAtMs: atMs,
  };
}

/** A store, its audit file and a manager wired as the daemon wires them; `writing` off is a process killed after the commit. */
function open(dir: string) {
  const store: IncidentStore = openIncidentStore(join(dir, 'incidents.db'));
  const audit = new AuditFile(join(dir, 'audit.ndjson'), store.database);
  const recovered = audit.recover();
  const manager = new IncidentManager({ store, logger: pino({ level: 'silent' }), beforeCommit: audit.beforeCommit });
  const state = { writing: true };
  manager.subscribe((t) => { if (state.writing) audit.write(t); });
  return { store, audit, manager, state, recovered };
}

const lineOf = (t: IncidentTransition) => { const r = toReplayRecord(t); return r ? JSON.stringify(r) + '\n' : ''; };

test('killed between a commit and the file\'s write: the next start appends the lines the store has, once; a clean close leaves nothing to append', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
  const file = join(dir, 'audit.ndjson');
  let expected = '';
  const a = open(dir);
  assert.equal(a.recovered, 0);
  expected += a.manager.applyBatch([verdict('open', T0, 'p1'), verdict('open', T0, 'p2')]).map(lineOf).join('');
  // The process dies after this batch's commit: its lines never reach the file.
  a.state.writing = false;
  const lost = a.manager.applyBatch([verdict('resolve', T0 + 5 * MIN, 'p1'), verdict('open', T0 + 5 * MIN, 'p3')]);
  expected += lost.map(lineOf).join('');
  assert.equal(lost.length, 2);
  assert.notEqual(readFileSync(file, 'utf8'), expected, 'the file lacks the last batch');
  a.store.close(); // no audit.close(): a kill

  const b = open(dir);
  assert.equal(b.recovered, 2, 'the two lines the file lacked');
  assert.equal(readFileSync(file, 'utf8'), expected);
  expected += b.manager.applyBatch([verdict('resolve', T0 + 9 * MIN, 'p2')]).map(lineOf).join('');
  assert.equal(readFileSync(file, 'utf8'), expected);
  b.audit.close();
  b.store.close();

  const c = open(dir);
  assert.equal(c.recovered, 0, 'after a clean close the file has every line');
  assert.equal(readFileSync(file, 'utf8'), expected);
  c.audit.close();
  c.store.close();
});

test('a line cut short by the kill is written again from its start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
  const file = join(dir, 'audit.ndjson');
  const a = open(dir);
  let expected = a.manager.applyBatch([verdict('open', T0, 'p1')]).map(lineOf).join('');
  a.state.writing = false;
  const cut = a.manager.applyBatch([verdict('open', T0 + MIN, 'p2'), verdict('open', T0 + MIN, 'p3')]).map(lineOf);
  expected += cut.join('');
  appendFileSync(file, cut[0].slice(0, 25));
  a.store.close();

  const b = open(dir);
  assert.equal(b.recovered, 2);
  assert.equal(readFileSync(file, 'utf8'), expected);
  b.audit.close();
  b.store.close();
});
