// One incident view (ARCHITECTURE.md "Cluster"): three `vigil run` nodes in one Kafka consumer group
// on the real broker, each with its own data directory, a real webhook receiver. (1) A 6-partition
// topic keyed by property, streamed: every node's API lists every incident of the cluster with the
// same ids and states, the union is the replay's, and each notification reaches the receiver exactly
// once, and set-thresholds on one node reaches all. (2) The notifying node is killed -9 mid-stream: another takes over, every transition is
// still notified, and a repeat carries the same idempotency key and the same body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { KafkaHarness } from './support/kafka-harness.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';
import { killLeftoverDaemons, loggedHttpPort, startDaemon } from './support/daemon-process.ts';
import { startReceiver, type TestReceiver } from './support/http-receiver.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';
import { incidentSpans } from './support/incident-compare.ts';

const PARTITIONS = 6;
const NODES = 3;

let kafka: KafkaHarness;
let dir: string;
let demo: DemoRun;
/** The tasks' checkpoints (state follows partitions) live in S3: s3rver here. */
const BUCKET = `vigil-view-${process.pid}-${Date.now()}`;
let endpoint: string;

before(async () => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-cluster-view-'));
  demo = generateAndReplay(dir, 2, 14);
  endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  const s3 = testS3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  s3.destroy();
});

