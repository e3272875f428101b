// High-cardinality benchmark: what creating keys costs next to looking them up, in one process.
//
// Throughput (`vigil replay` in process, src/replay/replay.ts) of three streams of EVENTS events
// over 50 properties, 1 and 2 workers, ROUNDS rounds alternating the streams:
//   few:      titles from a catalogue of 1,000 (every key exists after the first second);
//   distinct: every event a title never seen before (every event creates a title key);
//   mix30:    30% of the events a new title, the others a title seen before (a catalogue launch).
// Reports the median events/s of each and its ratio to `few` with the same worker count: key
// creation at lookup speed is a ratio near 1.
//
// Memory (`BENCH_MODE=memory`, or after the throughput part): a fresh child process per size makes
// one kernel (no workers) learn N title keys (one view each, one error type on every key) and
// reports the growth of its RSS per key, against a Map-based peer holding the same keys' names and
// counts (an object per key with a 32-slot view ring) in another child.
//
// Against another build in the same run: BENCH_BASELINE=<dir>, a tree of that build (its build/ made,
// node_modules linked), e.g. `git archive main | tar -x -C /tmp/base && ln -s $PWD/node_modules
// /tmp/base/ && (cd /tmp/base && npm run build:wasm)`. Each round then runs the baseline's and this
// tree's throughput in child processes one after the other (its own bench/keys.ts, one round each),
// and the memory table gets a column for the baseline's kernel.
//
// The kernel alone (`BENCH_MODE=kernel`): one thread decodes and ingests each stream into a fresh
// kernel, this build's and (with BENCH_BASELINE) the baseline's alternating in one process, and reports
// the CPU time (user + system) per event, which a machine loaded by other work disturbs far less than
// events/s by wall clock. BENCH_FILE=<ndjson> adds a file as a fourth stream.
//
// Micro (`BENCH_MODE=micro`, tinybench): one process holds BENCH_MICRO_KEYS (10M) title keys in a
// kernel of this build (and of the baseline's, with BENCH_BASELINE) and in a Map peer (JSON.parse per
// line, a Map from "property\ntitle" to an index and a 32-slot view and failure ring per key, the
// least an engine with this detection keeps), then times chunks of 4,096 events: every title one held
// already (lookup with 10M keys), and every title a new one (creation at 10M keys).
//
// Not a timed test: `npm run build && node --import tsx bench/keys.ts`
// (BENCH_EVENTS, BENCH_ROUNDS, BENCH_WORKERS=1,2, BENCH_MEMORY_KEYS=1000000,4000000, BENCH_MODE=throughput|memory|kernel|micro,
// BENCH_BASELINE, BENCH_FILE, BENCH_MICRO_KEYS, BENCH_MICRO_ITERATIONS).
import { Readable, Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { replay } from '../src/replay/replay.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { EventClock, DEFAULT_CLOCK_OPTIONS } from '../src/engine/event-clock.ts';
import { silentLogger } from '../src/log/logger.ts';
import { Bench } from 'tinybench';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
const MEMORY_KEYS = (process.env.BENCH_MEMORY_KEYS ?? '1000000').split(',').map(Number);
const MODE = process.env.BENCH_MODE ?? 'all';
const BASELINE = process.env.BENCH_BASELINE;
const SELF = fileURLToPath(import.meta.url);
const START = Date.UTC(2026, 11, 1);
const HOUR = 3_600_000;
const CHUNK = 1 << 20;
const PROPERTIES = 50;

type Stream = 'few' | 'distinct' | 'mix30';

/** Title number of event i: few cycles through 1,000; distinct is i; mix30 is new for 30% of events, else one seen before. */
function titleOf(stream: Stream, i: number, seen: { n: number }): number {
  if (stream === 'few') return i % 1000;
  if (stream === 'distinct') return i;
  // 3 of every 10 events (spread, not in a block) bring a new title; the rest re-hit an earlier one
  // picked by a multiplicative hash, so re-hits touch old and recent titles alike.
  if ((i * 3) % 10 < 3 || seen.n === 0) return seen.n++;
  return (Math.imul(i, 0x9e3779b1) >>> 0) % seen.n;
}

/** The stream as NDJSON in 1 MiB buffers, built before the clock starts. */
function build(stream: Stream, events: number): Buffer[] {
  const out: Buffer[] = [];
  const seen = { n: 0 };
  let text = '';
  for (let i = 0; i < events; i++) {
    const t = titleOf(stream, i, seen);
    const err = i % 33 === 0 ? '"networkError"' : 'null';
    const line = `{"view_id":"v${i}","property_id":"p${t % PROPERTIES}","video_title":"Title number ${t}","error_type":${err},"ts":${START + Math.floor((i * HOUR) / events)}}\n`;
    if (text.length + line.length > CHUNK) { out.push(Buffer.from(text)); text = ''; }
    text += line;
  }
  if (text) out.push(Buffer.from(text));
  return out;
}

async function run(data: Buffer[], workers: number): Promise<{ eps: number; seconds: number; events: number; keysDropped: number }> {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const keys = EVENTS + 1000;
  const s = await replay({
    input: Readable.from(data), output: sink, workers, groups: 128, chunkBytes: CHUNK, params: DEFAULT_DETECTION_PARAMS,
    maxKeysPerWorker: keys, maxCellsPerWorker: Math.ceil(keys / 8), logger: silentLogger(),
  });
  return { eps: s.eventsPerSecond, seconds: s.seconds, events: s.events, keysDropped: 0 };
}

/** Decodes a chunk in one kernel (one owner of all 128 key groups), plans it on `clock` and ingests it. */
function feedKernel(k: WasmKernel, clock: EventClock, buf: Buffer): void {
  const d = k.decodeChunk(buf, 1, 128);
  const plan = clock.plan(d.times, d.props);
  k.ingest(d.parts[0], plan.plan, plan.endTarget);
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const m = (x: number) => `${(x / 1e6).toFixed(2)}M`;

/** One round of each stream with `workers` workers, run by `script` (this bench or a baseline's) in a child: events/s by stream. */
function childRound(script: string, cwd: string, workers: number): Record<string, number> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    cwd, env: { ...process.env, BENCH_MODE: 'throughput', BENCH_ROUNDS: '1', BENCH_WORKERS: String(workers), BENCH_BASELINE: '' },
    encoding: 'utf8', maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`throughput child (${script}) failed: ${r.stderr}`);
  const out: Record<string, number> = {};
  for (const l of r.stderr.split('\n')) {
    const x = /^round \d+ (\w+) workers=\d+: ([\d.]+)M events\/s/.exec(l);
    if (x) out[x[1]] = Number(x[2]) * 1e6;
  }
  return out;
}

