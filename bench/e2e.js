// End-to-end benchmark: replays a generated file with 1 and 2 workers and, in the same
// process, a naive single-threaded implementation of the same detection (JSON.parse per
// line + the Map-based reference model). Prints events/s and the ratios. Both must agree
// on the incidents, or the comparison would measure different work.
import { existsSync, mkdirSync, createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeGeneratedFiles } from '../dist/generate/index.js';
import { replay } from '../dist/replay/replay.js';
import { ReferenceModel } from '../dist/kernel/reference-model.js';
import { DEFAULT_DETECTION_PARAMS } from '../dist/kernel/detection-params.js';
import { silentLogger } from '../dist/log/logger.js';

const hours = Number(process.env.BENCH_HOURS ?? 4);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const outDir = join(import.meta.dirname, 'out');
const file = join(outDir, `bench-h${hours}-s${scale}.ndjson`);
mkdirSync(outDir, { recursive: true });
if (!existsSync(file)) {
  process.stderr.write(`generating ${file} ...\n`);
  await writeGeneratedFiles({ seed: 7, hours, scale, out: file });
}
const bytes = statSync(file).size;

async function vigil(workers) {
  let out = '';
  const sink = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
  const s = await replay({
    input: file, output: sink, workers, groups: 128, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS,
    maxKeysPerWorker: 250_000, maxCellsPerWorker: 500_000, logger: silentLogger(),
  });
  return { eventsPerSecond: s.eventsPerSecond, seconds: s.seconds, events: s.events, opened: (out.match(/"type":"opened"/g) ?? []).length };
}

async function naive() {
  const start = process.hrtime.bigint();
  const model = new ReferenceModel(DEFAULT_DETECTION_PARAMS);
  let maxTs = -Infinity;
  let events = 0;
  let opened = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    let o;
    try { o = JSON.parse(line); } catch { continue; }
    if (o === null || typeof o !== 'object' || o.property_id == null || o.ts == null) continue;
    const ts = typeof o.ts === 'number' ? Math.floor(o.ts) : /^\d+$/.test(o.ts) ? Number(o.ts) : Date.parse(o.ts);
    if (!Number.isFinite(ts)) continue;
    if (ts > maxTs) maxTs = ts;
    model.ingest({ propertyId: String(o.property_id), videoTitle: o.video_title || null, errorType: o.error_type || null, ts }, maxTs);
    events++;
    if (events % 100_000 === 0) opened += model.takeVerdicts().filter((v) => v.kind === 'open').length;
  }
  model.finish();
  opened += model.takeVerdicts().filter((v) => v.kind === 'open').length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { eventsPerSecond: events / seconds, seconds, events, opened };
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const results = { naive: [], w1: [], w2: [] };
for (let r = 0; r < rounds; r++) {
  results.naive.push(await naive());
  results.w1.push(await vigil(1));
  results.w2.push(await vigil(2));
}
const best = (xs) => xs.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
const n = best(results.naive);
const w1 = best(results.w1);
const w2 = best(results.w2);
if (n.opened !== w1.opened || w1.opened !== w2.opened) {
  console.error(`incident counts differ: naive ${n.opened}, 1 worker ${w1.opened}, 2 workers ${w2.opened}`);
  process.exitCode = 1;
}
const fmt = (x) => `${(x / 1e6).toFixed(2)}M/s`;
console.log(`file: ${file} (${(bytes / 1e6).toFixed(0)} MB, ${w2.events.toLocaleString('en')} events, ${w2.opened} incidents)`);
console.log(`machine: ${cpus().length} × ${cpus()[0].model}, node ${process.version}, ${new Date().toISOString()}`);
console.log(`naive (JSON.parse + Map, 1 thread): ${fmt(n.eventsPerSecond)}`);
console.log(`vigil, 1 worker:                    ${fmt(w1.eventsPerSecond)}  (${(w1.eventsPerSecond / n.eventsPerSecond).toFixed(1)}x naive)`);
console.log(`vigil, 2 workers:                   ${fmt(w2.eventsPerSecond)}  (${(w2.eventsPerSecond / n.eventsPerSecond).toFixed(1)}x naive, ${(w2.eventsPerSecond / w1.eventsPerSecond).toFixed(2)}x 1 worker)`);
console.log(JSON.stringify({ bench: 'e2e', events: w2.events, naive: n.eventsPerSecond, w1: w1.eventsPerSecond, w2: w2.eventsPerSecond }));
