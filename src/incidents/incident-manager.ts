import type { Verdict } from '../kernel/verdict.ts';
import type {
  Incident,
  IncidentTransition,
  NotificationState,
  TimelineSample,
  TransitionListener,
  TransitionType,
} from './incident.ts';
import { checkIncidentManagerOptions } from './incident-manager-options.ts';
import type { IncidentLogger, IncidentManagerOptions, IncidentManagerStats } from './incident-manager-options.ts';
import type { IncidentFilter, IncidentPage } from './incident-filter.ts';
import { incidentKey } from './incident-key.ts';
import type { IncidentStore, IncidentTracking, Occurrence } from './incident-store.ts';

// Everything needed to continue an open incident without reading the store.
interface OpenIncident {
  incident: Incident;
  tracking: IncidentTracking;
  sampleCount: number;
  lastSampleAtMs: number | null;
}

const LATEST_VERDICT_MS = 'latest_verdict_ms';

/**
 * After a restore, the verdicts of the tail up to `untilMs` (the store's progress before) may be
 * stored already: they are recognised by identity. `closed`: keys whose replayed incident was closed
 * already, whose re-derived verdicts are dropped until it closes again.
 */
interface ReplayWindow {
  untilMs: number;
  toleranceMs: number;
  closed: Set<string>;
}

/** An open incident as a cluster's task checkpoint carries it (to the task's next owner). */
export interface OpenIncidentState {
  incident: Incident;
  tracking: IncidentTracking;
}

/**
 * Applies the detector's verdicts to durable incidents and publishes the resulting transitions in order.
 * At most one incident per key is open; a manager built on an existing store continues its open incidents.
 */
export class IncidentManager {
  readonly stats: IncidentManagerStats = {
    verdicts: 0, opened: 0, continued: 0, updated: 0, resolved: 0, expired: 0,
    staleExpired: 0, orphanUpdates: 0, orphanCloses: 0, listenerErrors: 0, replayed: 0, mirrored: 0,
  };
  private readonly store: IncidentStore;
  private readonly logger: IncidentLogger;
  private readonly isSilenced: ((incident: Incident) => boolean) | undefined;
  private readonly beforeCommit: ((transitions: readonly IncidentTransition[]) => void) | undefined;
  private readonly afterRollback: (() => void) | undefined;
  private readonly sharedStore: { toleranceMs: number } | undefined;
  /** Shared store: keys whose re-derived incident the store has closed already, with the close's time. */
  private closedInStore = new Map<string, number>();
  // While a write runs: the state before it of every key it touched (null: no open incident), so a
  // rollback restores memory without reading the store, which may be the very thing that failed.
  private journal: Map<string, OpenIncident | null> | null = null;
  private readonly timelineSampleMs: number;
  private readonly maxTimelineSamples: number;
  private readonly openByKey = new Map<string, OpenIncident>();
  // Copied on change, so a listener that unsubscribes during delivery does not skip its neighbour.
  private listeners: readonly { listener: TransitionListener }[] = [];
  private latestEventMs = -Infinity;
  /**
   * After a restore from a checkpoint, the verdicts of the source's tail are derived again: up to the
   * store's progress before the restart they may be stored already. By scope: '' is the node's one
   * engine; a cluster's tasks each have theirs (their engines are restored one by one, each with its
   * own event time).
   */
  private replays = new Map<string, ReplayWindow>();
  /** Progress (latest verdict's event time) of each scope other than '', persisted as meta `latest_verdict_ms:<scope>`. */
  private scopeProgress = new Map<string, number>();
  /** Whether release() left open incidents in the store that memory does not hold (see supersede()). */
  private released = false;

