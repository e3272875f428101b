import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VIGIL } from './daemon-process.ts';
import { incidentSpans } from './incident-compare.ts';

/** A generated demo file and what `vigil replay` makes of it: the reference a stream is compared with. */
export interface DemoRun {
  file: string;
  /** Its non-empty lines, malformed ones included. */
  lines: string[];
  /** The replay's transitions (its stdout). */
  replayed: string;
  /** Records the replay counted, and those it counted late. */
  valid: number;
  late: number;
  /** The newest event time of the file. */
  maxTs: number;
  /** Its property ids, sorted. */
  properties: string[];
}

/** `vigil generate --profile demo` into `dir`/demo.ndjson, then `vigil replay` of it (with at least 10 incidents). */
export function generateAndReplay(dir: string, hours: number, seed: number): DemoRun {
  const file = join(dir, 'demo.ndjson');
  const gen = spawnSync(process.execPath, [VIGIL, 'generate', '--profile', 'demo', '--hours', String(hours), '--seed', String(seed), '--out', file, '--labels', join(dir, 'labels.ndjson')], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const rep = spawnSync(process.execPath, [VIGIL, 'replay', file], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(rep.status, 0, rep.stderr);
  const summary = JSON.parse(rep.stderr.trim().split('\n').pop()!) as { events: number; late_events: number };
  let maxTs = 0;
  const seen = new Set<string>();
  for (const l of lines) {
    try {
      const r = JSON.parse(l) as { ts: unknown; property_id: unknown };
      maxTs = Math.max(maxTs, Number(r.ts) || 0);
      seen.add(String(r.property_id));
    } catch { /* a malformed line */ }
  }
  assert.ok(incidentSpans(rep.stdout).length >= 10, 'the replay must have incidents to compare');
  return { file, lines, replayed: rep.stdout, valid: summary.events, late: summary.late_events, maxTs, properties: [...seen].sort() };
}
