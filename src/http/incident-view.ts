import type { Incident, TimelineSample } from '../incidents/incident.ts';
import { formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { Occurrence } from '../incidents/incident-store.ts';

/** An incident as the API and the feed serve it (snake_case, ratios 0..1, epoch ms). */
export interface IncidentView {
  id: number;
  scope: Incident['scope'];
  property_id: string;
  video_title: string | null;
  error_type: string;
  status: Incident['status'];
  summary: string;
  opened_at_ms: number;
  closed_at_ms: number | null;
  trigger: { opened_at_ms: number; error_ratio: number; views_per_hour: number; threshold_ratio: number; baseline_ratio: number; min_window_views: number };
  current: {
    error_ratio: number; views_per_hour: number; window_views: number; updated_at_ms: number;
    open_for_ms: number; impacted_views: number; impacted_views_per_hour: number;
  };
  notifications: Incident['notifications'];
}

/** The view of an incident; open-for runs to its close, or to its latest figures while open (event time). */
export function incidentView(i: Incident): IncidentView {
  const openForMs = Math.max(0, (i.closedAtMs ?? i.updatedAtMs) - i.openedAtMs);
  // At least a minute: a just-opened incident would otherwise show an absurd rate per hour.
  const perHour = Math.round(i.impactedViews / (Math.max(openForMs, 60_000) / 3_600_000));
  return {
    id: i.id, scope: i.scope, property_id: i.propertyId, video_title: i.videoTitle, error_type: i.errorType, status: i.status,
    summary: formatIncidentSummary(i), opened_at_ms: i.openedAtMs, closed_at_ms: i.closedAtMs,
    trigger: {
      opened_at_ms: i.openedAtMs, error_ratio: i.initialErrorRatio, views_per_hour: i.initialViewsPerHour,
      threshold_ratio: i.thresholdRatio, baseline_ratio: i.baselineRatio, min_window_views: i.minWindowViews,
    },
    current: {
      error_ratio: i.currentErrorRatio, views_per_hour: i.currentViewsPerHour, window_views: i.currentWindowViews,
      updated_at_ms: i.updatedAtMs, open_for_ms: openForMs, impacted_views: i.impactedViews, impacted_views_per_hour: perHour,
    },
    notifications: i.notifications,
  };
}

/** A timeline sample as served. */
export function sampleView(s: TimelineSample): { at_ms: number; error_ratio: number; threshold_ratio: number; window_views: number } {
  return { at_ms: s.atMs, error_ratio: s.errorRatio, threshold_ratio: s.thresholdRatio, window_views: s.windowViews };
}

/** Another occurrence of the same key as served. */
export function occurrenceView(o: Occurrence): { id: number; status: string; opened_at_ms: number; closed_at_ms: number | null; duration_ms: number | null } {
  return { id: o.id, status: o.status, opened_at_ms: o.openedAtMs, closed_at_ms: o.closedAtMs, duration_ms: o.durationMs };
}
