import { formatErrorPercent, formatIncidentSummary } from '../incidents/incident-summary.ts';
import type { Incident } from '../incidents/incident.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { HttpRequestSpec } from './http-delivery.ts';
import type { Integration, RenderContext } from './integration.ts';
import { incidentUrl, isOpenKind, type NotificationRecord } from './notification.ts';

// Slack's limits, in characters of the text as sent (after escaping): a section's text, each of its
// fields, and the message's fallback `text` (longer ones are split into several messages).
export const SLACK_SECTION_TEXT_MAX = 3000;
export const SLACK_FIELD_TEXT_MAX = 2000;
export const SLACK_FALLBACK_TEXT_MAX = 3000;

// Slack mrkdwn treats these three as control characters in any text, titles included.
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Escaped text cut to at most `max` characters (UTF-16 code units, which are never fewer than what
 * Slack counts) with an ellipsis; never inside an escape (&amp;) or a surrogate pair.
 */
export function clipEscaped(escaped: string, max: number): string {
  if (escaped.length <= max) return escaped;
  if (max < 1) return '';
  let cut = max - 1;
  const amp = escaped.lastIndexOf('&', cut - 1);
  if (amp >= 0 && amp > cut - 5 && escaped.indexOf(';', amp) >= cut) cut = amp;
  const last = escaped.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${escaped.slice(0, cut)}…`;
}

function field(label: string, value: string): { type: 'mrkdwn'; text: string } {
  const head = `*${label}*\n`;
  return { type: 'mrkdwn', text: head + clipEscaped(esc(value), SLACK_FIELD_TEXT_MAX - head.length) };
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
  const link = `*<${url}|${head}>*`;
  const prefix = '  ·  property ';
  const property = i.propertyId ? prefix + clipEscaped(esc(i.propertyId), SLACK_SECTION_TEXT_MAX - link.length - prefix.length) : '';
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: link + property } },
    { type: 'section', fields },
  ];
  if (note) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: note }] });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${url}>` }] });
  // The fallback text (notifications, screen readers) is mrkdwn too: escaped like the blocks.
  return { text: clipEscaped(esc(`${head}: ${formatIncidentSummary(i)}`), SLACK_FALLBACK_TEXT_MAX), blocks };
}

/** Slack incoming webhook: one Block Kit message per notification (Slack has no idempotency key). */
export function slackIntegration(receiver: ReceiverConfig, ctx: RenderContext): Integration {
  return {
    render(n): HttpRequestSpec {
      return { url: receiver.url, headers: {}, body: JSON.stringify(slackMessage(n, ctx.publicUrl)) };
    },
  };
}
