import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTraffic } from './support/traffic.ts';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { waitFor } from './support/http-harness.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const START = Date.UTC(2026, 10, 27, 6);
let dir: string;
let clean: string;
after(killLeftoverDaemons);

// Asynchronous, for tests that serve HTTP from this process meanwhile.
async function vigilAsync(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [VIGIL, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

function vigil(args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8', input, env: { PATH: process.env.PATH, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-cli-'));
  const lines = buildTraffic({
    startMs: START, minutes: 150, viewsPerSecond: 12, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 95, ratio: 0.3 }],
  });
  clean = join(dir, 'clean.ndjson');
  writeFileSync(clean, lines.join('\n') + '\n');
});

test('replay finds the outage and writes the documented record format', () => {
  const r = vigil(['replay', clean]);
  assert.equal(r.code, 0, r.stderr);
  const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const alpha = recs.filter((x) => x.property_id === 'alpha' && x.scope === 'property');
  assert.deepEqual(alpha.map((x) => x.type), ['opened', 'resolved']);
  const opened = alpha[0];
  for (const f of ['type', 'incident_id', 'scope', 'property_id', 'error_type', 'at', 'error_rate', 'threshold', 'views']) assert.ok(f in opened, f);
  assert.equal(opened.error_type, 'networkError');
  const openedMin = (Date.parse(opened.at) - START) / 60000;
  assert.ok(openedMin >= 70 && openedMin < 76, `opened ${openedMin} min after start`);
  assert.ok(opened.error_rate > opened.threshold);
  assert.ok(!recs.some((x) => x.property_id === 'beta'), 'beta never had an outage');
  const summary = JSON.parse(r.stderr.trim().split('\n').pop()!);
  assert.equal(summary.events, 150 * 60 * 12);
  assert.equal(summary.rejected, 0);
});

test('bad lines are counted by reason and cost no good line', () => {
  const good = readFileSync(clean, 'utf8').trim().split('\n');
  const bad = ['not json', '{"property_id":"alpha"}', '{"ts":1}', '{"property_id":true,"ts":1}', '{"property_id":"a","ts":"yesterday"}',
    '{"property_id":"a","ts":1,"video_title":7}', '\u0000', '{"property_id":"alpha","ts":' + START + ',"error_type":"networkError"',
    `{"property_id":"${'x'.repeat(300)}","ts":1}`, 'x'.repeat(70000)];
  const mixed: string[] = [];
  good.forEach((l, i) => { mixed.push(l); if (i % 997 === 0) mixed.push(bad[(i / 997) % bad.length]); });
  const file = join(dir, 'mixed.ndjson');
  writeFileSync(file, mixed.join('\n') + '\n');
  const a = vigil(['replay', clean]);
  const b = vigil(['replay', file]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
  const summary = JSON.parse(b.stderr.trim().split('\n').pop()!);
  assert.equal(summary.events, good.length);
  assert.equal(summary.rejected, mixed.length - good.length);
  for (const reason of ['not_json', 'missing_ts', 'missing_property', 'bad_property', 'bad_ts', 'bad_title', 'too_large', 'field_too_long']) {
    assert.ok(summary.rejected_by_reason[reason] > 0, `${reason}: ${JSON.stringify(summary.rejected_by_reason)}`);
  }
  assert.match(b.stderr, /"msg":"rejected input line"/);
});

test('output is identical for 1, 2 and 3 workers and small chunks; stdin works', () => {
  const one = vigil(['replay', clean, '--workers', '1']);
  const two = vigil(['replay', clean, '--workers', '2', '--chunk-bytes', '65536']);
  const three = vigil(['replay', '-', '--workers', '3'], {}, readFileSync(clean, 'utf8'));
  assert.ok(one.stdout.length > 0);
  assert.equal(two.stdout, one.stdout);
  assert.equal(three.stdout, one.stdout);
});

test('a line of exactly VIGIL_MAX_LINE_BYTES is accepted whatever the chunk size; one byte more is rejected at every size', () => {
  const good = readFileSync(clean, 'utf8').trim().split('\n');
  const MAX = 65536;
  // A valid view padded to exactly MAX bytes (without its newline), and one byte more.
  const padded = (line: string, bytes: number) => {
    const v = JSON.parse(line);
    const base = JSON.stringify({ ...v, pad: '' });
    return JSON.stringify({ ...v, pad: 'p'.repeat(bytes - Buffer.byteLength(base)) });
  };
  const mixed: string[] = [];
  let exact = 0;
  let over = 0;
  good.forEach((l, i) => {
    if (i % 1500 === 700) { mixed.push(padded(l, MAX)); exact++; } else if (i % 1500 === 1400) { mixed.push(padded(l, MAX + 1)); over++; } else mixed.push(l);
  });
  assert.ok(mixed.some((l) => Buffer.byteLength(l) === MAX) && exact > 5 && over > 5);
  const file = join(dir, 'boundary.ndjson');
  writeFileSync(file, mixed.join('\n') + '\n');
  const runs = [65536, 65537, 65536 + 4096, 100_003, 131072, 1 << 20].map((size) => ({ size, r: vigil(['replay', file, '--workers', '2', '--chunk-bytes', String(size)]) }));
  for (const { size, r } of runs) {
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stderr.trim().split('\n').pop()!);
    assert.equal(summary.events, good.length - over, `--chunk-bytes ${size}: every exact-length line is an event`);
    assert.deepEqual(summary.rejected_by_reason, { too_large: over }, `--chunk-bytes ${size}`);
    assert.equal(r.stdout, runs[0].r.stdout, `--chunk-bytes ${size}: the same transitions`);
  }
  assert.ok(runs[0].r.stdout.length > 0);
});

