// Degraded states of a real `vigil run`: an incident database locked from outside, a full disk, a
// source that fails. Each must show on /readyz and /metrics while it lasts, lose no transition, and
// end in recovery, or in an exit with a clear message when it lasts too long.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, mkdirSync, readdirSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buildTraffic } from './support/traffic.ts';
import { VIGIL, loggedHttpPort } from './support/daemon-process.ts';
import { waitUntil } from './support/services-env.ts';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import type { Source, SourceSink } from '../src/ingest/source.ts';

const START = Date.UTC(2026, 10, 27, 6);
const LINES = buildTraffic({
  startMs: START, minutes: 160, viewsPerSecond: 12, properties: ['alpha', 'beta'],
  outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }],
});
// Minutes 0-60 (quiet), 60-100 (alpha's outage opens at ~72), 100-160 (it resolves).
const cut = (min: number) => Math.floor(LINES.length * (min / 160));
const PARTS = [LINES.slice(0, cut(60)), LINES.slice(cut(60), cut(100)), LINES.slice(cut(100))];
let dir: string;
let replayed: string;
const children: ChildProcess[] = [];
const mounts: string[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-degraded-'));
  const whole = join(dir, 'whole.ndjson');
  writeFileSync(whole, LINES.join('\n') + '\n');
  const r = spawnSync(process.execPath, [VIGIL, 'replay', whole], { encoding: 'utf8', env: { PATH: process.env.PATH }, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  replayed = r.stdout;
  assert.match(replayed, /"type":"opened".*"property_id":"alpha"/);
  assert.match(replayed, /"type":"resolved".*"property_id":"alpha"/);
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of mounts) spawnSync('umount', ['-l', m]);
});

/** `vigil run` reading stdin, which the test writes part by part. */
function daemon(env: Record<string, string>) {
  let err = '';
  const child = spawn(process.execPath, [VIGIL, 'run'], {
    env: { PATH: process.env.PATH, VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '2', VIGIL_HTTP_PORT: '0', ...env },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  children.push(child);
  child.stderr!.on('data', (d) => { err += d; });
  child.stdin!.on('error', () => {});
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let written = 0;
  const d = {
    child, exit, stderr: () => err, base: '',
    written: () => written,
    write(lines: string[]) { written += lines.length; child.stdin!.write(lines.join('\n') + '\n'); },
    async ready() {
      await waitUntil('the daemon to listen', () => loggedHttpPort(err) !== null, 30_000);
      d.base = `http://127.0.0.1:${loggedHttpPort(err)}`;
    },
    async readyz(): Promise<{ status: number; body: { ok: boolean; checks: Record<string, boolean | string> } }> {
      const res = await fetch(`${d.base}/readyz`);
      return { status: res.status, body: await res.json() as { ok: boolean; checks: Record<string, boolean | string> } };
    },
    async metric(name: string, labels = ''): Promise<number> {
      const text = await (await fetch(`${d.base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      return line === undefined ? NaN : Number(line.split(' ')[1]);
    },
    async counted(n: number, what: string, timeoutMs = 60_000) {
      await waitUntil(what, async () => (await d.metric('vigil_events_total')) === n, timeoutMs);
    },
    async command(command: string) {
      const res = await fetch(`${d.base}/api/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command }) });
      return { status: res.status, body: await res.json() as { ok?: boolean; error?: { code: string; message: string; retriable: boolean } } };
    },
  };
  return d;
}

const records = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const has = (path: string, type: string) => records(path).some((r) => r.type === type && r.property_id === 'alpha' && r.scope === 'property');

/** Holds the write lock of the database from another connection (what a backup tool or a stray sqlite3 shell does). */
function lockDatabase(path: string): () => void {
  const db = new Database(path);
  db.exec('BEGIN EXCLUSIVE');
  return () => { db.exec('ROLLBACK'); db.close(); };
}

