import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { buildTraffic } from './support/traffic.ts';
import { VIGIL, startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';

const START = Date.UTC(2026, 10, 27, 6);
let dir: string;
let partA: string;
let partB: string;
let whole: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-daemon-'));
  const lines = buildTraffic({
    startMs: START, minutes: 160, viewsPerSecond: 12, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }],
  });
  // Cut in the middle of the outage: the incident is open when the first daemon stops.
  const cut = Math.floor(lines.length * (85 / 160));
  partA = join(dir, 'a.ndjson');
  partB = join(dir, 'b.ndjson');
  whole = join(dir, 'whole.ndjson');
  writeFileSync(partA, lines.slice(0, cut).join('\n') + '\n');
  writeFileSync(partB, lines.slice(cut).join('\n') + '\n');
  writeFileSync(whole, lines.join('\n') + '\n');
});

after(killLeftoverDaemons);

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

function records(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

test('SIGTERM drains and checkpoints; a restart continues the open incident; the audit file equals replay', async () => {
  const data = join(dir, 'data');
  const audit = join(dir, 'audit.ndjson');
  const base = { VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_SOURCE: 'file' };

  const first = startDaemon({ ...base, VIGIL_SOURCE_FILE: partA });
  await waitFor('the incident to open', () => records(audit).some((r) => r.type === 'opened' && r.property_id === 'alpha'));
  await waitFor('the file to be read', () => /vigil running/.test(first.stderr()));
  assert.equal(await stop(first.child), 0, first.stderr());
  assert.match(first.stderr(), /checkpoint written/);
  assert.ok(readdirSync(join(data, 'checkpoints')).some((d) => existsSync(join(data, 'checkpoints', d, 'manifest.json'))));
  assert.ok(existsSync(join(data, 'incidents.db')));

  const second = startDaemon({ ...base, VIGIL_SOURCE_FILE: partB });
  await waitFor('the incident to resolve', () => records(audit).some((r) => r.type === 'resolved' && r.property_id === 'alpha'));
  assert.match(second.stderr(), /engine restored from checkpoint/);
  assert.match(second.stderr(), /continuing open incidents from the store/);
  assert.equal(await stop(second.child), 0, second.stderr());

  const got = records(audit);
  const alpha = got.filter((r) => r.property_id === 'alpha' && r.scope === 'property');
  assert.deepEqual(alpha.map((r) => r.type), ['opened', 'resolved']);
  assert.equal(alpha[0].incident_id, alpha[1].incident_id);
  const replayed = spawnSync(process.execPath, [VIGIL, 'replay', whole], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(replayed.status, 0, replayed.stderr);
  assert.equal(readFileSync(audit, 'utf8'), replayed.stdout);
});

test('a checkpoint of 1 worker restores into 2; one of other key groups is refused with the reason; stdin source; bad config exits 2', async () => {
  const data = join(dir, 'data2');
  const audit = join(dir, 'audit2.ndjson');
  const first = startDaemon({ VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '1', VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: partA });
  await waitFor('the incident to open', () => records(audit).some((r) => r.type === 'opened'));
  assert.equal(await stop(first.child), 0);
  const regrouped = startDaemon({ VIGIL_DATA_DIR: data, VIGIL_WORKERS: '2', VIGIL_KEY_GROUPS: '64', VIGIL_SOURCE: 'stdin', VIGIL_CHECKPOINTS: 'true' });
  await waitFor('start', () => /vigil running/.test(regrouped.stderr()));
  assert.match(regrouped.stderr(), /written for 128 key groups, the configuration has 64 \(VIGIL_KEY_GROUPS\)[^"]*","msg":"checkpoint refused/);
  assert.match(regrouped.stderr(), /no usable checkpoint: starting with empty kernel state/);
  // Killed, not stopped: its own empty checkpoint must not replace the one of 128 groups.
  regrouped.child.kill('SIGKILL');
  await new Promise((r) => regrouped.child.once('exit', r));
  const second = startDaemon({ VIGIL_DATA_DIR: data, VIGIL_WORKERS: '2', VIGIL_SOURCE: 'stdin' });
  await waitFor('start', () => /vigil running/.test(second.stderr()));
  assert.match(second.stderr(), /"writtenBy":1,"workers":2,[^\n]*"msg":"restoring checkpoint"/);
  assert.match(second.stderr(), /engine restored from checkpoint/);
  assert.equal(await stop(second.child), 0);

  const bad = spawnSync(process.execPath, [VIGIL, 'run'], { encoding: 'utf8', env: { PATH: process.env.PATH, VIGIL_SOURCE: 'nope', VIGIL_KEY_GROUPS: '0' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /VIGIL_SOURCE: expected one of demo, file, stdin/);
  assert.match(bad.stderr, /VIGIL_KEY_GROUPS/);
});
