// Checkpoint cost at a large number of tracked keys: the engine (2 workers) first learns KEYS title
// keys (one view each, over 50 properties), then ingests a steady stream that revisits them, twice in
// the same process: without checkpoints (the peer) and with a checkpoint every INTERVAL_MS, written to
// disk as the daemon writes it. Reports events/s of both (the throughput cost), each worker's pause per
// checkpoint (the time it stops ingesting to export its key groups: p50, p99, max), the bytes and the
// time a checkpoint takes to be written. Not a timed test: run it by hand
// (`npm run build && node --import tsx bench/checkpoint.ts`; BENCH_KEYS, BENCH_EVENTS, BENCH_INTERVAL_MS).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type EngineState } from '../src/engine/engine.ts';
import { CheckpointStore } from '../src/engine/checkpoint-store.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { silentLogger } from '../src/log/logger.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 4_000_000);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 15_000);
const CHUNK = 1 << 20;
const START = Date.UTC(2026, 11, 1);
const encoder = new TextEncoder();

/** Chunks of NDJSON: record i is title i mod KEYS of property (i mod KEYS) mod 50, 20 views a second of event time per ... */
function* chunks(from: number, count: number, perSecond: number): Generator<Uint8Array> {
  let text = '';
  for (let i = from; i < from + count; i++) {
    const t = i % KEYS;
    const err = i % 97 === 0 ? '"networkError"' : 'null';
    const line = `{"property_id":"p${t % 50}","video_title":"title-${t}","error_type":${err},"ts":${START + Math.floor((i * 1000) / perSecond)}}\n`;
    if (text.length + line.length > CHUNK - 1024) {
      yield encoder.encode(text);
      text = '';
    }
    text += line;
  }
  if (text) yield encoder.encode(text);
}

async function engine(): Promise<Engine> {
  const e = new Engine({
    workers: 2, groups: 128, chunkBytes: CHUNK, params: DEFAULT_DETECTION_PARAMS,
    maxKeysPerWorker: Math.ceil(KEYS * 0.75) + 1000, maxCellsPerWorker: Math.ceil(KEYS * 0.1) + 1000,
    logger: silentLogger(), onVerdicts: () => {},
  });
  await e.start();
  return e;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0;
}

async function run(checkpoints: boolean): Promise<Record<string, unknown>> {
  const e = await engine();
  // Learn the keys (not timed): one view of every title.
  for (const c of chunks(0, KEYS, 2000)) await e.push(c);
  await e.drain();
  const learned = e.kernelCounters().keys;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-cp-'));
  const store = new CheckpointStore(dir);
  const pauses: number[] = [];
  const writes: number[] = [];
  let bytes = 0;
  let pending: Promise<void> | null = null;
  let lastCheckpoint = performance.now();
  const started = performance.now();
  for (const c of chunks(KEYS, EVENTS, 2000)) {
    await e.push(c);
    if (checkpoints && pending === null && performance.now() - lastCheckpoint >= INTERVAL_MS) {
      lastCheckpoint = performance.now();
      // As the daemon does: a barrier, then the write off the hot path while chunks keep flowing.
      pending = (async () => {
        const state: EngineState = await e.checkpoint(() => null);
        for (const p of state.parts) pauses.push(p.pauseMs);
        const t = performance.now();
        const saved = await store.save(state.parts, { eventTime: state.eventTime, positions: state.positions, source: null, latestVerdictMs: null }, 128, Date.now());
        writes.push(performance.now() - t);
        bytes = saved.bytes;
      })().finally(() => { pending = null; });
    }
  }
  await e.drain();
  const seconds = (performance.now() - started) / 1000;
  await pending;
  const keys = e.kernelCounters().keys;
  await e.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    checkpoints: checkpoints ? pauses.length / 2 : 0, keys, learned, eventsPerSecond: Math.round(EVENTS / seconds),
    pauseMs: checkpoints ? { p50: +pct(pauses, 50).toFixed(1), p99: +pct(pauses, 99).toFixed(1), max: +Math.max(...pauses).toFixed(1) } : null,
    writeMs: checkpoints ? { p50: Math.round(pct(writes, 50)), max: Math.round(Math.max(...writes)) } : null,
    checkpointBytes: bytes,
  };
}

console.log(JSON.stringify({ keys: KEYS, events: EVENTS, intervalMs: INTERVAL_MS, date: new Date().toISOString() }));
// Alternate the two, so that the machine's other load falls on both alike.
for (let round = 0; round < 2; round++) {
  console.log(JSON.stringify({ round, peer: await run(false) }));
  console.log(JSON.stringify({ round, withCheckpoints: await run(true) }));
}
