// The whole pipeline (src/replay/replay.ts: chunker, multi-worker engine on the
// release kernel, incident manager) must write byte-identical output for the
// same input whatever the worker count and chunk size, and that output must be
// what the reference model's verdicts make of the same input.
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { silentLogger } from '../src/log/logger.ts';
import { replay } from '../src/replay/replay.ts';
import type { ReplaySummary } from '../src/replay/replay.ts';
import { openIncidentStore } from '../src/incidents/incident-store.ts';
import { IncidentManager } from '../src/incidents/incident-manager.ts';
import { toReplayRecord } from '../src/incidents/replay-record.ts';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { ownerOfGroup } from '../src/kernel/key-groups.ts';
import { ReferenceModel } from '../src/kernel/reference-model.ts';
import { FAST_PARAMS, feedModel, generateLines, parseLine, sorted } from './support/detection-streams.ts';

const GROUPS = 64;
const lines = generateLines({
  seed: 2026, events: 300_000, properties: 12, titlesPerProperty: 5, ratePerSec: 150, startMs: Date.UTC(2026, 8, 21, 6),
});
const input = Buffer.from(lines.join('\n') + '\n');

async function runReplay(workers: number, chunkBytes: number): Promise<{ output: string; summary: ReplaySummary }> {
  const parts: Buffer[] = [];
  // Reads of an odd size, so chunk boundaries never line up with the reads.
  for (let off = 0; off < input.length; off += 300_007) parts.push(input.subarray(off, off + 300_007));
  const out: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  const summary = await replay({
    input: Readable.from(parts), output, workers, groups: GROUPS, chunkBytes, params: FAST_PARAMS,
    maxKeysPerWorker: 4096, maxCellsPerWorker: 16384, logger: silentLogger(),
  });
  return { output: Buffer.concat(out).toString('utf8'), summary };
}

/** What replay would write if the reference model were its detector. */
function modelOutput(): string {
  const model = new ReferenceModel(FAST_PARAMS);
  // One step: the clock plans the whole input at once, which must equal any chunking of it.
  const verdicts = feedModel(model, [{ lines }]);
  model.finish();
  verdicts.push(...model.takeVerdicts());
  const store = openIncidentStore(':memory:');
  try {
    const manager = new IncidentManager({ store, logger: silentLogger() });
    let text = '';
    manager.subscribe((t) => {
      const rec = toReplayRecord(t);
      if (rec) text += JSON.stringify(rec) + '\n';
    });
    // One batch in the engine's total order: every tick's verdicts arrive together in the engine too.
    manager.applyBatch(sorted(verdicts));
    return text;
  } finally {
    store.close();
  }
}

describe('engine determinism', () => {
  test('the properties are spread over the workers (otherwise more workers prove nothing)', () => {
    const k = WasmKernel.create({ maxKeys: 16, maxCells: 16, chunkBytes: 65536, groupLo: 0, groupHi: GROUPS, params: FAST_PARAMS });
    const props = new Set(lines.map((l) => parseLine(l).propertyId));
    const owners = new Set([...props].map((p) => ownerOfGroup(k.groupOfProperty(p, GROUPS), 4, GROUPS)));
    assert.ok(owners.size >= 3, `12 properties fall on only ${owners.size} of 4 workers`);
  });

  test('1, 2 and 4 workers with 64 KiB and 1 MiB chunks write the same bytes, and what the reference model implies', async () => {
    const runs: Array<{ name: string; output: string; summary: ReplaySummary }> = [];
    for (const workers of [1, 2, 4]) {
      for (const chunkBytes of [64 * 1024, 1024 * 1024]) {
        runs.push({ name: `${workers} workers, ${chunkBytes / 1024} KiB`, ...(await runReplay(workers, chunkBytes)) });
      }
    }
    const first = runs[0];
    assert.equal(first.summary.events, lines.length);
    assert.ok(first.summary.late > 0, 'the input has late events');
    const types = new Set(first.output.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { type: string }).type));
    for (const t of ['opened', 'resolved', 'expired']) assert.ok(types.has(t), `no ${t} transition in the output`);
    assert.ok(first.summary.incidents >= 20, `only ${first.summary.incidents} incidents`);
    for (const r of runs.slice(1)) {
      assert.equal(r.summary.transitions, first.summary.transitions, `${r.name}: transitions`);
      assert.equal(r.summary.late, first.summary.late, `${r.name}: late events`);
      assert.ok(r.output === first.output, `${r.name}: output differs from ${first.name} at byte ${firstDifference(r.output, first.output)}`);
    }
    const expected = modelOutput();
    assert.ok(first.output === expected, `replay output differs from the reference model's at byte ${firstDifference(first.output, expected)}:\n`
      + `replay: ${lineAt(first.output, firstDifference(first.output, expected))}\nmodel:  ${lineAt(expected, firstDifference(first.output, expected))}`);
  });
});

function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

function lineAt(s: string, i: number): string {
  const start = s.lastIndexOf('\n', i - 1) + 1;
  const end = s.indexOf('\n', i);
  return s.slice(start, end < 0 ? s.length : end);
}
