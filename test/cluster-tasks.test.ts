// A cluster whose state follows its partitions, against the real broker and s3rver: `vigil run`
// nodes in one consumer group (VIGIL_CLUSTER=true) read a 6-partition topic keyed by property (one
// partition empty) while it is produced: three start, one is killed with SIGKILL mid-stream and
// started again, a fourth joins, one leaves with SIGTERM. Every task (partition) that moves is
// restored on its new owner from its checkpoint in S3 before its partition is read. After the
// stream, the union of the nodes' incidents (by identity: key and opening) is what `vigil replay`
// of the same records gives: every incident, opened within one tick, with its resolution, nothing
// extra. The group's commits end at the high watermarks and every node's SIGTERM exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { S3Client, CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DaemonRuns, killLeftoverDaemons } from './support/daemon-process.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';
import { KafkaHarness } from './support/kafka-harness.ts';
import { compareIncidents, describeComparison, incidentSpans, unionByIdentity, type IncidentSpan } from './support/incident-compare.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';
import type { TaskCheckpointManifest } from '../src/cluster/task-checkpoint-store.ts';

const TICK_MS = 10_000;
const PARTITIONS = 6;
const SEED = 11;

let dir: string;
let kafka: KafkaHarness;
let demo: DemoRun;
let s3: S3Client;
const BUCKET = `vigil-cluster-${process.pid}-${Date.now()}`;
let endpoint: string;