/** This build against the baseline's, alternating child processes round by round. */
function throughputAgainstBaseline(base: string): void {
  const streams: Stream[] = ['few', 'distinct', 'mix30'];
  const results: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of WORKERS) {
      for (const [who, script, cwd] of [['baseline', `${base}/bench/keys.ts`, base], ['this', SELF, process.cwd()]] as const) {
        const res = childRound(script, cwd, w);
        for (const s of streams) (results[`${who}/${s}/${w}`] ??= []).push(res[s]);
        process.stderr.write(`round ${r + 1} ${who} workers=${w}: ${streams.map((s) => `${s} ${m(res[s])}`).join(', ')}\n`);
      }
    }
  }
  console.log(`\n${EVENTS} events, ${PROPERTIES} properties, median of ${ROUNDS} rounds alternating the baseline (${base}) and this build (${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()})`);
  console.log('| stream | workers | baseline events/s | this build events/s | this / baseline | runs (baseline; this) |');
  console.log('|---|---|---|---|---|---|');
  for (const w of WORKERS) {
    for (const s of streams) {
      const b = results[`baseline/${s}/${w}`];
      const t = results[`this/${s}/${w}`];
      console.log(`| ${s} | ${w} | ${m(median(b))} | ${m(median(t))} | ${(median(t) / median(b)).toFixed(2)}x | ${b.map(m).join(' ')}; ${t.map(m).join(' ')} |`);
    }
  }
}

