// Kafka benchmark: events/s end to end (vigil run's Kafka source -> engine -> incidents) from a
// pre-filled topic, next to the rate at which kafkajs alone, as shipped, consumes the same topic
// (eachBatch, counting values) in a child process of this script run before and after Vigil: Vigil
// patches kafkajs for its whole process (its own record batch decoder), so the peer cannot share it.
// Also samples memory while Vigil drains the backlog: a pre-filled topic is the worst burst there
// is, so peak memory must stay far below its size. The child runs with this process's node flags.
// Needs the broker: bash scripts/services.sh up kafka. BENCH_KAFKA_RECORDS (default 1000000), BENCH_KAFKA_CODEC (none).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, createReadStream, createWriteStream, statSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { cpus, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { writeGeneratedFiles } from '../dist/generate/index.js';
import { loadConfig } from '../dist/config/config.js';
// Vigil's modules patch kafkajs when they load (src/ingest/kafkajs-patches.ts): imported only on the Vigil side, below.
import { silentLogger } from '../dist/log/logger.js';

const { Kafka, logLevel } = kafkajs;
const brokers = process.env.VIGIL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092';
const records = Number(process.env.BENCH_KAFKA_RECORDS ?? 1_000_000);
const partitions = Number(process.env.BENCH_KAFKA_PARTITIONS ?? 4);
const workers = Number(process.env.BENCH_WORKERS ?? 2);
// How kcat compresses the topic's batches: none, gzip, snappy, lz4 or zstd.
const codec = process.env.BENCH_KAFKA_CODEC ?? 'none';
const outDir = join(import.meta.dirname, 'out');
mkdirSync(outDir, { recursive: true });
const source = join(outDir, 'bench-h4-s1.ndjson');
if (!existsSync(source)) {
  process.stderr.write(`generating ${source} ...\n`);
  await writeGeneratedFiles({ seed: 7, hours: 4, scale: 1, out: source });
}
const file = join(outDir, `kafka-${records}.ndjson`);
if (!existsSync(file)) {
  const out = createWriteStream(file);
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(source), crlfDelay: Infinity })) {
    if (!out.write(line + '\n')) await once(out, 'drain');
    if (++n === records) break;
  }
  out.end();
  await once(out, 'finish');
}
const bytes = statSync(file).size;

const kafka = new Kafka({ clientId: 'vigil-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const topic = `vigil-bench-${records}-${partitions}p${codec === 'none' ? '' : `-${codec}`}`;
const existing = await admin.listTopics();
let filled = false;
if (existing.includes(topic)) {
  const offsets = await admin.fetchTopicOffsets(topic);
  filled = offsets.reduce((a, p) => a + Number(p.high), 0) === records;
  if (!filled) await admin.deleteTopics({ topics: [topic] });
}
if (!filled) {
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  process.stderr.write(`filling ${topic} with ${records} records using kcat ...\n`);
  // Random partitioner over the partitions, as producers without keys do.
  execFileSync('kcat', ['-P', '-b', brokers, '-t', topic, '-z', codec, '-l', '-X', 'linger.ms=50', '-X', 'batch.num.messages=10000', file], { stdio: 'inherit' });
}
await admin.disconnect();

// CPU seconds of this process's main thread (Linux: /proc), to compare the sides' work apart from
// the noise of a shared machine: wall-clock rates move with the load, thread CPU time much less.
const mainStat = `/proc/self/task/${process.pid}/stat`;
function mainCpu() {
  if (!existsSync(mainStat)) return NaN;
  const f = readFileSync(mainStat, 'utf8').slice(readFileSync(mainStat, 'utf8').lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 10 ms
}

// Vigil's configuration; VIGIL_KAFKA_MAX_FETCH_BYTES passes through, so both sides can be tried with other fetch sizes.
function vigilEnv(group) {
  const env = { VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `${group}-${Date.now()}`,
    VIGIL_DATA_DIR: join(tmpdir(), `vigil-bench-kafka-${Date.now()}`), VIGIL_WORKERS: String(workers), VIGIL_HTTP: 'false', VIGIL_CHECKPOINTS: 'false' };
  if (process.env.VIGIL_KAFKA_MAX_FETCH_BYTES) env.VIGIL_KAFKA_MAX_FETCH_BYTES = process.env.VIGIL_KAFKA_MAX_FETCH_BYTES;
  return env;
}

async function rawKafkajs() {
  // The same consumer settings as Vigil's source: fetch sizes, no auto-commit, offsets resolved by hand, one partition at a time.
  const consumer = kafka.consumer({ groupId: `raw-${Date.now()}`, ...JSON.parse(process.env.BENCH_RAW_OPTIONS) });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let n = 0;
  let sum = 0;
  let first = 0;
  let cpu0 = 0;
  let all0;
  const done = new Promise((resolve) => {
    consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        if (!first) { first = performance.now(); cpu0 = mainCpu(); all0 = process.cpuUsage(); }
        for (const m of batch.messages) sum += m.value.length;
        n += batch.messages.length;
        resolveOffset(batch.lastOffset());
        await heartbeat();
        if (n >= records) resolve();
      },
    });
  });
  await done;
  const seconds = (performance.now() - first) / 1000;
  const mainCpuS = mainCpu() - cpu0;
  const all = process.cpuUsage(all0);
  const processCpuS = (all.user + all.system) / 1e6;
  await consumer.disconnect();
  return { eventsPerSecond: n / seconds, seconds, mainCpuS, processCpuS, events: n, bytes: sum };
}