  /** Validates the options (INCIDENT_OPTION_INVALID) and loads the store's open incidents. */
  constructor(options: IncidentManagerOptions) {
    checkIncidentManagerOptions(options);
    this.store = options.store;
    this.logger = options.logger;
    this.isSilenced = options.isSilenced;
    this.beforeCommit = options.beforeCommit;
    this.afterRollback = options.afterRollback;
    this.sharedStore = options.sharedStore;
    this.timelineSampleMs = options.timelineSampleMs ?? 60_000;
    this.maxTimelineSamples = options.maxTimelineSamples ?? 1440;
    this.loadOpen();
    const latest = this.store.getMeta(LATEST_VERDICT_MS);
    if (latest !== null) this.latestEventMs = Number(latest);
    this.logger.info({ openIncidents: this.openByKey.size }, 'incident manager loaded open incidents');
  }

  /** Adds a listener for every later transition; the returned function removes it (calling it twice is harmless). */
  subscribe(listener: TransitionListener): () => void {
    const entry = { listener };
    this.listeners = [...this.listeners, entry];
    return () => {
      this.listeners = this.listeners.filter((e) => e !== entry);
    };
  }

  /**
   * Applies verdicts in their order inside one store transaction, then delivers the transitions to the
   * listeners and returns them. If the store fails, nothing of the batch is kept, in the store or in
   * memory, and the error is thrown: the same batch may be applied again later (the daemon retries).
   */
  applyBatch(verdicts: readonly Verdict[], scope = ''): IncidentTransition[] {
    const transitions = this.write(() => {
      const out: IncidentTransition[] = [];
      for (const verdict of verdicts) {
        const transition = this.apply(verdict, scope);
        if (transition !== null) out.push(transition);
      }
      return out;
    });
    this.publish(transitions);
    return transitions;
  }

  /**
   * Expires the open incidents whose latest verdict is at least maxSilenceMs of event time before nowMs
   * (the detector forgot them, e.g. after a restart without its state), closing them at nowMs.
   */
  expireStale(nowMs: number, maxSilenceMs: number, owns: (incident: Incident) => boolean = () => true): IncidentTransition[] {
    this.latestEventMs = Math.max(this.latestEventMs, nowMs);
    const stale = [...this.openByKey.entries()]
      .filter(([, open]) => nowMs - open.incident.updatedAtMs >= maxSilenceMs && owns(open.incident))
      .sort(([, a], [, b]) => a.incident.id - b.incident.id);
    const transitions = this.write(() =>
      stale.map(([key, open]) => {
        this.touch(key);
        this.stats.staleExpired++;
        // No final sample: the detector sent no figures, and repeating the last ones would draw a plateau.
        return this.close(key, open, 'expired', nowMs);
      }),
    );
    this.publish(transitions);
    return transitions;
  }

  /** Event time of the latest verdict applied (persisted with the incidents), or null before any; of one scope's verdicts when given. */
  latestVerdictMs(scope = ''): number | null {
    if (scope !== '') return this.progressOf(scope);
    return this.latestEventMs === -Infinity ? null : this.latestEventMs;
  }

  private progressOf(scope: string): number | null {
    if (!this.scopeProgress.has(scope)) {
      const stored = this.store.getMeta(`${LATEST_VERDICT_MS}:${scope}`);
      if (stored === null) return null;
      this.scopeProgress.set(scope, Number(stored));
    }
    return this.scopeProgress.get(scope)!;
  }

  /**
   * The engine resumes from a checkpoint whose verdicts reached `checkpointMs`; the store has those
   * of a later point (before a crash). Until event time passes that point, re-derived verdicts are
   * recognised by their incident's identity (key and opening time within `toleranceMs`) and neither
   * stored nor published again, so no incident is recorded or notified twice.
   */
  replayAfterRestore(checkpointMs: number | null, toleranceMs: number, scope = ''): void {
    const stored = this.latestVerdictMs(scope);
    if (stored === null || (checkpointMs !== null && stored <= checkpointMs)) return;
    this.replays.set(scope, { untilMs: stored, toleranceMs, closed: new Set() });
    this.logger.info({ from: checkpointMs, until: stored, scope: scope || undefined }, 'verdicts up to the store\'s progress are recognised, not repeated');
  }

