import { formatErrorPercent, formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { Incident } from '../incidents/incident.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Integration, RenderContext } from './integration.ts';
import { incidentUrl, isOpenKind } from './notification.ts';

/** The alert name every Vigil alert carries in Alertmanager. */
export const ALERT_NAME = 'VigilErrorRate';

/**
 * One Alertmanager v2 alert for an incident. Labels identify the key (property, title, error type,
 * scope), so routes, inhibitions and silences written against them work, and the installation
 * (vigil_installation), so two installations watching the same property id are two alerts rather
 * than one that each resolves under the other; figures go in annotations, which may change without
 * making a new alert. endsAt: in the future while open (refreshed before it passes), now when closed.
 */
export function alertFor(i: Incident, open: boolean, ctx: RenderContext, nowMs: number, refreshMs: number): Record<string, unknown> {
  const { publicUrl } = ctx;
  const labels: Record<string, string> = {
    alertname: ALERT_NAME, property: i.propertyId, error_type: i.errorType, scope: i.scope, vigil_installation: ctx.installationId,
  };
  if (i.scope === 'title' && i.videoTitle) labels.title = i.videoTitle;
  const url = incidentUrl(publicUrl, i.id);
  // Event time may run ahead of the wall clock (replayed data); Alertmanager refuses startsAt after endsAt.
  const startsAt = Math.min(i.openedAtMs, nowMs);
  return {
    labels,
    annotations: {
      summary: formatIncidentSummary(i), incident_id: String(i.id), incident_url: url,
      error_percentage: formatErrorPercent(i.currentErrorRatio), alert_threshold: formatErrorPercent(i.thresholdRatio),
      views_per_hour: String(Math.round(i.currentViewsPerHour)), impacted_views: String(i.impactedViews),
    },
    startsAt: new Date(startsAt).toISOString(),
    endsAt: new Date(open ? nowMs + 3 * refreshMs : Math.max(nowMs, startsAt)).toISOString(),
    generatorURL: url,
  };
}

/** Alertmanager API v2 (POST /api/v2/alerts): posts on every notification and re-posts open incidents every refresh. */
export function alertmanagerIntegration(receiver: ReceiverConfig, ctx: RenderContext, refreshMs: number): Integration {
  const url = `${receiver.url.replace(/\/+$/, '')}/api/v2/alerts`;
  return {
    render(n) {
      return { url, headers: {}, body: JSON.stringify([alertFor(n.incident, isOpenKind(n.kind), ctx, ctx.now(), refreshMs)]) };
    },
    renderRefresh(open) {
      if (open.length === 0) return null;
      return { url, headers: {}, body: JSON.stringify(open.map((i) => alertFor(i, true, ctx, ctx.now(), refreshMs))) };
    },
  };
}
