import type { Scope } from '../kernel/verdict.ts';
import type { IncidentTransition } from './incident.ts';

/**
 * One line of `vigil replay` output and of the audit file. The field order is part of the format:
 * build records with toReplayRecord so JSON.stringify keeps it.
 */
export interface ReplayRecord {
  type: 'opened' | 'resolved' | 'expired';
  incident_id: number;
  scope: Scope;
  property_id: string;
  /** Present only for title scope. */
  video_title?: string;
  error_type: string;
  /** ISO-8601 UTC time of the transition. */
  at: string;
  /** The incident's current error ratio at that moment (0..1), rounded to 6 decimals. */
  error_rate: number;
  threshold: number;
  /** Window views of the current figures, rounded to an integer. */
  views: number;
  opened_at: string;
  /** Present only for resolved and expired. */
  duration_ms?: number;
  /** Present only for resolved and expired. */
  impacted_views?: number;
}

const round6 = (ratio: number): number => Math.round(ratio * 1e6) / 1e6;
const iso = (epochMs: number): string => new Date(epochMs).toISOString();

/** The replay/audit record of a transition, or null for 'updated' (figures only, not part of the record). */
export function toReplayRecord(t: IncidentTransition): ReplayRecord | null {
  if (t.type === 'updated') return null;
  const { incident } = t;
  // Object literal order is the format's field order; optional fields are spread in at their place.
  return {
    type: t.type,
    incident_id: incident.id,
    scope: incident.scope,
    property_id: incident.propertyId,
    ...(incident.scope === 'title' && incident.videoTitle !== null ? { video_title: incident.videoTitle } : {}),
    error_type: incident.errorType,
    at: iso(t.atMs),
    error_rate: round6(incident.currentErrorRatio),
    threshold: round6(incident.thresholdRatio),
    views: Math.round(incident.currentWindowViews),
    opened_at: iso(incident.openedAtMs),
    ...(t.type === 'opened'
      ? {}
      : {
          duration_ms: (incident.closedAtMs ?? t.atMs) - incident.openedAtMs,
          impacted_views: Math.round(incident.impactedViews),
        }),
  };
}
