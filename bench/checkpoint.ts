// Checkpoint cost and pause at a large number of tracked keys, full against incremental checkpoints.
//
// The engine (2 workers) first learns KEYS title keys (one view each, over PROPERTIES properties),
// then ingests a day-like stream: views of titles drawn by popularity (Zipf, exponent 1: a few titles
// take most views, most titles are seen now and then), 1% of them failures, at RATE views a second of
// event time. A checkpoint is taken every INTERVAL_MS of *event time* (15 s: the daemon's default
// interval), so each checkpoint sees the share of keys a live deployment at RATE sees change in an
// interval, however fast the benchmark runs. At 20,000 views/s, 300,000 views fall in an interval and
// reach ~10% of 1M titles (the popular ones every time, the long tail now and then): that is the
// realistic share, measured and reported per run (`changedShare`).
//
// Five runs in one process, in turn, twice: no checkpoints (the peer), every checkpoint full
// (VIGIL_CHECKPOINT_MAX_DELTAS=0, the behaviour before incremental checkpoints), chains whose new
// base is a full export (the limits of the default policy, merges off), the same chains with every
// export written at the barrier (`barrier`: the engine's backgroundExports off, the peer of the
// background export), and the default policy
// (chains merged into a new base in a worker thread: the kernels export a full part only first). Each writes its checkpoints to disk as the daemon does (barrier, then the write off
// the hot path; the next barrier waits for the previous write). Reported: events/s of each (the cost
// is the loss against the peer, at checkpoints every INTERVAL_MS of event time, which at benchmark
// speed is far more often than every INTERVAL_MS of wall time: `costAt15sWall` scales the loss to
// one checkpoint per 15 s of wall time), each worker's pause per checkpoint (the time it stops
// ingesting to export: p50, p99, max; of a background export its longest stop, its start or one
// slice; for the chain, of incremental and of full parts apart; and of
// each pause, the worker thread's time on a CPU and waiting in a run queue for one, which tell a
// pause that the export makes long from one that waited for a core: Linux only), bytes
// per checkpoint and write time. Not a timed test: run it by hand
// (`npm run build && node --import tsx bench/checkpoint.ts`; BENCH_KEYS, BENCH_EVENTS, BENCH_RATE, BENCH_INTERVAL_MS,
// BENCH_RUNS=none,full,chain,barrier,merge, BENCH_ROUNDS, BENCH_PACE_MS). Of the background exports also: the
// sum of their stops, their slices, the share of keys written before their first change (in an
// ingest task, not a slice), and the time from asking for a checkpoint to its every part. After the chain run, its newest chain is merged once more in a
// worker thread while the main thread does nothing but measure its event loop's delay (the gaps of a
// 5 ms interval timer beyond 5 ms), against the same merge run on the main thread and against the
// idle main thread for as long (the machine's own noise).
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeCheckpoint, mergeInWorker } from '../src/engine/chain-merge.ts';
import { Engine, type EngineState } from '../src/engine/engine.ts';
import { CheckpointStore, DEFAULT_CHAIN_POLICY, type ChainPolicy, type CheckpointManifest, type MergeOutcome } from '../src/engine/checkpoint-store.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { silentLogger } from '../src/log/logger.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const PROPERTIES = 200;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 6_000_000);
const RATE = Number(process.env.BENCH_RATE ?? 20_000);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 15_000);
/**
 * Wall milliseconds per interval at least (0: as fast as it goes). At benchmark speed a checkpoint
 * comes every 2-3 s of wall time, so a merge of several seconds spans many checkpoints, where at the
 * daemon's 15 s it spans one or two: pacing shows the merge policy with a merge's time as it is
 * against the interval (the throughput of a paced run is not a cost: it sleeps).
 */
const PACE_MS = Number(process.env.BENCH_PACE_MS ?? 0);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** Which runs (comma-separated: none, full, chain, merge); all by default. */
const ONLY = process.env.BENCH_RUNS?.split(',');
const CHUNK = 1 << 20;
const START = Date.UTC(2026, 11, 1);
const encoder = new TextEncoder();

