import type { Incident } from '../incidents/incident.ts';
import type { HttpRequestSpec } from './http-delivery.ts';
import type { NotificationRecord } from './notification.ts';

/** What an integration may read while rendering: the dashboard's base URL, the installation id and the wall clock. */
export interface RenderContext {
  publicUrl: string;
  /** This data directory's id (IncidentStore.installationId), part of every identity a receiver sees. */
  installationId: string;
  now: () => number;
}

/** One receiver integration (Slack, webhook, PagerDuty, Alertmanager): turns a notification into an HTTP request. */
export interface Integration {
  render(n: NotificationRecord): HttpRequestSpec;
  /** Integrations that must be told periodically that an incident is still open (Alertmanager) render that here. */
  renderRefresh?(open: readonly Incident[]): HttpRequestSpec | null;
}
