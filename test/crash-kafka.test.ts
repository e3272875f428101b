// Crash anywhere, Kafka source, against the real broker: `vigil run` consumes a topic and is killed
// with SIGKILL, stopped with SIGTERM and restarted, while the broker itself restarts, at seeded random
// points of its progress, on (a) a topic keyed by property with one empty partition read as a backlog,
// (b) one partition per property, all busy, read as a backlog, (c) records produced while it runs. After
// all faults its incidents are those `vigil replay` gives for the same records (openings and closings
// within one tick, nothing extra), the incident database and the audit file agree, the group's commits
// never passed the newest checkpoint's offsets and end at the high watermarks, and a real webhook
// receiver got every transition, twice only inside the documented window and then under one key.
// (d) A second consumer joins the group and leaves: state does not follow partitions yet, so what is
// asserted there is what holds today (see that test). VIGIL_FAULT_POINTS sets the number of faults
// (`npm run test:faults` runs 24).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { DaemonRuns, killLeftoverDaemons } from './support/daemon-process.ts';
import { waitUntil } from './support/services-env.ts';
import { TestRng } from './support/detection-streams.ts';
import { KafkaHarness, restartBroker } from './support/kafka-harness.ts';
import { startReceiver, type TestReceiver } from './support/http-receiver.ts';
import { assertDatabaseAgrees, compareIncidents, describeComparison, incidentSpans, type IncidentComparison } from './support/incident-compare.ts';
import { CheckpointStore } from '../src/engine/checkpoint-store.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { generateAndReplay } from './support/demo-run.ts';
import { newestLocalCheckpoint } from './support/local-checkpoints.ts';

const POINTS = Number(process.env.VIGIL_FAULT_POINTS ?? 5);
/** Faults per backlog/live scenario (a broker restart counts as one). */
const PER_SCENARIO = Math.max(2, Math.round(POINTS / 3));
const TICK_MS = 10_000;
const SEED = 7;

let dir: string;
let kafka: KafkaHarness;
let lines: string[];
let props: string[];
let replayed: string;
/** Valid records (what the engine counts). */
let valid: number;
/** Records the replay counted late. */
let replayLate: number;
let maxTs: number;
/** Faults applied over the whole file, and incidents compared, for the summary. */
const totals = { faults: 0, compared: 0, duplicates: 0 };

before(() => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-crash-kafka-'));
  ({ lines, replayed, valid, late: replayLate, maxTs, properties: props } = generateAndReplay(dir, 1, SEED));
});

after(async () => {
  killLeftoverDaemons();
  await kafka?.close();
});

type Fault = 'kill' | 'term' | 'broker';

/**
 * Records produced live here cover an hour of event time in about 20 s, so a partition's batch may
 * come to the consumer after another partition's newer one by minutes of event time: a caught-up
 * partition waits a little for more (as Kafka Streams' max.task.idle.ms) instead of letting the others
 * pass its records (without it, 81,914 of 125,871 records were late with one partition per property).
 */
const LIVE_ENV = { VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '5000' };

/** n faults in a seeded order: `brokers` broker restarts, the rest SIGKILL (about two in three) and SIGTERM, at least one of each. */
function faultPlan(rng: TestRng, n: number, brokers: number): Fault[] {
  const rest = n - brokers;
  const kinds: Fault[] = [];
  for (let i = 0; i < rest; i++) kinds.push(i === 0 ? 'kill' : i === 1 ? 'term' : rng.next() < 2 / 3 ? 'kill' : 'term');
  for (let i = 0; i < brokers; i++) kinds.push('broker');
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  return kinds;
}


/**
 * The kernel counters of the newest checkpoint's state, summed over its parts. Checkpoints carry the
 * counters with the state, so after restores these count what the state holds: every record once.
 */
function stateCounters(data: string): { events: number; late: number; held: number } {
  const { checkpoint } = new CheckpointStore(data).load(128);
  assert.ok(checkpoint, `no checkpoint in ${data}`);
  // Per key-group range a full part, then the incremental parts on it: the counters and the held
  // records are the last one's (an incremental part carries them whole, replacing its base's).
  const byRange = new Map<string, { counters: { events?: number; late?: number }; held: Uint8Array }>();
  for (const p of checkpoint.parts) {
    const s = decodeKernelState(p);
    byRange.set(`${s.header.groupLo}-${s.header.groupHi}`, { counters: s.header.counters, held: s.held });
  }
  const out = { events: 0, late: 0, held: 0 };
  for (const { counters, held } of byRange.values()) {
    out.events += counters.events ?? 0;
    out.late += counters.late ?? 0;
    out.held += heldRecords(held);
  }
  return out;
}

