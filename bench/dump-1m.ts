// Measures dump-error-rates over N cells (default 1M): time and peak RSS, with a putter that only counts bytes.
// node --import tsx bench/dump-1m.ts [cells]
import { Engine } from '../src/engine/engine.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { silentLogger } from '../src/log/logger.ts';
import { DumpWriter } from '../src/dump/dump-writer.ts';

const cells = Number(process.argv[2] ?? 1_000_000);
const workers = 2;
const engine = new Engine({
  workers, groups: 128, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS,
  maxKeysPerWorker: Math.ceil(cells / workers * 1.2), maxCellsPerWorker: Math.ceil(cells / workers * 1.2), logger: silentLogger(), onVerdicts: () => {},
});
await engine.start();
const t0 = Date.UTC(2026, 0, 1);
let batch: string[] = [];
for (let i = 0; i < cells; i++) {
  batch.push(`{"property_id":"p${i}","error_type":"networkError","ts":${t0 + Math.floor(i / 100)}}`);
  if (batch.length === 10_000) { await engine.push(Buffer.from(batch.join('\n') + '\n')); batch = []; }
}
if (batch.length) await engine.push(Buffer.from(batch.join('\n') + '\n'));
await engine.finish();
const counters = engine.kernelCounters();
let bytes = 0;
let parts = 0;
const putter = { put: async (_k: string, body: Uint8Array) => { bytes += body.byteLength; parts++; } };
const w = new DumpWriter(putter, 'bench/', 'error-rates', {}, 50_000, Date.now(), 'bench');
let peak = process.memoryUsage().rss;
const rssBefore = peak;
const started = performance.now();
await engine.dumpFigures(async (page) => { await w.add(page); peak = Math.max(peak, process.memoryUsage().rss); });
const r = await w.finish();
const ms = performance.now() - started;
await engine.stop();
console.log(JSON.stringify({ cells: counters.cells, keys: counters.keys, records: r.records, parts, mb: +(bytes / 1e6).toFixed(1), seconds: +(ms / 1000).toFixed(2), recordsPerS: Math.round(r.records / (ms / 1000)), rssBeforeMb: Math.round(rssBefore / 1e6), peakRssMb: Math.round(peak / 1e6) }));
