import type { Admin, Consumer, Producer } from 'kafkajs';
import type { ClusterConfig } from '../config/cluster-config.ts';
import type { KafkaConfig } from '../config/kafka-config.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { Logger } from '../log/logger.ts';
import type { MetricsRegistry } from '../metrics/metrics-registry.ts';
import type { NotificationPipeline } from '../notify/notification-pipeline.ts';
import type { CommandHandler } from '../control/command-handler.ts';
import { ClusterControl } from './cluster-control.ts';
import { ClusterError } from './cluster-error.ts';
import { clusterKafka, ensureTopic, type ClusterKafka } from './cluster-kafka.ts';
import { NotifyLeader } from './notify-leader.ts';
import { clusterIncidentId } from './transition-record.ts';
import { TransitionsMirror } from './transitions-mirror.ts';
import { TransitionsOutbox } from './transitions-outbox.ts';

/**
 * Settings of the transitions topic when a node creates it. One partition: one order of every
 * transition for every node (a key's transitions stay in order even when two nodes publish them
 * around a task move), and one notifying node; transitions are rare (a handful a second at most),
 * far below what one partition carries. Compacted by identity and kept forever: the latest state of
 * every incident stays, so a node that joins (or loses its data directory) builds the whole view from
 * the topic, bounded by the number of incidents, as the SQLite store is; nothing younger than 7 days
 * is compacted, so a notifying node that was down for less than that still finds every transition.
 */
export const TRANSITIONS_TOPIC_CONFIG = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'retention.ms', value: '-1' },
  { name: 'min.compaction.lag.ms', value: String(7 * 86_400_000) },
];

/**
 * Settings of the control topic when a node creates it: one partition (one order of commands for every
 * node), nothing deleted (commands are few; a node that joins runs them all and has the same parameters).
 */
export const CONTROL_TOPIC_CONFIG = [
  { name: 'cleanup.policy', value: 'delete' },
  { name: 'retention.ms', value: '-1' },
];

/** The cluster's topic and group names. */
export function clusterNames(name: string, nodeId: string): { transitions: string; notifyGroup: string; viewGroup: string; control: string; controlGroup: string } {
  return {
    transitions: `${name}.transitions`, notifyGroup: `${name}.notify`, viewGroup: `${name}.view.${nodeId}`,
    control: `${name}.control`, controlGroup: `${name}.control.${nodeId}`,
  };
}

/**
 * One node's part of the cluster's incident view (ARCHITECTURE.md "Cluster"): publishes its own
 * transitions (TransitionsOutbox), applies everyone's to its store (TransitionsMirror), and sends the
 * cluster's notifications while it owns the transitions partition in `<name>.notify` (NotifyLeader).
 * Built before the IncidentManager (whose beforeCommit is the outbox's), started after it.
 */
export class ClusterNode {
  readonly outbox: TransitionsOutbox;
  readonly mirror: TransitionsMirror;
  /** Set by start(). */
  leader: NotifyLeader | null = null;
  readonly names: ReturnType<typeof clusterNames>;
  private client: ClusterKafka | null = null;
  private admin: Admin | null = null;
  private producer: Producer | null = null;
  private viewConsumer: Consumer | null = null;
  private notifyConsumer: Consumer | null = null;
  private controlConsumer: Consumer | null = null;
  /** Commands the whole cluster runs (set by startControl). */
  control: ClusterControl | null = null;
  private closed = false;
  private stopping: Promise<void> | null = null;
  private readonly log: Logger;

  /** Makes the store number incidents by identity and key notifications by the cluster: before anything reads or writes it. */
  constructor(private readonly config: ClusterConfig, private readonly kafka: KafkaConfig, private readonly store: IncidentStore, logger: Logger, metrics?: MetricsRegistry) {
    this.log = logger.child({ component: 'cluster', cluster: config.name, node: config.nodeId });
    this.names = clusterNames(config.name, config.nodeId);
    // Ids from identities, and the cluster as the installation: the same ids and notification keys on every node.
    store.useClusterIdentity(clusterIncidentId, `cluster:${config.name}`, config.nodeId);
    this.outbox = new TransitionsOutbox(store, config.nodeId, this.names.transitions, this.log);
    this.mirror = new TransitionsMirror(store, config.nodeId, this.log);
    if (metrics) this.registerMetrics(metrics);
  }

  private registerMetrics(m: MetricsRegistry): void {
    m.collect('vigil_cluster_outbox_pending', 'Own transitions committed to the store and not yet acknowledged by the transitions topic.', 'gauge', () => this.outbox.pending());
    m.collect('vigil_cluster_transitions_published_total', 'Own transitions published to the transitions topic since start.', 'counter', () => this.outbox.stats.published);
    m.collect('vigil_cluster_transitions_applied_total', 'Other nodes\' transitions applied to this node\'s store since start.', 'counter', () => this.mirror.stats.applied);
    m.collect('vigil_cluster_id_collisions_total', 'Other nodes\' incidents whose cluster id was taken here by another incident (numbered differently here).', 'counter', () => this.mirror.stats.idCollisions);
    m.collect('vigil_cluster_notifying', '1 while this node sends the cluster\'s notifications.', 'gauge', () => (this.leader?.leading() ? 1 : 0));
  }

