// Start-up problems of files and directories: one message naming the variable, the path and the
// cause, no stack trace; exit 2 when an operator must act, 1 when it may pass by itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, truncateSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIGIL, startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { waitUntil } from './support/services-env.ts';

after(killLeftoverDaemons);
const dir = mkdtempSync(join(tmpdir(), 'vigil-startup-'));
const mounts: string[] = [];
after(() => { for (const m of mounts) spawnSync('umount', [m]); });

/** Runs `vigil run` to its end (it must fail at start); stdin source, HTTP on a free port. */
function run(env: Record<string, string>) {
  const r = spawnSync(process.execPath, [VIGIL, 'run'], {
    encoding: 'utf8', timeout: 60_000, input: '',
    env: { PATH: process.env.PATH, VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '1', VIGIL_HTTP_PORT: '0', ...env },
  });
  return { code: r.status, stderr: r.stderr };
}

function assertOneClearLine(r: { code: number | null; stderr: string }, code: number, ...needles: RegExp[]): void {
  assert.equal(r.code, code, r.stderr);
  for (const n of needles) assert.match(r.stderr, n);
  assert.doesNotMatch(r.stderr, /\n\s+at [\w.<]+ \(|\n\s+at file:/, 'no stack trace');
}

/** A small tmpfs, or null when this machine does not let us mount one (not root, no privileges). */
function tmpfs(name: string, options: string): string | null {
  const at = join(dir, name);
  mkdirSync(at, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', at]);
  if (r.status !== 0) return null;
  mounts.push(at);
  return at;
}

test('VIGIL_DATA_DIR that is a file, or below a file: exit 2 naming the variable and the path', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory');
  assertOneClearLine(run({ VIGIL_DATA_DIR: file }), 2, /VIGIL_DATA_DIR: .*a-file is a file, not a directory/);
  assertOneClearLine(run({ VIGIL_DATA_DIR: join(file, 'data') }), 2, /VIGIL_DATA_DIR: cannot create .*a-file\/data: a file is in the way \(ENOTDIR/);
});

test('a missing parent is created; a typo in a variable is a warning; the missing source file and an unwritable audit file name their variables', async () => {
  const data = join(dir, 'missing', 'parents', 'data');
  const d = startDaemon({ VIGIL_DATA_DIR: data, VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '1', VIGIL_SOURCE_FIEL: '/tmp/typo.ndjson' });
  await waitUntil('start', () => /vigil running/.test(d.stderr()), 30_000);
  assert.ok(statSync(data).isDirectory());
  // A typo is a warning (the daemon runs), with the variable it probably meant.
  assert.match(d.stderr(), /"level":40,.*"msg":"unknown variable VIGIL_SOURCE_FIEL is ignored \(did you mean VIGIL_SOURCE_FILE\?\)"/);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 0, d.stderr());
  assertOneClearLine(run({ VIGIL_DATA_DIR: join(dir, 'd1'), VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: join(dir, 'nope.ndjson') }), 2,
    /VIGIL_SOURCE_FILE: cannot read .*nope\.ndjson \(ENOENT: no such file or directory\)/);
  assertOneClearLine(run({ VIGIL_DATA_DIR: join(dir, 'd1'), VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: dir }), 2, /VIGIL_SOURCE_FILE: .* is a directory, not a file/);
  const file = join(dir, 'a-file-2');
  writeFileSync(file, '');
  assertOneClearLine(run({ VIGIL_DATA_DIR: join(dir, 'd2'), VIGIL_TRANSITIONS_FILE: join(file, 'audit.ndjson') }), 2,
    /VIGIL_TRANSITIONS_FILE: cannot open .*a-file-2\/audit\.ndjson for appending \((ENOTDIR|EEXIST)/);
});

test('a damaged or truncated incident database: exit 2 naming VIGIL_DATA_DIR, the file and the cause', async () => {
  // A real database with incidents, then cut short.
  const data = join(dir, 'trunc');
  const d = startDaemon({ VIGIL_DATA_DIR: data, VIGIL_SOURCE: 'stdin', VIGIL_WORKERS: '1', VIGIL_CHECKPOINTS: 'false' });
  await waitUntil('start', () => /vigil running/.test(d.stderr()), 30_000);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 0, d.stderr());
  const db = join(data, 'incidents.db');
  // Grow it past a few pages with the SQLite shell-free route: another connection of the test.
  const { default: Database } = await import('better-sqlite3');
  const conn = new Database(db);
  conn.prepare('CREATE TABLE IF NOT EXISTS filler (x BLOB)').run();
  for (let i = 0; i < 50; i++) conn.prepare('INSERT INTO filler VALUES (randomblob(4000))').run();
  conn.pragma('wal_checkpoint(TRUNCATE)');
  conn.close();
  truncateSync(db, Math.floor(statSync(db).size / 3));
  assertOneClearLine(run({ VIGIL_DATA_DIR: data }), 2,
    /VIGIL_DATA_DIR: cannot open the incident database .*incidents\.db: it is read-only, damaged or not a Vigil database; .*\(SQLITE_CORRUPT/);
  writeFileSync(db, 'this is not a database at all, just some text that is long enough to be read as a header by SQLite......');
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
  assertOneClearLine(run({ VIGIL_DATA_DIR: data }), 2, /VIGIL_DATA_DIR: cannot open the incident database .*\(SQLITE_NOTADB: file is not a database\)/);
});

test('a read-only data directory (a read-only mount): exit 2 naming VIGIL_DATA_DIR and EROFS', (t) => {
  const ro = tmpfs('ro', 'size=1m');
  if (ro === null) { t.skip('cannot mount a tmpfs here (needs root)'); return; }
  // A database made while writable, then the file system turned read-only under it.
  const data = join(ro, 'data');
  mkdirSync(data);
  execFileSync('mount', ['-o', 'remount,ro', ro]);
  assertOneClearLine(run({ VIGIL_DATA_DIR: data }), 2, /VIGIL_DATA_DIR: cannot write in .*ro\/data \(EROFS: read-only file system\)/);
  assertOneClearLine(run({ VIGIL_DATA_DIR: join(ro, 'sub') }), 2, /VIGIL_DATA_DIR: cannot create .*ro\/sub \(EROFS: read-only file system\)/);
  assert.ok(!existsSync(join(data, 'incidents.db')));
});

test('an unreachable Kinesis endpoint at start: one line naming the stream and the cause, exit 1', () => {
  const r = run({
    VIGIL_DATA_DIR: join(dir, 'kinesis'), VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: 'nowhere', VIGIL_KINESIS_ENDPOINT: 'http://127.0.0.1:9',
    AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y',
  });
  assertOneClearLine(r, 1, /vigil: cannot list the shards of nowhere: connect ECONNREFUSED 127\.0\.0\.1:9 \[SOURCE_CONNECT\]/);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('vigil: ')).length, 1);
  // The pinned AWS SDK's Node 22 notice does not apply (README "Runtime"): no warning at the first client.
  assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning/);
});
