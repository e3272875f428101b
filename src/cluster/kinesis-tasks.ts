import { KinesisClient, ListShardsCommand, type Shard } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { PartitionAssigners, type Admin, type Consumer } from 'kafkajs';
import type { ClusterConfig } from '../config/cluster-config.ts';
import type { KafkaConfig } from '../config/kafka-config.ts';
import type { KinesisConfig } from '../config/kinesis-config.ts';
import type { Logger } from '../log/logger.ts';
import type { PartitionChange, Source, SourceSink } from '../ingest/source.ts';
import { KinesisSource } from '../ingest/kinesis-source.ts';
import { lineageRoot, shardTask } from '../ingest/shard-assignment.ts';
import { SourceError } from '../ingest/source-error.ts';
import { stickyAssigner } from '../ingest/sticky-assigner.ts';
import { clusterKafka, ensureTopic, type ClusterKafka } from './cluster-kafka.ts';

/** What the Kinesis tasks need of the cluster's tasks (ClusterTasks). */
export interface KinesisTaskSink {
  assign(change: PartitionChange): Map<string, Promise<Record<string, string> | null>>;
  sinkOf(key: string): SourceSink;
}

/** What the coordinated Kinesis source needs besides its configuration. */
export interface KinesisTasksOptions {
  cluster: ClusterConfig;
  kafka: KafkaConfig;
  kinesis: KinesisConfig;
  maxRecordBytes: number;
  tasks: KinesisTaskSink;
  logger: Logger;
}

/** The coordination topic's settings when a node creates it: it holds no records, only partitions to assign. */
const COORDINATION_TOPIC_CONFIG = [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: String(3_600_000) }];
const START_RETRY_MIN_MS = 500;
const START_RETRY_MAX_MS = 10_000;

/** The coordination topic and group of a cluster reading Kinesis. */
export function kinesisCoordination(name: string): { topic: string; group: string } {
  return { topic: `${name}.kinesis`, group: `${name}.kinesis` };
}

/** One task this node reads: its partition of the coordination topic, and the source of its shards once its state is loaded. */
interface KinesisTask {
  key: string;
  partition: number;
  source: KinesisSource | null;
  /** Lost, or the node stops: its source is stopped and never started again. */
  dropped: boolean;
}

/**
 * Kinesis input of a cluster (VIGIL_CLUSTER=true, VIGIL_SOURCE=kinesis): the shards are split into
 * tasks, and Kafka assigns the tasks. A task is a partition of the coordination topic
 * `<name>.kinesis` (it holds no records); a shard belongs to task `shardTask(shard)` (its lineage
 * root's number mod the partition count, so a split's children stay in their parent's task). The
 * nodes are members of the consumer group `<name>.kinesis`: the group's assignment of those
 * partitions is the assignment of the tasks, its generation fences their checkpoints, and a member
 * that dies loses its tasks when its session times out, as a Kafka input's partitions. For each task
 * it gains, the node's ClusterTasks loads the task's checkpoint from S3 and starts its engine; then a
 * KinesisSource reads the task's shards from the checkpoint's sequence numbers (the start position
 * for shards it does not name) into that engine. A lost task's source is stopped (no checkpoint:
 * its new owner reads again from the last one).
 */
export class KinesisTasksSource implements Source {
  readonly name = 'kinesis';
  private client: ClusterKafka | null = null;
  private admin: Admin | null = null;
  private consumer: Consumer | null = null;
  private readonly tasks = new Map<string, KinesisTask>();
  private readonly topic: string;
  private readonly streamName: string;
  private taskCount = 0;
  private generation: number | null = null;
  private closing = false;
  private stopping: Promise<void> | null = null;
  private rejectFinished!: (err: Error) => void;
  private readonly done: Promise<void>;
  private readonly log: Logger;

  constructor(private readonly o: KinesisTasksOptions) {
    this.topic = kinesisCoordination(o.cluster.name).topic;
    this.streamName = /:stream\/(.+)$/.exec(o.kinesis.stream)?.[1] ?? o.kinesis.stream;
    this.log = o.logger.child({ component: 'kinesis-tasks', stream: this.streamName, node: o.cluster.nodeId });
    this.done = new Promise<void>((_resolve, reject) => { this.rejectFinished = reject; });
    this.done.catch(() => undefined);
  }