after(async () => {
  killLeftoverDaemons();
  await kafka?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Node {
  name: string;
  daemon: ReturnType<typeof startDaemon>;
  port: () => number;
}

interface ViewRow {
  id: number;
  identity: string;
  status: string;
  closed_at_ms: number | null;
  notifications: string;
}

/** Starts the nodes of one cluster (unique names) reading `topic`. */
function startNodes(topic: string, cluster: string, receiver: TestReceiver, which = Array.from({ length: NODES }, (_, i) => i + 1)): Node[] {
  const nodes: Node[] = [];
  for (const n of which) {
    const name = `node${n}`;
    const daemon = startDaemon({
      VIGIL_DATA_DIR: join(dir, `${cluster}-${name}`), VIGIL_LOG_LEVEL: 'info',
      VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
      VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `${cluster}-input`,
      VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000', VIGIL_CHECKPOINT_INTERVAL_MS: '2000',
      // Produced live, an hour of event time in seconds: a caught-up partition waits for more (see crash-kafka.test.ts).
      VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000',
      VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NAME: cluster, VIGIL_CLUSTER_NODE_ID: name,
      VIGIL_WEBHOOK_URL: `${receiver.url}/hook`, VIGIL_NOTIFY_RETRY_BASE_MS: '50',
    });
    nodes.push({ name, daemon, port: () => loggedHttpPort(daemon.stderr()) ?? 0 });
  }
  return nodes;
}

/** The latest input partitions each live node was given ("kafka group joined"). */
function assignments(nodes: Node[], topic: string): string[][] {
  return nodes.map((n) => {
    const joins = n.daemon.stderr().split('\n').filter((l) => l.includes('"msg":"kafka group joined"') && l.includes(topic));
    return joins.length ? (JSON.parse(joins[joins.length - 1]) as { partitions: string[] }).partitions : [];
  });
}

/** Waits until the live nodes split the input's partitions between them, each with some. */
async function waitForSplit(nodes: Node[], topic: string): Promise<void> {
  await waitUntil('every node listening', () => nodes.every((n) => n.port() > 0), 90_000, 200);
  await waitUntil('the input split over the nodes', () => {
    const a = assignments(nodes, topic);
    const all = a.flat();
    return a.every((p) => p.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS;
  }, 90_000, 200);
}

/** Every incident a node's API lists (all pages), by id. */
async function view(node: Node): Promise<Map<number, ViewRow>> {
  const out = new Map<number, ViewRow>();
  let cursor: number | null = null;
  do {
    const res: Response = await fetch(`http://127.0.0.1:${node.port()}/api/incidents?limit=500${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(res.status, 200);
    const page = await res.json() as { incidents: Array<Record<string, unknown>>; next_cursor: number | null };
    for (const i of page.incidents) {
      const identity = JSON.stringify([i.scope, i.property_id, i.video_title ?? null, i.error_type, i.opened_at_ms]);
      out.set(i.id as number, { id: i.id as number, identity, status: i.status as string, closed_at_ms: i.closed_at_ms as number | null, notifications: i.notifications as string });
    }
    cursor = page.next_cursor;
  } while (cursor !== null);
  return out;
}

function describeView(v: Map<number, ViewRow>): string[] {
  return [...v.values()].sort((a, b) => a.id - b.id).map((r) => `${r.id} ${r.identity} ${r.status} ${r.closed_at_ms}`);
}

/** Waits until the live nodes' views are equal (and, when given, have `size` incidents); returns the view. */
async function agreedView(nodes: Node[], what: string, size?: (v: Map<number, ViewRow>) => boolean): Promise<Map<number, ViewRow>> {
  let views: Array<Map<number, ViewRow>> = [];
  try {
    await waitUntil(what, async () => {
      views = await Promise.all(nodes.map(view));
      const first = describeView(views[0]);
      return first.length > 0 && (size?.(views[0]) ?? true) && views.every((v) => JSON.stringify(describeView(v)) === JSON.stringify(first));
    }, 90_000, 1000);
  } catch (err) {
    const lists = views.map(describeView);
    const union = new Set(lists.flat());
    const diff = lists.map((l, n) => `${nodes[n].name}: ${l.length} incidents, missing ${[...union].filter((x) => !l.includes(x)).slice(0, 5).join(' | ')}`);
    throw new Error(`${(err as Error).message}\n${diff.join('\n')}`);
  }
  return views[0];
}

/** The notifications the view calls for: an opening for every incident, a close for every closed one, keyed as Vigil keys them. */
function expectedKeys(cluster: string, v: Map<number, ViewRow>): Set<string> {
  const keys = new Set<string>();
  for (const r of v.values()) {
    keys.add(`vigil:cluster:${cluster}:${r.id}:opened:1`);
    if (r.status !== 'open') keys.add(`vigil:cluster:${cluster}:${r.id}:${r.status}:1`);
  }
  return keys;
}

/** Requests answered 2xx per idempotency key; asserts that every request of a key carries the same body. */
function deliveries(receiver: TestReceiver): Map<string, number> {
  const counts = new Map<string, number>();
  const bodies = new Map<string, string>();
  for (const r of receiver.requests) {
    const key = String(r.headers['idempotency-key']);
    if (r.answered >= 200 && r.answered < 300) counts.set(key, (counts.get(key) ?? 0) + 1);
    const prior = bodies.get(key);
    if (prior !== undefined) assert.equal(r.body, prior, `a repeat of ${key} must be the same notification`);
    bodies.set(key, r.body);
  }
  return counts;
}

function stopAll(nodes: Node[]): Promise<unknown> {
  for (const n of nodes) if (n.daemon.child.exitCode === null) n.daemon.child.kill('SIGTERM');
  return Promise.all(nodes.map((n) => n.daemon.exit));
}

test('three nodes, keyed by property: every node lists every incident with the same ids; each notified once', async () => {
  const cluster = `vigil-view-${process.pid}-${Date.now()}`;
  const topic = await kafka.topic('vigil-cluster-in', PARTITIONS);
  const receiver = await startReceiver('ok');
  const nodes = startNodes(topic, cluster, receiver);
  try {
    await waitForSplit(nodes, topic);
    await kafka.produce(topic, demo.lines);
    await waitUntil('the input read and committed', async () => (await kafka.committed(`${cluster}-input`, topic)) === demo.lines.length, 120_000, 500);
    // The replay's incidents that open before the stream's last 5 minutes (a stream leaves the end open).
    const replayed = incidentSpans(demo.replayed).filter((s) => s.openedAtMs < demo.maxTs - 5 * 60_000);
    const v = await agreedView(nodes, 'every node lists the same incidents', (x) => x.size >= replayed.length).catch((err: Error) => {
      const joins = nodes.map((n) => n.daemon.stderr().split('\n').filter((l) => l.includes('kafka group joined')).map((l) => JSON.stringify(JSON.parse(l).partitions)).join(' '));
      throw new Error(`${err.message}\nreplay: ${replayed.length}\n${joins.join('\n')}\n${replayed.map((s) => `${s.key} ${s.openedAtMs}`).join('\n')}`);
    });
    // Opening within one tick of the replay's (live production: see the caught-up wait above).
    const rows = [...v.values()].map((r) => JSON.parse(r.identity) as [string, string, string | null, string, number]);
    const missing = replayed.filter((s) => !rows.some((r) => JSON.stringify(r.slice(0, 4)) === s.key && Math.abs(r[4] - s.openedAtMs) <= 10_000));
    assert.deepEqual(missing, [], `the cluster has every incident of the replay; it has ${describeView(v).join('\n')}`);
    // Every node derived some of them: the view is a union, not one node's.
    const derived = nodes.map((n) => (n.daemon.stderr().match(/"msg":"incident #\d+ opened/g) ?? []).length);
    assert.ok(derived.filter((d) => d > 0).length >= 2, `incidents derived by several nodes: ${derived.join(', ')}`);
    assert.equal(derived.reduce((a, b) => a + b, 0), v.size, 'each incident derived by one node');

    const expected = expectedKeys(cluster, v);
    await waitUntil('every notification delivered', () => [...expected].every((k) => deliveries(receiver).has(k)), 60_000, 500);
    // Quiet for a moment: a second sender would show now.
    await new Promise((r) => setTimeout(r, 3000));
    const got = deliveries(receiver);
    assert.deepEqual([...got.keys()].sort(), [...expected].sort(), 'the notifications are those of the cluster\'s transitions');
    const repeated = [...got].filter(([, n]) => n > 1);
    assert.deepEqual(repeated, [], 'each notification delivered exactly once');
    // Leadership may move while the nodes join; in the end one node notifies.
    const leaders = nodes.filter((n) => (n.daemon.stderr().split('\n').filter((l) => l.includes('sends the cluster\'s notifications')).pop() ?? '').includes('now sends'));
    assert.equal(leaders.length, 1, 'one notifying node');
    const notifying = await Promise.all(nodes.map(async (n) => /^vigil_cluster_notifying 1$/m.test(await (await fetch(`http://127.0.0.1:${n.port()}/metrics`)).text())));
    assert.deepEqual(notifying, nodes.map((n) => n === leaders[0]), 'vigil_cluster_notifying names it');

    // set-thresholds on one node changes every node (through <name>.control, in one order).
    const command = async (n: Node, envelope: object) => {
      const res = await fetch(`http://127.0.0.1:${n.port()}/api/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
      return await res.json() as { ok: boolean; result: Record<string, unknown> };
    };
    const set = await command(nodes[1], { id: `thr-${cluster}`, command: 'set-thresholds', args: { property: { minEffectAbs: 0.05 } } });
    assert.equal(set.ok, true, JSON.stringify(set));
    const overridden = async (n: Node) => {
      const st = await command(n, { command: 'status' });
      return (st.result.detection as { overrides: { property?: { minEffectAbs?: number } } }).overrides.property?.minEffectAbs === 0.05;
    };
    await waitUntil('every node runs the cluster\'s set-thresholds', async () => (await Promise.all(nodes.map(overridden))).every(Boolean), 30_000, 500);
  } finally {
    await stopAll(nodes);
    await receiver.close();
  }
});

test('the notifying node killed -9 mid-stream while requests hang: another takes over, nothing missed, repeats only with the same key', async (t) => {
  const cluster = `vigil-view-kill-${process.pid}-${Date.now()}`;
  const topic = await kafka.topic('vigil-cluster-in-kill', PARTITIONS);
  const receiver = await startReceiver('ok');
  const nodes = startNodes(topic, cluster, receiver);
  try {
    await waitForSplit(nodes, topic);
    const live = (n: Node) => n.daemon.child.exitCode === null && n.daemon.child.signalCode === null;
    const leaderOf = () => nodes.find((n) => live(n)
      && (n.daemon.stderr().split('\n').filter((l) => l.includes('sends the cluster\'s notifications')).pop() ?? '').includes('now sends'));
    await waitUntil('a notifying node', () => leaderOf() !== undefined, 60_000, 200);
    const third = Math.floor(demo.lines.length / 3);
    await kafka.produce(topic, demo.lines.slice(0, third));
    await waitUntil('notifications flowing', () => receiver.requests.length >= 5, 120_000, 100);
    // The receiver stops answering: the notifying node has requests in flight and rows pending when it dies.
    receiver.mode = 'never';
    const before = receiver.requests.length;
    await kafka.produce(topic, demo.lines.slice(third, 2 * third));
    await waitUntil('a request hanging', () => receiver.requests.length > before, 120_000, 100);
    const victim = leaderOf()!;
    const killedAt = Date.now();
    victim.daemon.child.kill('SIGKILL');
    await victim.daemon.exit;
    receiver.release();
    await kafka.produce(topic, demo.lines.slice(2 * third));
    await waitUntil('another node notifies', () => leaderOf() !== undefined, 60_000, 200);
    assert.notEqual(leaderOf(), victim);
    // The survivors hold the killed node's input partitions now (restored from the tasks' checkpoints).
    await waitUntil('the input read and committed', async () => (await kafka.committed(`${cluster}-input`, topic)) === demo.lines.length, 120_000, 500);
    // The killed node comes back with its data directory: what its outbox held is published, its store catches up.
    const back = startNodes(topic, cluster, receiver, [nodes.indexOf(victim) + 1])[0];
    nodes.push(back);
    await waitUntil('the restarted node listening', () => back.port() > 0, 90_000, 200);
    const v = await agreedView(nodes.filter(live), 'every node, the restarted one too, lists the same incidents');
    const expected = expectedKeys(cluster, v);
    // Delivered: answered 2xx. A request the killed node left hanging does not count.
    await waitUntil('every notification delivered', () => [...expected].every((k) => deliveries(receiver).has(k)), 60_000, 500);
    await new Promise((r) => setTimeout(r, 3000));
    const got = deliveries(receiver);
    assert.deepEqual([...got.keys()].sort(), [...expected].sort(), 'nothing missed, nothing unknown');
    // A repeat may only be of one the killed node delivered after its last commit: first delivered
    // before the kill, within the commit interval (1 s) and a margin of it.
    const repeats = [...got].filter(([, n]) => n > 1);
    const firstDelivered = (key: string) => receiver.requests.find((r) => String(r.headers['idempotency-key']) === key && r.answered === 200)!.atMs;
    const outside = repeats.filter(([key, n]) => n > 2 || firstDelivered(key) > killedAt || firstDelivered(key) < killedAt - 3000);
    assert.deepEqual(outside, [], 'repeats only inside the duplicate window');
    const hung = receiver.requests.filter((r) => r.answered === 0).length;
    t.diagnostic(`incidents ${v.size}, notifications ${got.size}, left hanging by the killed node ${hung}, delivered twice ${repeats.length}`);
  } finally {
    await stopAll(nodes);
    await receiver.close();
  }
});
