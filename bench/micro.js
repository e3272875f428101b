// Micro benchmarks (tinybench), each against a peer in the same process:
//   decode: the WASM extractor (decodeChunk) vs JSON.parse + field access, per 1 MiB chunk;
//   count:  the WASM kernel's ingest vs the TypeScript reference model vs a plain Map counter;
//   hand-off: a Piscina task carrying a transferred 1 MiB buffer vs a copied one vs 8k objects.
import { Bench } from 'tinybench';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { WasmKernel } from '../dist/kernel/wasm-kernel.js';
import { ReferenceModel } from '../dist/kernel/reference-model.js';
import { DEFAULT_DETECTION_PARAMS } from '../dist/kernel/detection-params.js';
import { LineChunker } from '../dist/ingest/line-chunker.js';
import { DEFAULT_CLOCK_OPTIONS, EventClock } from '../dist/engine/event-clock.js';
import { createGenerator } from '../dist/generate/index.js';

const CHUNK = 1 << 20;
const file = join(import.meta.dirname, 'out', 'micro.ndjson');
let text;
if (existsSync(file)) text = readFileSync(file);
else {
  const g = createGenerator({ seed: 3, hours: 1, scale: 0.2 });
  text = Buffer.from(g.nextBatch(Infinity).join('\n') + '\n');
}
const chunks = [];
const chunker = new LineChunker(CHUNK);
chunker.push(text, (c) => chunks.push(c));
const chunk = chunks[0];
const lines = new TextDecoder().decode(chunk).split('\n').filter(Boolean);
const linesPerChunk = lines.length;

const init = { maxKeys: 100_000, maxCells: 200_000, chunkBytes: CHUNK, groupLo: 0, groupHi: 128, params: DEFAULT_DETECTION_PARAMS };
const decoder = WasmKernel.create(init);
const decoded = chunks.map((c) => decoder.decodeChunk(c, 1, 128));
const events = lines.map((l) => { const o = JSON.parse(l); return { propertyId: String(o.property_id), videoTitle: o.video_title || null, errorType: o.error_type || null, ts: typeof o.ts === 'number' ? o.ts : Date.parse(o.ts) }; });

const bench = new Bench({ time: 1500, warmupTime: 300 });
bench
  .add('decode: WASM decodeChunk (1 MiB)', () => { decoder.decodeChunk(chunk, 1, 128); })
  .add('decode: JSON.parse + fields (1 MiB)', () => {
    let n = 0;
    for (const l of new TextDecoder().decode(chunk).split('\n')) {
      if (!l) continue;
      const o = JSON.parse(l);
      if (o.property_id != null && o.ts != null) n += (o.video_title ? 1 : 0) + (o.error_type ? 1 : 0);
    }
    return n;
  });

// The engine's clock plans each chunk once; the kernel bench measures ingesting by those plans.
const clock = new EventClock({ ...DEFAULT_CLOCK_OPTIONS });
const plans = decoded.map((d) => clock.plan(d.times, d.props));
let kernel = WasmKernel.create(init);
let ki = 0;
let model = new ReferenceModel(DEFAULT_DETECTION_PARAMS);
let mi = 0;
let maxTs = -Infinity;
let counts = new Map();
bench
  .add('count: WASM kernel ingest (1 chunk)', () => {
    if (ki === decoded.length) { kernel = WasmKernel.create(init); ki = 0; }
    const d = decoded[ki];
    const { plan, endTarget } = plans[ki++];
    kernel.ingest(d.parts[0], plan.slice(), endTarget);
  })
  .add('count: TS reference model (1 chunk of events)', () => {
    if (mi > 40) { model = new ReferenceModel(DEFAULT_DETECTION_PARAMS); mi = 0; maxTs = -Infinity; }
    const shift = mi++ * 3_600_000;
    for (const e of events) { const ts = e.ts + shift; if (ts > maxTs) maxTs = ts; model.ingest({ ...e, ts }, maxTs); }
    model.takeVerdicts();
  })
  .add('count: Map counter baseline (1 chunk of events)', () => {
    if (counts.size > 1e6) counts = new Map();
    for (const e of events) {
      const k = e.propertyId + '\u0000' + (e.videoTitle ?? '') + '\u0000' + (e.errorType ?? '');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  });

const pool = new Piscina({ filename: new URL('./echo-worker.js', import.meta.url).href, minThreads: 1, maxThreads: 1 });
const objects = events.slice(0, 8192);
bench
  .add('hand-off: task with transferred 1 MiB buffer', async () => { const b = new Uint8Array(CHUNK); await pool.run(b, { transferList: [b.buffer] }); })
  .add('hand-off: task with copied 1 MiB buffer', async () => { await pool.run(new Uint8Array(CHUNK)); })
  .add('hand-off: task with 8k event objects', async () => { await pool.run(objects); });

await bench.run();
await pool.destroy();
const rows = bench.tasks.map((t) => ({ task: t.name, 'ops/s': Math.round(t.result.throughput?.mean ?? t.result.hz), 'mean ms': Number((t.result.latency?.mean ?? t.result.mean).toFixed(3)) }));
console.table(rows);
const hz = Object.fromEntries(bench.tasks.map((t) => [t.name, t.result.throughput?.mean ?? t.result.hz]));
const ratio = (a, b) => (hz[a] / hz[b]).toFixed(1);
console.log(`lines per chunk: ${linesPerChunk}`);
console.log(`decode: WASM ${(hz['decode: WASM decodeChunk (1 MiB)'] * linesPerChunk / 1e6).toFixed(2)}M lines/s, ${ratio('decode: WASM decodeChunk (1 MiB)', 'decode: JSON.parse + fields (1 MiB)')}x JSON.parse`);
console.log(`count: WASM ${ratio('count: WASM kernel ingest (1 chunk)', 'count: TS reference model (1 chunk of events)')}x the reference model, ${ratio('count: WASM kernel ingest (1 chunk)', 'count: Map counter baseline (1 chunk of events)')}x a bare Map counter`);
console.log(`hand-off: transfer ${ratio('hand-off: task with transferred 1 MiB buffer', 'hand-off: task with copied 1 MiB buffer')}x copy, ${ratio('hand-off: task with transferred 1 MiB buffer', 'hand-off: task with 8k event objects')}x 8k objects`);
