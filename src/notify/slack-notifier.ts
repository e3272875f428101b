import { formatErrorPercent, formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { Incident } from '../incidents/incident.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { HttpRequestSpec } from './http-delivery.ts';
import type { Integration, RenderContext } from './integration.ts';
import { incidentUrl, isOpenKind, type NotificationRecord } from './notification.ts';

// Slack mrkdwn treats these three as control characters in any text, titles included.
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function field(label: string, value: string): { type: 'mrkdwn'; text: string } {
  return { type: 'mrkdwn', text: `*${label}*\n${esc(value)}` };
}

/** "6 minutes", "2 hours": the reference dashboard's durations. */
function duration(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 60) return `${min} minute${min === 1 ? '' : 's'}`;
  const h = Math.round(min / 6) / 10;
  return `${h} hour${h === 1 ? '' : 's'}`;
}

/** The Block Kit message for a notification, after the reference ("Open: Incident #13331" + fields + link). */
export function slackMessage(n: NotificationRecord, publicUrl: string): { text: string; blocks: unknown[] } {
  const i: Incident = n.incident;
  const url = incidentUrl(publicUrl, i.id);
  const open = isOpenKind(n.kind);
  const head = open ? `Open: Incident #${i.id}` : n.kind === 'resolved' ? `Resolved: Incident #${i.id}` : `Expired: Incident #${i.id}`;
  // The opening message shows the figures that opened it (as the reference); later ones the current figures.
  const ratio = n.kind === 'opened' ? i.initialErrorRatio : i.currentErrorRatio;
  const rate = n.kind === 'opened' ? i.initialViewsPerHour : i.currentViewsPerHour;
  const fields = [];
  if (i.scope === 'title') fields.push(field('Video Title', i.videoTitle ?? ''));
  fields.push(field('Error', i.errorType));
  if (open) {
    fields.push(field('Error Percentage', formatErrorPercent(ratio)), field('Rate', `${Math.round(rate)} / hour`));
  } else {
    fields.push(field('Duration', duration((i.closedAtMs ?? i.updatedAtMs) - i.openedAtMs)), field('Views Impacted', String(i.impactedViews)));
  }
  const note = n.kind === 'repeat' ? 'Still open.' : n.kind === 'unsilenced' ? 'Notifications turned back on; current figures.'
    : n.kind === 'expired' ? 'No more views: the incident expired.' : n.kind === 'resolved' ? 'The error rate is back below the threshold.' : null;
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*<${url}|${head}>*${i.propertyId ? `  ·  property ${esc(i.propertyId)}` : ''}` } },
    { type: 'section', fields },
  ];
  if (note) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: note }] });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${url}>` }] });
  return { text: `${head}: ${formatIncidentSummary(i)}`, blocks };
}

/** Slack incoming webhook: one Block Kit message per notification (Slack has no idempotency key). */
export function slackIntegration(receiver: ReceiverConfig, ctx: RenderContext): Integration {
  return {
    render(n): HttpRequestSpec {
      return { url: receiver.url, headers: {}, body: JSON.stringify(slackMessage(n, ctx.publicUrl)) };
    },
  };
}
