import type { Incident } from '../incidents/incident.ts';

/** What a notification says: a transition, a reminder of a still-open incident, or its state after an unsilence. */
export type NotificationKind = 'opened' | 'resolved' | 'expired' | 'unsilenced' | 'repeat';

/** A notification's delivery state in the log: held means a silence kept it back and it will never be sent. */
export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'held';

/** One row of the notification log: one notification for one receiver and where its delivery stands. */
export interface NotificationRecord {
  id: number;
  incidentId: number;
  receiver: string;
  kind: NotificationKind;
  /** 1 for opened/resolved/expired; the nth repeat or unsilence otherwise. */
  seq: number;
  state: DeliveryState;
  /** The incident as it was when the notification was written. */
  incident: Incident;
  /** Event time of the transition. */
  atMs: number;
  /** Wall-clock times from here on. */
  createdAtMs: number;
  attempts: number;
  nextAttemptAtMs: number;
  lastAttemptAtMs: number | null;
  doneAtMs: number | null;
  lastStatus: number | null;
  lastError: string | null;
}

/** Kinds that tell a receiver the incident is open (as opposed to closing it). */
export function isOpenKind(kind: NotificationKind): boolean {
  return kind === 'opened' || kind === 'unsilenced' || kind === 'repeat';
}

/**
 * The idempotency key of a notification, the same on every attempt and across restarts and the same
 * for every receiver: receivers that deduplicate (webhook consumers) use it. It carries the
 * installation id: incident ids start at 1 in every data directory, so without it a second
 * installation, or a fresh data directory, would repeat the keys of the first.
 */
export function deliveryKey(installationId: string, r: Pick<NotificationRecord, 'incidentId' | 'kind' | 'seq'>): string {
  return `vigil:${installationId}:${r.incidentId}:${r.kind}:${r.seq}`;
}

/** The key of an incident outside Vigil (PagerDuty's dedup_key): unique across installations, like deliveryKey. */
export function incidentKeyOutside(installationId: string, incidentId: number): string {
  return `vigil:${installationId}:${incidentId}`;
}

/** The link to an incident's page on the dashboard. */
export function incidentUrl(publicUrl: string, incidentId: number): string {
  return `${publicUrl}/incidents/${incidentId}`;
}
