import type { Logger } from '../log/logger.ts';
import type { NotifyConfig, ReceiverConfig } from '../config/notify-config.ts';
import type { Incident, IncidentTransition } from '../incidents/incident.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { MetricsRegistry } from '../metrics/metrics-registry.ts';
import { SilenceRegistry } from '../silence/silence-registry.ts';
import { sameSilence, type Silence, type SilenceMatcher } from '../silence/silence.ts';
import { alertmanagerIntegration } from './alertmanager-notifier.ts';
import { MuteStage, RecordStage, RenderStage, SendStage } from './delivery-stages.ts';
import { DeliveryStats } from './delivery-stats.ts';
import type { Integration, RenderContext } from './integration.ts';
import { deliveryKey, type NotificationRecord } from './notification.ts';
import { NotificationLog } from './notification-log.ts';
import { NotificationPlanner } from './notification-planner.ts';
import { StageChain } from './notify-stage.ts';
import { pagerDutyIntegration } from './pagerduty-notifier.ts';
import { ReceiverQueue } from './receiver-queue.ts';
import { routeMatches } from './receiver-route.ts';
import { slackIntegration } from './slack-notifier.ts';
import { webhookIntegration } from './webhook-notifier.ts';

/** Collaborators of the pipeline (KafkaJS style: one options object). */
export interface NotificationPipelineOptions {
  config: NotifyConfig;
  /** The incident store: its database holds the notification log and the silences. */
  store: IncidentStore;
  logger: Logger;
  now?: () => number;
  random?: () => number;
  metrics?: MetricsRegistry;
  /** How often silences expire, repeats are planned and Alertmanager refreshes are checked; default 1000. */
  tickMs?: number;
  /**
   * A cluster node: notifications are planned from the cluster's transitions topic by the notifying
   * node (src/cluster/notify-leader.ts, through `planning`), not from this node's own transitions.
   */
  cluster?: boolean;
}

/**
 * Notifications from incident transitions to receivers: plans rows into the notification log inside the
 * transition's transaction (beforeCommit), applies silences (isSilenced, matchers with expiry), and runs
 * one delivery queue per receiver. Wire beforeCommit and isSilenced into the IncidentManager, then start().
 */
export class NotificationPipeline {
  readonly log: NotificationLog;
  readonly silences: SilenceRegistry;
  readonly stats = new DeliveryStats();
  private readonly planner: NotificationPlanner;
  private readonly queues = new Map<string, ReceiverQueue>();
  private readonly now: () => number;
  private readonly logger: Logger;
  private manager: IncidentManager | null = null;
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRefreshAt = -Infinity;
  private stopping: Promise<void> | null = null;
  /** Cluster: whether this node is the notifying node (only then are repeats planned and Alertmanager refreshed). */
  private leading: boolean;

  constructor(private readonly o: NotificationPipelineOptions) {
    this.now = o.now ?? Date.now;
    this.leading = o.cluster !== true;
    this.logger = o.logger.child({ component: 'notify' });
    const db = o.store.database;
    this.log = new NotificationLog(db);
    this.silences = new SilenceRegistry(db);
    this.planner = new NotificationPlanner(o.config.receivers, this.log, this.now, o.cluster === true);
    const ctx: RenderContext = { publicUrl: o.config.publicUrl, installationId: o.store.installationId, now: this.now };
    const policy = { baseMs: o.config.retryBaseMs, maxMs: o.config.retryMaxMs, giveUpAfterMs: o.config.giveUpAfterMs };
    for (const receiver of o.config.receivers) {
      const logger = this.logger.child({ receiver: receiver.name, receiverType: receiver.kind });
      const integration = this.integration(receiver, ctx);
      const stages = new StageChain([
        new MuteStage((id) => o.store.get(id), this.log, this.stats, this.now),
        new RenderStage(integration, this.log, this.stats, logger, this.now),
        new SendStage(this.log, this.now),
        new RecordStage(this.log, this.stats, logger, policy, this.now, o.random),
      ]);
      this.queues.set(receiver.name, new ReceiverQueue({ receiver, integration, log: this.log, stages, logger, now: this.now }));
    }
    if (o.metrics) this.registerMetrics(o.metrics);
  }