  /** Connects, creates the transitions topic if missing, and starts publishing, mirroring and (when the group says so) notifying. */
  async start(manager: IncidentManager, notify: NotificationPipeline): Promise<void> {
    const leader = new NotifyLeader(this.store, this.mirror, notify.planning, this.names.transitions, this.log);
    this.leader = leader;
    const client = clusterKafka(this.kafka, `${this.kafka.clientId}-cluster`, this.log, () => this.closed);
    this.client = client;
    const topic = this.names.transitions;
    try {
      this.admin = client.kafka.admin();
      await this.admin.connect();
      if (await ensureTopic(this.admin, { topic, numPartitions: 1, configEntries: TRANSITIONS_TOPIC_CONFIG })) this.log.info({ topic }, 'transitions topic created');
      this.producer = client.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await this.producer.connect();
    } catch (err) {
      if (err instanceof ClusterError) throw err;
      throw new ClusterError('CLUSTER_CONNECT', `cannot reach the cluster's brokers ${this.kafka.brokers.join(',')}: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    // Committed transitions go out at once; what a crash left in the outbox goes first.
    manager.subscribe((t) => { if (t.mirroredFrom === undefined) this.outbox.wake(); });
    this.outbox.start(this.producer);

    const session = { sessionTimeout: this.kafka.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(this.kafka.sessionTimeoutMs / 3)) };
    const retry = { initialRetryTime: 300, maxRetryTime: 5000, retries: 30, restartOnFailure: async () => !this.closed };
    // The view: every node reads the whole topic from its store's position (its group never commits).
    const view = client.kafka.consumer({ groupId: this.names.viewGroup, ...session, retry, maxWaitTimeInMs: 500 });
    this.viewConsumer = view;
    view.on(view.events.GROUP_JOIN, (e) => {
      this.mirror.seekToPositions(view, topic, e.payload.memberAssignment[topic] ?? []);
    });
    await view.connect();
    await view.subscribe({ topics: [topic], fromBeginning: true });
    await view.run({ autoCommit: false, eachBatch: this.mirror.handler((changed) => manager.mirrored(changed)) });

    // Notifications: whichever member owns the partition.
    const notifier = client.kafka.consumer({ groupId: this.names.notifyGroup, ...session, retry, maxWaitTimeInMs: 500 });
    this.notifyConsumer = notifier;
    notifier.on(notifier.events.GROUP_JOIN, (e) => leader.assigned(e.payload.memberAssignment[topic] ?? []));
    await notifier.connect();
    await notifier.subscribe({ topics: [topic], fromBeginning: true });
    leader.start(notifier);
    await notifier.run({ autoCommit: false, eachBatchAutoResolve: true, eachBatch: leader.onBatch });
    this.log.info({ topic, viewGroup: this.names.viewGroup, notifyGroup: this.names.notifyGroup }, 'cluster node started');
  }

  /**
   * Makes the shared commands (set-thresholds, silences by matcher) commands of the whole cluster (see ClusterControl) and runs the commands the
   * control topic has already; after the control plane registered its commands, before the source starts.
   */
  async startControl(commands: CommandHandler, more?: (control: ClusterControl) => void): Promise<void> {
    if (this.client === null || this.producer === null || this.admin === null) throw new Error('cluster node not started');
    const topic = this.names.control;
    if (await ensureTopic(this.admin, { topic, numPartitions: 1, configEntries: CONTROL_TOPIC_CONFIG })) this.log.info({ topic }, 'control topic created');
    const control = new ClusterControl(this.store, this.config.nodeId, topic, this.log);
    this.control = control;
    control.share(commands);
    more?.(control);
    const consumer = this.client.kafka.consumer({
      groupId: this.names.controlGroup, sessionTimeout: this.kafka.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(this.kafka.sessionTimeoutMs / 3)),
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30, restartOnFailure: async () => !this.closed }, maxWaitTimeInMs: 500,
    });
    this.controlConsumer = consumer;
    await consumer.connect();
    await control.start(consumer, this.producer, this.admin);
  }

  /** How many partitions a topic has now (a cluster dump waits for a share of each). */
  async partitionsOf(topic: string): Promise<number> {
    if (this.admin === null) throw new Error('cluster node not started');
    const meta = await this.admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]?.partitions.length ?? 0;
  }

  /** Status for the status command. */
  status(): Record<string, unknown> {
    return {
      name: this.config.name, node: this.config.nodeId, topic: this.names.transitions, notifying: this.leader?.leading() ?? false,
      outbox: { ...this.outbox.stats, pending: this.outbox.pending() }, mirror: this.mirror.stats, leader: this.leader?.stats,
      control: this.control?.stats,
    };
  }

  /** Stops notifying (committing what is done), mirroring and publishing (the outbox keeps what was not sent); idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.leader?.stop().catch((err) => this.log.warn({ err }, 'notification offsets not committed at stop'));
      // The last transitions (the final drain's) go out now rather than at the next start.
      await this.outbox.flush();
      if (this.outbox.pending() > 0) this.log.warn({ pending: this.outbox.pending() }, 'transitions left in the outbox: published at the next start');
      this.closed = true;
      await this.notifyConsumer?.disconnect().catch(() => undefined);
      await this.controlConsumer?.disconnect().catch(() => undefined);
      await this.viewConsumer?.disconnect().catch(() => undefined);
      await this.outbox.stop();
      await this.producer?.disconnect().catch(() => undefined);
      await this.admin?.disconnect().catch(() => undefined);
      this.client?.sockets.destroyAll();
    })();
    return this.stopping;
  }
}