  /**
   * The open incidents `owns` selects (a cluster task's), as its checkpoint carries them: copies of
   * what is in memory, which after the verdicts of every chunk before a barrier is the store's state.
   */
  openIncidentsOf(owns: (incident: Incident) => boolean): OpenIncidentState[] {
    return [...this.openByKey.values()].filter((o) => owns(o.incident)).map((o) => ({ incident: { ...o.incident }, tracking: { ...o.tracking } }));
  }

  /**
   * Forgets the open incidents `owns` selects, without a transition (a cluster task moved to another
   * node, which continues them): they stay open in the store, and neither expire here nor take the
   * verdicts of a later owner of the task on this node, which starts from its checkpoint's (adopt()).
   */
  release(owns: (incident: Incident) => boolean): number {
    let n = 0;
    for (const [key, open] of [...this.openByKey]) {
      if (!owns(open.incident)) continue;
      this.openByKey.delete(key);
      n++;
    }
    this.released ||= n > 0;
    return n;
  }

  /**
   * Before a key's incident opens (or is adopted) here: an incident of the key that release() left
   * open in the store is over (its task moved, and the task's state has no such incident open now:
   * another node closed it, in its own store). The store has room for one open incident per key, so
   * it is closed here as expired at its last update seen here, without a transition (nothing is
   * published or notified: the node that closed it did). Until the cluster shares one incident view,
   * the true close is in that node's store. `openedBy`: only incidents that opened by then (a task's
   * checkpoint adopted: an incident of the key that opened after the checkpoint is not over, the
   * checkpoint is older than it; the tail read again re-derives its opening, which continues it).
   */
  private supersede(key: string, keep: number | null = null, openedBy = Infinity): void {
    if (!this.released) return;
    for (const stale of this.store.openIncidents()) {
      if (incidentKey(stale) !== key || stale.id === keep || this.openByKey.get(key)?.incident.id === stale.id) continue;
      if (stale.openedAtMs > openedBy) continue;
      const tracking = this.store.tracking(stale.id) as IncidentTracking;
      this.store.updateIncident({ ...stale, status: 'expired', closedAtMs: stale.updatedAtMs }, tracking);
      this.logger.info({ incidentId: stale.id, key }, 'an incident of a task that moved is closed here (its owner closed it)');
    }
  }

  /**
   * A cluster task gained (`owns`: its incidents) from its checkpoint: its open incidents in memory
   * become those the checkpoint carries, as they are in this store: one the store has (same key, same
   * opening) is taken from it, and left out when the store has it closed already (this node closed it
   * after the checkpoint: its re-derived close is an orphan); one it does not have is stored as open
   * here, with no transition (it opened on another node, whose notification went out). Incidents the
   * store opened after the checkpoint come back with their re-derived openings (replayAfterRestore,
   * called first). The scope's progress becomes the checkpoint's when that is ahead. Returns the
   * number stored anew.
   */
  adopt(scope: string, progressMs: number | null, open: readonly OpenIncidentState[], owns: (incident: Incident) => boolean): number {
    let adopted = 0;
    this.release(owns);
    this.write(() => {
      for (const o of open) {
        const key = incidentKey(o.incident);
        this.touch(key);
        const stored = this.store.openedNear(key, o.incident.openedAtMs, 0);
        this.supersede(key, stored?.id ?? null, Math.max(o.incident.openedAtMs, progressMs ?? -Infinity));
        if (stored !== null) {
          if (stored.status === 'open') {
            this.openByKey.set(key, { incident: stored, tracking: this.store.tracking(stored.id) as IncidentTracking, ...this.store.timelineExtent(stored.id) });
          }
          continue;
        }
        const { id: _id, ...draft } = o.incident;
        const incident = this.store.insertIncident(draft, { ...o.tracking });
        this.openByKey.set(key, { incident, tracking: { ...o.tracking }, sampleCount: 0, lastSampleAtMs: null });
        adopted++;
      }
      if (progressMs !== null && progressMs > (this.progressOf(scope) ?? -Infinity)) this.scopeProgress.set(scope, progressMs);
      return [];
    });
    // A silence by matcher holds the incidents of the tasks this node owns: those it brings in too (the
    // node that had the task may not have silenced one that opened while the silence was on its way).
    for (const o of open) {
      const held = this.openByKey.get(incidentKey(o.incident));
      if (held !== undefined && this.startsSilenced(held.incident) && held.incident.notifications === 'on') this.silence(held.incident.id);
    }
    return adopted;
  }

