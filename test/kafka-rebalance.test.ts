// Two Kafka sources in one consumer group against the real broker of scripts/services/kafka.sh:
// partitions move when the second member joins and when the first one leaves, while records are
// produced. Every record must be counted by the group; the only records counted twice are the
// documented uncommitted tail of a partition that was taken away from a member.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../src/log/logger.ts';
import { KafkaSource } from '../src/ingest/kafka-source.ts';
import type { KafkaConfig } from '../src/config/kafka-config.ts';
import type { ChunkOrigin, ChunkPosition, SourceSink } from '../src/ingest/source.ts';
import { KafkaHarness } from './support/kafka-harness.ts';
import { waitUntil } from './support/services-env.ts';

const PARTITIONS = 6;
const BATCH = 6000;
let kafka: KafkaHarness | undefined;
const sources: KafkaSource[] = [];

after(async () => {
  for (const s of sources) await s.stop().catch(() => undefined);
  await kafka?.close();
});

/** A group member: a KafkaSource whose sink records the id of every record it is given, in order. */
class Member {
  readonly seen: number[] = [];
  readonly source: KafkaSource;
  constructor(readonly name: string, config: KafkaConfig) {
    this.source = new KafkaSource({ config, maxRecordBytes: 4096, logger: silentLogger() });
    sources.push(this.source);
  }

  /** Positions of the records taken, a little after they were taken (as a checkpoint lags the records). */
  readonly committable = new Map<string, string>();

