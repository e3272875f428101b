// Crash anywhere, file source: `vigil run` reads a file that grows segment by segment and is killed
// with SIGKILL at random points (seeded), restarted each time from its last periodic checkpoint. The
// transitions it writes must be exactly those `vigil replay` writes for the whole file (the same bytes,
// up to where the daemon's event time stops), and the incident database must agree with them: no
// incident lost, none recorded or notified twice. VIGIL_FAULT_POINTS sets the number of kills
// (`npm run test:faults` runs 24).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { assertDatabaseAgrees } from './support/incident-compare.ts';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { waitUntil } from './support/services-env.ts';
import { TestRng } from './support/detection-streams.ts';
import { generateAndReplay } from './support/demo-run.ts';
import { newestLocalCheckpoint } from './support/local-checkpoints.ts';

const POINTS = Number(process.env.VIGIL_FAULT_POINTS ?? 5);
let dir: string;
let lines: string[];
let replayed: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-crash-file-'));
  ({ lines, replayed } = generateAndReplay(dir, 2, 5));
});

after(killLeftoverDaemons);

/** The file offset the newest checkpoint covers (0 without one). */
function checkpointedOffset(data: string): number {
  return Number(newestLocalCheckpoint(data)?.positions.file ?? 0);
}

test(`a growing file, vigil run killed with SIGKILL at ${POINTS} random points: the transitions equal the replay's, the database agrees`, async () => {
  const file = join(dir, 'input.ndjson');
  const data = join(dir, 'data');
  const audit = join(dir, 'audit.ndjson');
  writeFileSync(file, '');
  const env = {
    VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: file, VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit,
    VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_CHECKPOINT_INTERVAL_MS: '1000',
  };
  const rng = new TestRng(POINTS * 7919);
  let restoredAfterKill = 0;
  for (let i = 0; i < POINTS; i++) {
    const from = Math.floor((lines.length * i) / POINTS);
    const to = Math.floor((lines.length * (i + 1)) / POINTS);
    appendFileSync(file, lines.slice(from, to).join('\n') + '\n');
    const d = startDaemon(env);
    await waitUntil('the daemon to run', () => /vigil running/.test(d.stderr()), 60_000);
    if (/engine restored from checkpoint/.test(d.stderr())) restoredAfterKill++;
    // Anywhere: while reading, between checkpoints, after a checkpoint, at the end of the file.
    await delay(rng.int(0, 2500));
    d.child.kill('SIGKILL');
    await d.exit;
  }
  assert.ok(restoredAfterKill >= POINTS - 2, `most restarts restored a checkpoint (${restoredAfterKill} of ${POINTS - 1})`);
  // Last: run until a checkpoint covers the whole file, then stop cleanly.
  const last = startDaemon(env);
  const size = statSync(file).size;
  await waitUntil('a checkpoint of the whole file', () => checkpointedOffset(data) === size, 120_000);
  last.child.kill('SIGTERM');
  assert.equal(await last.exit, 0, last.stderr());

  const got = readFileSync(audit, 'utf8');
  // The daemon's event time stops at the last record; the replay's end evaluates a little further.
  const missing = replayed.slice(got.length).split('\n').filter(Boolean);
  assert.ok(replayed.startsWith(got), `the audit file is not the replay's transitions:\n${firstDifference(got, replayed)}`);
  assert.ok(missing.length <= 6, `transitions missing at the end: ${missing.length}\n${missing.join('\n')}`);
  assert.ok(got.split('\n').filter(Boolean).length >= 40, 'the run had transitions to compare');

  // The database holds the same incidents, opened and closed at the same times, with the same ids.
  assertDatabaseAgrees(data, got);
});

function firstDifference(a: string, b: string): string {
  const al = a.split('\n');
  const bl = b.split('\n');
  for (let i = 0; i < al.length; i++) if (al[i] !== bl[i]) return `line ${i + 1}\n  got:      ${al[i]}\n  expected: ${bl[i]}`;
  return 'none';
}