  /**
   * Cluster: other nodes' transitions were applied to the store (src/cluster/transitions-mirror.ts).
   * An incident this manager holds open takes the stored state (closed: let go, e.g. a task that moved
   * away was closed by its new owner), and the transitions go to the listeners, marked as mirrored.
   */
  mirrored(transitions: readonly IncidentTransition[]): void {
    for (const t of transitions) {
      this.stats.mirrored++;
      // The store now has open incidents memory does not hold: an opening here supersedes them (supersede()).
      if (t.incident.status === 'open') this.released = true;
      const key = incidentKey(t.incident);
      const open = this.openByKey.get(key);
      if (open === undefined) continue;
      const stored = this.store.get(open.incident.id);
      if (stored === null || stored.status !== 'open') this.openByKey.delete(key);
      else open.incident = stored;
    }
    this.publish(transitions);
  }

  /** Silences an incident's notifications; returns it, or null for an unknown id. */
  silence(id: number): Incident | null {
    return this.setNotifications(id, 'silenced');
  }

  /** Turns an incident's notifications back on; returns it, or null for an unknown id. */
  unsilence(id: number): Incident | null {
    return this.setNotifications(id, 'on');
  }

  /** The incident with this id, or null. */
  get(id: number): Incident | null {
    return this.store.get(id);
  }

  /** One page of incidents matching the filter, newest first (see IncidentStore.list). */
  list(filter: IncidentFilter = {}): IncidentPage {
    return this.store.list(filter);
  }

  /**
   * Whether this manager holds the incident open (derives its transitions): every open incident on a
   * single node; in a cluster, those of the tasks this node owns (the others' owners hold theirs).
   */
  holds(id: number): boolean {
    for (const o of this.openByKey.values()) if (o.incident.id === id) return true;
    return false;
  }

  /** Every open incident, oldest id first. */
  openIncidents(): Incident[] {
    return this.store.openIncidents();
  }

  /** Other incidents of the same key, most recently opened first, at most `limit`. */
  otherOccurrences(id: number, limit = 10): Occurrence[] {
    return this.store.otherOccurrences(id, limit);
  }

  /** The incident's stored timeline, oldest first. */
  timeline(id: number): TimelineSample[] {
    return this.store.timeline(id);
  }

  private loadOpen(): void {
    this.openByKey.clear();
    for (const incident of this.store.openIncidents()) {
      const tracking = this.store.tracking(incident.id) as IncidentTracking;
      const extent = this.store.timelineExtent(incident.id);
      this.openByKey.set(incidentKey(incident), { incident, tracking, ...extent });
    }
  }