/** Records in a part's held section (packed records, sized by the kernel's own layout). */
function heldRecords(held: Uint8Array): number {
  recordLayout ??= WasmKernel.create({ maxKeys: 16, maxCells: 16, chunkBytes: 1 << 16, groupLo: 0, groupHi: 128, params: DEFAULT_DETECTION_PARAMS });
  const dv = new DataView(held.buffer, held.byteOffset, held.byteLength);
  let n = 0;
  for (let p = 0; p < held.length; n++) p += recordLayout.recordSizeAt(dv, p);
  return n;
}
let recordLayout: WasmKernel | undefined;

interface LogRow { incident_id: number; kind: string; state: string }

function readDb<T>(data: string, fn: (db: Database.Database) => T, fallback: T): T {
  const path = join(data, 'incidents.db');
  if (!existsSync(path)) return fallback;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function logRows(data: string): LogRow[] {
  return readDb(data, (db) => (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'notification_log'").get()
    ? db.prepare('SELECT incident_id, kind, state FROM notification_log ORDER BY id').all() as LogRow[] : []), []);
}

/** One consumer of the group: `vigil run` with its own data directory, started and stopped again and again. */
class Member extends DaemonRuns {
  constructor(name: string, topic: string, group: string, receiver: TestReceiver, extra: Record<string, string> = {}) {
    super(name, dir, (data, audit) => ({
      VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group,
      VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_HTTP: 'false',
      VIGIL_CHECKPOINT_INTERVAL_MS: '1000', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200',
      // Small fetches: a backlog takes long enough to be killed in the middle of it.
      VIGIL_KAFKA_MAX_FETCH_BYTES: '262144',
      // A member killed without leaving holds its partitions until its session times out.
      VIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      VIGIL_WEBHOOK_URL: `${receiver.url}/${name}`, VIGIL_NOTIFY_RETRY_BASE_MS: '50',
      ...extra,
    }));
  }

  /** Starts after the first that restored a checkpoint. */
  restored(): number {
    return this.runs.slice(1).filter((r) => /engine restored from checkpoint/.test(r())).length;
  }

  installation(): string {
    return readDb(this.data, (db) => db.prepare("SELECT value FROM meta WHERE key = 'installation_id'").pluck().get() as string, '');
  }
}

/**
 * Samples, while a scenario runs, the group's committed offsets and then the newest checkpoint of
 * every member: a commit must never be ahead of the state a restart would restore.
 */
class CommitSampler {
  samples = 0;
  readonly violations: string[] = [];
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  /** Its own connection, quick to give up while the broker restarts (that sample is skipped). */
  private readonly client = new KafkaHarness(1);

  constructor(private readonly topic: string, private readonly group: string, private readonly members: () => Member[]) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.once().catch(async () => { await this.client.reset(); });
        await delay(250);
      }
    })();
  }

  private async once(): Promise<void> {
    const committed = await this.client.committedByPartition(this.group, this.topic);
    // Read after the commits: a checkpoint is durable before its offsets are committed.
    const cps = this.members().map((m) => newestLocalCheckpoint(m.data));
    committed.forEach((c, p) => {
      if (c < 0) return;
      // Offset 0 (read from the start) is ahead of nothing, also for a partition no checkpoint has read.
      const bound = Math.max(0, ...cps.map((cp) => Number(cp?.positions[`${this.topic}:${p}`] ?? 0)));
      if (c > bound) this.violations.push(`partition ${p}: committed ${c}, newest checkpoint ${bound}`);
    });
    this.samples++;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.client.close();
  }
}

/** A broker that just restarted answers some requests with a retriable error for a while (its coordinator loads): -1 then. */
async function committedTotal(group: string, topic: string): Promise<number> {
  return kafka.committed(group, topic).catch(() => -1);
}