async function throughput(): Promise<void> {
  const streams: Stream[] = ['few', 'distinct', 'mix30'];
  const data = Object.fromEntries(streams.map((s) => [s, build(s, EVENTS)])) as Record<Stream, Buffer[]>;
  const results: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of WORKERS) {
      for (const s of streams) {
        const res = await run(data[s], w);
        if (res.events !== EVENTS) throw new Error(`${s}: ${res.events} events counted of ${EVENTS}`);
        (results[`${s}/${w}`] ??= []).push(res.eps);
        process.stderr.write(`round ${r + 1} ${s} workers=${w}: ${(res.eps / 1e6).toFixed(4)}M events/s\n`);
      }
    }
  }
  console.log(`\n${EVENTS} events, ${PROPERTIES} properties, median of ${ROUNDS} (${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()})`);
  console.log('| stream | workers | events/s (median) | runs | vs few |');
  console.log('|---|---|---|---|---|');
  for (const w of WORKERS) {
    const few = median(results[`few/${w}`]);
    for (const s of streams) {
      const xs = results[`${s}/${w}`];
      console.log(`| ${s} | ${w} | ${m(median(xs))} | ${xs.map(m).join(' ')} | ${(median(xs) / few).toFixed(2)}x |`);
    }
  }
}

/** CPU ns per event of decoding and ingesting each stream in one thread, this build's kernel against the baseline's in one process. */
async function kernelOnly(): Promise<void> {
  type Kernel = typeof WasmKernel;
  const impls: Array<[string, Kernel]> = [['this', WasmKernel]];
  if (BASELINE) impls.unshift(['baseline', (await import(pathToFileURL(`${BASELINE}/src/kernel/wasm-kernel.ts`).href)).WasmKernel as Kernel]);
  const streams: string[] = ['few', 'distinct', 'mix30'];
  const data: Record<string, Buffer[]> = Object.fromEntries(streams.map((s) => [s, build(s as Stream, EVENTS)]));
  // BENCH_FILE: an ndjson file as a fourth stream (e.g. `vigil generate --hours 24 --seed 1 --scale 0.11`,
  // a realistic day: most events on one property's titles), in chunks cut at line ends.
  const file = process.env.BENCH_FILE;
  if (file) {
    streams.push('file');
    data.file = fileChunks(file);
  }
  const results: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of streams) {
      for (const [who, K] of impls) {
        const k = K.create({
          maxKeys: Math.max(EVENTS, 2_000_000) + 1000, maxCells: Math.max(EVENTS, 2_000_000) + 1000, chunkBytes: CHUNK, groupLo: 0, groupHi: 128, groups: 128, params: DEFAULT_DETECTION_PARAMS,
        });
        const clock = new EventClock(DEFAULT_CLOCK_OPTIONS);
        const t0 = process.cpuUsage();
        for (const buf of data[s]) {
          feedKernel(k, clock, buf);
        }
        k.finish();
        const used = process.cpuUsage(t0);
        const events = k.counters().events;
        if (s !== 'file' && events !== EVENTS) throw new Error(`${who} ${s}: ${events} events of ${EVENTS}`);
        const ns = ((used.user + used.system) * 1000) / events;
        (results[`${who}/${s}`] ??= []).push(ns);
        process.stderr.write(`round ${r + 1} ${s} ${who}: ${ns.toFixed(0)} ns/event\n`);
      }
    }
  }
  console.log(`\nKernel alone, one thread, decode + ingest, CPU ns per event, median of ${ROUNDS} (${EVENTS} events; ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()})`);
  console.log(`| stream |${impls.map(([w]) => ` ${w} |`).join('')}${BASELINE ? ' this / baseline |' : ''}`);
  console.log(`|---|${impls.map(() => '---|').join('')}${BASELINE ? '---|' : ''}`);
  for (const s of streams) {
    const cols = impls.map(([w]) => median(results[`${w}/${s}`]));
    console.log(`| ${s} |${cols.map((c) => ` ${c.toFixed(0)} |`).join('')}${BASELINE ? ` ${(cols[1] / cols[0]).toFixed(2)}x |` : ''}`);
  }
}