  private write(fn: () => IncidentTransition[]): IncidentTransition[] {
    const stats = { ...this.stats };
    const latestEventMs = this.latestEventMs;
    const replays = new Map([...this.replays].map(([k, w]) => [k, { ...w, closed: new Set(w.closed) }]));
    const scopeProgress = new Map(this.scopeProgress);
    const closedInStore = new Map(this.closedInStore);
    this.journal = new Map();
    let planned = false;
    try {
      return this.store.transaction(() => {
        const transitions = fn();
        if (this.beforeCommit !== undefined && transitions.length > 0) {
          planned = true;
          this.beforeCommit(transitions);
        }
        // The progress a restore compares its checkpoint with, in the same transaction as the incidents.
        if (this.latestEventMs !== latestEventMs) this.store.setMeta(LATEST_VERDICT_MS, String(this.latestEventMs));
        for (const [scope, ms] of this.scopeProgress) if (scopeProgress.get(scope) !== ms) this.store.setMeta(`${LATEST_VERDICT_MS}:${scope}`, String(ms));
        return transitions;
      });
    } catch (error) {
      // The store rolled back: put memory back as it was before the write, so both agree again.
      for (const [key, before] of this.journal) {
        if (before === null) this.openByKey.delete(key);
        else this.openByKey.set(key, before);
      }
      Object.assign(this.stats, stats);
      this.latestEventMs = latestEventMs;
      this.replays = replays;
      this.scopeProgress = scopeProgress;
      this.closedInStore = closedInStore;
      if (planned) this.afterRollback?.();
      throw error;
    } finally {
      this.journal = null;
    }
  }

  // Records a key's state before the running write first changes it (a copy: the entry is mutated in place).
  private touch(key: string): void {
    if (this.journal === null || this.journal.has(key)) return;
    const open = this.openByKey.get(key);
    this.journal.set(key, open === undefined ? null : { ...open, incident: { ...open.incident }, tracking: { ...open.tracking } });
  }

  private apply(verdict: Verdict, scope: string): IncidentTransition | null {
    this.stats.verdicts++;
    const key = incidentKey(verdict);
    this.touch(key);
    let open = this.openByKey.get(key);
    const replay = this.replays.get(scope);
    if (replay !== undefined) {
      if (verdict.atMs > replay.untilMs) {
        this.replays.delete(scope);
      } else if (this.storedAlready(key, verdict, open, replay)) {
        this.stats.replayed++;
        return null;
      }
      open = this.openByKey.get(key);
    }
    if (this.sharedStore !== undefined && this.inSharedStore(key, verdict, open)) {
      this.stats.replayed++;
      return null;
    }
    open = this.openByKey.get(key);
    this.latestEventMs = Math.max(this.latestEventMs, verdict.atMs);
    if (scope !== '') this.scopeProgress.set(scope, Math.max(this.progressOf(scope) ?? -Infinity, verdict.atMs));
    if (verdict.kind === 'open') return open === undefined ? this.openIncident(key, verdict) : this.continueIncident(open, verdict);
    if (open === undefined) {
      if (verdict.kind === 'update') this.stats.orphanUpdates++;
      else this.stats.orphanCloses++;
      return null;
    }
    if (verdict.kind === 'update') {
      this.stats.updated++;
      this.takeFigures(open, verdict, false);
      this.store.updateIncident(open.incident, open.tracking);
      return transition('updated', open.incident, verdict.atMs);
    }
    const type = verdict.kind === 'resolve' ? 'resolved' : 'expired';
    this.stats[type]++;
    this.takeFigures(open, verdict, true);
    return this.close(key, open, type, verdict.atMs);
  }

  /**
   * Shared store (a cluster): whether this verdict's transition is there already, derived by another
   * node (a task's tail re-derived here after it moved). An incident of the store this manager does not
   * hold is taken into memory when its opening is derived again, or when an update or close of its key
   * comes, so that it continues here; an opening of one closed since makes the key's verdicts up to
   * that close known.
   */
  private inSharedStore(key: string, verdict: Verdict, open: OpenIncident | undefined): boolean {
    const closedAtMs = this.closedInStore.get(key);
    if (closedAtMs !== undefined) {
      if (verdict.atMs <= closedAtMs) return true;
      this.closedInStore.delete(key);
    }
    if (open !== undefined) return verdict.kind !== 'resolve' && verdict.kind !== 'expire' && verdict.atMs <= open.incident.updatedAtMs;
    let found: Incident | null;
    if (verdict.kind === 'open') {
      found = this.store.openedNear(key, verdict.atMs, this.sharedStore!.toleranceMs);
      if (found !== null && found.status !== 'open') {
        this.closedInStore.set(key, found.closedAtMs ?? found.updatedAtMs);
        return true;
      }
    } else {
      found = this.store.openOfKey(key);
      if (found !== null && verdict.atMs < found.openedAtMs) return true;
    }
    if (found === null) return false;
    this.openByKey.set(key, { incident: found, tracking: this.store.tracking(found.id) as IncidentTracking, ...this.store.timelineExtent(found.id) });
    this.logger.info({ incidentId: found.id, node: this.store.nodeOf(found.id) }, 'continuing an incident the cluster\'s store has');
    // Its opening, or figures the store has already; a close or newer figures continue it.
    return verdict.kind === 'open' || (verdict.kind === 'update' && verdict.atMs <= found.updatedAtMs);
  }