test('a database locked from outside for longer than the busy timeout: 503 with the reason, back-pressure, then detection resumes and nothing is lost', async () => {
  const data = join(dir, 'locked');
  const audit = join(dir, 'locked.audit.ndjson');
  const d = daemon({ VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_DB_BUSY_TIMEOUT_MS: '200' });
  await d.ready();
  d.write(PARTS[0]);
  await d.counted(d.written(), 'the first hour');
  assert.equal((await d.readyz()).status, 200);

  const release = lockDatabase(join(data, 'incidents.db'));
  let released = false;
  try {
    d.write(PARTS[1]);
    await waitUntil('/readyz to report the store', async () => {
      const r = await d.readyz();
      return r.status === 503 && /SQLITE_BUSY: database is locked/.test(String(r.body.checks.store));
    }, 60_000);
    assert.equal(await d.metric('vigil_degraded', '{component="store"}'), 1);
    assert.ok(await d.metric('vigil_store_writes_pending') >= 1);
    // Still locked after several attempts, each longer than the busy timeout.
    await waitUntil('several failed attempts', async () => (await d.metric('vigil_component_failures_total', '{component="store"}')) >= 4, 30_000);
    assert.match(String((await d.readyz()).body.checks.store), /degraded for \d+ s, \d+ failures/);
    // The source is held back while the verdicts wait, and nothing reached the audit file.
    assert.ok(await d.metric('vigil_events_total') < d.written(), 'back-pressure: not everything written was read');
    assert.equal(has(audit, 'opened'), false);
    // A checkpoint now would hold incidents that are not stored: refused, and said so.
    const cp = await d.command('checkpoint');
    assert.equal(cp.status, 503, JSON.stringify(cp.body));
    assert.equal(cp.body.error?.code, 'CHECKPOINT_REFUSED');
    assert.match(cp.body.error!.message, /verdict batch(es)? wait for the incident store \(SQLITE_BUSY/);
    assert.equal(d.child.exitCode, null, 'still running');
    release();
    released = true;
  } finally {
    if (!released) release();
  }

  await waitUntil('/readyz to recover', async () => (await d.readyz()).status === 200, 30_000);
  await d.counted(d.written(), 'the second part, once the store is back');
  assert.ok(has(audit, 'opened'));
  assert.equal(await d.metric('vigil_degraded', '{component="store"}'), 0);
  assert.ok(await d.metric('vigil_store_write_retries_total') >= 1);
  d.write(PARTS[2]);
  d.child.stdin!.end();
  await d.counted(LINES.length, 'everything');
  await waitUntil('the resolve', () => has(audit, 'resolved'), 30_000);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 0, d.stderr());
  assert.match(d.stderr(), /"msg":"store degraded: SQLITE_BUSY: database is locked"/);
  assert.match(d.stderr(), /"msg":"store recovered"/);
  // Nothing lost, nothing doubled, nothing reordered: the same transitions as a replay of the input.
  assert.equal(readFileSync(audit, 'utf8'), replayed);
});

test('a lock that outlasts VIGIL_DEGRADED_EXIT_MS: the daemon says why and exits 1, without writing a checkpoint', async () => {
  const data = join(dir, 'gives-up');
  const d = daemon({ VIGIL_DATA_DIR: data, VIGIL_DB_BUSY_TIMEOUT_MS: '100', VIGIL_DEGRADED_EXIT_MS: '2000' });
  await d.ready();
  d.write(PARTS[0]);
  await d.counted(d.written(), 'the first hour');
  const release = lockDatabase(join(data, 'incidents.db'));
  try {
    d.write(PARTS[1]);
    const code = await d.exit;
    assert.equal(code, 1, d.stderr());
  } finally {
    release();
  }
  assert.match(d.stderr(), /vigil: giving up: store degraded for \d+ s, longer than VIGIL_DEGRADED_EXIT_MS \(2000 ms\), after \d+ failures: SQLITE_BUSY: database is locked/);
  assert.match(d.stderr(), /vigil: \d+ verdict batch\(es\) could not be written to the incident store \(SQLITE_BUSY: database is locked\): their transitions are lost unless the source delivers their records again/);
  assert.deepEqual(checkpointEntries(data), [], 'no checkpoint of state whose transitions were not stored');
});

/** What the checkpoints directory holds: `cp-<seq>` checkpoints, `.tmp-...` directories being (or left half) written. */
function checkpointEntries(data: string): string[] {
  const dir = join(data, 'checkpoints');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Whether a whole checkpoint (one with its manifest) is there. */
function hasCheckpoint(data: string): boolean {
  return checkpointEntries(data).some((n) => n.startsWith('cp-') && existsSync(join(data, 'checkpoints', n, 'manifest.json')));
}

/** Fills the file system of `path` to the last byte with a file; returns a function that frees it. */
function fillDisk(path: string): () => void {
  const filler = join(path, 'filler');
  const fd = openSync(filler, 'w');
  for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
    const buf = Buffer.alloc(size, 1);
    try { for (;;) writeSync(fd, buf); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err; }
  }
  closeSync(fd);
  return () => rmSync(filler);
}

