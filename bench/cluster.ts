// Cluster benchmark (issue 14): events/s and CPU per event of 1, 2 and 3 `vigil run` nodes with
// VIGIL_CLUSTER=true (one consumer group, task checkpoints in S3) against a single node without
// VIGIL_CLUSTER, reading the same backlog; and the failover time from a `kill -9` of one of three
// nodes to the first record of its partitions evaluated on their new owners, broken down.
//
// Throughput. The first BENCH_RECORDS lines (default 1,000,000) of `vigil generate --profile field
// --hours 1 --seed 7` (300 properties of heavy-tailed sizes) are produced to a fresh topic of
// BENCH_PARTITIONS (default 6) partitions, keyed by property: each property's records go to one
// partition, properties packed largest first into the emptiest partition so the partitions carry
// nearly equal shares (a hash of 300 heavy-tailed properties would leave one node with far more than
// the others, and the per-node rates would measure the keying, not the cluster). The records are
// produced inside a Kafka transaction that stays open while the nodes start and the group settles
// (the nodes read committed records only), and committed once every partition is assigned and every
// task's engine is ready: all nodes then see the whole backlog at once, with no rebalance during the
// run (one is counted and reported if it happens) and no record read twice. Each node is a
// separate `vigil run` process with default settings but for the broker, topic, group, S3 and
// VIGIL_HTTP_PORT=0; its /metrics (vigil_events_total + vigil_events_rejected_total) and its CPU
// time (/proc/<pid>/stat utime + stime: every thread of the process, its worker threads included,
// exited ones too) are sampled every 200 ms from the commit until the nodes together have counted
// every record. Per node: events, events/s from the commit to its last record, CPU microseconds per
// event over the run, and both again between its 25% and 90% of records ("steady": without a
// process's warm-up, which a node with a third of the records pays three times per event); the CPU
// a node burns with nothing to read (idleCpuCores, over 2 s before the commit); overall: events/s. Ratios are against the 1-node cluster of the same round (and
// the single non-cluster node against it). On a machine with fewer cores than the nodes' threads,
// the nodes share the cores: per-node events/s then falls with the node count whatever the cluster
// costs, and CPU per event is the figure that says what a node costs per event (on separate
// machines, per-node throughput follows it).
//
// Failover (BENCH_FAILOVER=0 skips it). Three cluster nodes with default settings (session timeout,
// checkpoint interval) on a fresh topic, records produced live at BENCH_FAILOVER_RATE records/s
// (default 4000); once every task has a checkpoint in S3 and BENCH_KILL_AFTER_MS (default 5000) more
// have passed, one node is killed with SIGKILL. Production goes on until the killed node's tasks
// evaluate on their new owners, then stops, so that "caught up" is visible: the survivors' event
// counts stop moving once the new owners have read the tails since the checkpoints and what was
// produced during the outage. From the nodes' JSON logs: when each survivor learned of the rebalance
// (kafkajs: "The group is rebalancing, re-joining", for the input group), was assigned the killed
// node's tasks ("cluster tasks assigned"), had each restored from S3 with its engine started
// ("cluster task ready", loadMs), and evaluated its first chunk ("cluster task evaluating"); then
// when every task is read to the end. BENCH_FAILOVER_SESSIONS (default "default,30000,10000") lists
// the session timeouts to run: "default" leaves VIGIL_KAFKA_SESSION_TIMEOUT_MS unset.
//
// The repartition stage's cost per event (input not keyed by property) is bench/repartition.ts.
//
// Not a test: run by hand, after `npm run build`, with the broker and s3rver up:
//   eval "$(bash scripts/services.sh env)" && nice -n 10 node --import tsx bench/cluster.ts
// BENCH_ROUNDS (default 2), BENCH_NODES (default "single,1,2,3"; "none": failover only), BENCH_RECORDS,
// BENCH_PARTITIONS.
// Prints one JSON line per measurement and a summary line per round.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startDaemon, killLeftoverDaemons, loggedHttpPort, VIGIL } from '../test/support/daemon-process.ts';
import { KafkaHarness } from '../test/support/kafka-harness.ts';
import { serviceEnv, waitUntil, testS3Client } from '../test/support/services-env.ts';