/** Cumulative Zipf(1) weights of title ranks 1..KEYS, for sampling by binary search. */
const cumulative = (() => {
  const c = new Float64Array(KEYS);
  let s = 0;
  for (let r = 0; r < KEYS; r++) c[r] = s += 1 / (r + 1);
  for (let r = 0; r < KEYS; r++) c[r] /= s;
  return c;
})();

/** sfc32-like small seeded generator: the same stream in every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0, b = 0x9e3779b9, c = 0x85ebca6b, d = 1;
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b | 0) + d | 0;
    d = d + 1 | 0;
    a = b ^ b >>> 9;
    b = c + (c << 3) | 0;
    c = (c << 21 | c >>> 11) + t | 0;
    return (t >>> 0) / 4294967296;
  };
}

function zipfTitle(u: number): number {
  let lo = 0, hi = KEYS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid] < u) lo = mid + 1; else hi = mid;
  }
  // Ranks spread over titles (and so over properties and workers) by a fixed permutation.
  return (lo * 7919 + 13) % KEYS;
}

/** Chunks of NDJSON: record i at START + i / RATE s; the learning pass names every title once, the stream draws them by popularity. */
function* chunks(from: number, count: number, learn: boolean): Generator<{ bytes: Uint8Array; events: number }> {
  const next = rng(7);
  let text = '';
  let first = from;
  for (let i = from; i < from + count; i++) {
    const t = learn ? i : zipfTitle(next());
    const err = !learn && next() < 0.01 ? '"networkError"' : 'null';
    const line = `{"property_id":"p${t % PROPERTIES}","video_title":"title-${t}","error_type":${err},"ts":${START + Math.floor((i * 1000) / RATE)}}\n`;
    if (text.length + line.length > CHUNK - 1024) {
      yield { bytes: encoder.encode(text), events: i - first };
      text = '';
      first = i;
    }
    text += line;
  }
  if (text) yield { bytes: encoder.encode(text), events: from + count - first };
}

async function engine(backgroundExports: boolean): Promise<Engine> {
  const e = new Engine({
    workers: 2, groups: 128, chunkBytes: CHUNK, params: DEFAULT_DETECTION_PARAMS,
    maxKeysPerWorker: Math.ceil(KEYS * 0.75) + 1000, maxCellsPerWorker: Math.ceil(KEYS * 0.3) + 1000,
    logger: silentLogger(), onVerdicts: () => {}, backgroundExports,
  });
  await e.start();
  return e;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0;
}

const stats = (xs: number[]) => (xs.length ? { n: xs.length, p50: +pct(xs, 50).toFixed(1), p99: +pct(xs, 99).toFixed(1), max: +Math.max(...xs).toFixed(1) } : null);