before(async () => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-cluster-tasks-'));
  demo = generateAndReplay(dir, 2, SEED);
  endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  s3 = testS3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

/** The commit sampler runs while this is true (a failed assertion's after() ends it too). */
let sampling = false;

after(async () => {
  sampling = false;
  killLeftoverDaemons();
  await kafka?.close();
  s3?.destroy();
});

/** The partition of a record: its property's place among the sorted properties (5 properties: partition 5 stays empty). */
function partitionOf(value: string): number {
  try {
    return Math.max(0, demo.properties.indexOf(String((JSON.parse(value) as { property_id: unknown }).property_id))) % PARTITIONS;
  } catch {
    return 0;
  }
}

/** One node of the cluster: `vigil run` with its own data directory and audit file, started again after a kill. */
class Node extends DaemonRuns {
  constructor(name: string, topic: string, group: string) {
    super(name, dir, (data, audit) => ({
      VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group,
      VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: name,
      VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
      VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_HTTP: 'false',
      VIGIL_CHECKPOINT_INTERVAL_MS: '1000', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200', VIGIL_KAFKA_MAX_FETCH_BYTES: '262144',
      // A killed member holds its partitions until its session times out.
      VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      // Records produced live cover two hours in about 40 s (see crash-kafka.test.ts): a caught-up partition waits a little for more.
      VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000',
    }));
  }

  /** The tasks the node's latest assignment gave it. */
  owned(): string[] {
    return (this.logs('cluster tasks assigned').at(-1)?.owned as string[] | undefined) ?? [];
  }

  spans(): IncidentSpan[] {
    return existsSync(this.audit) ? incidentSpans(readFileSync(this.audit, 'utf8')) : [];
  }
}

/**
 * The newest readable checkpoint manifest of a task: what a new owner restores. One that cannot be read
 * is passed over as the node passes over it (pruned between the listing and the read, or cut short by a
 * writer killed mid-upload: s3rver keeps what it got, and the node refuses it as unreadable).
 */
async function newestTaskCheckpoint(topic: string, group: string, partition: number): Promise<TaskCheckpointManifest | null> {
  const prefix = `vigil/cluster/${group}/tasks/${topic}/${partition}/`;
  const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  const manifests = (page.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('/manifest.json')).sort();
  for (const key of manifests.reverse()) {
    try {
      const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      return JSON.parse(await out.Body!.transformToString()) as TaskCheckpointManifest;
    } catch {
      // unreadable: the one before it
    }
  }
  return null;
}


test('three nodes, a kill -9 and restart, a node added, a node removed: the union of their incidents is the replay\'s', async (t) => {
  const started = Date.now();
  const topic = await kafka.topic('vigil-cluster-tasks', PARTITIONS);
  const group = `g-${topic}`;
  const maxTsOf = new Array<number>(PARTITIONS).fill(0);
  for (const l of demo.lines) {
    try { maxTsOf[partitionOf(l)] = Math.max(maxTsOf[partitionOf(l)], Number((JSON.parse(l) as { ts: unknown }).ts) || 0); } catch { /* malformed */ }
  }
  // While it runs: the group's commits are never ahead of the newest checkpoint of their task.
  const violations: string[] = [];
  let samples = 0;
  sampling = true;
  const sampler = (async () => {
    const client = new KafkaHarness(1);
    while (sampling) {
      try {
        const committed = await client.committedByPartition(group, topic);
        for (let p = 0; p < PARTITIONS; p++) {
          if ((committed[p] ?? -1) <= 0) continue;
          const cp = await newestTaskCheckpoint(topic, group, p);
          const bound = Number(cp?.positions[`${topic}:${p}`] ?? 0);
          if (committed[p] > bound) violations.push(`partition ${p}: committed ${committed[p]}, newest checkpoint ${bound}`);
        }
        samples++;
      } catch { await client.reset(); }
      await delay(300);
    }
    await client.close();
  })();
  const nodes = ['n1', 'n2', 'n3'].map((n) => new Node(n, topic, group));
  for (const n of nodes) await n.start();
  await waitUntil('every partition assigned', () => new Set(nodes.flatMap((n) => n.owned())).size === PARTITIONS, 60_000, 200);

  const producer = new KafkaHarness();
  let produced = 0;
  const production = (async () => {
    const batch = 4000;
    for (let i = 0; i < demo.lines.length; i += batch) {
      await producer.produceTo(topic, demo.lines.slice(i, i + batch).map((value) => ({ partition: partitionOf(value), value })));
      produced = Math.min(demo.lines.length, i + batch);
      await delay(400);
    }
  })();
  const at = async (share: number) => waitUntil(`${Math.round(share * 100)}% produced`, () => produced >= share * demo.lines.length, 120_000, 50);
  const events: string[] = [];
  let killedAtMs = 0;
  let killedTasks: string[] = [];
  try {
    // A node dies mid-stream: its tasks move once its session times out.
    await at(0.25);
    const [n1, n2, n3] = nodes;
    killedTasks = n2.owned().filter((k) => !k.endsWith(`:${PARTITIONS - 1}`));
    killedAtMs = Date.now();
    await n2.stop('SIGKILL');
    events.push(`kill -9 n2 (owned ${n2.owned().join(', ')})`);
    await waitUntil('the killed node\'s tasks on the others', () => killedTasks.every((k) => n1.owned().includes(k) || n3.owned().includes(k)), 60_000, 200);
    // ... and comes back.
    await at(0.45);
    await n2.start();
    events.push('n2 restarted');
    // A node is added: it takes its share of the tasks, and no other node gains one (sticky assignment:
    // a moved task costs its new owner a restore and a re-read from its checkpoint).
    await at(0.6);
    const settled = () => { const all = nodes.flatMap((n) => (n.running ? n.owned() : [])); return all.length === PARTITIONS && new Set(all).size === PARTITIONS; };
    await waitUntil('the tasks settled on n1, n2, n3', settled, 60_000, 200);
    const before = new Map(nodes.map((n) => [n.name, n.owned()]));
    const n4 = new Node('n4', topic, group);
    nodes.push(n4);
    await n4.start();
    events.push('n4 added');
    await waitUntil('n4 to own tasks', () => n4.owned().length > 0 && settled(), 60_000, 200);
    const gained = nodes.filter((n) => n !== n4).flatMap((n) => n.owned().filter((k) => !before.get(n.name)!.includes(k)).map((k) => `${n.name} ${k}`));
    assert.deepEqual(gained, [], 'a node added: tasks move to it only');
    assert.equal(n4.owned().length, Math.floor(PARTITIONS / 4), 'n4 owns its share');
    // A node is removed: it checkpoints its tasks, commits and leaves.
    await at(0.8);
    await n1.stop('SIGTERM');
    events.push('n1 removed (SIGTERM)');
    await production;
  } finally {
    await production.catch(() => undefined);
    await producer.close();
  }

  // The end: every task's checkpoint holds its partition to the high watermark and its last record's event time.
  const highs = await kafka.highWatermarks(topic);
  await waitUntil('every task checkpointed at its end', async () => {
    for (let p = 0; p < PARTITIONS; p++) {
      if (highs[p] === 0) continue;
      const cp = await newestTaskCheckpoint(topic, group, p);
      if (!cp || Number(cp.positions[`${topic}:${p}`] ?? 0) !== highs[p] || (cp.eventTime.reached ?? 0) < maxTsOf[p]) return false;
    }
    return true;
  }, 120_000, 500);
  await waitUntil('commits at the high watermarks', async () => {
    const c = await kafka.committedByPartition(group, topic).catch(() => []);
    return highs.every((h, p) => h === 0 || c[p] === h);
  }, 60_000, 200);
  for (const n of nodes) if (n.running) await n.stop('SIGTERM');
  sampling = false;
  await sampler;
  assert.deepEqual(violations, [], 'commits ahead of their task\'s newest checkpoint');
  assert.ok(samples >= 20, `commits sampled ${samples} times`);

  // A node records an incident once: the tails it derives again are recognised in its own store.
  for (const n of nodes) {
    const own = n.spans();
    const twice = own.filter((x, i) => own.some((y, j) => j < i && y.key === x.key && Math.abs(y.openedAtMs - x.openedAtMs) <= TICK_MS));
    assert.deepEqual(twice.map((x) => `${x.key} ${new Date(x.openedAtMs).toISOString()}`), [], `${n.name} recorded an incident twice`);
  }
  const { spans, conflicts } = unionByIdentity(nodes, TICK_MS);
  const c = compareIncidents(incidentSpans(demo.replayed), spans, TICK_MS, demo.maxTs - 5 * 60_000);
  assert.deepEqual(conflicts, [], 'nodes that disagree on how an incident closed');
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `the union of the nodes' incidents: ${describeComparison(c)}`);
  assert.ok(c.matched >= 10, `too few incidents to compare: ${describeComparison(c)}`);
  // Checkpoints are fenced by the group generation: every join reports it, rising.
  for (const n of nodes) {
    const gens = n.logs('cluster tasks assigned').map((l) => l.generation as number);
    assert.ok(gens.length > 0 && gens.every((g, i) => g > 0 && (i === 0 || g > gens[i - 1])), `${n.name}'s generations: ${gens.join(', ')}`);
  }
  // State moved: tasks were restored from checkpoints another node wrote.
  const ready = nodes.flatMap((n) => n.logs('cluster task ready').map((l) => ({ node: n.name, ...l }) as { node: string; atMs: number; task: string; checkpoint: string | null; writtenBy: string | null }))
    .sort((a, b) => a.atMs - b.atMs);
  const moved = ready.filter((r) => r.checkpoint !== null && r.writtenBy !== r.node);
  assert.ok(moved.length >= 3, `tasks restored from another node's checkpoint: ${moved.length}`);
  // From the kill to the killed node's tasks evaluating again on their new owners.
  const takeover = killedTasks.map((k) => ready.find((r) => r.task === k && r.atMs > killedAtMs && r.node !== 'n2'))
    .filter((r) => r !== undefined).map((r) => r.atMs - killedAtMs);
  assert.equal(takeover.length, killedTasks.length, 'every task of the killed node restored on another node');
  // ... and to their first records evaluated there (the partition read again from the checkpoint).
  const evaluating = nodes.flatMap((n) => n.logs('cluster task evaluating').map((l) => ({ node: n.name, ...l }) as { node: string; atMs: number; task: string }))
    .sort((a, b) => a.atMs - b.atMs);
  const flowing = killedTasks.map((k) => evaluating.find((r) => r.task === k && r.atMs > killedAtMs && r.node !== 'n2'))
    .filter((r) => r !== undefined).map((r) => r.atMs - killedAtMs);

  const perNode = nodes.map((n) => `${n.name} ${n.spans().length}`).join(', ');
  t.diagnostic(`${events.join('; ')}; ${describeComparison(c)}; incidents per node: ${perNode}; ${moved.length} task restores from another node's checkpoint; ` +
    `${samples} commit samples; kill -9 to the killed tasks ready on their new owners: ${takeover.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}, ` +
    `to their first records evaluated there: ${flowing.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}; ${Math.round((Date.now() - started) / 1000)} s`);
});
