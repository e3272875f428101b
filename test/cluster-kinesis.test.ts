// A cluster reading Kinesis, against kinesalite, the real broker and s3rver: `vigil run` nodes with
// VIGIL_CLUSTER=true and VIGIL_SOURCE=kinesis share a 4-shard stream keyed by property while records
// are put into it. The shards are tasks (partitions of the coordination topic `<name>.kinesis`,
// assigned by the Kafka group `<name>.kinesis`); each task's state and sequence numbers are
// checkpointed to S3. Three nodes start; records are put live; a shard is split while they are read
// (its children stay in its task, read after it); the node owning that task is killed with SIGKILL
// mid-stream (its tasks go to the others once its session times out, restored from their checkpoints:
// the parent's and children's sequence numbers) and started again; later another node leaves with SIGTERM
// (the one that took the split shard's task on, if it still owns it: that task then moves twice; it
// checkpoints its tasks, then leaves the group, and the others restore them from those checkpoints). At the end every task's checkpoint holds every
// record put into its shards; the records counted into the tasks' states are exactly the replay's (none lost, none counted
// twice), and so are those counted late; the union of the nodes' incidents is `vigil replay`'s of the same records (opened within one
// tick, with their resolution, nothing extra). It reports the failover time: from the kill to the
// first record evaluated on the new owner.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  KinesisClient, CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand, PutRecordsCommand, SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { S3Client, CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DaemonRuns, killLeftoverDaemons } from './support/daemon-process.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';
import { compareIncidents, describeComparison, incidentSpans, unionByIdentity, type IncidentSpan } from './support/incident-compare.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';
import type { TaskCheckpointManifest } from '../src/cluster/task-checkpoint-store.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';

const TICK_MS = 10_000;
const SHARDS = 4;
const SEED = 7;

