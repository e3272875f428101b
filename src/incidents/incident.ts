import type { Scope } from '../kernel/verdict.ts';

export type IncidentStatus = 'open' | 'resolved' | 'expired';
export type NotificationState = 'on' | 'silenced';

/** One sample of an open incident's figures, taken at an evaluation tick. */
export interface TimelineSample {
  atMs: number;
  errorRatio: number;
  thresholdRatio: number;
  windowViews: number;
}

/** An incident as stored and served: the trigger, the current figures and the lifecycle. */
export interface Incident {
  id: number;
  scope: Scope;
  propertyId: string;
  videoTitle: string | null;
  errorType: string;
  status: IncidentStatus;
  openedAtMs: number;
  /** Resolved or expired time; null while open. */
  closedAtMs: number | null;
  initialErrorRatio: number;
  initialViewsPerHour: number;
  thresholdRatio: number;
  baselineRatio: number;
  minWindowViews: number;
  currentErrorRatio: number;
  currentViewsPerHour: number;
  currentWindowViews: number;
  /** Event time of the latest figures. */
  updatedAtMs: number;
  impactedViews: number;
  notifications: NotificationState;
}

export type TransitionType = 'opened' | 'updated' | 'resolved' | 'expired';

/** One change of an incident, delivered to every subscriber (audit file, feed, notifiers) in order. */
export interface IncidentTransition {
  type: TransitionType;
  incident: Incident;
  /** Event time of the change. */
  atMs: number;
  /**
   * Set on a transition another node of the cluster derived, applied to this node's store from the
   * transitions topic (the feed shows it; the audit file and notifications of this node do not take it).
   */
  mirroredFrom?: string;
}

/** Subscribers receive every transition in order; a subscriber that throws is logged and does not stop the others. */
export type TransitionListener = (transition: IncidentTransition) => void;