  /** During a replay after a restore: whether this verdict's transition is in the store already. */
  private storedAlready(key: string, verdict: Verdict, open: OpenIncident | undefined, replay: ReplayWindow): boolean {
    if (verdict.kind === 'open') {
      // The key's open incident when this is its opening; otherwise an earlier one of the key, closed
      // since (the tail re-derives it before the one open now).
      let prior: Incident | null = open?.incident ?? null;
      if (prior === null || Math.abs(prior.openedAtMs - verdict.atMs) > replay.toleranceMs) prior = this.store.openedNear(key, verdict.atMs, replay.toleranceMs);
      if (prior === null) return false;
      if (prior.status !== 'open') replay.closed.add(key);
      // Open in the store but not in memory (a cluster task's incident released when the task left
      // this node): its re-derived updates and close continue it.
      else if (open === undefined) this.openByKey.set(key, { incident: prior, tracking: this.store.tracking(prior.id) as IncidentTracking, ...this.store.timelineExtent(prior.id) });
      return true;
    }
    if (replay.closed.has(key)) {
      if (verdict.kind !== 'update') replay.closed.delete(key);
      return true;
    }
    // From before the key's open incident opened: an earlier incident's, whose opening was in the
    // restored state (not re-derived) and whose life the store has already.
    if (open !== undefined && verdict.atMs < open.incident.openedAtMs) return true;
    // Figures of an open incident up to its latest stored update are there already.
    return verdict.kind === 'update' && open !== undefined && verdict.atMs <= open.incident.updatedAtMs;
  }

  private openIncident(key: string, verdict: Verdict): IncidentTransition {
    this.stats.opened++;
    this.supersede(key);
    const tracking: IncidentTracking = { impactedBaseViews: 0, timelineStepMs: this.timelineSampleMs };
    const incident = this.store.insertIncident(
      {
        scope: verdict.scope,
        propertyId: verdict.propertyId,
        videoTitle: verdict.videoTitle,
        errorType: verdict.errorType,
        status: 'open',
        openedAtMs: verdict.atMs,
        closedAtMs: null,
        initialErrorRatio: verdict.errorRatio,
        initialViewsPerHour: verdict.viewsPerHour,
        thresholdRatio: verdict.thresholdRatio,
        baselineRatio: verdict.baselineRatio,
        minWindowViews: verdict.minWindowViews,
        currentErrorRatio: verdict.errorRatio,
        currentViewsPerHour: verdict.viewsPerHour,
        currentWindowViews: verdict.windowViews,
        updatedAtMs: verdict.atMs,
        impactedViews: verdict.impactedViews,
        notifications: 'on',
      },
      tracking,
    );
    if (this.startsSilenced(incident)) {
      incident.notifications = 'silenced';
      this.store.setNotifications(incident.id, 'silenced');
    }
    const open: OpenIncident = { incident, tracking, sampleCount: 0, lastSampleAtMs: null };
    this.openByKey.set(key, open);
    this.sample(open, verdict, true);
    return transition('opened', incident, verdict.atMs);
  }