  /** For IncidentManagerOptions.isSilenced: a new incident matching an active silence starts silenced. */
  readonly isSilenced = (incident: Incident): boolean => {
    const s = this.silences.match(incident, this.now());
    if (s === null) return false;
    this.silences.recordSilenced(s.id, incident.id);
    return true;
  };

  /** For IncidentManagerOptions.beforeCommit: writes the batch's notifications into the log, in its transaction. */
  readonly beforeCommit = (transitions: readonly IncidentTransition[]): void => {
    this.planner.plan(transitions);
  };

  /** Planning from the cluster's transitions topic (the notifying node), in the caller's transactions. */
  readonly planning = {
    plan: (transitions: readonly IncidentTransition[]): void => this.planner.plan(transitions),
    seed: (open: readonly Incident[]): void => this.planner.seed(open),
    rollback: (): void => this.planner.rollback(),
    wake: (): void => this.wakeAll(),
    /** This node starts or stops being the cluster's notifying node; stopping hands its pending rows over. */
    lead: (leading: boolean): void => {
      this.leading = leading;
      if (!leading) this.handOver();
    },
  };

  private handOver(): void {
    const dropped = this.log.dropPending();
    if (dropped > 0) this.logger.info({ dropped }, 'pending notifications handed over to the notifying node');
  }

  /** For IncidentManagerOptions.afterRollback: forgets what the rolled-back beforeCommit planned. */
  readonly afterRollback = (): void => {
    this.planner.rollback();
  };

