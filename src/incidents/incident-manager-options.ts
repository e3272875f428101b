import type { Incident, IncidentTransition } from './incident.ts';
import { IncidentError } from './incident-error.ts';
import type { IncidentStore } from './incident-store.ts';

/** The slice of a pino logger the manager uses; a pino Logger or child satisfies it. */
export interface IncidentLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Collaborators and limits of an IncidentManager; store and logger are required, the rest have defaults. */
export interface IncidentManagerOptions {
  store: IncidentStore;
  /** Required: a default logger would write to stdout, which `vigil replay` uses for its records. */
  logger: IncidentLogger;
  /** Decides at open whether a new incident starts silenced (a silence matcher); absent means never. */
  isSilenced?: (incident: Incident) => boolean;
  /**
   * Called inside the store transaction that writes these transitions, before it commits (the
   * notification outbox writes here); if it throws, the whole batch rolls back and the error propagates.
   */
  beforeCommit?: (transitions: readonly IncidentTransition[]) => void;
  /**
   * Called when a transaction in which beforeCommit ran rolled back (the store failed, e.g. locked or
   * full): whatever beforeCommit changed in memory must be undone, since the batch will be applied again.
   */
  afterRollback?: () => void;
  /**
   * The store is a cluster's shared incident view (src/cluster/transitions-mirror.ts): it holds other
   * nodes' incidents. A verdict of an incident the store has (same key, opening within `toleranceMs`;
   * or a key whose incident is open there) continues it instead of opening another: no second incident,
   * no second notification, whichever node derived it first.
   */
  sharedStore?: { toleranceMs: number };
  /** Minimum event time between two stored timeline samples; default 60 000. */
  timelineSampleMs?: number;
  /** Most timeline samples kept per incident (at least 2); default 1440. */
  maxTimelineSamples?: number;
}

/** Counters of what the manager did with its input, for metrics. */
export interface IncidentManagerStats {
  verdicts: number;
  opened: number;
  /** 'open' verdicts for a key whose incident was already open, continued instead of duplicated. */
  continued: number;
  updated: number;
  resolved: number;
  expired: number;
  /** Incidents expired by expireStale because no verdict reached them. */
  staleExpired: number;
  /** 'update' verdicts for a key with no open incident, ignored. */
  orphanUpdates: number;
  /** 'resolve' or 'expire' verdicts for a key with no open incident, ignored. */
  orphanCloses: number;
  listenerErrors: number;
  /** Verdicts re-derived after a restore whose transitions were stored already, dropped. */
  replayed: number;
  /** Cluster: transitions of other nodes applied to the store (src/cluster/transitions-mirror.ts). */
  mirrored: number;
}

function invalidOption(message: string): IncidentError {
  return new IncidentError('INCIDENT_OPTION_INVALID', message);
}

/** Throws INCIDENT_OPTION_INVALID naming the first option that cannot work. */
export function checkIncidentManagerOptions(options: IncidentManagerOptions): void {
  if (options.store === undefined || options.store === null) throw invalidOption('store is required');
  if (typeof options.logger?.info !== 'function' || typeof options.logger?.error !== 'function') {
    throw invalidOption('logger must have info and error methods (a pino logger)');
  }
  if (options.isSilenced !== undefined && typeof options.isSilenced !== 'function') {
    throw invalidOption('isSilenced must be a function');
  }
  if (options.beforeCommit !== undefined && typeof options.beforeCommit !== 'function') {
    throw invalidOption('beforeCommit must be a function');
  }
  if (options.afterRollback !== undefined && typeof options.afterRollback !== 'function') {
    throw invalidOption('afterRollback must be a function');
  }
  const { timelineSampleMs, maxTimelineSamples } = options;
  if (timelineSampleMs !== undefined && !(Number.isInteger(timelineSampleMs) && timelineSampleMs > 0)) {
    throw invalidOption(`timelineSampleMs must be a positive integer, got ${String(timelineSampleMs)}`);
  }
  if (maxTimelineSamples !== undefined && !(Number.isInteger(maxTimelineSamples) && maxTimelineSamples >= 2)) {
    throw invalidOption(`maxTimelineSamples must be an integer of at least 2, got ${String(maxTimelineSamples)}`);
  }
}