  // The detector re-opened a key whose incident is still open (it restarted without its state): keep
  // one incident, keep its trigger, and add the detector's fresh impacted count to what was counted before.
  private continueIncident(open: OpenIncident, verdict: Verdict): IncidentTransition {
    this.stats.continued++;
    open.tracking.impactedBaseViews = open.incident.impactedViews;
    this.takeFigures(open, verdict, false);
    this.store.updateIncident(open.incident, open.tracking);
    return transition('updated', open.incident, verdict.atMs);
  }

  private close(key: string, open: OpenIncident, type: 'resolved' | 'expired', atMs: number): IncidentTransition {
    open.incident.status = type;
    open.incident.closedAtMs = atMs;
    this.store.updateIncident(open.incident, open.tracking);
    this.openByKey.delete(key);
    return transition(type, open.incident, atMs);
  }

  private takeFigures(open: OpenIncident, verdict: Verdict, forceSample: boolean): void {
    const { incident } = open;
    incident.currentErrorRatio = verdict.errorRatio;
    incident.currentViewsPerHour = verdict.viewsPerHour;
    incident.currentWindowViews = verdict.windowViews;
    incident.updatedAtMs = verdict.atMs;
    incident.impactedViews = open.tracking.impactedBaseViews + verdict.impactedViews;
    this.sample(open, verdict, forceSample);
  }

  // Bounded timeline: samples at least timelineStepMs apart; when full, every second sample is dropped
  // and the step doubles, so the timeline always spans the whole incident at an even resolution.
  private sample(open: OpenIncident, verdict: Verdict, force: boolean): void {
    const last = open.lastSampleAtMs;
    if (last !== null && verdict.atMs < last) return;
    if (!force && last !== null && verdict.atMs - last < open.tracking.timelineStepMs) return;
    const id = open.incident.id;
    const isNewTime = verdict.atMs !== last;
    if (isNewTime && open.sampleCount >= this.maxTimelineSamples) {
      open.sampleCount = this.store.thinTimeline(id);
      open.tracking.timelineStepMs *= 2;
    }
    this.store.appendTimelineSample(id, {
      atMs: verdict.atMs,
      errorRatio: verdict.errorRatio,
      thresholdRatio: verdict.thresholdRatio,
      windowViews: verdict.windowViews,
    });
    if (isNewTime) open.sampleCount++;
    open.lastSampleAtMs = verdict.atMs;
  }

  private startsSilenced(incident: Incident): boolean {
    if (this.isSilenced === undefined) return false;
    try {
      return this.isSilenced(incident);
    } catch (err) {
      // A broken matcher must not stop incident tracking; notifying is the safer failure.
      this.logger.error({ err, incidentId: incident.id }, 'silence matcher failed; incident notifies');
      return false;
    }
  }

  private setNotifications(id: number, state: NotificationState): Incident | null {
    const incident = this.store.get(id);
    if (incident === null) return null;
    if (incident.notifications === state) return incident;
    const open = this.openByKey.get(incidentKey(incident));
    // The change and what beforeCommit writes for it (an unsilenced incident's notification) land together.
    const transitions = this.write(() => {
      this.touch(incidentKey(incident));
      this.store.setNotifications(id, state);
      incident.notifications = state;
      if (open?.incident.id === id) open.incident.notifications = state;
      // Event time, not the wall clock: the change is placed at the latest moment the manager has seen.
      return [transition('updated', incident, Math.max(this.latestEventMs, incident.updatedAtMs))];
    });
    this.publish(transitions);
    return incident;
  }

  private publish(transitions: readonly IncidentTransition[]): void {
    for (const t of transitions) {
      for (const { listener } of this.listeners) {
        try {
          listener(t);
        } catch (err) {
          this.stats.listenerErrors++;
          this.logger.error({ err, incidentId: t.incident.id, transition: t.type }, 'incident listener failed');
        }
      }
    }
  }
}

// A frozen snapshot: later changes to the live incident, or a listener's mutation, cannot alter what others see.
function transition(type: TransitionType, incident: Incident, atMs: number): IncidentTransition {
  return Object.freeze({ type, incident: Object.freeze({ ...incident }), atMs });
}