const env = process.env;
const RECORDS = Number(env.BENCH_RECORDS ?? 1_000_000);
const PARTITIONS = Number(env.BENCH_PARTITIONS ?? 6);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 2);
const CONFIGS = (env.BENCH_NODES ?? 'single,1,2,3').split(',').filter((c) => c !== '' && c !== 'none');
const FAILOVER = env.BENCH_FAILOVER !== '0';
const FAILOVER_RATE = Number(env.BENCH_FAILOVER_RATE ?? 4000);
const KILL_AFTER_MS = Number(env.BENCH_KILL_AFTER_MS ?? 5000);
const SESSIONS = (env.BENCH_FAILOVER_SESSIONS ?? 'default,30000,10000').split(',');
const TICKS_PER_S = 100; // /proc clock ticks (getconf CLK_TCK on Linux)
const RUN_ID = `${process.pid}-${Date.now()}`;
/** The nodes' data directories (removed at the end). */
const dataRoot = mkdtempSync(join(tmpdir(), 'vigil-bench-cluster-'));

const outDir = join(import.meta.dirname, 'out');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, 'cluster-field-h1-s7.ndjson');
if (!existsSync(file)) {
  process.stderr.write(`generating ${file} ...\n`);
  const g = spawnSync(process.execPath, [VIGIL, 'generate', '--profile', 'field', '--hours', '1', '--seed', '7', '--out', file], { encoding: 'utf8' });
  if (g.status !== 0) throw new Error(`vigil generate failed: ${g.stderr}`);
}
const all = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
const lines = all.slice(0, RECORDS);
const failoverLines = all.slice(RECORDS);

/** Each property to one partition, largest first into the emptiest (a key the producer chose, as keying by property is). */
function partitionMap(ls: string[]): number[] {
  const propOf = ls.map((l) => { try { return String((JSON.parse(l) as { property_id: unknown }).property_id); } catch { return ''; } });
  const counts = new Map<string, number>();
  for (const p of propOf) counts.set(p, (counts.get(p) ?? 0) + 1);
  const load = new Array<number>(PARTITIONS).fill(0);
  const to = new Map<string, number>();
  for (const [p, n] of [...counts].sort((a, b) => b[1] - a[1])) {
    const i = load.indexOf(Math.min(...load));
    to.set(p, i);
    load[i] += n;
  }
  return propOf.map((p) => to.get(p)!);
}
const partitionOf = partitionMap(all);
const perPartition = new Array<number>(PARTITIONS).fill(0);
for (let i = 0; i < lines.length; i++) perPartition[partitionOf[i]]++;

const kafka = new KafkaHarness();
const s3Endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
const BUCKET = `vigil-bench-cluster-${RUN_ID}`;
const s3 = testS3Client(s3Endpoint);
await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

const admin = kafka.kafka.admin();
await admin.connect();
/** The shared broker's disk: each throughput topic holds the whole backlog. */
async function deleteTopic(topic: string): Promise<void> {
  await admin.deleteTopics({ topics: [topic] }).catch((err: Error) => process.stderr.write(`topic ${topic} not deleted: ${err.message}\n`));
}

/**
 * A fresh topic with a unique name. Not KafkaHarness.topic: right after a deletion the loaded broker
 * may answer a new topic's metadata with UNKNOWN_TOPIC_OR_PARTITION, which kafkajs's waitForLeaders
 * does not retry.
 */