async function vigil() {
  const { Daemon } = await import('../dist/daemon/daemon.js');
  const env = vigilEnv('vigil');
  const daemon = new Daemon(loadConfig(env), silentLogger());
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed + base.arrayBuffers;
  await daemon.start();
  let first = 0;
  let cpu0 = 0;
  let all0;
  let events = 0;
  while (events < records) {
    await new Promise((r) => setTimeout(r, 20));
    const s = daemon.status();
    events = s.engine.events + Object.values(s.engine.rejected).reduce((a, b) => a + b, 0);
    if (!first && s.position.records > 0) { first = performance.now(); cpu0 = mainCpu(); all0 = process.cpuUsage(); }
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed + m.arrayBuffers);
  }
  const seconds = (performance.now() - first) / 1000;
  const mainCpuS = mainCpu() - cpu0;
  const all = process.cpuUsage(all0);
  const processCpuS = (all.user + all.system) / 1e6;
  const opened = daemon.manager.openIncidents().length;
  const chunks = daemon.status().engine.chunks;
  const k = daemon.status().kernel;
  await daemon.stop();
  return { eventsPerSecond: events / seconds, seconds, mainCpuS, processCpuS, events, chunks, openAtEnd: opened, late: k.late, lateDropped: k.lateDropped,
    rssGrowthMB: (peakRss - base.rss) / 2 ** 20, heapGrowthMB: (peakHeap - base.heapUsed - base.arrayBuffers) / 2 ** 20 };
}

/** rawKafkajs() in a fresh node process with this one's flags, so it runs kafkajs unpatched. */
function rawKafkajsChild() {
  const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_RAW_CHILD: '1' }, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

if (!process.env.BENCH_RAW_OPTIONS) {
  const { kafkaFetchOptions } = await import('../dist/ingest/kafka-source.js');
  process.env.BENCH_RAW_OPTIONS = JSON.stringify(kafkaFetchOptions(loadConfig(vigilEnv('raw')).kafka));
}
if (process.env.BENCH_RAW_CHILD) {
  // kafkajs reads only gzip itself: the peer gets the same decompressors as Vigil (and nothing else of Vigil's).
  if (codec !== 'none' && codec !== 'gzip') (await import('../dist/ingest/kafka-codecs.js')).registerKafkaCodecs();
  console.log(JSON.stringify(await rawKafkajs()));
  process.exit(0);
}

const fmt = (x) => `${(x / 1e6).toFixed(3)}M/s`;
const only = process.env.BENCH_ONLY; // 'vigil' or 'raw': one side alone (under --cpu-prof, the raw side's profile is its child's)
const none = { eventsPerSecond: NaN };
const raw = only === 'vigil' ? none : rawKafkajsChild();
const v = only === 'raw' ? { ...none, rssGrowthMB: NaN, heapGrowthMB: NaN } : await vigil();
const raw2 = only ? none : rawKafkajsChild();
const rawBest = Math.max(raw.eventsPerSecond, raw2.eventsPerSecond || 0);
console.log(JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version,
  records, partitions, codec, topicMB: +(bytes / 2 ** 20).toFixed(1), workers, raw: [raw, raw2], vigil: v }, null, 1));
console.log(`raw kafkajs: ${fmt(raw.eventsPerSecond)} / ${fmt(raw2.eventsPerSecond)}; vigil end to end: ${fmt(v.eventsPerSecond)} ` +
  `(${(100 * v.eventsPerSecond / rawBest).toFixed(0)}% of raw kafkajs); peak memory growth while draining a ${(bytes / 2 ** 20).toFixed(0)} MB backlog: ` +
  `heap+buffers ${v.heapGrowthMB.toFixed(0)} MB, rss ${v.rssGrowthMB.toFixed(0)} MB`);