test('--chunk-bytes outside its bounds is a usage error (exit 2, no stack trace)', () => {
  for (const size of ['4096', '0', '1e6', String((64 << 20) + 1)]) {
    const r = vigil(['replay', clean, '--chunk-bytes', size]);
    assert.equal(r.code, 2, `${size}: ${r.stderr}`);
    assert.match(r.stderr, /--chunk-bytes expects an integer from 65536 to 67108864/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const small = vigil(['replay', clean, '--chunk-bytes', '65536'], { VIGIL_MAX_LINE_BYTES: '100000', VIGIL_CHUNK_BYTES: '131072' });
  assert.equal(small.code, 2, small.stderr);
  assert.match(small.stderr, /--chunk-bytes \(65536\) must be at least VIGIL_MAX_LINE_BYTES \(100000\)/);
});

test('per-property parameters (VIGIL_DETECTION perProperty): only that property alerts on a small rise; the others decide as before', () => {
  // beta and gamma both go from 1% to 4% failures: under the global minimum effect (+3 points) that
  // is no incident; beta's own +0.5 points makes it one. alpha's real outage is unaffected.
  const lines = buildTraffic({
    startMs: START, minutes: 130, viewsPerSecond: 12, properties: ['alpha', 'beta', 'gamma'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 95, ratio: 0.3 }, { property: 'beta', fromMin: 70, toMin: 110, ratio: 0.04 },
      { property: 'gamma', fromMin: 70, toMin: 110, ratio: 0.04 }],
  });
  const file = join(dir, 'small-rise.ndjson');
  writeFileSync(file, lines.join('\n') + '\n');
  const plain = vigil(['replay', file]);
  const tuned = vigil(['replay', file], { VIGIL_DETECTION: JSON.stringify({ perProperty: { beta: { property: { minEffectAbs: 0.005 } } } }) });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(tuned.code, 0, tuned.stderr);
  const recs = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as { property_id: string; scope: string; type: string; threshold: number });
  const of = (out: string, p: string) => recs(out).filter((x) => x.property_id === p && x.scope === 'property').map(({ incident_id: _i, ...x }: Record<string, unknown>) => x);
  assert.deepEqual(of(plain.stdout, 'beta'), [], 'a 4% rise is no incident under the global parameters');
  assert.deepEqual(of(plain.stdout, 'gamma'), []);
  assert.deepEqual(of(tuned.stdout, 'beta').map((x) => x.type), ['opened', 'resolved']);
  assert.ok((of(tuned.stdout, 'beta')[0].threshold as number) < 0.03, 'beta was held to its own threshold');
  assert.deepEqual(of(tuned.stdout, 'gamma'), [], 'gamma keeps the global parameters');
  assert.deepEqual(of(tuned.stdout, 'alpha'), of(plain.stdout, 'alpha'), 'alpha decides exactly as before');
  assert.equal(of(plain.stdout, 'alpha')[0].type, 'opened');
  const bad = vigil(['replay', file], { VIGIL_DETECTION: JSON.stringify({ perProperty: { beta: { property: { slotMs: 120000 } } } }) });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /perProperty\.beta\.property\.slotMs cannot differ per property/);
});