let dir: string;
let demo: DemoRun;
let kinesis: KinesisClient;
let s3: S3Client;
let kinesisEndpoint: string;
let s3Endpoint: string;
const BUCKET = `vigil-cluster-kinesis-${process.pid}-${Date.now()}`;
const created: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'h14kin-cluster-kinesis-'));
  demo = generateAndReplay(dir, 1, SEED);
  kinesisEndpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT');
  kinesis = new KinesisClient({ region: 'us-east-1', endpoint: kinesisEndpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, requestHandler: new NodeHttpHandler() });
  s3Endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  s3 = testS3Client(s3Endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

// kinesalite is shared and caps the shards of its account: this file deletes its stream.
after(async () => {
  killLeftoverDaemons();
  for (const name of created) await kinesis?.send(new DeleteStreamCommand({ StreamName: name })).catch(() => undefined);
  kinesis?.destroy();
  s3?.destroy();
});

/** One node of the cluster: `vigil run` with its own data directory and audit file, started again after a kill. */
class Node extends DaemonRuns {
  constructor(name: string, stream: string, cluster: string) {
    super(name, dir, (data, audit) => ({
      VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: stream, VIGIL_KINESIS_ENDPOINT: kinesisEndpoint, VIGIL_KINESIS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      VIGIL_KINESIS_IDLE_POLL_MS: '200', VIGIL_KINESIS_MAX_RECORDS: '500',
      // The split is listed within a second (until a listing shows the parent closed, a parent that returns nothing counts as caught up).
      VIGIL_KINESIS_DISCOVER_MS: '1000',
      VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_BROKERS'), VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NAME: cluster, VIGIL_CLUSTER_NODE_ID: name,
      VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil/', VIGIL_S3_ENDPOINT: s3Endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
      VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_HTTP: 'false',
      VIGIL_CHECKPOINT_INTERVAL_MS: '1000',
      // A killed member holds its tasks until its session times out.
      VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      // Records are put live, an hour of them in about half a minute: a caught-up shard waits a little for more.
      VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000',
    }));
  }

  /** The tasks the node's latest assignment gave it (none while it is not running). */
  owned(): string[] {
    return this.running ? (this.logs('cluster tasks assigned').at(-1)?.owned as string[] | undefined) ?? [] : [];
  }

  spans(): IncidentSpan[] {
    return existsSync(this.audit) ? incidentSpans(readFileSync(this.audit, 'utf8')) : [];
  }
}

/** The newest complete checkpoint of every task in S3, by task directory. */
async function newestTaskCheckpoints(cluster: string, stream: string): Promise<Map<string, { key: string; manifest: TaskCheckpointManifest }>> {
  const prefix = `vigil/cluster/${cluster}/tasks/kinesis/${stream}/`;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const newest = new Map<string, string>();
  for (const k of keys.filter((x) => x.endsWith('/manifest.json')).sort()) newest.set(k.slice(prefix.length).split('/')[0], k);
  const out = new Map<string, { key: string; manifest: TaskCheckpointManifest }>();
  for (const [task, key] of newest) {
    try {
      const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      out.set(task, { key, manifest: JSON.parse(await body.Body!.transformToString()) as TaskCheckpointManifest });
    } catch {
      // pruned between the listing and the read: the next look finds the newer one
    }
  }
  return out;
}


test('a 4-shard stream read by three cluster nodes, one killed with SIGKILL mid-stream and restarted, one removed: every record counted once, the union of incidents is the replay\'s', async (t) => {
  const started = Date.now();
  const stream = `h14kin-cluster-${process.pid}-${Date.now()}`;
  const cluster = `c-${stream}`;
  created.push(stream);
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: SHARDS }));
  const active = () => waitUntil(`stream ${stream} ACTIVE`, async () =>
    (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
  await active();
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  assert.equal(shards.length, SHARDS);
  // Keyed by property: one hash key per property, spread over the key space (5 properties: every shard gets one, one gets two).
  const props = demo.properties;
  const keyOf = new Map(props.map((p, i) => [p, (2n ** 128n * BigInt(2 * i + 1)) / BigInt(2 * props.length)]));
  // The shard of the third and fourth properties is split between them mid-stream: its children stay in its task.
  const splitKey = (2n ** 128n * 3n) / 5n;
  const splitShard = shards.find((x) => BigInt(x.HashKeyRange!.StartingHashKey!) <= splitKey && splitKey <= BigInt(x.HashKeyRange!.EndingHashKey!))!;
  assert.ok(keyOf.get(props[2])! >= BigInt(splitShard.HashKeyRange!.StartingHashKey!) && keyOf.get(props[3])! <= BigInt(splitShard.HashKeyRange!.EndingHashKey!));
  const hashKey = (line: string) => {
    let p: string | undefined;
    try { p = String((JSON.parse(line) as { property_id: unknown }).property_id); } catch { p = undefined; }
    return (keyOf.get(p ?? '') ?? keyOf.get(props[0])!).toString();
  };
  const tsOf = (line: string) => { try { return Number((JSON.parse(line) as { ts: unknown }).ts) || 0; } catch { return 0; } };
  /** The last sequence number put into each shard, and the newest event time each shard got. */
  const lastPut = new Map<string, string>();
  const maxTsOf = new Map<string, number>();
  let put = 0;

  const nodes = ['n1', 'n2', 'n3'].map((n) => new Node(n, stream, cluster));
  for (const n of nodes) await n.start();
  await waitUntil('every task assigned', () => new Set(nodes.flatMap((n) => n.owned())).size === SHARDS, 60_000, 200);
  t.diagnostic(`tasks: ${nodes.map((n) => `${n.name} ${n.owned().join(' ')}`).join('; ')}`);

  const production = (async () => {
    const step = 2000;
    for (let i = 0; i < demo.lines.length; i += step) {
      const lines = demo.lines.slice(i, i + step);
      for (let j = 0; j < lines.length; j += 500) {
        const batch = lines.slice(j, j + 500);
        const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: batch.map((l) => ({ Data: Buffer.from(l), PartitionKey: 'p', ExplicitHashKey: hashKey(l) })) }));
        assert.equal(out.FailedRecordCount ?? 0, 0);
        out.Records!.forEach((r, k) => {
          lastPut.set(r.ShardId!, r.SequenceNumber!);
          maxTsOf.set(r.ShardId!, Math.max(maxTsOf.get(r.ShardId!) ?? 0, tsOf(batch[k])));
        });
      }
      put = i + lines.length;
      await delay(300);
    }
  })();
  const at = async (share: number) => waitUntil(`${Math.round(share * 100)}% put`, () => put >= share * demo.lines.length, 180_000, 50);
  const events: string[] = [];
  let killedAtMs = 0;
  let killed: Node | null = null;
  let killedTasks: string[] = [];
  let leaver: Node | null = null;
  let leaverTasks: string[] = [];
  let leftAtMs = 0;
  try {
    // A shard is split while records are put and read live: the parent's records so far stay in it, the
    // next go to its children (its task's, read after it; a child read before its first records hold
    // event time at the parent's mark).
    await at(0.2);
    await kinesis.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: splitShard.ShardId!, NewStartingHashKey: splitKey.toString() }));
    await active();
    events.push(`${splitShard.ShardId} split`);
    // Mid-stream, the node reading the split shard's task dies: its tasks move once its session times out.
    await at(0.35);
    const splitTaskKey = `kinesis/${stream}:${Number(/\d+$/.exec(splitShard.ShardId!)![0]) % SHARDS}`;
    killed = nodes.find((n) => n.owned().includes(splitTaskKey))!;
    killedTasks = killed.owned();
    assert.ok(killedTasks.length > 0);
    killedAtMs = Date.now();
    await killed.stop('SIGKILL');
    events.push(`kill -9 ${killed.name} (owned ${killedTasks.join(', ')})`);
    const others = nodes.filter((n) => n !== killed);
    await waitUntil('the killed node\'s tasks on the others', () => killedTasks.every((k) => others.some((n) => n.owned().includes(k))), 60_000, 200);
    // ... and comes back.
    await at(0.6);
    await killed.start();
    events.push(`${killed.name} restarted`);
    // A node leaves gracefully: it checkpoints its tasks, then leaves the group.
    await at(0.8);
    // The node that took the split shard's task on when possible: that task moves a second time, from
    // the checkpoint its SIGTERM writes (the children's marks must be in it).
    leaver = nodes.find((n) => n !== killed && n.owned().includes(splitTaskKey)) ?? nodes.find((n) => n !== killed && n.owned().length > 0)!;
    leaverTasks = leaver.owned();
    leftAtMs = Date.now();
    await leaver.stop('SIGTERM');
    events.push(`${leaver.name} removed (SIGTERM, owned ${leaverTasks.join(', ')})`);
    await production;
  } finally {
    await production.catch(() => undefined);
  }

  // The end: each task's newest checkpoint holds its shards to their last record and event time to their newest record.
  let finals = new Map<string, { key: string; manifest: TaskCheckpointManifest }>();
  await waitUntil('every task checkpointed at its end', async () => {
    finals = await newestTaskCheckpoints(cluster, stream);
    if (finals.size !== SHARDS) return false;
    const covered = new Map<string, string>();
    for (const { manifest } of finals.values()) {
      for (const [shard, seq] of Object.entries(manifest.positions)) covered.set(shard, seq);
      const due = Math.max(0, ...Object.keys(manifest.positions).map((s) => maxTsOf.get(s) ?? 0));
      if ((manifest.eventTime.reached ?? 0) < due) return false;
    }
    return [...lastPut].every(([shard, seq]) => covered.get(shard) === seq);
  }, 180_000, 500);
  const children = [...lastPut.keys()].filter((id) => !shards.some((x) => x.ShardId === id));
  assert.equal(children.length, 2, 'records went to the split shard\'s children');
  assert.ok(lastPut.has(splitShard.ShardId!), 'records went to the split shard before the split');
  const splitTask = [...finals.values()].filter(({ manifest }) => children.some((c) => c in manifest.positions));
  assert.equal(splitTask.length, 1);
  assert.deepEqual(Object.keys(splitTask[0].manifest.positions).sort(), [splitShard.ShardId!, ...children].sort(), 'the split shard and its children are one task');
  // Every record counted into the tasks' states exactly once (the kernels' counters travel in the checkpoints).
  let counted = 0;
  let held = 0;
  let late = 0;
  const lateByTask: string[] = [];
  for (const [task, { key, manifest }] of finals) {
    let taskLate = 0;
    const dirKey = key.slice(0, key.lastIndexOf('/') + 1);
    for (const p of manifest.parts) {
      const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${dirKey}${p.file}` }));
      const state = decodeKernelState(await body.Body!.transformToByteArray());
      counted += state.header.counters.events ?? 0;
      held += state.header.counters.heldNow ?? 0;
      late += state.header.counters.late ?? 0;
      taskLate += state.header.counters.late ?? 0;
    }
    lateByTask.push(`${task} ${taskLate} (${key})`);
  }
  for (const n of nodes) if (n.running) await n.stop('SIGTERM');
  assert.equal(counted + held, demo.valid, `records in the tasks' states: ${counted} counted + ${held} held, valid records ${demo.valid}`);
  // None counted late that the replay does not count late (the split shard's children read live included).
  assert.equal(late, demo.late, `records counted late in the tasks' states: ${late}, in the replay ${demo.late}; by task: ${lateByTask.join(', ')} (logs in ${dir})`);

  // A node records an incident once: the tails it derives again are recognised in its own store.
  for (const n of nodes) {
    const own = n.spans();
    const twice = own.filter((x, i) => own.some((y, j) => j < i && y.key === x.key && Math.abs(y.openedAtMs - x.openedAtMs) <= TICK_MS));
    assert.deepEqual(twice.map((x) => `${x.key} ${new Date(x.openedAtMs).toISOString()}`), [], `${n.name} recorded an incident twice`);
  }
  const { spans, conflicts } = unionByIdentity(nodes, TICK_MS);
  const c = compareIncidents(incidentSpans(demo.replayed), spans, TICK_MS, demo.maxTs - 5 * 60_000);
  assert.deepEqual(conflicts, [], 'nodes that disagree on how an incident closed');
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `the union of the nodes' incidents: ${describeComparison(c)} (logs in ${dir})`);
  assert.ok(c.matched >= 10, `too few incidents to compare: ${describeComparison(c)}`);

  // State moved: the killed node's tasks were restored on the others from the checkpoints it wrote.
  const ready = nodes.flatMap((n) => n.logs('cluster task ready').map((l) => ({ node: n.name, ...l }) as { node: string; atMs: number; task: string; checkpoint: string | null; writtenBy: string | null }))
    .sort((a, b) => a.atMs - b.atMs);
  const takeover = killedTasks.map((k) => ready.find((r) => r.task === k && r.atMs > killedAtMs && r.node !== killed!.name));
  assert.ok(takeover.every((r) => r !== undefined), 'every task of the killed node restored on another node');
  assert.ok(takeover.every((r) => r!.checkpoint !== null && r!.writtenBy === killed!.name), `the killed node's tasks restored from its checkpoints: ${JSON.stringify(takeover)}`);
  // The leaver's tasks were restored on the others from the checkpoints it wrote at its stop (a task it
  // gained just before, still loading, was not read there: it comes back from the checkpoint it was loading).
  const handedOver = leaverTasks.map((k) => ready.find((r) => r.task === k && r.node !== leaver!.name && r.atMs > leftAtMs));
  assert.ok(handedOver.every((r) => r !== undefined), `the leaver's tasks restored on the others: ${JSON.stringify(handedOver)}`);
  const readOnLeaver = leaverTasks.filter((k) => {
    const gained = leaver!.logs('cluster tasks assigned').filter((l) => (l.gained as string[]).includes(k)).at(-1)!.atMs;
    return leaver!.logs('cluster task ready').some((r) => r.task === k && r.atMs >= gained);
  });
  assert.ok(readOnLeaver.length > 0, 'the leaver read some of its tasks');
  for (const k of readOnLeaver) {
    assert.equal(handedOver[leaverTasks.indexOf(k)]!.writtenBy, leaver!.name, `${k}: restored from the leaver's final checkpoint`);
  }
  // Kill -9 to the first records evaluated on the new owners (the shards read again from the checkpoints).
  const evaluating = nodes.flatMap((n) => n.logs('cluster task evaluating').map((l) => ({ node: n.name, ...l }) as { node: string; atMs: number; task: string }))
    .sort((a, b) => a.atMs - b.atMs);
  const flowing = killedTasks.map((k) => evaluating.find((r) => r.task === k && r.atMs > killedAtMs && r.node !== killed!.name));
  assert.ok(flowing.every((r) => r !== undefined), 'every task of the killed node evaluated records on another node');

  const perNode = nodes.map((n) => `${n.name} ${n.spans().length}`).join(', ');
  t.diagnostic(`${events.join('; ')}; ${describeComparison(c)}; incidents per node: ${perNode}; ${counted} records counted + ${held} held, ${late} late (the replay: ${demo.late}); ` +
    `kill -9 to the killed tasks ready on their new owners: ${takeover.map((r) => `${((r!.atMs - killedAtMs) / 1000).toFixed(1)} s`).join(', ')}, ` +
    `to their first records evaluated there: ${flowing.map((r) => `${((r!.atMs - killedAtMs) / 1000).toFixed(1)} s`).join(', ')}; ${Math.round((Date.now() - started) / 1000)} s`);
});
