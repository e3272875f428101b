import { createHmac } from 'node:crypto';
import { formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { Incident } from '../incidents/incident.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Integration, RenderContext } from './integration.ts';
import { deliveryKey, incidentUrl, type NotificationRecord } from './notification.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The incident in the webhook's JSON (snake_case, like the HTTP API), with its summary and link. */
export function webhookIncident(i: Incident, publicUrl: string): Record<string, unknown> {
  return {
    id: i.id, scope: i.scope, property_id: i.propertyId, video_title: i.videoTitle, error_type: i.errorType, status: i.status,
    opened_at: iso(i.openedAtMs), closed_at: iso(i.closedAtMs), initial_error_ratio: i.initialErrorRatio,
    initial_views_per_hour: i.initialViewsPerHour, threshold_ratio: i.thresholdRatio, baseline_ratio: i.baselineRatio,
    min_window_views: i.minWindowViews, current_error_ratio: i.currentErrorRatio, current_views_per_hour: i.currentViewsPerHour,
    current_window_views: i.currentWindowViews, impacted_views: i.impactedViews, notifications: i.notifications,
    summary: formatIncidentSummary(i), url: incidentUrl(publicUrl, i.id),
  };
}

/** The signature a receiver recomputes: hex HMAC-SHA256 over "<timestamp>.<body>" with the shared secret. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Generic webhook: the incident and the transition as JSON. The body is the same on every attempt;
 * Idempotency-Key / X-Vigil-Delivery let the receiver drop a redelivery; with a secret, X-Vigil-Signature
 * signs the timestamp and body so a receiver can reject forgeries and replays.
 */
export function webhookIntegration(receiver: ReceiverConfig, ctx: RenderContext): Integration {
  return {
    render(n: NotificationRecord) {
      const key = deliveryKey(ctx.installationId, n);
      const body = JSON.stringify({
        version: 1, delivery_id: key, kind: n.kind,
        transition: { type: n.kind, at: iso(n.atMs) },
        incident: webhookIncident(n.incident, ctx.publicUrl),
      });
      const timestamp = String(ctx.now());
      const headers: Record<string, string> = { 'idempotency-key': key, 'x-vigil-delivery': key, 'x-vigil-timestamp': timestamp, 'user-agent': 'vigil' };
      if (receiver.secret !== null) headers['x-vigil-signature'] = webhookSignature(receiver.secret, timestamp, body);
      return { url: receiver.url, headers, body };
    },
  };
}
