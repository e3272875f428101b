// A cluster whose input is not keyed by property (VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY=false), against
// the real broker and s3rver: a 4-partition topic whose records were put in partitions at random, so
// every property's views are spread over all of them. The repartition stage (forwarders in the group
// `<name>.forward`, transactions, the internal topic `<name>.repartition` keyed by property, progress
// records per input partition) must give the incidents and late records `vigil replay` of the same
// records gives: read as a backlog by one node, and produced live to three nodes, one killed with
// SIGKILL mid-stream and started again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { createLogger } from '../src/log/logger.ts';
import { DaemonRuns, killLeftoverDaemons } from './support/daemon-process.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';
import { KafkaHarness } from './support/kafka-harness.ts';
import { compareIncidents, describeComparison, incidentSpans, unionByIdentity, type IncidentSpan } from './support/incident-compare.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';
import { UPSTREAM_HEADER } from '../src/cluster/repartition-record.ts';

const TICK_MS = 10_000;
const INPUT_PARTITIONS = 4;

let dir: string;
let kafka: KafkaHarness;
let demo: DemoRun;
let s3: S3Client;
const BUCKET = `vigil-repartition-${process.pid}-${Date.now()}`;
let endpoint: string;

before(async () => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-repartition-'));
  demo = generateAndReplay(dir, 2, 5);
  endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  s3 = testS3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  killLeftoverDaemons();
  await kafka?.close();
  s3?.destroy();
});

/** Records put in partitions at random (seeded): no partition holds all of a property's views. */
function randomPartitions(seed: number): Array<{ partition: number; value: string }> {
  let x = seed >>> 0;
  return demo.lines.map((value) => {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return { partition: x % INPUT_PARTITIONS, value };
  });
}

function clusterEnv(name: string, topic: string, group: string) {
  return {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group, VIGIL_KAFKA_START: 'earliest',
    VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: name, VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY: 'false',
    VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
    VIGIL_DATA_DIR: join(dir, `${name}-data`), VIGIL_TRANSITIONS_FILE: join(dir, `${name}-audit.ndjson`), VIGIL_HTTP: 'false',
    VIGIL_CHECKPOINT_INTERVAL_MS: '1000', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200', VIGIL_KAFKA_MAX_FETCH_BYTES: '262144',
    VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
  };
}

test('one node, a backlog keyed at random: the replay\'s incidents at the same ticks and its late records', async (t) => {
  const topic = await kafka.topic('vigil-repart-backlog', INPUT_PARTITIONS);
  await kafka.produceTo(topic, randomPartitions(7));
  const counts = await kafka.partitionCounts(topic);
  assert.ok(counts.every((n) => n > 0), `every input partition busy: ${counts.join(', ')}`);
  const env = { ...clusterEnv('solo', topic, `g-${topic}`), VIGIL_PARTITION_IDLE_MS: '3600000' };
  const logFile = join(dir, 'solo.log');
  const daemon = new Daemon(loadConfig(env), createLogger('info', { write: (line: string) => appendFileSync(logFile, line) }));
  await daemon.start();
  let late = 0;
  let partitions = 0;
  let reachedEnd = false;
  try {
    type Status = { kernel: { late: number }; cluster: { tasks: Array<{ task: string; event_time: number | null; events: number }>; repartition: { partitions: unknown[]; forwarded: number } } };
    const status = () => daemon.status() as unknown as Status;
    try {
      await waitUntil('every record counted', () => status().cluster.tasks.reduce((n, x) => n + x.events, 0) === demo.valid, 240_000, 200);
    } catch (err) {
      assert.fail(`${(err as Error).message}: ${JSON.stringify(status().cluster)} (log: ${logFile})`);
    }
    // Every input partition caught up: every task's event time reaches the newest record without more input.
    const atEnd = () => status().cluster.tasks.every((x) => (x.event_time ?? 0) >= demo.maxTs);
    await waitUntil('event time at the end of the data', atEnd, 60_000, 200).catch(() => undefined);
    reachedEnd = atEnd();
    late = status().kernel.late;
    partitions = status().cluster.tasks.length;
    assert.equal(status().cluster.repartition.forwarded, demo.lines.length, 'every input record forwarded once');
  } finally {
    await daemon.stop();
  }
  const audit = readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8');
  const c = compareIncidents(incidentSpans(demo.replayed), incidentSpans(audit), 0, demo.maxTs - 5 * 60_000);
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `repartitioned backlog: ${describeComparison(c)}`);
  assert.ok(c.matched >= 10, describeComparison(c));
  assert.equal(late, demo.late, `late records: stream ${late}, replay ${demo.late}`);
  assert.ok(reachedEnd, 'every task\'s event time at the newest record (every input partition caught up)');
  t.diagnostic(`${describeComparison(c)}; late ${late} (replay ${demo.late}); ${partitions} tasks`);
});