  /** Starts delivering (what is pending from before first) and the timers; call once, after the manager exists. */
  start(manager: IncidentManager): void {
    this.manager = manager;
    this.planner.seed(manager.openIncidents());
    // A cluster node starts as one that does not notify: what it had pending is the notifying node's now.
    if (!this.leading) this.handOver();
    // Rows are committed before subscribers run, so a woken queue finds them.
    this.unsubscribe = manager.subscribe((t) => { if (t.type !== 'updated' || t.incident.status === 'open') this.wakeAll(); });
    for (const q of this.queues.values()) q.start();
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 1000);
    this.timer.unref();
    this.logger.info({ receivers: this.o.config.receivers.map((r) => `${r.name} (${r.kind})`), silences: this.silences.list().length }, 'notifications started');
  }

  /** Expires silences (turning their incidents back on), plans repeats, refreshes Alertmanager; the timer calls it, tests may too. */
  tick(): void {
    const manager = this.manager;
    if (manager === null || this.stopping !== null) return;
    try {
      for (const s of this.silences.expireDue(this.now())) this.releaseSilence(s);
      if (!this.leading) return;
      const open = manager.openIncidents();
      if (this.planner.planRepeats(open) > 0) this.wakeAll();
      if (this.now() - this.lastRefreshAt >= this.o.config.alertmanagerRefreshMs) {
        this.lastRefreshAt = this.now();
        this.refreshAlertmanager(open);
      }
    } catch (err) {
      this.logger.error({ err }, 'notification tick failed');
    }
  }

  /**
   * Creates a silence by matcher and silences the open incidents it matches; returns it and their ids.
   * `id`: a cluster's silence (every node runs it from the control topic under this id); run again under
   * an id that holds the same silence (a restart before the topic position was written) it only
   * silences again what is not yet.
   */
  silenceMatching(matcher: SilenceMatcher, expiresAtMs: number, comment: string, id: number | null = null): { silence: Silence; silenced: number[] } {
    const manager = this.requireManager();
    const prior = id === null ? null : this.silences.get(id);
    let silence: Silence;
    if (prior !== null && sameSilence(prior, { ...matcher, expiresAtMs, comment })) {
      silence = prior;
    } else {
      if (prior !== null) {
        // A silence this node created before it was a cluster node: it keeps holding, under another id.
        const moved = this.silences.renumber(prior.id);
        this.logger.warn({ silenceId: prior.id, movedTo: moved }, 'a silence from before this node joined the cluster moved to another id (its id is a cluster silence\'s)');
      }
      silence = this.silences.add(matcher, expiresAtMs, comment, this.now(), id);
    }
    const silenced: number[] = [];
    for (const i of manager.openIncidents()) {
      if (i.notifications !== 'on' || this.silences.match(i, this.now())?.id !== silence.id) continue;
      this.silences.recordSilenced(silence.id, i.id);
      // The node that holds an incident (in a cluster: owns its task) silences it: its copy is the current
      // one and its later transitions carry the change. Every node records it, so whichever holds it when
      // the silence ends switches it back on.
      if (manager.holds(i.id)) manager.silence(i.id);
      silenced.push(i.id);
    }
    this.logger.info({ silenceId: silence.id, matcher, expiresAt: new Date(expiresAtMs).toISOString(), silenced }, 'silence created');
    return { silence: this.silences.get(silence.id)!, silenced };
  }

  /** Ends a silence now; the open incidents it silenced, and no other silence holds, notify again. Null when unknown or ended. */
  endSilence(id: number): { silence: Silence; unsilenced: number[] } | null {
    const silence = this.silences.end(id, this.now());
    if (silence === null) return null;
    return { silence, unsilenced: this.releaseSilence(silence) };
  }

  /** The idempotency key of a notification (as sent in Idempotency-Key / X-Vigil-Delivery). */
  deliveryKey(r: Pick<NotificationRecord, 'incidentId' | 'kind' | 'seq'>): string {
    return deliveryKey(this.o.store.installationId, r);
  }

  /** The incident's notifications per receiver (the notification log's rows), for the control API. */
  notificationState(incidentId: number): NotificationRecord[] {
    return this.log.forIncident(incidentId);
  }

  /** Stops timers and queues; in-flight requests get graceMs. Idempotent. */
  stop(graceMs = 2000): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer !== null) clearInterval(this.timer);
      this.unsubscribe?.();
      await Promise.all([...this.queues.values()].map((q) => q.stop(graceMs)));
    })();
    return this.stopping;
  }

  private releaseSilence(silence: Silence): number[] {
    const manager = this.requireManager();
    const released: number[] = [];
    for (const id of silence.silencedIncidents) {
      const i = manager.get(id);
      if (i === null || i.status !== 'open' || i.notifications !== 'silenced' || this.silences.match(i, this.now()) !== null || !manager.holds(id)) continue;
      manager.unsilence(id);
      released.push(id);
    }
    this.logger.info({ silenceId: silence.id, unsilenced: released }, 'silence ended');
    return released;
  }

  private refreshAlertmanager(open: readonly Incident[]): void {
    for (const r of this.o.config.receivers) {
      if (r.kind !== 'alertmanager') continue;
      const told = this.log.deliveredOpenIncidents(r.name);
      this.queues.get(r.name)!.refresh(open.filter((i) => i.notifications === 'on' && told.has(i.id) && routeMatches(r.match, i)));
    }
  }

  private wakeAll(): void {
    for (const q of this.queues.values()) q.wake();
  }

  private requireManager(): IncidentManager {
    if (this.manager === null) throw new Error('notification pipeline not started');
    return this.manager;
  }

  private integration(r: ReceiverConfig, ctx: RenderContext): Integration {
    switch (r.kind) {
      case 'slack': return slackIntegration(r, ctx);
      case 'webhook': return webhookIntegration(r, ctx);
      case 'pagerduty': return pagerDutyIntegration(r, ctx);
      case 'alertmanager': return alertmanagerIntegration(r, ctx, this.o.config.alertmanagerRefreshMs);
    }
  }

  private registerMetrics(m: MetricsRegistry): void {
    m.collect('vigil_notifications_total', 'Notification delivery outcomes since start, by receiver and outcome (delivered, retried, failed, held).', 'counter',
      () => this.stats.samples().map((s) => ({ labels: { receiver: s.receiver, outcome: s.outcome }, value: s.value })), ['receiver', 'outcome']);
    m.collect('vigil_notifications_pending', 'Notifications waiting in the notification log, by receiver.', 'gauge', () => {
      const pending = new Map(this.o.config.receivers.map((r) => [r.name, 0]));
      for (const c of this.log.counts()) if (c.state === 'pending') pending.set(c.receiver, c.n);
      return [...pending].map(([receiver, value]) => ({ labels: { receiver }, value }));
    }, ['receiver']);
    const latency = m.histogram('vigil_notification_delivery_seconds',
      'From a notification being written (with its transition) to the receiver answering 2xx, retries included, by receiver.',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800], ['receiver']);
    this.stats.onDelivered = (receiver, seconds) => latency.observe({ receiver }, seconds);
    m.collect('vigil_silences_active', 'Silences by matcher that have not ended.', 'gauge', () => this.silences.list().length);
  }
}