/** Runs the member until a checkpoint covers every record at the end of event time and every notification is delivered; then SIGTERM. */
async function runToEnd(m: Member, topic: string, group: string): Promise<void> {
  let highs: number[] = [];
  await waitUntil('the high watermarks', async () => (highs = await kafka.highWatermarks(topic).catch(() => [])).length > 0, 60_000, 200);
  await waitUntil('a checkpoint of every record, at the end of event time', () => {
    const cp = newestLocalCheckpoint(m.data);
    return cp !== null && highs.every((h, p) => Number(cp.positions[`${topic}:${p}`] ?? 0) === h) && (cp.eventTime.reached ?? 0) >= maxTs;
  }, 180_000, 200);
  await waitUntil('offsets committed at the high watermarks', async () => {
    const c = await kafka.committedByPartition(group, topic).catch(() => []);
    return highs.every((h, p) => Math.max(0, c[p] ?? -1) === h);
  }, 60_000, 200);
  await waitUntil('every notification delivered', () => logRows(m.data).every((r) => r.state === 'delivered'), 60_000, 200);
  await m.stop('SIGTERM');
}

/** Per incident id in an audit file: exactly one `opened`, at most one close after it. */
function assertAuditWellFormed(audit: string, what: string): void {
  const seen = new Map<number, string[]>();
  for (const l of audit.split('\n').filter(Boolean)) {
    const t = JSON.parse(l) as { type: string; incident_id: number };
    seen.set(t.incident_id, [...(seen.get(t.incident_id) ?? []), t.type]);
  }
  for (const [id, types] of seen) {
    assert.ok(types[0] === 'opened' && types.length <= 2 && types.slice(1).every((x) => x === 'resolved' || x === 'expired'),
      `${what}: incident ${id} has transitions ${types.join(', ')}`);
  }
}

/**
 * Every opened/resolved/expired transition of the members' audit files reached the receiver under its
 * idempotency key and nothing else did; a key received more than once belongs to the request in flight
 * when its member was stopped (the documented window: nothing else from that member reached the
 * receiver between that copy and the stop), and every copy is the same transition. Returns the
 * number of duplicate deliveries.
 */
function assertDeliveries(receiver: TestReceiver, members: Member[]): number {
  const expected: string[] = [];
  const byInstallation = new Map<string, Member>();
  for (const m of members) {
    const inst = m.installation();
    byInstallation.set(inst, m);
    for (const l of readFileSync(m.audit, 'utf8').split('\n').filter(Boolean)) {
      const t = JSON.parse(l) as { type: string; incident_id: number };
      expected.push(`vigil:${inst}:${t.incident_id}:${t.type}:1`);
    }
  }
  const byKey = new Map<string, typeof receiver.requests>();
  for (const r of receiver.requests) {
    const key = String(r.headers['idempotency-key']);
    const inst = key.split(':')[1];
    // The key names the transition the body carries.
    assert.equal(key, `vigil:${inst}:${r.json.incident.id}:${r.json.kind}:1`, `the body of ${key}`);
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  assert.deepEqual([...byKey.keys()].sort(), [...expected].sort(), 'every transition delivered, and nothing else');
  let duplicates = 0;
  for (const [key, copies] of byKey) {
    if (copies.length === 1) continue;
    const inst = key.split(':')[1];
    const m = byInstallation.get(inst)!;
    for (let i = 1; i < copies.length; i++) {
      duplicates++;
      assert.equal(copies[i].body, copies[0].body, `${key}: the same body on every attempt`);
      const stop = m.stops.find((s) => s.atMs >= copies[i - 1].atMs && s.atMs <= copies[i].atMs);
      assert.ok(stop, `${key} was delivered again without a stop of ${m.name} in between`);
      const after = receiver.requests.filter((r) => String(r.headers['idempotency-key']).split(':')[1] === inst && r.atMs > copies[i - 1].atMs && r.atMs < stop.atMs);
      assert.equal(after.length, 0, `${key} was repeated but was not the request in flight when ${m.name} stopped`);
    }
  }
  return duplicates;
}

/** The replay's incidents against a member's, up to where the replay's end evaluates past the newest record. */
function compareWithReplay(audit: string, keep: (key: string) => boolean = () => true): IncidentComparison {
  return compareIncidents(incidentSpans(replayed).filter((s) => keep(s.key)), incidentSpans(audit).filter((s) => keep(s.key)), TICK_MS, maxTs - 5 * 60_000);
}

function assertSameIncidents(c: IncidentComparison, what: string): void {
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `${what}: ${describeComparison(c)}`);
  assert.ok(c.matched >= 5, `${what}: too few incidents to compare: ${describeComparison(c)}`);
}