  /** The task of a coordination partition (also its checkpoints' path: `tasks/kinesis/<stream>/<partition>/`). */
  taskKey(partition: number): string {
    return `kinesis/${this.streamName}:${partition}`;
  }

  /** Joins the group; the tasks come with its assignments. `sink` is ignored: each task has its own (KinesisTaskSink.sinkOf). */
  async start(_sink: SourceSink): Promise<void> {
    const k = this.o.kafka;
    const client = clusterKafka(k, `${k.clientId}-kinesis`, this.log, () => this.closing);
    this.client = client;
    const { group } = kinesisCoordination(this.o.cluster.name);
    try {
      this.admin = client.kafka.admin();
      await this.admin.connect();
      const existing = (await this.admin.listTopics()).includes(this.topic);
      if (!existing) {
        const partitions = this.o.cluster.kinesisTasks ?? await this.lineageCount();
        if (await ensureTopic(this.admin, { topic: this.topic, numPartitions: partitions, configEntries: COORDINATION_TOPIC_CONFIG })) {
          this.log.info({ topic: this.topic, partitions }, 'kinesis coordination topic created');
        }
      }
      const meta = await this.admin.fetchTopicMetadata({ topics: [this.topic] });
      this.taskCount = meta.topics[0]?.partitions.length ?? 0;
      if (this.taskCount < 1) throw new Error(`the coordination topic ${this.topic} has no partitions`);
      if (this.o.cluster.kinesisTasks !== null && this.o.cluster.kinesisTasks !== this.taskCount) {
        this.log.warn({ topic: this.topic, partitions: this.taskCount, configured: this.o.cluster.kinesisTasks },
          'VIGIL_CLUSTER_KINESIS_TASKS differs from the coordination topic\'s partitions, which count (an existing topic is never changed)');
      }
      const consumer = client.kafka.consumer({
        groupId: group, sessionTimeout: k.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(k.sessionTimeoutMs / 3)),
        // The topic is empty: short fetches keep the heartbeats (sent between fetches) on time.
        maxWaitTimeInMs: 500,
        // Tasks stay where they are at a rebalance but for a fair share (src/ingest/sticky-assigner.ts).
        partitionAssigners: [stickyAssigner(() => ({ partitions: [...this.tasks.values()].map((t) => `${this.topic}:${t.partition}`).sort(), generation: this.generation })),
          PartitionAssigners.roundRobin],
        retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30, restartOnFailure: async (err) => {
          this.log.warn({ err }, 'kinesis coordination consumer failed; restarting it');
          return !this.closing;
        } },
      });
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        if (this.closing) return;
        this.assigned(e.payload.memberAssignment[this.topic] ?? [], (e.payload as { generationId?: number }).generationId ?? null);
      });
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart && !this.closing) {
          this.rejectFinished(new SourceError('SOURCE_READ', `kinesis coordination consumer stopped: ${e.payload.error.message}`, false, { cause: e.payload.error }));
        }
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: true, eachBatch: async () => undefined });
    } catch (err) {
      this.closing = true;
      await this.consumer?.disconnect().catch(() => undefined);
      await this.admin?.disconnect().catch(() => undefined);
      client.sockets.destroyAll();
      if (err instanceof SourceError) throw err;
      throw new SourceError('SOURCE_CONNECT', `cannot join the cluster's Kinesis coordination group ${group} on ${k.brokers.join(',')}: ${(err as Error).message}`, true, { cause: err });
    }
    this.log.info({ topic: this.topic, group, tasks: this.taskCount }, 'kinesis tasks: joined the coordination group');
  }

  /** The number of shard lineages of the stream now (the default task count of a new coordination topic). */
  private async lineageCount(): Promise<number> {
    const c = this.o.kinesis;
    const kinesis = new KinesisClient({ region: c.region, endpoint: c.endpoint ?? undefined, requestHandler: new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 30_000 }), maxAttempts: 5 });
    try {
      const shards: Shard[] = [];
      let token: string | undefined;
      do {
        const out = await kinesis.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.streamName }));
        shards.push(...(out.Shards ?? []));
        token = out.NextToken;
      } while (token);
      const byId = new Map(shards.map((s) => [s.ShardId!, s]));
      return Math.max(1, new Set(shards.map((s) => lineageRoot(s, byId))).size);
    } catch (err) {
      throw new SourceError('SOURCE_CONNECT', `cannot list the shards of ${this.streamName}: ${(err as Error).message}`, true, { cause: err });
    } finally {
      kinesis.destroy();
    }
  }

  /** A group join: lost tasks' sources stop, the cluster's tasks load the gained ones, whose sources start once loaded. */
  private assigned(partitions: number[], generation: number | null): void {
    this.generation = generation;
    const mine = new Map(partitions.map((p) => [this.taskKey(p), p]));
    const lost = [...this.tasks.keys()].filter((k) => !mine.has(k));
    const gained = [...mine.keys()].filter((k) => !this.tasks.has(k));
    for (const key of lost) {
      const t = this.tasks.get(key)!;
      t.dropped = true;
      this.tasks.delete(key);
      void t.source?.stop().catch((err) => this.log.warn({ err, task: key }, 'stopping a lost task\'s reading failed'));
    }
    for (const key of gained) this.tasks.set(key, { key, partition: mine.get(key)!, source: null, dropped: false });
    const loads = this.o.tasks.assign({ gained, lost, generation });
    for (const [key, load] of loads) {
      const t = this.tasks.get(key);
      if (!t) continue;
      load.then((positions) => this.startReading(t, positions), (err: Error) => {
        // ClusterTasks retries its loads; one that fails for good leaves the task unread (its state must not start cold).
        this.log.error({ err, task: key }, 'kinesis task state not loaded: its shards are not read');
      });
    }
    this.log.info({ generation, tasks: [...this.tasks.keys()].sort(), gained, lost }, 'kinesis tasks assigned');
  }

  /** Reads a task's shards from its checkpoint's positions (its engine is started); retried while Kinesis cannot be listed. */
  private async startReading(t: KinesisTask, positions: Record<string, string> | null): Promise<void> {
    for (let attempt = 0; !t.dropped && !this.closing; attempt++) {
      const source = new KinesisSource({
        config: this.o.kinesis, maxRecordBytes: this.o.maxRecordBytes, dataDir: null, logger: this.log.child({ task: t.key }),
        owns: (s, byId) => shardTask(s, byId, this.taskCount) === t.partition,
      });
      t.source = source;
      try {
        await source.start(this.o.tasks.sinkOf(t.key), positions ? new Map(Object.entries(positions)) : undefined);
        // Lost (or stopping) while it started: stop it now; its records went nowhere (the sink is bound to the task as it was).
        if (t.dropped || this.closing) await source.stop();
        return;
      } catch (err) {
        await source.stop().catch(() => undefined);
        const ms = Math.min(START_RETRY_MAX_MS, START_RETRY_MIN_MS * 2 ** attempt);
        this.log.warn({ err: (err as Error).message, task: t.key, retryInMs: ms }, 'kinesis task not started; retrying');
        await new Promise((r) => setTimeout(r, ms).unref());
      }
    }
  }

  /** Stops every task's reading, runs `beforeClose` (the final checkpoint of every task), then leaves the group; idempotent. */
  stop(beforeClose?: () => Promise<void>): Promise<void> {
    this.stopping ??= (async () => {
      this.closing = true;
      const sources = [...this.tasks.values()].map((t) => t.source);
      await Promise.all(sources.map((s) => s?.stop().catch((err) => this.log.warn({ err }, 'stopping a task\'s reading failed'))));
      try {
        await beforeClose?.();
      } catch (err) {
        this.log.error({ err }, 'final checkpoint failed');
      }
      // Leaving the group after the checkpoints: the tasks move to the others with nothing to read twice.
      await this.consumer?.disconnect().catch(() => undefined);
      await this.admin?.disconnect().catch(() => undefined);
      this.client?.sockets.destroyAll();
      this.log.info({ tasks: [...this.tasks.keys()].sort() }, 'kinesis tasks stopped');
    })();
    return this.stopping;
  }

  finished(): Promise<void> {
    return this.done;
  }

  position(): Record<string, unknown> {
    return {
      stream: this.streamName, coordination: this.topic, taskCount: this.taskCount, generation: this.generation,
      tasks: Object.fromEntries([...this.tasks.values()].map((t) => [t.key, t.source?.position() ?? { loading: true }])),
    };
  }
}
