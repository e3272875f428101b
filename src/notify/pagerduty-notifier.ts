import { formatErrorPercent, formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Integration, RenderContext } from './integration.ts';
import { incidentKeyOutside, incidentUrl, isOpenKind, type NotificationRecord } from './notification.ts';

/**
 * PagerDuty Events API v2: trigger on open (and on repeat/unsilence, which PagerDuty folds into the same
 * alert), resolve on resolve or expiry; dedup_key is the incident id with the installation id, so a
 * redelivery never pages twice and another installation's incident #1 is never merged into this one.
 * Severity by scope (default: property critical, title error; configurable per receiver).
 */
export function pagerDutyIntegration(receiver: ReceiverConfig, ctx: RenderContext): Integration {
  return {
    render(n: NotificationRecord) {
      const i = n.incident;
      const dedupKey = incidentKeyOutside(ctx.installationId, i.id);
      if (!isOpenKind(n.kind)) {
        return { url: receiver.url, headers: {}, body: JSON.stringify({ routing_key: receiver.routingKey, event_action: 'resolve', dedup_key: dedupKey }) };
      }
      const url = incidentUrl(ctx.publicUrl, i.id);
      const event = {
        routing_key: receiver.routingKey,
        event_action: 'trigger',
        dedup_key: dedupKey,
        payload: {
          // PagerDuty truncates at 1024 characters; a title can be long.
          summary: `Incident #${i.id}: ${formatIncidentSummary(i)}`.slice(0, 1024),
          source: `vigil property ${i.propertyId}`.slice(0, 255),
          severity: receiver.severity[i.scope],
          timestamp: new Date(i.openedAtMs).toISOString(),
          component: i.scope === 'title' ? i.videoTitle : i.propertyId,
          group: i.propertyId,
          class: i.errorType,
          custom_details: {
            scope: i.scope, property_id: i.propertyId, video_title: i.videoTitle, error_type: i.errorType,
            error_percentage: formatErrorPercent(i.currentErrorRatio), alert_threshold: formatErrorPercent(i.thresholdRatio),
            views_per_hour: Math.round(i.currentViewsPerHour), impacted_views: i.impactedViews,
          },
        },
        links: [{ href: url, text: `Incident #${i.id}` }],
        client: 'Vigil',
        client_url: url,
      };
      return { url: receiver.url, headers: {}, body: JSON.stringify(event) };
    },
  };
}