  start(): Promise<void> {
    const take = async (bytes: Uint8Array, _origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> => {
      for (const line of Buffer.from(bytes).toString('utf8').split('\n')) if (line) this.seen.push((JSON.parse(line) as { n: number }).n);
      if (position) setTimeout(() => this.committable.set(position.stream, position.next), 5);
    };
    const sink: SourceSink = { write: take, writeChunk: take, chunkBytes: 64 * 1024, committable: () => this.committable };
    return this.source.start(sink);
  }

  /** Partitions this member has made progress on, with positions (from position()). */
  partitions(): Record<string, { delivered: number; committed: number }> {
    return this.source.position().partitions as Record<string, { delivered: number; committed: number }>;
  }

  /** Whether every partition's delivered records are committable. */
  settled(): boolean {
    return Object.entries(this.partitions()).every(([k, p]) => this.committable.get(k) === String(p.delivered));
  }
}

function config(topic: string, group: string, commitIntervalMs: number): KafkaConfig {
  return {
    brokers: kafka!.brokers.split(','), topic, groupId: group, clientId: `vigil-rebalance-${group}`, startFrom: 'earliest',
    tls: false, tlsCaFile: null, sasl: null, commitIntervalMs, maxFetchBytes: 64 * 1024, sessionTimeoutMs: 30_000,
  };
}

/** Record n goes to partition n mod PARTITIONS; within a partition offsets follow n (one producer, in order). */
function records(from: number, to: number): Array<{ n: number; value: string }> {
  const out = [];
  for (let n = from; n < to; n++) out.push({ n, value: JSON.stringify({ n, property_id: `p${n % 17}`, ts: 1_700_000_000_000 + n }) });
  return out;
}

async function produce(topic: string, from: number, to: number, perSend = 500): Promise<void> {
  const producer = kafka!.kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const all = records(from, to);
    for (let i = 0; i < all.length; i += perSend) {
      await producer.send({ topic, acks: -1, messages: all.slice(i, i + perSend).map((r) => ({ partition: r.n % PARTITIONS, value: r.value })) });
      // Spread over time, so that records arrive while the group rebalances.
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await producer.disconnect();
  }
}

function union(members: Member[]): Set<number> {
  const s = new Set<number>();
  for (const m of members) for (const n of m.seen) s.add(n);
  return s;
}

test('two members, one joining and one leaving while records are produced: every record counted, duplicates only in the uncommitted tail of a moved partition, offsets committed to the high watermarks', async () => {
  kafka = new KafkaHarness();
  const topic = await kafka.topic('vigil-rebalance', PARTITIONS);
  const group = `g-${topic}`;
  const admin = kafka.kafka.admin();
  await admin.connect();
  try {
    // Phase 1: A alone reads the first batch; its offsets are committed by hand (its timer is 10 minutes),
    // so A's last commit before the partitions move is known: the end of batch 1.
    await produce(topic, 0, BATCH, 2000);
    const a = new Member('a', config(topic, group, 600_000));
    await a.start();
    await waitUntil('A has read batch 1', () => union([a]).size === BATCH, 60_000);
    await waitUntil('A has evaluated batch 1', () => a.settled() && Object.keys(a.partitions()).length === PARTITIONS);
    await a.source.commit();
    assert.equal(await kafka.committed(group, topic), BATCH);

    // Phase 2: batch 2 is produced while B joins: some of A's partitions move to B.
    const b = new Member('b', config(topic, group, 200));
    const producing2 = produce(topic, BATCH, 2 * BATCH);
    await b.start();
    await producing2;
    await waitUntil('B has records', () => b.seen.length > 0, 90_000);
    await waitUntil('the group has read batch 2', () => union([a, b]).size === 2 * BATCH, 90_000);
    const bJoined = new Set(b.seen.filter((n) => n < 2 * BATCH).map((n) => n % PARTITIONS));
    const aKept = new Set(Object.keys(a.partitions()).map((k) => Number(k.split(':')[1])));
    assert.ok(bJoined.size > 0 && bJoined.size < PARTITIONS, `B owns ${[...bJoined].join(',')}`);
    for (const p of bJoined) assert.ok(!aKept.has(p), `A still tracks partition ${p}, which moved to B`);

    // Phase 3: batch 3 is produced while A leaves (stop(): evaluated offsets committed, then LeaveGroup).
    const producing3 = produce(topic, 2 * BATCH, 3 * BATCH);
    await new Promise((r) => setTimeout(r, 200));
    const aSeenAtStop = a.seen.length;
    // The final checkpoint runs before the last commit: what was written is committable by then.
    await a.source.stop(() => new Promise((r) => setTimeout(r, 20)));
    assert.ok(a.seen.length === aSeenAtStop || a.seen.length > aSeenAtStop);
    const aFinal = [...a.seen];
    await producing3;
    await waitUntil('the group has read batch 3', () => union([a, b]).size === 3 * BATCH, 90_000);
    await waitUntil('B has committed everything', async () => (await kafka!.committed(group, topic)) === 3 * BATCH, 90_000);

    // Committed offsets are the high watermarks, partition by partition.
    const high = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    for (const h of high) {
      const c = committed.partitions.find((p) => p.partition === h.partition);
      assert.equal(c?.offset, h.high, `partition ${h.partition}`);
    }
    await b.source.stop();

    // No record lost; within one member no record twice (re-deliveries after a rejoin are dropped).
    const all = union([a, b]);
    for (let n = 0; n < 3 * BATCH; n++) assert.ok(all.has(n), `record ${n} was counted by no member`);
    assert.equal(new Set(aFinal).size, aFinal.length, 'A counted a record twice');
    assert.equal(new Set(b.seen).size, b.seen.length, 'B counted a record twice');

    // Records counted by both: only on partitions that moved from A to B when B joined, only after A's
    // last commit (batch 1's end), and per partition one run that is the tail of A's records and the
    // head of B's. The leave (stop() commits before leaving) moves partitions with no duplicate.
    const inB = new Set(b.seen);
    const dups = aFinal.filter((n) => inB.has(n));
    for (const n of dups) {
      assert.ok(bJoined.has(n % PARTITIONS), `record ${n} counted twice on partition ${n % PARTITIONS}, which did not move when B joined`);
      assert.ok(n >= BATCH, `record ${n} counted twice although A had committed it`);
      assert.ok(n < 2 * BATCH, `record ${n} of batch 3 counted twice: the leave must not duplicate`);
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const aP = aFinal.filter((n) => n % PARTITIONS === p);
      const bP = b.seen.filter((n) => n % PARTITIONS === p);
      const dP = aP.filter((n) => inB.has(n));
      assert.deepEqual(dP, aP.slice(aP.length - dP.length), `partition ${p}: the duplicates are not the tail of A's records`);
      assert.deepEqual(dP, bP.slice(0, dP.length), `partition ${p}: the duplicates are not the head of B's records`);
      // Each member read its records of the partition in offset order, and together they cover it without gaps.
      for (const list of [aP, bP]) for (let i = 1; i < list.length; i++) assert.ok(list[i] > list[i - 1], `partition ${p} out of order`);
    }
    // The bound in numbers: at most the records of the moved partitions produced after A's last commit.
    const bound = records(BATCH, 2 * BATCH).filter((r) => bJoined.has(r.n % PARTITIONS)).length;
    assert.ok(dups.length <= bound, `${dups.length} duplicates > ${bound}`);
  } finally {
    await admin.disconnect();
  }
});