/** BENCH_MODE=micro: lookup and creation with 10M title keys held, kernels against a Map peer (see the head). */
async function micro(): Promise<void> {
  const held = Number(process.env.BENCH_MICRO_KEYS ?? 10_000_000);
  const iterations = Number(process.env.BENCH_MICRO_ITERATIONS ?? 100);
  const LINES = 4096;
  // Event i at START + i * (an hour / held): the keys held came in an hour; the timed chunks go on at that rate.
  const line = (i: number, t: number) =>
    `{"property_id":"p${t % PROPERTIES}","video_title":"Title number ${t}","error_type":${i % 33 === 0 ? '"networkError"' : 'null'},"ts":${START + Math.floor((i * HOUR) / held)}}\n`;
  const chunkOf = (from: number, title: (i: number) => number) => {
    let text = '';
    for (let i = from; i < from + LINES; i++) text += line(i, title(i));
    return Buffer.from(text);
  };
  // Lookups (titles held, picked by a multiplicative hash) come first, then creations (titles never seen).
  // tinybench may call a task more often than its iterations: room for twice as many chunks.
  const pool = 2 * iterations;
  const lookups = Array.from({ length: pool }, (_, j) => chunkOf(held + j * LINES, (i) => (Math.imul(i, 0x9e3779b1) >>> 0) % held));
  const creates = Array.from({ length: pool }, (_, j) => chunkOf(held + (pool + j) * LINES, (i) => i));

  interface Impl { name: string; feed(buf: Buffer): void; keys(): number }
  const kernelImpl = (name: string, K: typeof WasmKernel): Impl => {
    const keys = held + 2 * pool * LINES + 1000;
    const k = K.create({ maxKeys: keys, maxCells: keys, chunkBytes: CHUNK, groupLo: 0, groupHi: 128, groups: 128, params: DEFAULT_DETECTION_PARAMS });
    const clock = new EventClock(DEFAULT_CLOCK_OPTIONS);
    return {
      name,
      feed(buf) {
        feedKernel(k, clock, buf);
      },
      keys: () => k.counters().keys,
    };
  };
  const mapImpl = (): Impl => {
    const cap = held + 2 * pool * LINES;
    const index = new Map<string, number>();
    const rings = new Uint8Array(cap * 64); // per key: 32 slots of views, 32 of failures (u8, as the kernel's busiest narrow width)
    const SLOT = 10 * 60_000;
    return {
      name: 'Map peer',
      feed(buf) {
        for (const l of buf.toString('utf8').split('\n')) {
          if (!l) continue;
          const e = JSON.parse(l) as { property_id: string; video_title: string; error_type: string | null; ts: number };
          const key = `${e.property_id}\n${e.video_title}`;
          let at = index.get(key);
          if (at === undefined) { at = index.size; index.set(key, at); }
          const slot = Math.floor(e.ts / SLOT) & 31;
          rings[at * 64 + slot]++;
          if (e.error_type !== null) rings[at * 64 + 32 + slot]++;
        }
      },
      keys: () => index.size,
    };
  };
  const impls: Impl[] = [kernelImpl('this build', WasmKernel)];
  if (BASELINE) impls.push(kernelImpl('baseline', (await import(pathToFileURL(`${BASELINE}/src/kernel/wasm-kernel.ts`).href)).WasmKernel as typeof WasmKernel));
  impls.push(mapImpl());
  for (const impl of impls) {
    const t0 = performance.now();
    let text = '';
    for (let i = 0; i < held; i++) {
      const l = line(i, i);
      if (text.length + l.length > CHUNK) { impl.feed(Buffer.from(text)); text = ''; }
      text += l;
    }
    impl.feed(Buffer.from(text));
    if (impl.keys() < held) throw new Error(`${impl.name}: ${impl.keys()} keys of ${held}`);
    process.stderr.write(`${impl.name}: ${held.toLocaleString('en')} title keys held (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
  // One chunk of lookups untimed first (the code paths warm, as after the fill); then the lookups of
  // every implementation, then the creations.
  for (const impl of impls) impl.feed(lookups[0]);
  const bench = new Bench({ time: 0, iterations, warmup: false });
  const next = new Map<string, number>();
  const task = (name: string, chunks: Buffer[], from: number, feed: (b: Buffer) => void) => bench.add(name, () => {
    const at = next.get(name) ?? from;
    if (at >= chunks.length) throw new Error(`${name}: more calls than chunks`);
    next.set(name, at + 1);
    feed(chunks[at]);
  });
  for (const impl of impls) task(`${impl.name}: lookup`, lookups, 1, (b) => impl.feed(b));
  for (const impl of impls) task(`${impl.name}: create`, creates, 0, (b) => impl.feed(b));
  await bench.run();
  const mean = (t: (typeof bench.tasks)[number]) => (t.result.state === 'completed' ? t.result.latency.mean : NaN);
  for (const t of bench.tasks) if (t.result.state !== 'completed') throw new Error(`${t.name}: ${t.result.state} ${(t.result as { error?: Error }).error?.stack ?? ''}`);
  // The kernels hold the newest records until event time passes them (out-of-orderness): up to a chunk's keys not made yet.
  for (const impl of impls) if (impl.keys() < held + (iterations - 2) * LINES) throw new Error(`${impl.name}: ${impl.keys()} keys after creating`);
  const nsPerEvent = Object.fromEntries(bench.tasks.map((t) => [t.name, mean(t) * 1e6 / LINES]));
  console.log(`\nWith ${held.toLocaleString('en')} title keys held, chunks of ${LINES} events, ${iterations} per task, tinybench mean (${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()})`);
  console.log('| implementation | lookup ns/event | create ns/event | create / lookup | lookup vs Map peer | create vs Map peer |');
  console.log('|---|---|---|---|---|---|');
  const peer = (op: string) => nsPerEvent[`Map peer: ${op}`];
  for (const impl of impls) {
    const lookup = nsPerEvent[`${impl.name}: lookup`];
    const create = nsPerEvent[`${impl.name}: create`];
    console.log(`| ${impl.name} | ${lookup.toFixed(0)} | ${create.toFixed(0)} | ${(create / lookup).toFixed(2)}x | ${(peer('lookup') / lookup).toFixed(2)}x faster | ${(peer('create') / create).toFixed(2)}x faster |`);
  }
}

/** A file's bytes in chunks of at most CHUNK bytes, each ending at a line end. */
function fileChunks(path: string): Buffer[] {
  const all = readFileSync(path);
  const out: Buffer[] = [];
  for (let at = 0; at < all.length;) {
    let end = Math.min(at + CHUNK, all.length);
    if (end < all.length) end = all.lastIndexOf(10, end - 1) + 1;
    out.push(all.subarray(at, end));
    at = end;
  }
  return out;
}

/** Child: RSS growth per key of one kernel learning `n` title keys (one view and one failure each). */
function memoryChild(n: number, impl: string): void {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  if (impl === 'kernel') {
    const k = WasmKernel.create({
      maxKeys: n + 1000, maxCells: n + 1000, chunkBytes: CHUNK, groupLo: 0, groupHi: 128, groups: 128, params: DEFAULT_DETECTION_PARAMS,
    });
    const clock = new EventClock(DEFAULT_CLOCK_OPTIONS);
    let text = '';
    const flush = () => {
      feedKernel(k, clock, Buffer.from(text));
      text = '';
    };
    for (let i = 0; i < n; i++) {
      const line = `{"property_id":"p${i % PROPERTIES}","video_title":"Title number ${i}","error_type":"networkError","ts":${START + Math.floor((i * HOUR) / n)}}\n`;
      if (text.length + line.length > CHUNK) flush();
      text += line;
    }
    flush();
    const c = k.counters();
    if (c.keys < n) throw new Error(`only ${c.keys} keys of ${n}`);
  } else {
    // The peer: a Map from "property\ntitle" to a record with the names, a 32-slot view ring and a cell
    // with a 32-slot failure ring, the least an engine with the same detection keeps per key.
    const map = new Map<string, { property: string; title: string; views: Uint32Array; error: string; fails: Uint32Array; last: number }>();
    for (let i = 0; i < n; i++) {
      const property = `p${i % PROPERTIES}`;
      const title = `Title number ${i}`;
      map.set(`${property}\n${title}`, { property, title, views: new Uint32Array(32), error: 'networkError', fails: new Uint32Array(32), last: i });
    }
    if (map.size !== n) throw new Error('map lost keys');
  }
  globalThis.gc?.();
  const after = process.memoryUsage().rss;
  process.stdout.write(JSON.stringify({ n, impl, bytesPerKey: (after - before) / n, rssMb: after / 2 ** 20 }) + '\n');
}

function memory(): void {
  console.log(`\nRSS growth per title key (one error type each), one kernel, fresh process each (total memory ${Math.round(totalmem() / 2 ** 30)} GiB)`);
  const impls: Array<[string, string, string]> = [['kernel', SELF, process.cwd()], ['map', SELF, process.cwd()]];
  if (BASELINE) impls.push(['baseline', `${BASELINE}/bench/keys.ts`, BASELINE]);
  console.log(`| title keys | Vigil kernel B/key | peak RSS | Map peer B/key |${BASELINE ? ' baseline kernel B/key | baseline peak RSS |' : ''}`);
  console.log(`|---|---|---|---|${BASELINE ? '---|---|' : ''}`);
  for (const n of MEMORY_KEYS) {
    const row: Record<string, { bytesPerKey: number; rssMb: number }> = {};
    for (const [name, script, cwd] of impls) {
      const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', '--import', 'tsx', script], {
        cwd, env: { ...process.env, BENCH_CHILD: `${n}:${name === 'map' ? 'map' : 'kernel'}` }, encoding: 'utf8', maxBuffer: 1 << 20,
      });
      if (r.status !== 0) throw new Error(`memory child ${name} ${n} failed: ${r.stderr}`);
      row[name] = JSON.parse(r.stdout.trim().split('\n').pop()!);
    }
    const base = row.baseline ? ` ${row.baseline.bytesPerKey.toFixed(0)} | ${row.baseline.rssMb.toFixed(0)} MB |` : '';
    console.log(`| ${n.toLocaleString('en')} | ${row.kernel.bytesPerKey.toFixed(0)} | ${row.kernel.rssMb.toFixed(0)} MB | ${row.map.bytesPerKey.toFixed(0)} |${base}`);
  }
}

if (process.env.BENCH_CHILD) {
  const [n, impl] = process.env.BENCH_CHILD.split(':');
  memoryChild(Number(n), impl);
} else {
  if (MODE === 'kernel') {
    await kernelOnly();
  } else if (MODE === 'micro') {
    await micro();
  } else {
    if (MODE !== 'memory') {
      if (BASELINE) throughputAgainstBaseline(BASELINE);
      else await throughput();
    }
    if (MODE !== 'throughput') memory();
  }
}
