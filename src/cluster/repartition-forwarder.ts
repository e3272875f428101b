import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type Message, type Producer } from 'kafkajs';
import type { ClusterConfig } from '../config/cluster-config.ts';
import type { KafkaConfig } from '../config/kafka-config.ts';
import type { FieldNames } from '../ingest/field-names.ts';
import type { Logger } from '../log/logger.ts';
import { EventClock, type EventClockOptions } from '../engine/event-clock.ts';
import { DECODE_OK } from '../ingest/reject-reason.ts';
import { referenceDecode } from '../ingest/reference-decode.ts';
import { ClusterError } from './cluster-error.ts';
import { clusterKafka, ensureTopic, type ClusterKafka } from './cluster-kafka.ts';
import { PROGRESS_HEADER, UPSTREAM_HEADER, encodeProgress, upstreamStream } from './repartition-record.ts';

/**
 * Settings of the internal topic when a node creates it: deleted by time only after a week (a cluster
 * down for days still finds what its forwarders committed as read); forwarders delete what every
 * task has committed past (deleteRecords, as Kafka Streams purges its repartition topics), so the
 * topic holds about a checkpoint interval of views, not a week.
 */
export const REPARTITION_TOPIC_CONFIG = [
  { name: 'cleanup.policy', value: 'delete' },
  { name: 'retention.ms', value: String(7 * 86_400_000) },
];

/** Progress of every owned input partition is sent at least this often (tasks take one not heard of for 2.5 s as held, PROGRESS_STALE_MS in task-engines.ts). */
const HEARTBEAT_MS = 1000;
/** How often records every task has committed past are deleted from the internal topic. */
const PURGE_MS = 60_000;
/**
 * A forwarder's open transaction left by a crash is aborted as soon as the input partition's next
 * owner starts its producer (same transactional id); this bounds it when no node takes it over.
 */
const TRANSACTION_TIMEOUT_MS = 30_000;

export interface RepartitionForwarderOptions {
  kafka: KafkaConfig;
  cluster: ClusterConfig;
  fieldNames: FieldNames;
  maxRecordBytes: number;
  /** The tasks' event-time settings: the forwarder judges each input partition's mark as a task would. */
  clock: EventClockOptions;
  logger: Logger;
}

/** The repartition stage's topics and the input partitions upstream of every task. */
export interface RepartitionStage {
  topic: string;
  partitions: number;
  upstreams: string[];
}

/** An input partition this node forwards. */
interface Owned {
  partition: number;
  producer: Producer;
  /** Fenced the previous owner and sought to the committed offset: batches are forwarded. */
  ready: boolean;
  /** The next input offset not forwarded (committed by this node's transactions). */
  next: number;
  mark: number | null;
  caughtUp: boolean;
  lost: boolean;
  /** One transaction at a time per producer: batches and heartbeats go through this chain. */
  chain: Promise<void>;
  lastSentAt: number;
}

/** Non-cryptographic hash of a property id, for the clock's "another property" test only. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function isFenced(err: unknown): boolean {
  const e = err as { type?: string; name?: string; message?: string };
  return e.type === 'PRODUCER_FENCED' || e.type === 'INVALID_PRODUCER_EPOCH' || /fenced|epoch/i.test(String(e.message));
}

/**
 * The repartition stage of a cluster whose input is not keyed by property (Kafka Streams' repartition
 * topics): every node consumes the input topic in the group `<name>.forward` and produces each view,
 * keyed by its property id, to `<name>.repartition`, so that a property's views land in one partition:
 * one task. Exactly once: one transactional producer per input partition (transactional id
 * `<name>.forward.<topic>.<partition>`, Kafka Streams' first exactly-once design), each batch's views,
 * its progress records and its input offset (sendOffsets) in one transaction; a new owner's producer
 * fences the previous one and aborts what it left open before the partition is read from the
 * committed offset. Tasks read committed records only. Each view carries its input partition in a
 * header; after each batch, and every second, a progress record per input partition (its mark and
 * whether it is read to its end) goes to every internal partition, so a task's clock tracks each
 * input partition however the views of several interleave in its partition (ARCHITECTURE.md).
 */
export class RepartitionForwarder {
  readonly topic: string;
  readonly group: string;
  private partitions = 0;
  private client: ClusterKafka | null = null;
  private admin: Admin | null = null;
  private consumer: Consumer | null = null;
  private readonly owned = new Map<number, Owned>();
  private readonly clock: EventClock;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private stopping: Promise<void> | null = null;
  private readonly log: Logger;
  readonly stats = { forwarded: 0, transactions: 0, progress: 0, aborted: 0, fenced: 0, gained: 0, purged: 0 };