/** One node: a restartable `vigil run` with its own data directory and audit file. */
class Node extends DaemonRuns {
  constructor(name: string, env: Record<string, string>) {
    super(name, dir, () => env);
  }

  /** The input partitions this node's forwarder was given last. */
  forwarding(): number[] {
    return (this.logs('repartition forwarder assigned').at(-1)?.partitions as number[] | undefined) ?? [];
  }

  spans(): IncidentSpan[] {
    return existsSync(this.audit) ? incidentSpans(readFileSync(this.audit, 'utf8')) : [];
  }
}


test('three nodes, produced live keyed at random, one killed with SIGKILL mid-stream and restarted: the union of their incidents is the replay\'s', async (t) => {
  const started = Date.now();
  const topic = await kafka.topic('vigil-repart-live', INPUT_PARTITIONS);
  const group = `g-${topic}`;
  const nodes = ['r1', 'r2', 'r3'].map((n) => new Node(n, {
    ...clusterEnv(n, topic, group),
    // Records produced live cover two hours in about 40 s: a caught-up partition waits a little for more.
    VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000',
  }));
  for (const n of nodes) await n.start();
  await waitUntil('every input partition forwarded', () => new Set(nodes.flatMap((n) => n.forwarding())).size === INPUT_PARTITIONS, 60_000, 200);
  // Exactly once across the stage: a reader of committed records counts every view of the internal
  // topic by the input partition it came from (it keeps up with the stream, ahead of the purge).
  const forwarded = new Array<number>(INPUT_PARTITIONS).fill(0);
  const counter = kafka.kafka.consumer({ groupId: `count-${topic}`, maxWaitTimeInMs: 200 });
  await counter.connect();
  await counter.subscribe({ topics: [`${group}.repartition`], fromBeginning: true });
  await counter.run({ eachBatch: async ({ batch }) => {
    for (const m of batch.messages) {
      const up = m.headers?.[UPSTREAM_HEADER];
      if (up !== undefined) forwarded[Number(String(up))]++;
    }
  } });
  const records = randomPartitions(9);
  const producer = new KafkaHarness();
  let produced = 0;
  const production = (async () => {
    const batch = 4000;
    for (let i = 0; i < records.length; i += batch) {
      await producer.produceTo(topic, records.slice(i, i + batch));
      produced = Math.min(records.length, i + batch);
      await delay(400);
    }
  })();
  const events: string[] = [];
  try {
    await waitUntil('30% produced', () => produced >= 0.3 * records.length, 120_000, 50);
    // The node that forwards most dies: its transactions in flight are aborted by the next owners' producers.
    const victim = nodes.slice().sort((a, b) => b.forwarding().length - a.forwarding().length)[0];
    events.push(`kill -9 ${victim.name} (forwarding ${victim.forwarding().join(', ')})`);
    await victim.stop('SIGKILL');
    await waitUntil('50% produced', () => produced >= 0.5 * records.length, 120_000, 50);
    await victim.start();
    events.push(`${victim.name} restarted`);
    await production;
  } finally {
    await production.catch(() => undefined);
    await producer.close();
  }
  // The end: every input partition forwarded to its end (the forwarders' commits at the high watermarks) ...
  const highs = await kafka.highWatermarks(topic);
  await waitUntil('forwarders committed at the input\'s end', async () => {
    const c = await kafka.committedByPartition(`${group}.forward`, topic).catch(() => []);
    return highs.every((h, p) => c[p] === h);
  }, 120_000, 500);
  // ... and the incidents the replay has before its last 5 minutes are all there (or the wait runs out).
  const replay = incidentSpans(demo.replayed);
  const compare = () => compareIncidents(replay, unionByIdentity(nodes, TICK_MS).spans, TICK_MS, demo.maxTs - 5 * 60_000);
  await waitUntil('the replay\'s incidents', () => { const c = compare(); return c.missing.length === 0 && c.closeDiffers.length === 0; }, 90_000, 1000).catch(() => undefined);
  for (const n of nodes) if (n.running) await n.stop('SIGTERM');
  const inputCounts = await kafka.partitionCounts(topic);
  await waitUntil('the counter at the end', () => forwarded.every((n, p) => n >= inputCounts[p]), 30_000, 200).catch(() => undefined);
  await counter.disconnect();
  assert.deepEqual(forwarded, inputCounts, 'views in the internal topic per input partition (committed records) against the input\'s');

  for (const n of nodes) {
    const own = n.spans();
    const twice = own.filter((x, i) => own.some((y, j) => j < i && y.key === x.key && Math.abs(y.openedAtMs - x.openedAtMs) <= TICK_MS));
    assert.deepEqual(twice.map((x) => `${x.key} ${new Date(x.openedAtMs).toISOString()}`), [], `${n.name} recorded an incident twice`);
  }
  const { conflicts } = unionByIdentity(nodes, TICK_MS);
  const c = compare();
  assert.deepEqual(conflicts, [], 'nodes that disagree on how an incident closed');
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `the union of the nodes' incidents: ${describeComparison(c)}`);
  assert.ok(c.matched >= 10, describeComparison(c));
  // The killed node's input partitions were taken over by the others (their producers fenced it).
  const taken = nodes.flatMap((n) => n.logs('input partition taken over: forwarding')).length;
  assert.ok(taken > INPUT_PARTITIONS, `input partitions taken over: ${taken}`);
  t.diagnostic(`${events.join('; ')}; ${describeComparison(c)}; incidents per node: ${nodes.map((n) => `${n.name} ${n.spans().length}`).join(', ')}; ` +
    `${taken} take-overs of input partitions; ${Math.round((Date.now() - started) / 1000)} s`);
});

