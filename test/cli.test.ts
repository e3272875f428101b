import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTraffic } from './support/traffic.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const START = Date.UTC(2026, 10, 27, 6);
let dir: string;
let clean: string;

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