async function run(policy: ChainPolicy | null, backgroundExports = true): Promise<Record<string, unknown>> {
  const e = await engine(backgroundExports);
  // Learn the keys (not timed): one view of every title.
  for (const c of chunks(0, KEYS, true)) await e.push(c.bytes);
  await e.drain();
  const learned = e.kernelCounters().keys;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-cp-'));
  const merges: MergeOutcome[] = [];
  const store = new CheckpointStore(dir, policy ?? DEFAULT_CHAIN_POLICY, (m) => merges.push(m));
  const pauses = { full: [] as number[], delta: [] as number[] };
  const cpu = { full: [] as number[], delta: [] as number[] };
  const wait = { full: [] as number[], delta: [] as number[] };
  const writes: number[] = [];
  // Of each background export (a part of an incremental checkpoint): its stops summed, its slices, the keys written before a change.
  const background = { exportMs: [] as number[], slices: [] as number[], cowShare: [] as number[], completeMs: [] as number[] };
  const bytes = { full: [] as number[], delta: [] as number[] };
  const changed: number[] = [];
  let pending: Promise<void> | null = null;
  const perInterval = Math.round((RATE * INTERVAL_MS) / 1000);
  let nextAt = perInterval;
  let events = 0;
  const started = performance.now();
  let intervalStarted = started;
  for (const c of chunks(KEYS, EVENTS, false)) {
    await e.push(c.bytes);
    events += c.events;
    // A barrier every interval of event time.
    if (policy && events >= nextAt) {
      nextAt += perInterval;
      const idle = intervalStarted + PACE_MS - performance.now();
      if (idle > 0) await new Promise((res) => setTimeout(res, idle));
      intervalStarted = performance.now();
      await pending;
      // As the daemon does: a barrier, then the write off the hot path while chunks keep flowing.
      pending = (async () => {
        const asked = performance.now();
        const state: EngineState = await e.checkpoint(() => null, store.plan(2));
        const completeMs = performance.now() - asked;
        let delta = false;
        let keys = 0;
        for (const p of state.parts) {
          const h = decodeKernelState(p.bytes).header;
          delta = h.kind === 'delta';
          keys += h.keys;
          if (p.slices > 0) {
            background.exportMs.push(p.exportMs);
            background.slices.push(p.slices);
            background.cowShare.push(h.keys > 0 ? p.cowKeys / h.keys : 0);
          }
          (delta ? pauses.delta : pauses.full).push(p.pauseMs);
          if (p.pauseCpuMs !== null) (delta ? cpu.delta : cpu.full).push(p.pauseCpuMs);
          if (p.pauseWaitMs !== null) (delta ? wait.delta : wait.full).push(p.pauseWaitMs);
        }
        if (delta) changed.push(keys);
        if (state.parts.some((p) => p.slices > 0)) background.completeMs.push(completeMs);
        const t = performance.now();
        const saved = await store.save(state.parts, { eventTime: state.eventTime, positions: state.positions, source: null, latestVerdictMs: null }, 128, Date.now());
        writes.push(performance.now() - t);
        (delta ? bytes.delta : bytes.full).push(saved.bytes);
      })();
    }
  }
  await e.drain();
  const seconds = (performance.now() - started) / 1000;
  await pending;
  await store.settled();
  const keys = e.kernelCounters().keys;
  await e.stop();
  const mergeProbe = policy && policy.maxDeltas > 0 && !policy.merge && backgroundExports ? await probeMerge(dir) : null;
  rmSync(dir, { recursive: true, force: true });
  const all = [...pauses.full, ...pauses.delta];
  const mean = (xs: number[]) => (xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : null);
  return {
    policy: policy === null ? 'none' : policy.maxDeltas === 0 ? 'full' : `${policy.merge ? 'merge' : 'chain'} (maxDeltas ${policy.maxDeltas}, maxDeltaShare ${policy.maxDeltaShare})`,
    exports: backgroundExports ? 'background' : 'at the barrier',
    loadavg: loadavg().map((x) => +x.toFixed(1)),
    checkpoints: writes.length, keys, learned, seconds: +seconds.toFixed(1), eventsPerSecond: Math.round(EVENTS / seconds),
    changedShare: changed.length ? +(changed.reduce((a, b) => a + b, 0) / changed.length / keys).toFixed(3) : null,
    pauseMs: policy ? { all: stats(all), full: stats(pauses.full), delta: stats(pauses.delta) } : null,
    pauseCpuMs: policy ? { full: stats(cpu.full), delta: stats(cpu.delta) } : null,
    pauseWaitMs: policy ? { full: stats(wait.full), delta: stats(wait.delta) } : null,
    writeMs: policy ? { p50: Math.round(pct(writes, 50)), max: Math.round(Math.max(...writes)) } : null,
    background: background.slices.length ? {
      exportMs: stats(background.exportMs), slices: stats(background.slices), cowShare: +(background.cowShare.reduce((a, b) => a + b, 0) / background.cowShare.length).toFixed(3),
      barrierToCompleteMs: stats(background.completeMs),
    } : null,
    bytes: policy ? { full: mean(bytes.full), delta: mean(bytes.delta) } : null,
    merges: merges.length ? { ok: merges.filter((m) => m.outcome === 'merged').length, failed: merges.map((m) => (m.outcome === 'failed' ? m.error.message : '')).filter((e) => e), ms: stats(merges.map((m) => m.ms)) } : null,
    mergeProbe,
  };
}

