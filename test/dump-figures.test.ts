import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../src/engine/engine.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { silentLogger } from '../src/log/logger.ts';
import type { Verdict } from '../src/kernel/verdict.ts';
import type { CellFigures } from '../src/kernel/cell-figures.ts';
import { buildTraffic } from './support/traffic.ts';

const enc = new TextEncoder();
const START = Date.UTC(2026, 10, 27, 3, 0, 0);
// Property a has an outage that is still going on when the data ends.
const LINES = buildTraffic({ startMs: START, minutes: 90, viewsPerSecond: 20, properties: ['a', 'b', 'c'], outages: [{ property: 'a', fromMin: 70, toMin: 90, ratio: 0.3 }] });

async function run(workers: number, pageRecords: number): Promise<{ verdicts: Verdict[]; figures: CellFigures[]; pages: number }> {
  const verdicts: Verdict[] = [];
  const engine = new Engine({
    workers, groups: 16, chunkBytes: 1 << 16, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 1000, maxCellsPerWorker: 1000,
    logger: silentLogger(), onVerdicts: (v) => { verdicts.push(...v); },
  });
  await engine.start();
  try {
    let batch: string[] = [];
    for (const l of LINES) {
      batch.push(l);
      if (batch.length === 300) { await engine.push(enc.encode(batch.join('\n') + '\n')); batch = []; }
    }
    if (batch.length) await engine.push(enc.encode(batch.join('\n') + '\n'));
    await engine.finish();
    const figures: CellFigures[] = [];
    let pages = 0;
    await engine.dumpFigures((page) => { pages++; figures.push(...page); }, { pageRecords });
    return { verdicts, figures, pages };
  } finally {
    await engine.stop();
  }
}

const keyOf = (x: { scope: string; property_id?: string; propertyId?: string; video_title?: string | null; videoTitle?: string | null; error_type?: string; errorType?: string }) =>
  `${x.scope}|${x.property_id ?? x.propertyId}|${x.video_title ?? x.videoTitle ?? ''}|${x.error_type ?? x.errorType}`;

test('dumped figures of an open incident equal the engine\'s latest verdict for it, bit for bit', async () => {
  const { verdicts, figures } = await run(2, 4096);
  const open = figures.filter((f) => f.open);
  assert.ok(open.some((f) => f.scope === 'property' && f.property_id === 'a'), 'the outage of a is open at the end');
  for (const f of open) {
    const last = verdicts.filter((v) => keyOf(v) === keyOf(f)).at(-1)!;
    assert.ok(last && (last.kind === 'update' || last.kind === 'open'), keyOf(f));
    assert.equal(last.atMs, f.at_ms);
    assert.equal(f.recent_views, last.windowViews);
    assert.equal(f.recent_failures, last.windowFailures);
    assert.equal(f.recent_error_ratio, last.errorRatio);
    assert.equal(f.open_threshold_ratio, last.thresholdRatio);
    assert.equal(f.open_baseline_ratio, last.baselineRatio);
    assert.equal(f.opened_at_ms, last.openedAtMs);
    assert.equal(f.impacted_views, last.impactedViews);
  }
});

test('property windows equal counts taken straight from the data', async () => {
  const { figures } = await run(1, 4096);
  // Views and networkErrors per property per 1-minute slot.
  const slots = new Map<string, Map<number, { v: number; x: number }>>();
  for (const l of LINES) {
    const e = JSON.parse(l) as { property_id: string; error_type: string | null; ts: number };
    const m = slots.get(e.property_id) ?? new Map();
    slots.set(e.property_id, m);
    const s = Math.floor(e.ts / 60000);
    const c = m.get(s) ?? { v: 0, x: 0 };
    c.v++;
    if (e.error_type) c.x++;
    m.set(s, c);
  }
  for (const p of ['b', 'c']) {
    const m = slots.get(p)!;
    let s = Math.max(...m.keys());
    let v = 0;
    let x = 0;
    while (v < DEFAULT_DETECTION_PARAMS.property.minViews) { v += m.get(s)?.v ?? 0; x += m.get(s)?.x ?? 0; s--; }
    const f = figures.find((r) => r.scope === 'property' && r.property_id === p && r.error_type === 'networkError')!;
    assert.equal(f.window_views, v, p);
    assert.equal(f.window_failures, x, p);
    assert.equal(f.error_ratio, x / v);
    assert.equal(f.open, false);
    assert.ok(f.warm && f.threshold_ratio > f.baseline_ratio && f.baseline_ratio > 0.005 && f.baseline_ratio < 0.02, JSON.stringify(f));
  }
  // Titles are there too, with their property's name.
  assert.equal(figures.filter((f) => f.scope === 'title' && f.property_id === 'b').length, 10);
});

test('the same figures whatever the worker count and page size; small pages page', async () => {
  const a = await run(1, 4096);
  const b = await run(3, 7);
  assert.ok(b.pages > 3);
  const norm = (fs: CellFigures[]) => fs.map((f) => JSON.stringify([keyOf(f), f])).sort();
  assert.deepEqual(norm(b.figures), norm(a.figures));
});