test('--out writes a file; field names are configurable', () => {
  const renamed = readFileSync(clean, 'utf8').replaceAll('"error_type"', '"player_error_code"');
  const file = join(dir, 'renamed.ndjson');
  writeFileSync(file, renamed);
  const out = join(dir, 'out.ndjson');
  const r = vigil(['replay', file, '--out', out], { VIGIL_FIELD_ERROR_TYPE: 'player_error_code' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(readFileSync(out, 'utf8'), vigil(['replay', clean]).stdout);
});

test('usage and configuration errors exit 2 with a clear message', () => {
  const u = vigil(['frobnicate']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown command "frobnicate"/);
  const w = vigil(['replay', clean, '--workers', 'lots']);
  assert.equal(w.code, 2);
  assert.match(w.stderr, /--workers expects a positive integer/);
  const m = vigil(['replay', join(dir, 'missing.ndjson')]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /cannot read .*missing\.ndjson: ENOENT/);
  const c = vigil(['replay', clean], { VIGIL_WORKERS: '0' });
  assert.equal(c.code, 2);
  assert.match(c.stderr, /VIGIL_WORKERS: expected an integer from 1 to 64/);
});

test('generate is deterministic per seed and writes labels', () => {
  const out1 = join(dir, 'g1.ndjson');
  const labels = join(dir, 'labels.ndjson');
  const a = vigil(['generate', '--seed', '5', '--hours', '2', '--scale', '0.02', '--out', out1, '--labels', labels]);
  assert.equal(a.code, 0, a.stderr);
  const b = vigil(['generate', '--seed', '5', '--hours', '2', '--scale', '0.02']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(readFileSync(out1, 'utf8'), b.stdout);
  assert.ok(b.stdout.split('\n').length > 1000);
  assert.ok(readFileSync(labels, 'utf8').trim().split('\n').length >= 1);
});

const COMMANDS = ['run', 'replay', 'generate', 'healthcheck'] as const;

test('every command answers --help and -h with its own usage on stdout, exit 0, reading no configuration and starting nothing', () => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const dataDir = join(dir, `never-${command}${flag}`);
      // An invalid environment: any attempt to load the configuration would exit 2.
      const r = vigil([command, flag], { VIGIL_WORKERS: '0', VIGIL_DATA_DIR: dataDir, VIGIL_HTTP_PORT: '1' });
      assert.equal(r.code, 0, `${command} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: vigil ${command}`), `${command} ${flag}`);
      assert.equal(r.stderr, '');
      assert.ok(!existsSync(dataDir), `${command} ${flag} created the data directory`);
    }
    // Also after other options, and as "vigil help <command>".
    assert.equal(vigil([command, '--workers', '2', '--help']).stdout, vigil([command, '--help']).stdout);
    assert.equal(vigil(['help', command]).stdout, vigil([command, '--help']).stdout);
  }
  const top = vigil(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /^usage: vigil <command>/);
  for (const command of COMMANDS) assert.match(top.stdout, new RegExp(`\\n  ${command} `));
  const none = vigil([]);
  assert.equal(none.code, 2, 'no command is a usage error');
  assert.match(none.stderr, /^usage: vigil <command>/);
});

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V', 'version']) {
    const r = vigil([flag]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^vigil ${version.replaceAll('.', '\\.')} \\(Node v\\d+`));
  }
});

test('the help texts name only options their command accepts and variables src/config reads; run refuses arguments', () => {
  for (const command of COMMANDS) {
    const help = vigil([command, '--help']).stdout;
    for (const option of new Set(help.match(/(?<=\s)--[a-z][a-z-]*/g) ?? [])) {
      if (option === '--help') continue;
      // A following bad --hours/--workers value (or a missing option value) stops before any work is done.
      const stop = { generate: ['--hours', 'x'], replay: ['--workers', 'x'], healthcheck: ['--timeout', 'x'], run: [] }[command];
      const r = vigil([command, option, ...stop], {}, '');
      assert.doesNotMatch(r.stderr, /Unknown option/, `${command} ${option}`);
    }
  }
  const configSource = readdirSync(join(import.meta.dirname, '..', 'src', 'config')).map((f) => readFileSync(join(import.meta.dirname, '..', 'src', 'config', f), 'utf8')).join('\n');
  const named = new Set(COMMANDS.flatMap((c) => vigil([c, '--help']).stdout.match(/VIGIL_[A-Z0-9_]*[A-Z0-9](?!_\*)\b/g) ?? []));
  assert.ok(named.size >= 10, [...named].join(' '));
  for (const name of named) assert.ok(configSource.includes(`'${name}'`), `${name} is named in a help text but src/config never reads it`);
  const stray = vigil(['run', 'now']);
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /Unexpected argument 'now'[\s\S]*vigil run --help/);
  const unknown = vigil(['replay', '--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option '--frobnicate'[\s\S]*vigil replay --help/);
});

const ESC = String.fromCharCode(27);

// What a terminal shows after receiving `bytes`: \r returns to column 0, ESC[2K erases the line,
// \n starts a new line (script(1) turns it into \r\n), other characters overwrite in place.
function screen(bytes: string): string[] {
  const lines: string[] = [''];
  let col = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === '\r') col = 0;
    else if (c === '\n') { lines.push(''); col = 0; }
    else if (bytes.startsWith(`${ESC}[2K`, i)) { lines[lines.length - 1] = ''; i += 3; }
    else {
      const cur = lines[lines.length - 1].padEnd(col);
      lines[lines.length - 1] = cur.slice(0, col) + c + cur.slice(col + 1);
      col++;
    }
  }
  return lines;
}

const haveScript = spawnSync('script', ['--version']).status === 0;

test('replay on a terminal: a progress line, JSON log lines never glued onto it, erased before a human-readable summary; --json keeps JSON', { skip: !haveScript && 'needs script(1) for a pseudo-terminal' }, () => {
  const lines = readFileSync(clean, 'utf8').trim().split('\n');
  const third = Math.floor(lines.length / 3);
  const parts = [lines.slice(0, third), ['not json', '{"ts":1}', ...lines.slice(third, 2 * third)], ['not json either', ...lines.slice(2 * third)]];
  parts.forEach((p, k) => writeFileSync(join(dir, `part${k}.ndjson`), p.join('\n') + '\n'));
  const out = join(dir, 'tty-out.ndjson');
  // The pauses make the replay wait for input, so the progress line is up when the bad lines are logged.
  const pipeline = (extra: string) => `(cat part0.ndjson; sleep 1.2; cat part1.ndjson; sleep 1.2; cat part2.ndjson) | ${JSON.stringify(process.execPath)} ${JSON.stringify(VIGIL)} replay - --out tty-out.ndjson ${extra}`;
  const run = (extra: string) => spawnSync('script', ['-qec', pipeline(extra), '/dev/null'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
  const r = run('');
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, new RegExp(`${ESC}\\[2Kreplay: \\d+\\.\\d MB · [\\d,]+ events`), 'a progress line was shown');
  const shown = screen(r.stdout).filter((l) => l.trim() !== '');
  const logs = shown.filter((l) => l.startsWith('{'));
  assert.ok(logs.length >= 3, `the three bad lines are logged: ${JSON.stringify(shown)}`);
  for (const l of logs) assert.equal((JSON.parse(l) as { msg: string }).msg, 'rejected input line');
  const rest = shown.filter((l) => !l.startsWith('{'));
  assert.deepEqual(rest.map((l) => l.split(':')[0].trim()), ['replay', 'incidents', 'rejected lines', 'late events', 'duplicates', 'future events'], `only the summary is left on screen: ${JSON.stringify(shown)}`);
  assert.match(rest[0], new RegExp(`^replay: ${(lines.length).toLocaleString('en')} events in [\\d.]+ s \\([\\d.]+ M events/s, \\d workers?\\)$`));
  assert.match(rest[2], /^ {2}rejected lines: 3 \(not_json 2, missing_property 1\)$/);
  assert.equal(readFileSync(out, 'utf8'), vigil(['replay', clean]).stdout, 'the transitions are unaffected');

  const json = run('--json');
  assert.equal(json.status, 0, json.stdout);
  const last = screen(json.stdout).filter((l) => l.trim() !== '').pop()!;
  assert.equal((JSON.parse(last) as { summary: string; events: number }).events, lines.length);
});

test('vigil healthcheck: exit 0 when /readyz (or /healthz with --live) answers 200 at the configured address, 1 otherwise', async () => {
  const answers: Record<string, number> = { '/readyz': 503, '/healthz': 200 };
  const server = createServer((req, res) => { res.statusCode = answers[req.url!] ?? 404; res.end(JSON.stringify({ path: req.url })); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = String((server.address() as AddressInfo).port);
  try {
    const notReady = await vigilAsync(['healthcheck'], { VIGIL_HTTP_PORT: port });
    assert.equal(notReady.code, 1);
    assert.match(notReady.stderr, /\/readyz 503/);
    const live = await vigilAsync(['healthcheck', '--live'], { VIGIL_HTTP_PORT: port });
    assert.equal(live.code, 0, live.stderr);
    answers['/readyz'] = 200;
    // Listening on every interface (which needs a token): probed through loopback.
    const ready = await vigilAsync(['healthcheck'], { VIGIL_HTTP_PORT: port, VIGIL_HTTP_HOST: '0.0.0.0', VIGIL_ADMIN_TOKEN: 'a-long-enough-admin-token' });
    assert.equal(ready.code, 0, ready.stderr);
    assert.match(ready.stdout, /\/readyz 200/);
  } finally {
    server.close();
  }
  const nothing = await vigilAsync(['healthcheck'], { VIGIL_HTTP_PORT: port });
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /ECONNREFUSED/);
  const off = await vigilAsync(['healthcheck'], { VIGIL_HTTP: 'false' });
  assert.equal(off.code, 1);

  // Against the real daemon.
  const daemon = startDaemon({ VIGIL_DATA_DIR: join(dir, 'healthcheck-data'), VIGIL_WORKERS: '1' });
  try {
    await waitFor('the http server', () => /"msg":"http listening/.test(daemon.stderr()), 30_000);
    const daemonPort = /"port":(\d+)/.exec(daemon.stderr().split('\n').find((l) => l.includes('http listening'))!)![1];
    await waitFor('readiness', async () => (await vigilAsync(['healthcheck'], { VIGIL_HTTP_PORT: daemonPort })).code === 0, 30_000);
  } finally {
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exit, 0, daemon.stderr());
  }
});