/**
 * The newest checkpoint with a chain in `dir`, merged (a copy: twice, in a worker thread then on the
 * main thread) while the main thread's event loop delay is measured: what a merge costs the main
 * thread where it runs in a worker, against where it would run inline.
 */
async function probeMerge(dir: string): Promise<Record<string, unknown> | null> {
  const cps = join(dir, 'checkpoints');
  const newest = readdirSync(cps).filter((n) => n.startsWith('cp-')).sort().reverse()
    .find((n) => (JSON.parse(readFileSync(join(cps, n, 'manifest.json'), 'utf8')) as CheckpointManifest).parts.some((p) => p.kind === 'delta'));
  if (!newest) return null;
  const manifest = JSON.parse(readFileSync(join(cps, newest, 'manifest.json'), 'utf8')) as CheckpointManifest;
  const chainBytes = manifest.parts.reduce((a, p) => a + p.bytes + (p.chain ?? []).reduce((b, l) => b + l.bytes, 0), 0);
  const out: Record<string, unknown> = { checkpoint: newest, deltas: manifest.parts[0].chain?.length ?? 0, chainMB: Math.round(chainBytes / 1e6) };
  const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
  let workerMs = 1000;
  for (const where of ['worker', 'main', 'idle'] as const) {
    const copy = join(cps, `${newest}`);
    const backup = join(dir, `probe-${where}`);
    cpSync(copy, backup, { recursive: true });
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => { const now = performance.now(); gaps.push(now - last - 5); last = now; }, 5);
    await sleep(50);
    const t = performance.now();
    const r = where === 'worker' ? await mergeInWorker(copy, 128) : where === 'main' ? mergeCheckpoint(copy, 128) : await sleep(workerMs).then(() => null);
    const ms = performance.now() - t;
    if (where === 'worker') workerMs = ms;
    await sleep(50);
    clearInterval(timer);
    out[where] = {
      ms: Math.round(ms), mergedMB: r ? Math.round(r.parts.reduce((a, p) => a + p.merged.bytes, 0) / 1e6) : null,
      loopDelayMs: { p50: +pct(gaps, 50).toFixed(1), p99: +pct(gaps, 99).toFixed(1), max: +Math.max(...gaps).toFixed(1) },
    };
    // Back to the chain for the next probe.
    rmSync(copy, { recursive: true, force: true });
    cpSync(backup, copy, { recursive: true });
    rmSync(backup, { recursive: true, force: true });
  }
  return out;
}

console.log(JSON.stringify({ keys: KEYS, properties: PROPERTIES, events: EVENTS, rate: RATE, intervalMs: INTERVAL_MS, paceMs: PACE_MS, date: new Date().toISOString(), node: process.version }));
// In turn, so that the machine's other load falls on all alike.
const runs: Record<string, Array<Record<string, unknown>>> = { none: [], full: [], chain: [], barrier: [], merge: [] };
const chain = { ...DEFAULT_CHAIN_POLICY, merge: false };
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, policy, bg] of [['none', null, true], ['full', { maxDeltas: 0, maxDeltaShare: 0 }, true], ['chain', chain, true], ['barrier', chain, false], ['merge', DEFAULT_CHAIN_POLICY, true]] as const) {
    if (ONLY && !ONLY.includes(name)) continue;
    const r = await run(policy, bg);
    runs[name].push(r);
    console.log(JSON.stringify({ round, ...r }));
  }
}
// The cost against the peer of the same round; scaled to one checkpoint per 15 s of wall time.
for (const name of ['full', 'chain', 'barrier', 'merge'] as const) {
  for (let round = 0; round < ROUNDS; round++) {
    const peer = runs.none[round]?.eventsPerSecond as number;
    const r = runs[name][round];
    if (!peer || !r) continue;
    const cost = 1 - (r.eventsPerSecond as number) / peer;
    const wallPerCheckpoint = (r.seconds as number) / Math.max(1, r.checkpoints as number);
    console.log(JSON.stringify({ round, policy: name, cost: +cost.toFixed(3), wallSecondsPerCheckpoint: +wallPerCheckpoint.toFixed(2), costAt15sWall: +(cost * wallPerCheckpoint / 15).toFixed(4) }));
  }
}