/**
 * Applies one fault to a running member; resolves once it runs again. With `moveCommits`, the
 * group's commits are moved back to the start of every partition while it is down (an operator's
 * offset reset): the restart must read from its checkpoint's offsets, not from the group's (else
 * the whole topic is read again into a state that has counted it: every record late).
 */
async function applyFault(m: Member, fault: Fault, moveCommits?: { topic: string; group: string }): Promise<void> {
  if (fault === 'broker') {
    await kafka.reset();
    await restartBroker();
    return;
  }
  await m.stop(fault === 'kill' ? 'SIGKILL' : 'SIGTERM');
  if (moveCommits) {
    const highs = await kafka.highWatermarks(moveCommits.topic);
    await kafka.setCommitted(moveCommits.group, moveCommits.topic, highs.map(() => 0));
  }
  await m.start();
}

/**
 * One scenario: `vigil run` on the topic, the faults applied at seeded points of `progress()`
 * (records committed for a backlog, records produced while live), then run to the end and checked.
 */
async function crashScenario(t: { diagnostic: (s: string) => void }, name: string, topic: string, faults: Fault[], rng: TestRng,
  progress: () => Promise<number>, total: number, live?: Promise<void>, opts: { moveCommits?: boolean } = {}): Promise<void> {
  const group = `g-${topic}`;
  const receiver = await startReceiver('ok');
  const m = new Member(name, topic, group, receiver, live ? LIVE_ENV : {});
  const sampler = new CommitSampler(topic, group, () => [m]);
  const started = Date.now();
  try {
    await m.start();
    sampler.start();
    const took: string[] = [];
    for (let i = 0; i < faults.length; i++) {
      // Anywhere: while a backlog is read, between checkpoints, right after one, while idle at the end.
      const target = Math.floor((total * (i + rng.next())) / (faults.length + 1));
      await waitUntil(`progress ${target} of ${total}`, async () => (await progress()) >= target, 180_000, 50);
      await delay(rng.int(0, 1500));
      const at = Date.now();
      // The first SIGKILL of a scenario that asks for it: the group's commits moved meanwhile.
      const move = opts.moveCommits === true && faults[i] === 'kill' && faults.indexOf('kill') === i;
      await applyFault(m, faults[i], move ? { topic, group } : undefined);
      took.push(`${faults[i]}${move ? ' (commits moved to the start)' : ''} at ${target} (${((Date.now() - at) / 1000).toFixed(1)} s)`);
    }
    await live;
    await runToEnd(m, topic, group);
    await sampler.stop();

    const audit = readFileSync(m.audit, 'utf8');
    const c = compareWithReplay(audit);
    assertSameIncidents(c, `${name} after ${faults.join(', ')}`);
    // Exactly-once state: the final state counted every record once, and no more of them late than the replay.
    const counted = stateCounters(m.data);
    assert.equal(counted.events, valid, 'records counted in the final state');
    assert.ok(counted.late <= replayLate, `records late in the final state: ${counted.late}, the replay: ${replayLate}`);
    assertAuditWellFormed(audit, name);
    assertDatabaseAgrees(m.data, audit, `${m.name}: `);
    const duplicates = assertDeliveries(receiver, [m]);
    assert.deepEqual(sampler.violations, [], 'commits ahead of the newest checkpoint');
    assert.ok(sampler.samples >= 5, `commits sampled ${sampler.samples} times`);
    const stopsThenStart = faults.filter((f) => f !== 'broker').length;
    assert.ok(m.restored() >= stopsThenStart - 1, `restarts that restored a checkpoint: ${m.restored()} of ${stopsThenStart}`);
    totals.faults += faults.length;
    totals.compared += c.expected;
    totals.duplicates += duplicates;
    t.diagnostic(`${name}: faults ${took.join(', ')}; ${describeComparison(c)}; ${receiver.requests.length} deliveries, ${duplicates} duplicate(s); ` +
      `${sampler.samples} commit samples; state: ${counted.events} records, ${counted.late} late; ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await sampler.stop();
    await receiver.close();
  }
}

test(`(a) keyed by property with an empty partition, backlog: ${PER_SCENARIO} faults (SIGKILL with the group's commits moved, SIGTERM)`, async (t) => {
  const topic = await kafka.topic('vigil-crash-keyed', 4);
  await kafka.produce(topic, lines);
  const counts = await kafka.partitionCounts(topic);
  assert.ok(counts.some((n) => n === 0), `one partition must be empty (records per partition: ${counts.join(', ')})`);
  const rng = new TestRng(SEED * 101 + POINTS);
  await crashScenario(t, 'keyed', topic, faultPlan(rng, PER_SCENARIO, 0), rng, () => committedTotal(`g-${topic}`, topic), lines.length, undefined, { moveCommits: true });
});

test(`(b) one partition per property, all busy, backlog: ${PER_SCENARIO} faults (SIGKILL, SIGTERM, a broker restart)`, async (t) => {
  const topic = await kafka.topic('vigil-crash-perprop', props.length);
  await kafka.produceTo(topic, lines.map((value) => ({ partition: partitionOf(value), value })));
  const counts = await kafka.partitionCounts(topic);
  assert.ok(counts.every((n) => n > 0), `every partition busy: ${counts.join(', ')}`);
  const rng = new TestRng(SEED * 211 + POINTS);
  await crashScenario(t, 'perprop', topic, faultPlan(rng, PER_SCENARIO, 1), rng, () => committedTotal(`g-${topic}`, topic), lines.length);
});

/** Live: a broker restart always (the producer's records wait for it too), besides SIGKILL and SIGTERM. */
const LIVE_FAULTS = Math.max(3, PER_SCENARIO);

test(`(c) live, records produced while vigil run consumes: ${LIVE_FAULTS} faults (SIGKILL, SIGTERM, a broker restart)`, async (t) => {
  const topic = await kafka.topic('vigil-crash-live', 4);
  const rng = new TestRng(SEED * 307 + POINTS);
  const producer = new KafkaHarness();
  const live = produceLive(producer, topic);
  try {
    await crashScenario(t, 'live', topic, faultPlan(rng, LIVE_FAULTS, 1), rng, async () => live.produced(), lines.length, live.done);
  } finally {
    await live.done.catch(() => undefined);
    await producer.close();
  }
});

/**
 * One join and leave: the member that joins gets partitions chosen by kafkajs's round robin over
 * random member ids, so a second one moves others, and two moved all five partitions in a trial,
 * leaving none whose incidents can be compared.
 */
const JOIN_CYCLES = 1;

/** The partitions of each "kafka group joined" a run logged, in order. */
function joins(stderr: string): Array<{ partitions: string[]; revoked: string[] }> {
  return stderr.split('\n').filter((l) => l.includes('"msg":"kafka group joined"')).map((l) => JSON.parse(l) as { partitions: string[]; revoked: string[] });
}

/** Produces the demo records in file order, about 20 s of production, with `partition` (else keyed by property). */
function produceLive(producer: KafkaHarness, topic: string, partition?: (value: string) => number): { produced: () => number; done: Promise<void> } {
  let produced = 0;
  const done = (async () => {
    const batch = 4000;
    for (let i = 0; i < lines.length; i += batch) {
      const slice = lines.slice(i, i + batch);
      if (partition) await producer.produceTo(topic, slice.map((value) => ({ partition: partition(value), value })));
      else await producer.produce(topic, slice);
      produced = Math.min(lines.length, i + batch);
      await delay(400);
    }
  })();
  return { produced: () => produced, done };
}

// State does not follow partitions yet (the cluster part): a partition that moves to the
// second member is counted there from the group's commit, the first member's kernel keeps that
// partition's keys as they were, and when the second member leaves the partition comes back to a
// kernel that missed what was read meanwhile. So here the replay's incidents are asserted only for
// the properties whose partition never moved; for all: every record counted by some member or held in
// the state the second member left (at most the moved partitions' records twice), commits never ahead of a checkpoint and at the high
// watermarks at the end, each member's database agreeing with its audit file, and every transition
// of both members delivered to the receiver.
test(`(d) live, a second consumer joins the group and leaves ${JOIN_CYCLES} time(s): what holds while state does not follow partitions`, async (t) => {
  const topic = await kafka.topic('vigil-crash-join', props.length);
  const group = `g-${topic}`;
  const rng = new TestRng(SEED * 401 + POINTS);
  const receiver = await startReceiver('ok');
  const a = new Member('join-a', topic, group, receiver, LIVE_ENV);
  const members = [a];
  const sampler = new CommitSampler(topic, group, () => members);
  const producer = new KafkaHarness();
  const moved = new Set<string>();
  const started = Date.now();
  let live: { produced: () => number; done: Promise<void> } | null = null;
  try {
    await a.start();
    sampler.start();
    live = produceLive(producer, topic, partitionOf);
    for (let i = 0; i < JOIN_CYCLES; i++) {
      const target = Math.floor((lines.length * (i + rng.next())) / (JOIN_CYCLES + 1));
      await waitUntil(`produced ${target}`, () => live!.produced() >= target, 120_000, 50);
      const b = new Member(`join-b${i}`, topic, group, receiver, LIVE_ENV);
      members.push(b);
      await b.start();
      await waitUntil('the second member to get partitions', () => joins(b.stderr()).some((j) => j.partitions.length > 0), 60_000);
      for (const j of joins(b.stderr())) for (const p of j.partitions) moved.add(p);
      await delay(rng.int(1000, 4000));
      const joinsBefore = joins(a.stderr()).length;
      await b.stop('SIGTERM');
      await waitUntil('the first member to get every partition back', () => joins(a.stderr()).length > joinsBefore
        && joins(a.stderr()).at(-1)!.partitions.length === props.length, 60_000);
    }
    await live.done;
    await runToEnd(a, topic, group);
    await sampler.stop();

    assert.ok(moved.size > 0 && moved.size < props.length, `partitions moved: ${[...moved].join(', ')}`);
    const movedProps = new Set([...moved].map((k) => props[Number(k.slice(k.lastIndexOf(':') + 1))]));
    const stayed = (key: string) => !movedProps.has((JSON.parse(key) as string[])[1]);
    const audit = readFileSync(a.audit, 'utf8');
    const c = compareWithReplay(audit, stayed);
    assertSameIncidents(c, `properties whose partition stayed with the first member (${props.filter((p) => !movedProps.has(p)).join(', ')})`);
    for (const m of members) {
      const memberAudit = readFileSync(m.audit, 'utf8');
      assertAuditWellFormed(memberAudit, m.name);
      assertDatabaseAgrees(m.data, memberAudit, `${m.name}: `);
    }
    const duplicates = assertDeliveries(receiver, members);
    assert.deepEqual(sampler.violations, [], 'commits ahead of the newest checkpoint of every member');
    assert.ok(sampler.samples >= 5, `commits sampled ${sampler.samples} times`);
    // Every record counted by some member, or held in the final state of the member that left (not
    // due yet when it stopped: its state keeps them for a restart of its own, and stays behind when
    // its partitions move on); twice at most those of the partitions that moved.
    const counts = await kafka.partitionCounts(topic);
    const movedRecords = [...moved].reduce((n, k) => n + counts[Number(k.slice(k.lastIndexOf(':') + 1))], 0);
    const states = members.map((m) => stateCounters(m.data));
    const counted = states.reduce((n, s) => n + s.events, 0);
    const held = states.reduce((n, s) => n + s.held, 0);
    assert.equal(states[0].held, 0, 'the first member, run to the end, holds no record');
    assert.ok(counted + held >= valid && counted <= valid + movedRecords,
      `records counted ${counted} and held ${held}, valid ${valid}, of moved partitions ${movedRecords}`);
    const movedCompared = compareWithReplay(audit, (k) => !stayed(k));
    totals.faults += JOIN_CYCLES;
    totals.compared += c.expected;
    totals.duplicates += duplicates;
    t.diagnostic(`join/leave: moved ${[...moved].join(', ')} (${[...movedProps].join(', ')}); stayed: ${describeComparison(c)}; ` +
      `moved (not asserted): ${describeComparison(movedCompared)}; records counted ${counted} and held ${held} for ${valid}; ` +
      `${receiver.requests.length} deliveries, ${duplicates} duplicate(s); ${sampler.samples} commit samples; the first member's state: ${stateCounters(a.data).late} late; ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await live?.done.catch(() => undefined);
    await sampler.stop();
    await producer.close();
    await receiver.close();
  }
});

/** The partition of a record in the one-partition-per-property layout. */
function partitionOf(value: string): number {
  try {
    return Math.max(0, props.indexOf(String((JSON.parse(value) as { property_id: unknown }).property_id)));
  } catch {
    return 0;
  }
}

after(() => {
  console.log(`# crash-kafka: ${totals.faults} faults, ${totals.compared} replay incidents compared, ${totals.duplicates} duplicate deliveries`);
});
