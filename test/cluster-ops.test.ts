// Operating a cluster (README "Cluster"): silences by matcher hold on every node, per-task metrics
// follow the tasks. `vigil run` nodes on the real broker and s3rver, each with its own data directory,
// a real webhook receiver; a 6-partition topic keyed by property.
// (1) Silences given to node1 while it is alone; node2 joins later and must run them from the control
// topic (same ids): the incidents it derives open silenced, so the receiver gets nothing; unsilenced
// through node1, node2's open incidents notify again. Each node's vigil_cluster_task_* series are those
// of the tasks it owns: node1's six go to three when node2 takes the others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { KafkaHarness } from './support/kafka-harness.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';
import { killLeftoverDaemons, loggedHttpPort, startDaemon } from './support/daemon-process.ts';
import { startReceiver, type TestReceiver } from './support/http-receiver.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';

const PARTITIONS = 6;

let kafka: KafkaHarness;
let dir: string;
let demo: DemoRun;
const BUCKET = `vigil-ops-${process.pid}-${Date.now()}`;
let endpoint: string;
let s3: S3Client;

before(async () => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'h14ops-cluster-ops-'));
  demo = generateAndReplay(dir, 2, 14);
  endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  s3 = testS3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  killLeftoverDaemons();
  s3?.destroy();
  await kafka?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Node {
  name: string;
  daemon: ReturnType<typeof startDaemon>;
  port: () => number;
}

function startNode(n: number, topic: string, cluster: string, receiver: TestReceiver, env: Record<string, string> = {}): Node {
  const name = `node${n}`;
  const daemon = startDaemon({
    VIGIL_DATA_DIR: join(dir, `${cluster}-${name}`), VIGIL_LOG_LEVEL: 'info',
    VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `${cluster}-input`,
    VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000', VIGIL_CHECKPOINT_INTERVAL_MS: '2000', VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000',
    VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NAME: cluster, VIGIL_CLUSTER_NODE_ID: name,
    VIGIL_WEBHOOK_URL: `${receiver.url}/hook`, VIGIL_NOTIFY_RETRY_BASE_MS: '50', ...env,
  });
  return { name, daemon, port: () => loggedHttpPort(daemon.stderr()) ?? 0 };
}

/** The input partitions the node was given at its latest join ("kafka group joined"), as numbers. */
function assigned(node: Node, topic: string): string[] {
  const joins = node.daemon.stderr().split('\n').filter((l) => l.includes('"msg":"kafka group joined"') && l.includes(topic));
  return joins.length ? (JSON.parse(joins[joins.length - 1]) as { partitions: string[] }).partitions.map((p) => p.slice(p.lastIndexOf(':') + 1)).sort() : [];
}

async function command(n: Node, envelope: object): Promise<{ ok: boolean; result: Record<string, unknown>; error?: unknown }> {
  const res = await fetch(`http://127.0.0.1:${n.port()}/api/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
  return await res.json() as { ok: boolean; result: Record<string, unknown> };
}

/** The partitions a node's /metrics has series of for a family, sorted. */
async function taskSeries(n: Node, family: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${n.port()}/metrics`)).text();
  const re = new RegExp(`^${family}\\{partition="(\\d+)"\\} `, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]).sort();
}

interface Row { id: number; status: string; notifications: string }

async function view(n: Node): Promise<Row[]> {
  const res = await fetch(`http://127.0.0.1:${n.port()}/api/incidents?limit=500`);
  const page = await res.json() as { incidents: Row[]; next_cursor: number | null };
  assert.equal(page.next_cursor, null, 'one page holds them');
  return page.incidents.map((i) => ({ id: i.id, status: i.status, notifications: i.notifications })).sort((a, b) => a.id - b.id);
}

function stopAll(nodes: Node[]): Promise<unknown> {
  for (const n of nodes) if (n.daemon.child.exitCode === null) n.daemon.child.kill('SIGTERM');
  return Promise.all(nodes.map((n) => n.daemon.exit));
}

const ALL = Array.from({ length: PARTITIONS }, (_, p) => String(p)).sort();