  constructor(private readonly o: RepartitionForwarderOptions) {
    this.topic = `${o.cluster.name}.repartition`;
    this.group = `${o.cluster.name}.forward`;
    this.log = o.logger.child({ component: 'repartition', node: o.cluster.nodeId });
    this.clock = new EventClock(o.clock);
  }

  /** Connects, creates the internal topic if missing, and says what the tasks read. Before the task source starts. */
  async prepare(): Promise<RepartitionStage> {
    const input = this.o.kafka.topic;
    this.client = clusterKafka(this.o.kafka, `${this.o.kafka.clientId}-forward`, this.log, () => this.closed);
    try {
      this.admin = this.client.kafka.admin();
      await this.admin.connect();
      const inputPartitions = await this.partitionCount(input);
      if (inputPartitions === 0) throw new ClusterError('CLUSTER_TOPIC', `the input topic ${input} does not exist`, { retriable: true });
      const numPartitions = this.o.cluster.repartitionPartitions ?? inputPartitions;
      if (await ensureTopic(this.admin, { topic: this.topic, numPartitions, configEntries: REPARTITION_TOPIC_CONFIG })) {
        this.log.info({ topic: this.topic, partitions: numPartitions }, 'repartition topic created');
      }
      this.partitions = await this.partitionCount(this.topic);
      return { topic: this.topic, partitions: this.partitions, upstreams: Array.from({ length: inputPartitions }, (_, i) => upstreamStream(input, i)) };
    } catch (err) {
      if (err instanceof ClusterError) throw err;
      throw new ClusterError('CLUSTER_CONNECT', `cannot prepare the repartition stage on ${this.o.kafka.brokers.join(',')}: ${(err as Error).message}`, { retriable: true, cause: err });
    }
  }

  private async partitionCount(topic: string): Promise<number> {
    const meta = await this.admin!.fetchTopicMetadata({ topics: [topic] }).catch(() => ({ topics: [] as Array<{ partitions: unknown[] }> }));
    return meta.topics[0]?.partitions.length ?? 0;
  }