async function newTopic(prefix: string): Promise<string> {
  const topic = `${prefix}-${RUN_ID}-${Date.now()}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: false });
  await waitUntil(`topic ${topic} to have its leaders`, async () => {
    try {
      const o = await admin.fetchTopicOffsets(topic);
      return o.length === PARTITIONS;
    } catch {
      return false;
    }
  }, 60_000, 200);
  return topic;
}

/**
 * High watermarks by partition, through this file's admin (whose deleteTopics forgets the topic: an
 * admin that had read a deleted topic keeps asking for its metadata and fails).
 */
async function highWatermarks(topic: string): Promise<number[]> {
  const highs: number[] = [];
  for (const o of await admin.fetchTopicOffsets(topic)) highs[o.partition] = Number(o.high);
  return highs;
}

const machine = { date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version };
console.log(JSON.stringify({ bench: 'cluster', ...machine, records: lines.length, partitions: PARTITIONS, perPartition, load: loadavg().map((x) => +x.toFixed(2)) }));

const partitionOfTask = (task: string): number => Number(task.slice(task.lastIndexOf(':') + 1));

// --- nodes ---------------------------------------------------------------------------------------

type LogLine = Record<string, unknown> & { atMs: number; msg: string };

/** One `vigil run` process: its log lines, HTTP port, metrics and CPU time. */
class NodeProc {
  readonly d: ReturnType<typeof startDaemon>;
  private parsedUpTo = 0;
  private readonly parsed: LogLine[] = [];

  constructor(readonly name: string, vars: Record<string, string>) {
    this.d = startDaemon({ VIGIL_LOG_LEVEL: 'info', ...vars });
  }

  get pid(): number {
    return this.d.child.pid!;
  }

  logs(msg?: string): LogLine[] {
    const text = this.d.stderr();
    const end = text.lastIndexOf('\n') + 1;
    for (const l of text.slice(this.parsedUpTo, end).split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        this.parsed.push({ ...o, msg: String(o.msg), atMs: typeof o.time === 'number' ? o.time : Date.parse(String(o.time)) });
      } catch { /* not a log line */ }
    }
    this.parsedUpTo = end;
    return msg === undefined ? this.parsed : this.parsed.filter((o) => o.msg === msg);
  }

  /** CPU seconds of the whole process (all threads). */
  cpu(): number {
    try {
      const s = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
    } catch {
      return NaN;
    }
  }

  /** Records the node counted: valid events plus rejected lines, from /metrics. */
  async counted(): Promise<number> {
    const port = loggedHttpPort(this.d.stderr());
    if (port === null) return 0;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/^vigil_events(?:_rejected)?_total(?:\{[^}]*\})? (\d+)/gm)) n += Number(m[1]);
    return n;
  }

  /** The tasks of the node's latest assignment. */
  owned(): string[] {
    return (this.logs('cluster tasks assigned').at(-1)?.owned as string[] | undefined) ?? [];
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<number | null> {
    if (this.d.child.exitCode !== null || this.d.child.signalCode !== null) return this.d.child.exitCode;
    this.d.child.kill(signal);
    const code = await Promise.race([this.d.exit, delay(120_000, 'hung' as const)]);
    if (code === 'hung') { this.d.child.kill('SIGKILL'); throw new Error(`${this.name} did not exit within 120 s of ${signal}`); }
    return code;
  }
}

function nodeVars(topic: string, group: string, cluster: boolean, name: string, extra: Record<string, string> = {}): Record<string, string> {
  const dataDir = join(dataRoot, `${group}-${name}`);
  const vars: Record<string, string> = { VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group,
    VIGIL_DATA_DIR: dataDir, VIGIL_TRANSITIONS_FILE: join(dataDir, 'transitions.ndjson'), ...extra };
  if (cluster) {
    Object.assign(vars, { VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: name, VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: `${group}/`,
      VIGIL_S3_ENDPOINT: s3Endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER' });
  }
  return vars;
}

async function startNodes(count: number, topic: string, group: string, cluster: boolean, extra: Record<string, string> = {}): Promise<NodeProc[]> {
  const nodes = Array.from({ length: count }, (_, i) => new NodeProc(`n${i + 1}`, nodeVars(topic, group, cluster, `n${i + 1}`, extra)));
  await waitUntil('the nodes running', () => nodes.every((n) => {
    if (n.d.child.exitCode !== null) throw new Error(`${n.name} exited at start: ${n.d.stderr().slice(-3000)}`);
    return n.logs('vigil running').length > 0 && loggedHttpPort(n.d.stderr()) !== null;
  }), 180_000, 200);
  // Every partition assigned once, each node owning some, every task's engine started.
  await waitUntil('every partition assigned and every task ready', () => {
    if (!cluster) return nodes[0].logs('kafka group joined').some((l) => (l.partitions as string[]).length === PARTITIONS);
    const owned = nodes.map((n) => n.owned());
    const union = new Set(owned.flat());
    if (union.size !== PARTITIONS || owned.flat().length !== PARTITIONS || owned.some((o) => o.length === 0)) return false;
    // A task kept through a rebalance is not gained (nor logged ready) again: ready after its last drop.
    const last = (n: NodeProc, msg: string, t: string) => n.logs(msg).filter((l) => l.task === t).at(-1)?.atMs ?? -1;
    return nodes.every((n) => n.owned().every((t) => last(n, 'cluster task ready', t) > last(n, 'cluster task dropped', t)));
  }, 180_000, 200);
  return nodes;
}

async function stopNodes(nodes: NodeProc[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop('SIGTERM').catch((err: Error) => process.stderr.write(`${err.message}\n`))));
}

// --- throughput ---------------------------------------------------------------------------------

/** Produces `ls` to `topic` (partitions by `partOf`) inside a transaction left open; resolves with its commit. */
async function produceUncommitted(topic: string, ls: string[], partOf: (i: number) => number): Promise<{ commit: () => Promise<void>; seconds: number }> {
  const started = Date.now();
  const producer = kafka.kafka.producer({ transactionalId: `h14bench-${topic}`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 900_000 });
  await producer.connect();
  const txn = await producer.transaction();
  const batch = 10_000;
  for (let i = 0; i < ls.length; i += batch) {
    await txn.send({ topic, messages: ls.slice(i, i + batch).map((value, j) => ({ partition: partOf(i + j), value })) });
  }
  return { seconds: (Date.now() - started) / 1000, commit: async () => { await txn.commit(); await producer.disconnect(); } };
}

interface NodeResult {
  node: string; events: number; seconds: number; eventsPerSecond: number; cpuSeconds: number; cpuUsPerEvent: number;
  steadyEventsPerSecond: number; steadyCpuUsPerEvent: number; idleCpuCores: number; tasks: number[];
}

/**
 * Rate and CPU per event between a node's 25% and 90% of its records: a process's first seconds
 * (JIT compilation, heap growth) are a fixed cost that a node with a third of the records pays per
 * event three times over, and a node running for days does not pay at all.
 */
function steady(s: Array<{ n: number; atMs: number; cpu: number }>, total: number): { steadyEventsPerSecond: number; steadyCpuUsPerEvent: number } {
  const a = s.find((x) => x.n >= 0.25 * total);
  const b = s.filter((x) => x.n <= 0.9 * total).at(-1);
  if (!a || !b || b.n <= a.n) return { steadyEventsPerSecond: NaN, steadyCpuUsPerEvent: NaN };
  return { steadyEventsPerSecond: Math.round((b.n - a.n) / ((b.atMs - a.atMs) / 1000)), steadyCpuUsPerEvent: +(1e6 * (b.cpu - a.cpu) / (b.n - a.n)).toFixed(2) };
}

async function throughput(config: string, round: number): Promise<{ config: string; overall: number; nodes: NodeResult[] }> {
  const cluster = config !== 'single';
  const count = cluster ? Number(config) : 1;
  const topic = await newTopic(`h14bench-tp-${config}`);
  const group = `g-${topic}`;
  const fill = await produceUncommitted(topic, lines, (i) => partitionOf[i]);
  const load0 = loadavg()[0];
  const nodes = await startNodes(count, topic, group, cluster);
  const assignments0 = nodes.map((n) => n.logs('cluster tasks assigned').length);
  // What a node costs with nothing to read (heartbeats, timers, the view's consumers), for scale.
  const idle0 = nodes.map((n) => n.cpu());
  await delay(2000);
  const cpu0 = nodes.map((n) => n.cpu());
  const idleCpuCores = cpu0.map((c, i) => +((c - idle0[i]) / 2).toFixed(3));
  const t0 = Date.now();
  await fill.commit();
  const last = nodes.map(() => ({ n: 0, atMs: t0, cpu: 0 }));
  const samples = nodes.map((): Array<{ n: number; atMs: number; cpu: number }> => []);
  const end = Date.now() + 1_800_000;
  let stalled = Date.now();
  let total = 0;
  while (total < lines.length) {
    await delay(200);
    const counts = await Promise.all(nodes.map((n) => n.counted()));
    const now = Date.now();
    counts.forEach((c, i) => {
      if (c > last[i].n) { last[i] = { n: c, atMs: now, cpu: nodes[i].cpu() }; stalled = now; samples[i].push(last[i]); }
    });
    total = counts.reduce((a, b) => a + b, 0);
    if (now > end || now - stalled > 120_000) throw new Error(`${config}: ${total} of ${lines.length} records counted, stalled`);
  }
  const t1 = Math.max(...last.map((l) => l.atMs));
  const rebalances = nodes.reduce((a, n, i) => a + n.logs('cluster tasks assigned').length - assignments0[i], 0);
  const results: NodeResult[] = nodes.map((n, i) => {
    const seconds = (last[i].atMs - t0) / 1000;
    const cpuSeconds = last[i].cpu - cpu0[i];
    return { node: n.name, events: last[i].n, seconds, eventsPerSecond: Math.round(last[i].n / seconds), cpuSeconds: +cpuSeconds.toFixed(2),
      cpuUsPerEvent: +(1e6 * cpuSeconds / last[i].n).toFixed(2), ...steady(samples[i], last[i].n), idleCpuCores: idleCpuCores[i],
      tasks: cluster ? n.owned().map(partitionOfTask) : [] };
  });
  await stopNodes(nodes);
  await deleteTopic(topic);
  const overall = Math.round(lines.length / ((t1 - t0) / 1000));
  console.log(JSON.stringify({ measure: 'throughput', round, config, nodes: count, cluster, topic, fillSeconds: +fill.seconds.toFixed(1),
    seconds: (t1 - t0) / 1000, eventsPerSecond: overall, rebalancesDuringRun: rebalances, load: [+load0.toFixed(2), +loadavg()[0].toFixed(2)], perNode: results }));
  return { config, overall, nodes: results };
}

// --- failover -----------------------------------------------------------------------------------

/** The newest complete checkpoint of each task in S3: partition -> when its manifest was written and its name. */
async function newestCheckpoints(group: string, topic: string): Promise<Map<number, { name: string; writtenAtMs: number }>> {
  const prefix = `${group}/cluster/${group}/tasks/${topic}/`;
  const out = new Map<number, { name: string; writtenAtMs: number }>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const m = /\/(\d+)\/([^/]+)\/manifest\.json$/.exec(o.Key!);
      if (!m) continue;
      const p = Number(m[1]);
      const at = o.LastModified?.getTime() ?? 0;
      if ((out.get(p)?.writtenAtMs ?? -1) < at) out.set(p, { name: m[2], writtenAtMs: at });
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

async function failover(session: string, round: number): Promise<void> {
  const topic = await newTopic('h14bench-fo');
  const group = `g-${topic}`;
  const extra: Record<string, string> = session === 'default' ? {} : { VIGIL_KAFKA_SESSION_TIMEOUT_MS: session };
  const nodes = await startNodes(3, topic, group, true, extra);
  const load0 = loadavg()[0];
  const producer = kafka.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let producing = true;
  const perStep = Math.max(1, Math.round(FAILOVER_RATE / 4));
  const production = (async () => {
    for (let i = 0; producing && i < failoverLines.length; i += perStep) {
      const started = Date.now();
      await producer.send({ topic, messages: failoverLines.slice(i, i + perStep).map((value, j) => ({ partition: partitionOf[RECORDS + i + j], value })) });
      await delay(Math.max(0, 250 - (Date.now() - started)));
    }
  })();
  try {
    await waitUntil('every task checkpointed in S3', async () => (await newestCheckpoints(group, topic)).size === PARTITIONS, 180_000, 500);
    await delay(KILL_AFTER_MS);
    const [, victim, ...rest] = nodes;
    const survivors = [nodes[0], ...rest];
    const victimTasks = victim.owned();
    const killAtMs = Date.now();
    victim.d.child.kill('SIGKILL');
    const checkpointsAtKill = await newestCheckpoints(group, topic);
    const highs = await highWatermarks(topic);
    const evaluating = (task: string) => survivors.flatMap((n) => n.logs('cluster task evaluating').filter((l) => l.task === task && l.atMs > killAtMs)
      .map((l) => ({ node: n, line: l }))).sort((a, b) => a.line.atMs - b.line.atMs)[0];
    await waitUntil('the killed node\'s tasks evaluating on the survivors', () => victimTasks.every((t) => evaluating(t) !== undefined), 600_000, 200);
    // Production stops once the moved tasks evaluate: their new owners then read what was produced
    // since their checkpoint (the tail read again and the records of the outage) to the end, and
    // the survivors' counts stop moving.
    const stoppedAtMs = Date.now();
    producing = false;
    await production;
    const highsAtStop = await highWatermarks(topic);
    let lastChangeAtMs = Date.now();
    let prev = '';
    while (Date.now() - lastChangeAtMs < 6000) {
      await delay(200);
      const now = (await Promise.all(survivors.map((n) => n.counted()))).join(',');
      if (now !== prev) { prev = now; lastChangeAtMs = Date.now(); }
    }
    const tasks = victimTasks.map((task) => {
      const { node, line } = evaluating(task)!;
      const after = (msg: string) => node.logs(msg).filter((l) => l.atMs > killAtMs);
      const noticed = after('The group is rebalancing, re-joining').find((l) => l.groupId === group);
      const assigned = after('cluster tasks assigned').find((l) => (l.gained as string[]).includes(task));
      const ready = after('cluster task ready').find((l) => l.task === task);
      const p = partitionOfTask(task);
      const cp = checkpointsAtKill.get(p);
      const ms = (l: LogLine | undefined) => (l ? l.atMs - killAtMs : null);
      return { partition: p, newOwner: node.name, rebalanceNoticedMs: ms(noticed), assignedMs: ms(assigned), readyMs: ms(ready), loadMs: ready?.loadMs ?? null,
        firstEvaluatedMs: ms(line), restoredFrom: ready?.checkpoint ?? null, checkpointAgeAtKillMs: cp ? killAtMs - cp.writtenAtMs : null,
        tailRecords: ready?.offset != null ? highs[p] - Number(ready.offset) : null, producedSinceKill: highsAtStop[p] - highs[p] };
    });
    // Every task that moved in the rebalance (eager: survivors' tasks may move between them too).
    const moved = survivors.flatMap((n) => n.logs('cluster task evaluating').filter((l) => l.atMs > killAtMs).map((l) => l.task as string));
    console.log(JSON.stringify({ measure: 'failover', round, sessionTimeoutMs: session === 'default' ? 'default (20000)' : Number(session), checkpointIntervalMs: 'default (15000)',
      topic, rate: FAILOVER_RATE, killed: victim.name, killedTasks: victimTasks.map(partitionOfTask), firstEvaluatedMs: Math.max(...tasks.map((t) => t.firstEvaluatedMs ?? Infinity)),
      productionStoppedMs: stoppedAtMs - killAtMs, caughtUpMs: lastChangeAtMs - killAtMs, tasksMoved: moved.length, load: [+load0.toFixed(2), +loadavg()[0].toFixed(2)], tasks }));
  } finally {
    producing = false;
    await production.catch(() => undefined);
    await producer.disconnect();
    await stopNodes(nodes);
    await deleteTopic(topic);
  }
}

// --- main -----------------------------------------------------------------------------------------

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
try {
  for (let round = 1; round <= ROUNDS && CONFIGS.length > 0; round++) {
    const order = round % 2 === 1 ? CONFIGS : [...CONFIGS].reverse();
    const results = new Map<string, Awaited<ReturnType<typeof throughput>>>();
    for (const config of order) results.set(config, await throughput(config, round));
    const peer = results.get('1');
    const summary: Record<string, unknown> = {};
    for (const [config, r] of results) {
      const perNode = mean(r.nodes.map((n) => n.eventsPerSecond));
      const cpu = mean(r.nodes.map((n) => n.cpuUsPerEvent));
      const steadyCpu = mean(r.nodes.map((n) => n.steadyCpuUsPerEvent));
      summary[config] = { eventsPerSecond: r.overall, perNodeEventsPerSecond: Math.round(perNode), cpuUsPerEvent: +cpu.toFixed(2), steadyCpuUsPerEvent: +steadyCpu.toFixed(2),
        ...(peer ? { perNodeVsOneNode: +(perNode / mean(peer.nodes.map((n) => n.eventsPerSecond))).toFixed(3),
          cpuPerEventVsOneNode: +(cpu / mean(peer.nodes.map((n) => n.cpuUsPerEvent))).toFixed(3),
          steadyCpuPerEventVsOneNode: +(steadyCpu / mean(peer.nodes.map((n) => n.steadyCpuUsPerEvent))).toFixed(3) } : {}) };
    }
    console.log(JSON.stringify({ measure: 'throughput-summary', round, load: loadavg().map((x) => +x.toFixed(2)), ...summary }));
  }
  if (FAILOVER) for (let round = 1; round <= ROUNDS; round++) for (const session of SESSIONS) await failover(session, round);
} finally {
  killLeftoverDaemons();
  await admin.disconnect();
  await kafka.close();
  s3.destroy();
  rmSync(dataRoot, { recursive: true, force: true });
}