test('a full disk (a small tmpfs): clear errors, temporary files cleaned, exit 1 when the final checkpoint fails, no incident lost once space returns', async (t) => {
  const data = join(dir, 'tmpfs');
  mkdirSync(data);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', data]).status !== 0) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  mounts.push(data);
  const audit = join(dir, 'tmpfs.audit.ndjson');
  const env = { VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '1', VIGIL_MAX_KEYS_PER_WORKER: '2000', VIGIL_MAX_CELLS_PER_WORKER: '4000' };
  const d = daemon(env);
  await d.ready();
  d.write(PARTS[0]);
  await d.counted(d.written(), 'the first hour');
  let free = fillDisk(data);

  // The checkpoint command: a clear error, the temporary directory removed, the checkpoint degraded.
  const cp = await d.command('checkpoint');
  assert.equal(cp.status, 503, JSON.stringify(cp.body));
  assert.equal(cp.body.error?.code, 'CHECKPOINT_WRITE_FAILED');
  assert.match(cp.body.error!.message, /cannot write the checkpoint in .*\(ENOSPC: no space left on device.*\); the previous one is kept/);
  assert.deepEqual(checkpointEntries(data).filter((n) => n.startsWith('.tmp-')), [], 'no temporary directory left behind');
  assert.match(String((await d.readyz()).body.checks.checkpoint), /ENOSPC/);
  assert.equal(await d.metric('vigil_degraded', '{component="checkpoint"}'), 1);

  // The store: the opening cannot be written; it waits.
  d.write(PARTS[1]);
  await waitUntil('/readyz to report the store', async () => /SQLITE_FULL: database or disk is full/.test(String((await d.readyz()).body.checks.store)), 60_000);
  assert.equal(has(audit, 'opened'), false);

  // Space returns: the store catches up, the checkpoint is retried and written.
  free();
  await waitUntil('/readyz to recover', async () => (await d.readyz()).status === 200, 60_000);
  assert.ok(hasCheckpoint(data), 'the retried checkpoint');
  await d.counted(d.written(), 'the second part');
  assert.ok(has(audit, 'opened'));
  d.write(PARTS[2]);
  d.child.stdin!.end();
  await d.counted(LINES.length, 'everything');
  await waitUntil('the resolve', () => has(audit, 'resolved'), 30_000);

  // SIGTERM on a full disk: the final checkpoint fails, and the exit code says so.
  free = fillDisk(data);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 1, d.stderr());
  assert.match(d.stderr(), /vigil: final checkpoint not written: CHECKPOINT_WRITE_FAILED: cannot write the checkpoint .*ENOSPC/);
  assert.deepEqual(checkpointEntries(data).filter((n) => n.startsWith('.tmp-')), [], 'no temporary directory left behind');
  assert.ok(hasCheckpoint(data), 'the previous checkpoint is intact');

  // Starting on the full disk: one clear line, exit 1 (it may pass: an orchestrator tries again).
  const full = spawnSync(process.execPath, [VIGIL, 'run'], { encoding: 'utf8', input: '', env: { PATH: process.env.PATH, VIGIL_SOURCE: 'stdin', VIGIL_HTTP_PORT: '0', ...env } });
  assert.equal(full.status, 1, full.stderr);
  assert.match(full.stderr, /vigil: VIGIL_DATA_DIR: cannot write in .* \(ENOSPC: no space left on device\) \[DATA_DIR_UNAVAILABLE\]/);
  assert.doesNotMatch(full.stderr, /\n\s+at /);
  free();

  // A dead process's temporary checkpoint directory is removed at start; the run continues the store.
  const stale = join(data, 'checkpoints', '.tmp-cp-0000000099-999999999');
  mkdirSync(stale, { recursive: true });
  const again = daemon(env);
  await again.ready();
  again.child.stdin!.end();
  await waitUntil('start', () => /vigil running/.test(again.stderr()), 30_000);
  assert.ok(!existsSync(stale));
  assert.match(again.stderr(), /removed what an interrupted checkpoint left/);
  again.child.kill('SIGTERM');
  assert.equal(await again.exit, 0, again.stderr());
  assert.equal(readFileSync(audit, 'utf8'), replayed);
});

test('an audit file on a full disk: its lines wait, /readyz says so, and they are written in order once space returns', async (t) => {
  const at = join(dir, 'audit-tmpfs');
  mkdirSync(at);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', at]).status !== 0) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  mounts.push(at);
  const audit = join(at, 'audit.ndjson');
  const d = daemon({ VIGIL_DATA_DIR: join(dir, 'audit-data'), VIGIL_TRANSITIONS_FILE: audit });
  await d.ready();
  d.write(PARTS[0]);
  await d.counted(d.written(), 'the first hour');
  const free = fillDisk(at);
  d.write(PARTS[1]);
  await waitUntil('/readyz to report the audit file', async () => /ENOSPC/.test(String((await d.readyz()).body.checks.audit)), 60_000);
  assert.ok(await d.metric('vigil_audit_lines_pending') >= 1);
  // Detection goes on (the store works): the audit file is not a reason to stop reading.
  await d.counted(d.written(), 'the second part');
  free();
  await waitUntil('/readyz to recover', async () => (await d.readyz()).status === 200, 30_000);
  assert.equal(await d.metric('vigil_audit_lines_pending'), 0);
  d.write(PARTS[2]);
  d.child.stdin!.end();
  await d.counted(LINES.length, 'everything');
  await waitUntil('the resolve', () => has(audit, 'resolved'), 30_000);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 0, d.stderr());
  assert.equal(readFileSync(audit, 'utf8'), replayed);
});