test('silences by matcher given to one node hold on a node that joins later; per-task metrics follow the tasks', async (t) => {
  const cluster = `h14ops-sil-${process.pid}-${Date.now()}`;
  const topic = await kafka.topic('h14ops-in', PARTITIONS);
  const receiver = await startReceiver('ok');
  const nodes: Node[] = [startNode(1, topic, cluster, receiver)];
  const [node1] = nodes;
  try {
    await waitUntil('node1 listening', () => node1.port() > 0, 90_000, 200);
    await waitUntil('node1 owns every partition', () => assigned(node1, topic).length === PARTITIONS, 90_000, 200);
    await waitUntil('node1 has a series of every task', async () => JSON.stringify(await taskSeries(node1, 'vigil_cluster_task_restore_seconds')) === JSON.stringify(ALL), 60_000, 200);

    // Everything silenced, through node1 alone.
    const silences: number[] = [];
    for (const scope of ['property', 'title']) {
      const r = await command(node1, { id: `sil-${scope}-${cluster}`, command: 'silence-matching', args: { scope, duration_ms: 3_600_000, comment: 'maintenance' } });
      assert.equal(r.ok, true, JSON.stringify(r));
      silences.push(r.result.silence_id as number);
    }

    // node2 joins: it has the same silences, with the same ids, from the control topic.
    const node2 = startNode(2, topic, cluster, receiver);
    nodes.push(node2);
    await waitUntil('node2 listening', () => node2.port() > 0, 90_000, 200);
    const listed = async (n: Node) => ((await command(n, { id: `list-${n.name}-${Date.now()}`, command: 'silences' })).result.silences as Array<{ silence_id: number; scope: string; expires_at: string }>);
    const on1 = await listed(node1);
    const on2 = await listed(node2);
    assert.deepEqual(on2.map((s) => [s.silence_id, s.scope, s.expires_at]), on1.map((s) => [s.silence_id, s.scope, s.expires_at]), 'the same silences on both nodes');
    assert.deepEqual(on1.map((s) => s.silence_id), silences);

    await waitUntil('the input split over both nodes', () => {
      const a = [assigned(node1, topic), assigned(node2, topic)];
      return a.every((p) => p.length > 0) && new Set(a.flat()).size === PARTITIONS && a.flat().length === PARTITIONS;
    }, 90_000, 200);
    // A task's series are on its owner only: node1's moved tasks are gone from node1.
    await waitUntil('each node\'s task series are its tasks', async () => {
      const [s1, s2] = await Promise.all([taskSeries(node1, 'vigil_cluster_task_restore_seconds'), taskSeries(node2, 'vigil_cluster_task_restore_seconds')]);
      return JSON.stringify(s1) === JSON.stringify(assigned(node1, topic)) && JSON.stringify(s2) === JSON.stringify(assigned(node2, topic));
    }, 60_000, 200);

    // One view from a device whose clock is a day ahead of the wall clock: clamped to its partition's
    // time (counted), and counted as from the future by the node whose task read it (a node's clock
    // metrics sum its tasks').
    const future = JSON.stringify({ ...(JSON.parse(demo.lines[0]) as object), view_id: 'v-clock-a-day-ahead', ts: Date.now() + 86_400_000 });
    const lines = [...demo.lines.slice(0, demo.lines.length >> 1), future, ...demo.lines.slice(demo.lines.length >> 1)];
    await kafka.produce(topic, lines);
    await waitUntil('the input read and committed', async () => (await kafka.committed(`${cluster}-input`, topic)) === lines.length, 180_000, 500);
    const futures = await Promise.all(nodes.map(async (n) => Number((await (await fetch(`http://127.0.0.1:${n.port()}/metrics`)).text()).match(/^vigil_future_events_total (\d+)/m)?.[1])));
    assert.deepEqual(futures.sort(), [0, 1], `vigil_future_events_total of the two nodes: ${futures.join(', ')}`);
    // Each node's series of events: its tasks', and their sum is every record read.
    const events = async (n: Node) => {
      const text = await (await fetch(`http://127.0.0.1:${n.port()}/metrics`)).text();
      return [...text.matchAll(/^vigil_cluster_task_events_total\{partition="(\d+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])] as const);
    };
    const [e1, e2] = await Promise.all([events(node1), events(node2)]);
    assert.deepEqual(e1.map(([p]) => p).sort(), assigned(node1, topic));
    assert.deepEqual(e2.map(([p]) => p).sort(), assigned(node2, topic));
    assert.equal([...e1, ...e2].reduce((a, [, n]) => a + n, 0), demo.valid + 1, 'every valid record counted once, by its task');
    // Every task is checkpointed (every 2 s here): its latest checkpoint's age and bytes are on its owner.
    for (const n of nodes) {
      await waitUntil(`${n.name}'s checkpoint series`, async () => JSON.stringify(await taskSeries(n, 'vigil_cluster_task_checkpoint_bytes')) === JSON.stringify(assigned(n, topic)), 30_000, 500);
      assert.deepEqual(await taskSeries(n, 'vigil_cluster_task_checkpoint_age_seconds'), assigned(n, topic));
      assert.deepEqual(await taskSeries(n, 'vigil_cluster_task_checkpoint_pause_seconds'), assigned(n, topic));
      assert.deepEqual(await taskSeries(n, 'vigil_cluster_task_restores_total'), assigned(n, topic));
    }
    // Records of any kind: a partition may hold only malformed lines (the producer spreads their null keys).
    const text2 = await (await fetch(`http://127.0.0.1:${node2.port()}/metrics`)).text();
    const rejected2 = [...text2.matchAll(/^vigil_cluster_task_rejected_total\{partition="(\d+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])] as const);
    const lag = await taskSeries(node2, 'vigil_cluster_task_lag_records');
    assert.deepEqual(lag, assigned(node2, topic).filter((p) => [...e2, ...rejected2].some(([q, n]) => q === p && n > 0)), 'a lag of every task that read records');

    // Both nodes derived incidents; all of them opened silenced on every node, and nobody was notified.
    const derived = nodes.map((n) => (n.daemon.stderr().match(/"msg":"incident #\d+ opened/g) ?? []).length);
    assert.ok(derived[1] > 0, `node2 derived incidents: ${derived.join(', ')}`);
    let v1: Row[] = [];
    await waitUntil('both nodes list the same incidents', async () => {
      v1 = await view(node1);
      return v1.length === derived[0] + derived[1] && JSON.stringify(await view(node2)) === JSON.stringify(v1);
    }, 60_000, 500);
    assert.deepEqual(v1.filter((r) => r.notifications !== 'silenced'), [], 'every incident silenced');
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(receiver.requests.map((r) => r.headers['idempotency-key']), [], 'no notification while silenced');

    // Unsilenced through node1: the open incidents (node2's too) notify their state once.
    const open = v1.filter((r) => r.status === 'open');
    assert.ok(open.length > 0, 'open incidents at the end of the stream');
    for (const id of silences) {
      const r = await command(node1, { id: `unsil-${id}-${cluster}`, command: 'unsilence-matching', args: { silence_id: id } });
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    const expected = open.map((r) => `vigil:cluster:${cluster}:${r.id}:unsilenced:1`).sort();
    await waitUntil('every open incident notifies again', () => expected.every((k) => receiver.requests.some((r) => r.headers['idempotency-key'] === k && r.answered === 200)), 60_000, 500);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(receiver.requests.map((r) => String(r.headers['idempotency-key'])).sort(), expected, 'each open incident notified once, nothing else');
    for (const n of nodes) assert.deepEqual((await view(n)).filter((r) => r.status === 'open' && r.notifications !== 'on'), [], `${n.name}: no open incident still silenced`);
    t.diagnostic(`incidents ${v1.length} (node1 ${derived[0]}, node2 ${derived[1]}), open at the end ${open.length}; partitions node1 ${assigned(node1, topic).join(',')} node2 ${assigned(node2, topic).join(',')}`);
  } finally {
    await stopAll(nodes);
    await receiver.close();
  }
});

async function getObject(key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return out.Body!.transformToString();
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

interface DumpManifest {
  records: number;
  parts: Array<{ key: string; records: number; task?: number }>;
  tasks?: Array<{ partition: number; node: string; records: number }>;
  complete: boolean;
}

/** The figures' keys of a dump (scope, property, title, error type), in the order of its parts. */
async function dumpKeys(manifestKey: string): Promise<{ manifest: DumpManifest; keys: string[] }> {
  const manifest = JSON.parse(await getObject(manifestKey)) as DumpManifest;
  const keys: string[] = [];
  for (const p of manifest.parts) {
    const lines = (await getObject(p.key)).split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, p.records, `${p.key}: as many records as the manifest says`);
    for (const l of lines) {
      const r = JSON.parse(l) as { scope: string; property_id: string; video_title: string | null; error_type: string };
      keys.push(JSON.stringify([r.scope, r.property_id, r.video_title, r.error_type]));
    }
  }
  assert.equal(keys.length, manifest.records);
  return { manifest, keys };
}

test('a dump of the cluster has a share of every task and one manifest; a task missing fails it, without a manifest', async (t) => {
  const cluster = `h14ops-dump-${process.pid}-${Date.now()}`;
  const topic = await kafka.topic('h14ops-dump-in', PARTITIONS);
  const receiver = await startReceiver('ok');
  // A long session: a killed node's tasks stay unowned well past the short dump's wait below.
  const session = { VIGIL_KAFKA_SESSION_TIMEOUT_MS: '30000' };
  const nodes = [startNode(1, topic, cluster, receiver, session), startNode(2, topic, cluster, receiver, session)];
  const [node1, node2] = nodes;
  let single: ReturnType<typeof startDaemon> | null = null;
  try {
    await waitUntil('both nodes listening', () => nodes.every((n) => n.port() > 0), 90_000, 200);
    await waitUntil('the input split over both nodes', () => {
      const a = nodes.map((n) => assigned(n, topic));
      return a.every((p) => p.length > 0) && new Set(a.flat()).size === PARTITIONS && a.flat().length === PARTITIONS;
    }, 90_000, 200);
    await kafka.produce(topic, demo.lines);
    await waitUntil('the input read and committed', async () => (await kafka.committed(`${cluster}-input`, topic)) === demo.lines.length, 180_000, 500);

    const d = await command(node2, { id: `dump-${cluster}`, command: 'dump-error-rates' });
    assert.equal(d.ok, true, JSON.stringify(d));
    const { manifest, keys } = await dumpKeys(d.result.manifest_key as string);
    assert.equal(manifest.complete, true);
    assert.deepEqual(manifest.tasks!.map((x) => x.partition), Array.from({ length: PARTITIONS }, (_, p) => p), 'one share of every partition');
    const owner = (p: number) => (assigned(node1, topic).includes(String(p)) ? 'node1' : 'node2');
    assert.deepEqual(manifest.tasks!.map((x) => x.node), manifest.tasks!.map((x) => owner(x.partition)), 'each share written by the task\'s owner');
    assert.equal(new Set(keys).size, keys.length, 'no key twice');

    // The same records on one node (no cluster): the same keys.
    const singleGroup = `${cluster}-single`;
    single = startDaemon({
      VIGIL_DATA_DIR: join(dir, `${cluster}-single`), VIGIL_LOG_LEVEL: 'info',
      VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'vigil-single/', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
      VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: singleGroup,
    });
    const sPort = () => loggedHttpPort(single!.stderr()) ?? 0;
    await waitUntil('the single node listening', () => sPort() > 0, 90_000, 200);
    const singleNode: Node = { name: 'single', daemon: single, port: sPort };
    // Its commits follow its checkpoints: the dump is taken once every record is counted.
    await waitUntil('the single node counted every record', async () => {
      const st = await command(singleNode, { id: `st-${Date.now()}`, command: 'status' });
      return (st.result.engine as { events?: number }).events === demo.valid;
    }, 120_000, 500);
    const sd = await command(singleNode, { id: `dump-single-${cluster}`, command: 'dump-error-rates' });
    assert.equal(sd.ok, true, JSON.stringify(sd));
    const singleKeys = (await dumpKeys(sd.result.manifest_key as string)).keys;
    assert.deepEqual([...keys].sort(), [...singleKeys].sort(), 'the cluster\'s dump has the keys of the single node\'s, each once');

    // node2 dies: until the group moves its tasks (30 s session timeout) nobody has them; node1's shares take a few seconds.
    const lost = assigned(node2, topic);
    node2.daemon.child.kill('SIGKILL');
    await node2.daemon.exit;
    // Two dumps through node1 at once: one waits 10 s (fails: node2's tasks have no owner yet), one waits
    // long enough for node1 to gain them (it writes their shares when it has restored them).
    const [bad, again] = await Promise.all([
      command(node1, { id: `dump-short-${cluster}`, command: 'dump-error-rates', args: { wait_ms: 10_000 } }),
      command(node1, { id: `dump-again-${cluster}`, command: 'dump-error-rates', args: { wait_ms: 120_000 } }),
    ]) as unknown as [{ error: { code: string; message: string }; command: { ok: boolean } }, { ok: boolean; result: Record<string, unknown> }];
    // The HTTP admin API answers a failed command with its error (and the reply as `command`).
    assert.equal(bad.command?.ok, false, JSON.stringify(bad));
    assert.equal(bad.error.code, 'DUMP_INCOMPLETE', JSON.stringify(bad));
    assert.match(bad.error.message, new RegExp(`partition\\(s\\) ${lost.join(', ')} `));
    const written = await keysUnder('vigil/error-rates/');
    const shortDump = written.filter((k) => k.includes(`dump-short-${cluster}`));
    assert.ok(shortDump.length > 0, 'node1 wrote its shares');
    assert.deepEqual(shortDump.filter((k) => k.endsWith(`dump-short-${cluster}/manifest.json`)), [], 'no manifest of an incomplete dump');

    assert.equal(again.ok, true, JSON.stringify(again));
    assert.equal(assigned(node1, topic).length, PARTITIONS, 'node1 took over every task');
    const after = await dumpKeys(again.result.manifest_key as string);
    assert.deepEqual(after.manifest.tasks!.map((x) => `${x.partition}:${x.node}`), Array.from({ length: PARTITIONS }, (_, p) => `${p}:node1`));
    assert.deepEqual([...after.keys].sort(), [...singleKeys].sort(), 'restored tasks dump the same keys');
    t.diagnostic(`dump: ${keys.length} records in ${manifest.parts.length} parts of ${manifest.tasks!.length} tasks`);
  } finally {
    single?.child.kill('SIGTERM');
    await single?.exit;
    await stopAll(nodes);
    await receiver.close();
  }
});