  /** Joins `<name>.forward` and forwards the input partitions the group gives this node. */
  async start(): Promise<void> {
    if (!this.client || !this.admin) throw new Error('repartition stage not prepared');
    const k = this.o.kafka;
    const consumer = this.client.kafka.consumer({
      groupId: this.group, sessionTimeout: k.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(k.sessionTimeoutMs / 3)),
      maxBytes: k.maxFetchBytes, maxBytesPerPartition: Math.min(k.maxFetchBytes, 1 << 20), maxWaitTimeInMs: 500,
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30, restartOnFailure: async () => !this.closed },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.assigned(e.payload.memberAssignment[k.topic] ?? []));
    await consumer.connect();
    await consumer.subscribe({ topics: [k.topic], fromBeginning: k.startFrom === 'earliest' });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (b) => this.onBatch(b) });
    this.timers.push(setInterval(() => { void this.heartbeat(); }, HEARTBEAT_MS));
    this.timers.push(setInterval(() => { void this.purge(); }, PURGE_MS));
    for (const t of this.timers) t.unref();
    this.log.info({ input: k.topic, topic: this.topic, partitions: this.partitions, group: this.group }, 'repartition forwarder started');
  }

  private newProducer(partition: number): Producer {
    return this.client!.kafka.producer({
      transactionalId: `${this.o.cluster.name}.forward.${this.o.kafka.topic}.${partition}`, idempotent: true, maxInFlightRequests: 1,
      transactionTimeout: TRANSACTION_TIMEOUT_MS, allowAutoTopicCreation: false,
      // Kafka's own partitioner (murmur2 of the key): any Kafka client keying by property id agrees.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /** A group join: lost partitions stop forwarding; gained ones fence their previous owner, then read from the committed offset. */
  private assigned(partitions: number[]): void {
    if (this.closed) return;
    const mine = new Set(partitions);
    for (const [p, o] of this.owned) {
      if (mine.has(p)) continue;
      o.lost = true;
      this.owned.delete(p);
      void o.chain.then(() => o.producer.disconnect()).catch(() => undefined);
    }
    const gained = partitions.filter((p) => !this.owned.has(p));
    this.clock.declare(partitions.map((p) => upstreamStream(this.o.kafka.topic, p)));
    if (gained.length) this.consumer!.pause([{ topic: this.o.kafka.topic, partitions: gained }]);
    for (const p of gained) this.own(p);
    this.log.info({ partitions: [...mine].sort((a, b) => a - b), gained }, 'repartition forwarder assigned');
  }

  /** Takes over an input partition the group gave this node (paused until take() has sought it). */
  private own(partition: number): void {
    const o: Owned = { partition, producer: this.newProducer(partition), ready: false, next: 0, mark: null, caughtUp: false, lost: false, chain: Promise.resolve(), lastSentAt: 0 };
    this.owned.set(partition, o);
    this.stats.gained++;
    o.chain = (async () => {
      for (let attempt = 0; !o.lost && !this.closed; attempt++) {
        try {
          await this.take(o);
          return;
        } catch (err) {
          // A broker away, a coordinator moving: try again (the partition stays paused meanwhile).
          this.log.warn({ err: (err as Error).message, partition, attempt }, 'input partition not taken over yet; retrying');
          await o.producer.disconnect().catch(() => undefined);
          o.producer = this.newProducer(partition);
          await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)).unref());
        }
      }
    })();
  }

  /**
   * The partition's producer was fenced (another producer of its transactional id started: a new
   * owner, or the broker expired a transaction that outlasted its timeout, as during a broker restart)
   * while the group still gives it to this node: take it over again, from the committed offset. If
   * another node owns it now, the rebalance that says so takes it from this node in a moment.
   */
  private retake(o: Owned): void {
    if (this.closed || this.owned.get(o.partition) !== o) return;
    o.lost = true;
    void o.producer.disconnect().catch(() => undefined);
    this.consumer!.pause([{ topic: this.o.kafka.topic, partitions: [o.partition] }]);
    this.own(o.partition);
  }

  /**
   * Starts the partition's producer, which fences the previous owner's (a zombie's commit fails) and
   * aborts a transaction it left open; then the committed offset is final, and reading starts there.
   */
  private async take(o: Owned): Promise<void> {
    const k = this.o.kafka;
    await o.producer.connect();
    const txn = await o.producer.transaction();
    await txn.abort();
    const [committed] = await this.admin!.fetchOffsets({ groupId: this.group, topics: [k.topic] });
    const c = Number(committed.partitions.find((x) => x.partition === o.partition)?.offset ?? -1);
    const offsets = await this.admin!.fetchTopicOffsets(k.topic);
    const bounds = offsets.find((x) => x.partition === o.partition);
    const high = Number(bounds?.high ?? 0);
    const next = c >= 0 ? c : k.startFrom === 'earliest' ? Number(bounds?.low ?? 0) : high;
    if (o.lost || this.closed) return;
    o.next = next;
    o.caughtUp = next >= high;
    this.consumer!.seek({ topic: k.topic, partition: o.partition, offset: String(next) });
    // Before any view: whether this partition has a backlog (a task's clock holds for it until told).
    await this.sendProgress(o, []);
    if (o.lost || this.closed) return;
    o.ready = true;
    this.consumer!.resume([{ topic: k.topic, partitions: [o.partition] }]);
    this.log.info({ partition: o.partition, offset: next, caughtUp: o.caughtUp }, 'input partition taken over: forwarding');
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    if (this.closed || isStale() || batch.messages.length === 0) return;
    const o = this.owned.get(batch.partition);
    // Not ours, or still being taken over: fetched again from where take() seeks.
    if (!o || !o.ready || o.lost) return;
    const msgs = batch.messages.filter((m) => Number(m.offset) >= o.next);
    if (msgs.length > 0) {
      const stream = upstreamStream(this.o.kafka.topic, o.partition);
      const times: number[] = [];
      const props: number[] = [];
      const views: Message[] = [];
      const header = { [UPSTREAM_HEADER]: String(o.partition) };
      for (const m of msgs) {
        let key: Buffer | string = header[UPSTREAM_HEADER];
        if (m.value && m.value.length > 0) {
          const d = referenceDecode(m.value, this.o.maxRecordBytes, this.o.fieldNames);
          if (d.status === DECODE_OK) {
            key = Buffer.from(d.propertyId!);
            times.push(d.ts!);
            props.push(fnv1a(d.propertyId!));
          }
        }
        // A record that is no view stays with its input partition's key: its task counts it rejected.
        views.push({ key, value: m.value, headers: header });
      }
      this.clock.plan(Float64Array.from(times), Uint32Array.from(props), { stream, live: false });
      const mark = this.clock.describe()[stream]?.mark ?? null;
      const next = Number(msgs[msgs.length - 1].offset) + 1;
      const caughtUp = batch.offsetLag() === '0';
      const run = o.chain.then(async () => {
        if (!o.lost) await this.transact(o, views, { mark, caughtUp, next });
      });
      o.chain = run.catch(() => undefined);
      // A failure is kafkajs's to retry: the batch is fetched again from the last committed offset.
      await run;
      this.stats.forwarded += views.length;
    }
    if (!o.lost) resolveOffset(batch.lastOffset());
    await heartbeat();
  }

  /** One transaction: the views, a progress record per internal partition after them, and the input offset. */
  private async transact(o: Owned, views: Message[], after: { mark: number | null; caughtUp: boolean; next: number | null }): Promise<void> {
    const progress = encodeProgress({ p: o.partition, m: after.mark, c: after.caughtUp });
    const messages: Message[] = views.slice();
    for (let q = 0; q < this.partitions; q++) messages.push({ partition: q, value: progress, headers: { [PROGRESS_HEADER]: '1' } });
    const txn = await o.producer.transaction();
    try {
      await txn.send({ topic: this.topic, messages });
      if (after.next !== null) {
        await txn.sendOffsets({ consumerGroupId: this.group, topics: [{ topic: this.o.kafka.topic, partitions: [{ partition: o.partition, offset: String(after.next) }] }] });
      }
      if (o.lost) throw new Error('input partition revoked');
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => undefined);
      this.stats.aborted++;
      if (o.lost) return;
      if (isFenced(err)) {
        // Nothing of this transaction is read by anyone; the partition is read again from its committed offset.
        this.stats.fenced++;
        this.log.warn({ partition: o.partition, err: (err as Error).message }, 'input partition\'s producer fenced: taking it over again');
        this.retake(o);
        return;
      }
      // Another failure: a fresh producer for the retry (kafkajs fetches the batch again from the last commit).
      o.producer.disconnect().catch(() => undefined);
      o.producer = this.newProducer(o.partition);
      throw err;
    }
    this.stats.transactions++;
    this.stats.progress += this.partitions;
    if (after.next !== null) o.next = after.next;
    o.mark = after.mark;
    o.caughtUp = after.caughtUp;
    o.lastSentAt = Date.now();
  }

  private sendProgress(o: Owned, views: Message[]): Promise<void> {
    return this.transact(o, views, { mark: o.mark, caughtUp: o.caughtUp, next: null });
  }

  /** Every second: each owned partition's progress (caught up by the broker's high watermark), unless a batch just said it. */
  private async heartbeat(): Promise<void> {
    if (this.closed || !this.admin) return;
    const due = [...this.owned.values()].filter((o) => o.ready && !o.lost && Date.now() - o.lastSentAt >= HEARTBEAT_MS / 2);
    if (due.length === 0) return;
    let highs: Map<number, number>;
    try {
      highs = new Map((await this.admin.fetchTopicOffsets(this.o.kafka.topic)).map((x) => [x.partition, Number(x.high)]));
    } catch {
      return; // the broker is away: no progress, so the tasks hold these partitions (stale) until it answers
    }
    for (const o of due) {
      o.chain = o.chain.then(async () => {
        if (o.lost || this.closed) return;
        o.caughtUp = o.next >= (highs.get(o.partition) ?? 0);
        await this.sendProgress(o, []);
      }).catch((err) => this.log.warn({ err: (err as Error).message, partition: o.partition }, 'progress not sent'));
    }
  }

  /** Deletes the internal topic's records below every task's committed offset (the tasks' group commits only what is checkpointed). */
  private async purge(): Promise<void> {
    if (this.closed || !this.admin) return;
    try {
      const [committed] = await this.admin.fetchOffsets({ groupId: this.o.kafka.groupId, topics: [this.topic] });
      for (const p of committed.partitions) {
        if (Number(p.offset) <= 0) continue;
        await this.admin.deleteTopicRecords({ topic: this.topic, partitions: [{ partition: p.partition, offset: p.offset }] });
        this.stats.purged++;
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'repartition topic not purged');
    }
  }

  status(): Record<string, unknown> {
    return {
      topic: this.topic, group: this.group, ...this.stats,
      partitions: [...this.owned.values()].sort((a, b) => a.partition - b.partition)
        .map((o) => ({ partition: o.partition, ready: o.ready, next: o.next, mark: o.mark, caught_up: o.caughtUp })),
    };
  }

  /** Stops forwarding: the transaction in flight ends, the group is left; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.closed = true;
      for (const t of this.timers) clearInterval(t);
      await this.consumer?.disconnect().catch(() => undefined);
      const owned = [...this.owned.values()];
      this.owned.clear();
      await Promise.all(owned.map((o) => o.chain.catch(() => undefined).then(() => o.producer.disconnect()).catch(() => undefined)));
      await this.admin?.disconnect().catch(() => undefined);
      this.client?.sockets.destroyAll();
      this.log.info(this.stats, 'repartition forwarder stopped');
    })();
    return this.stopping;
  }
}