/** A source the test writes to by hand, as a broker source does: writes with positions, commits what the sink says is committable. */
class PushSource implements Source {
  readonly name = 'push';
  sink!: SourceSink;
  async start(sink: SourceSink): Promise<void> { this.sink = sink; }
  async stop(): Promise<void> {}
  finished(): Promise<void> { return new Promise(() => {}); }
  position(): Record<string, unknown> { return {}; }
}

test('without checkpoints, a broker source may commit a position only once its verdicts are stored: committable() stays behind while the store refuses them', async () => {
  const data = join(dir, 'committable');
  const config = loadConfig({ VIGIL_DATA_DIR: data, VIGIL_WORKERS: '1', VIGIL_HTTP: 'false', VIGIL_DB_BUSY_TIMEOUT_MS: '100', VIGIL_SOURCE: 'stdin', VIGIL_CHECKPOINTS: 'false' });
  const source = new PushSource();
  const daemon = new Daemon(config, silentLogger(), { source });
  await daemon.start();
  const committed = () => source.sink.committable!().get('push');
  try {
    await source.sink.write(Buffer.from(PARTS[0].join('\n') + '\n'), undefined, { stream: 'push', next: '1' });
    await waitUntil('the first part committable', () => committed() === '1', 30_000, 5);
    const release = lockDatabase(join(data, 'incidents.db'));
    try {
      // The outage opens in this part: its verdicts cannot be stored while the lock is held.
      await source.sink.write(Buffer.from(PARTS[1].join('\n') + '\n'), undefined, { stream: 'push', next: '2' });
      await waitUntil('several failed attempts', () => daemon.health.failures.store >= 3, 30_000, 20);
      assert.equal(committed(), '1', 'a position became committable while its verdicts were not stored');
      release();
    } catch (err) {
      release();
      throw err;
    }
    await waitUntil('the second part committable once stored', () => committed() === '2', 30_000, 5);
    assert.ok(daemon.manager.list({ propertyId: 'alpha' }).incidents.length > 0, 'the incident is stored once its position is committable');
  } finally {
    await daemon.stop();
  }
});

/** A source that starts and then fails for good, as a Kafka consumer that gave up does. */
class FailingSource implements Source {
  readonly name = 'failing';
  private fail!: (err: Error) => void;
  private readonly done = new Promise<void>((_, reject) => { this.fail = reject; });
  async start(_sink: SourceSink): Promise<void> {}
  async stop(): Promise<void> {}
  finished(): Promise<void> { return this.done; }
  position(): Record<string, unknown> { return {}; }
  breakDown(): void { this.fail(Object.assign(new Error('kafka consumer stopped: the broker is gone'), { code: 'SOURCE_READ', retriable: false })); }
}

test('a source that fails after start: /readyz 503 with its reason, then the daemon gives up', async () => {
  const config = loadConfig({ VIGIL_DATA_DIR: join(dir, 'source'), VIGIL_WORKERS: '1', VIGIL_HTTP_PORT: '0', VIGIL_DEGRADED_EXIT_MS: '1500', VIGIL_SOURCE: 'stdin' });
  const source = new FailingSource();
  const daemon = new Daemon(config, silentLogger(), { source });
  await daemon.start();
  try {
    const base = `http://127.0.0.1:${daemon.http!.port}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    source.breakDown();
    await waitUntil('/readyz to report the source', async () => (await fetch(`${base}/readyz`)).status === 503, 10_000, 20);
    const body = await (await fetch(`${base}/readyz`)).json() as { checks: Record<string, unknown> };
    assert.match(String(body.checks.source), /^SOURCE_READ: kafka consumer stopped: the broker is gone \(degraded for \d+ s, 1 failure\)$/);
    assert.match(await (await fetch(`${base}/metrics`)).text(), /vigil_degraded\{component="source"\} 1/);
    assert.match(await daemon.fatal, /^source degraded for \d+ s, longer than VIGIL_DEGRADED_EXIT_MS \(1500 ms\)/);
  } finally {
    await daemon.stop();
  }
});
