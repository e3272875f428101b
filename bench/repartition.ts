// The repartition stage's cost per event: the same generated demo records produced to the real test
// broker twice, keyed by property into 4 partitions and at random into 4 partitions, each read as a
// backlog by one cluster node (VIGIL_CLUSTER=true) in this process: the first directly, the second
// through the repartition stage (VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY=false). Reported: events/s
// from the node's start to every record counted, and CPU seconds (this process: main thread, kernels'
// worker threads and forwarder) per million events, alternating the two runs, with the incidents of
// each compared with `vigil replay` of the same records. Not a timed test: run it by hand with the
// services up (`npm run build && eval "$(bash scripts/services.sh env)" &&
// node --import tsx bench/repartition.ts [--hours 4] [--rounds 2]`).
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { KafkaHarness } from '../test/support/kafka-harness.ts';
import { serviceEnv, waitUntil, testS3Client } from '../test/support/services-env.ts';
import { compareIncidents, describeComparison, incidentSpans } from '../test/support/incident-compare.ts';
import { generateAndReplay } from '../test/support/demo-run.ts';

const { values } = parseArgs({ options: { hours: { type: 'string', default: '4' }, seed: { type: 'string', default: '3' }, rounds: { type: 'string', default: '2' } } });
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-repartition-'));
const demo = generateAndReplay(dir, Number(values.hours), Number(values.seed));
const { lines, maxTs } = demo;
const summary = { events: demo.valid, late_events: demo.late };
const propOf = lines.map((l) => {
  try {
    return demo.properties.indexOf(String((JSON.parse(l) as { property_id: unknown }).property_id));
  } catch {
    return 0;
  }
});
console.log(JSON.stringify({ records: lines.length, valid: summary.events, replayLate: summary.late_events, hours: Number(values.hours) }));

const endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
const bucket = `vigil-bench-repartition-${process.pid}`;
const s3 = testS3Client(endpoint);
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const kafka = new KafkaHarness();
const keyed = await kafka.topic('vigil-bench-keyed', 4);
await kafka.produceTo(keyed, lines.map((value, i) => ({ partition: propOf[i] % 4, value })));
const random = await kafka.topic('vigil-bench-random', 4);
let x = 17;
await kafka.produceTo(random, lines.map((value) => {
  x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
  return { partition: x % 4, value };
}));

async function measure(name: string, topic: string, repartition: boolean, round: number): Promise<{ eventsPerS: number; cpuSPerM: number }> {
  const group = `g-${topic}-${round}`;
  const env = {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group, VIGIL_KAFKA_START: 'earliest',
    VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: `bench-${name}-${round}`, VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY: String(!repartition),
    VIGIL_S3_BUCKET: bucket, VIGIL_S3_PREFIX: 'bench/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
    VIGIL_DATA_DIR: join(dir, `${name}-${round}-data`), VIGIL_TRANSITIONS_FILE: join(dir, `${name}-${round}-audit.ndjson`), VIGIL_HTTP: 'false',
    VIGIL_PARTITION_IDLE_MS: '3600000',
  };
  const daemon = new Daemon(loadConfig(env), silentLogger());
  type Status = { cluster: { tasks: Array<{ events: number; event_time: number | null }> } };
  const events = () => (daemon.status() as unknown as Status).cluster.tasks.reduce((n, t) => n + t.events, 0);
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  await daemon.start();
  await waitUntil('every record counted', () => events() === summary.events, 1_800_000, 100);
  const seconds = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await waitUntil('event time at the end', () => (daemon.status() as unknown as Status).cluster.tasks.every((t) => (t.event_time ?? 0) >= maxTs), 120_000, 200).catch(() => undefined);
  await daemon.stop();
  const c = compareIncidents(incidentSpans(demo.replayed), incidentSpans(readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8')), 10_000, maxTs - 5 * 60_000);
  const out = { eventsPerS: Math.round(summary.events / seconds), cpuSPerM: Number(((cpu.user + cpu.system) / 1e6 / (summary.events / 1e6)).toFixed(2)) };
  console.log(JSON.stringify({ run: name, round, seconds: Number(seconds.toFixed(1)), ...out, load: loadavg()[0].toFixed(1), incidents: describeComparison(c) }));
  return out;
}

const rounds = Number(values.rounds);
for (let r = 0; r < rounds; r++) {
  // Alternate which goes first: a machine shared with other work drifts.
  const order = r % 2 === 0 ? [false, true] : [true, false];
  const res: Record<string, { eventsPerS: number; cpuSPerM: number }> = {};
  for (const repartition of order) res[repartition ? 'repartitioned' : 'keyed'] = await measure(repartition ? 'repartitioned' : 'keyed', repartition ? random : keyed, repartition, r);
  console.log(JSON.stringify({ round: r, throughputRatio: Number((res.repartitioned.eventsPerS / res.keyed.eventsPerS).toFixed(2)),
    cpuPerEventRatio: Number((res.repartitioned.cpuSPerM / res.keyed.cpuSPerM).toFixed(2)) }));
}
await kafka.close();
s3.destroy();