/** Counts the committed views of the internal topic by the input partition they came from. */
async function countForwarded(internalTopic: string, groupId: string): Promise<{ counts: number[]; stop: () => Promise<void> }> {
  const counts = new Array<number>(INPUT_PARTITIONS).fill(0);
  const consumer = kafka.kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [internalTopic], fromBeginning: true });
  await consumer.run({ eachBatch: async ({ batch }) => {
    for (const m of batch.messages) {
      const up = m.headers?.[UPSTREAM_HEADER];
      if (up !== undefined) counts[Number(String(up))]++;
    }
  } });
  return { counts, stop: () => consumer.disconnect() };
}

test('a node killed with SIGKILL while it forwards a backlog, then restarted: every view is in the internal topic once', async (t) => {
  const topic = await kafka.topic('vigil-repart-kill', INPUT_PARTITIONS);
  const group = `g-${topic}`;
  await kafka.produceTo(topic, randomPartitions(13));
  const inputCounts = await kafka.partitionCounts(topic);
  // Small fetches: many batches, so the kill lands between a batch's views and its offset.
  const node = new Node('k1', { ...clusterEnv('k1', topic, group), VIGIL_KAFKA_MAX_FETCH_BYTES: '65536' });
  await node.start();
  const counter = await countForwarded(`${group}.repartition`, `count-${topic}`);
  const total = (): number => counter.counts.reduce((a, b) => a + b, 0);
  try {
    await waitUntil('a quarter of the backlog forwarded', () => total() >= demo.lines.length / 4, 180_000, 20);
    const atKill = total();
    await node.stop('SIGKILL');
    await node.start();
    await waitUntil('the whole backlog forwarded', () => total() >= demo.lines.length, 180_000, 200).catch(() => undefined);
    // Anything doubled would show up now.
    await delay(3000);
    assert.deepEqual(counter.counts, inputCounts, 'committed views per input partition against the input\'s');
    // The incidents too: the node's tasks continue from their checkpoints.
    const replay = incidentSpans(demo.replayed);
    const compare = () => compareIncidents(replay, node.spans(), TICK_MS, demo.maxTs - 5 * 60_000);
    await waitUntil('the replay\'s incidents', () => { const c = compare(); return c.missing.length === 0 && c.closeDiffers.length === 0; }, 120_000, 1000).catch(() => undefined);
    const c = compare();
    assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `incidents: ${describeComparison(c)}`);
    t.diagnostic(`killed at ${atKill} of ${demo.lines.length} views forwarded; ${describeComparison(c)}`);
  } finally {
    await counter.stop();
    if (node.running) await node.stop('SIGTERM');
  }
});
