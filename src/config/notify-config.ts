import { readFileSync } from 'node:fs';
import type { Scope } from '../kernel/verdict.ts';
import type { EnvReader } from './env-reader.ts';

/** The integrations a receiver can be. */
export type ReceiverKind = 'slack' | 'webhook' | 'pagerduty' | 'alertmanager';

/** PagerDuty Events API v2 severities. */
export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** Which incidents a receiver gets: every listed field must contain the incident's value; an absent field matches all. */
export interface ReceiverMatch {
  propertyIds: readonly string[] | null;
  videoTitles: readonly string[] | null;
  errorTypes: readonly string[] | null;
  scopes: readonly Scope[] | null;
}

/** One notification receiver: an integration, its endpoint and its route. */
export interface ReceiverConfig {
  /** Unique; it keys the notification log, so renaming a receiver makes it a new one. */
  name: string;
  kind: ReceiverKind;
  /** Slack incoming-webhook URL, webhook URL, PagerDuty enqueue URL or Alertmanager base URL. */
  url: string;
  /** Webhook: HMAC-SHA256 key for the X-Vigil-Signature header; null sends no signature. */
  secret: string | null;
  /** PagerDuty: the integration's routing key. */
  routingKey: string | null;
  /** PagerDuty: severity per scope. */
  severity: Readonly<Record<Scope, PagerDutySeverity>>;
  match: ReceiverMatch;
  /** Re-send an incident that is still open this often (wall clock); null: never. */
  repeatIntervalMs: number | null;
  timeoutMs: number;
}

/** The notification settings (VIGIL_NOTIFY_*, receivers from the environment or a JSON file). */
export interface NotifyConfig {
  receivers: readonly ReceiverConfig[];
  /** Base of the incident links: `${publicUrl}/incidents/<id>`. */
  publicUrl: string;
  retryBaseMs: number;
  retryMaxMs: number;
  /** A notification still undelivered this long after it was written is marked failed. */
  giveUpAfterMs: number;
  /** Alertmanager: how often open incidents are re-posted (their endsAt is 3 intervals ahead). */
  alertmanagerRefreshMs: number;
}

const KINDS: readonly ReceiverKind[] = ['slack', 'webhook', 'pagerduty', 'alertmanager'];
const SEVERITIES: readonly PagerDutySeverity[] = ['critical', 'error', 'warning', 'info'];
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
const DEFAULT_SEVERITY: Record<Scope, PagerDutySeverity> = { property: 'critical', title: 'error' };

/**
 * Reads the receivers (VIGIL_NOTIFY_RECEIVERS JSON, VIGIL_NOTIFY_FILE, and the one-receiver shortcuts
 * VIGIL_SLACK_WEBHOOK_URL, VIGIL_WEBHOOK_URL, VIGIL_PAGERDUTY_ROUTING_KEY, VIGIL_ALERTMANAGER_URL) and the
 * delivery settings; every problem is appended to the reader's list. `publicUrl` comes from the HTTP config.
 */
export function parseNotifyConfig(env: EnvReader, publicUrl: string): NotifyConfig {
  const problems = env.problems;
  const timeoutMs = env.int('VIGIL_NOTIFY_TIMEOUT_MS', 10_000, 100, 600_000);
  const repeatMs = env.int('VIGIL_NOTIFY_REPEAT_MS', 0, 0, 30 * 86_400_000);
  const defaults = { timeoutMs, repeatIntervalMs: repeatMs === 0 ? null : repeatMs };
  const raw: Array<{ where: string; value: unknown }> = [];
  const json = env.str('VIGIL_NOTIFY_RECEIVERS');
  if (json !== null) raw.push(...jsonReceivers('VIGIL_NOTIFY_RECEIVERS', () => json, problems));
  const file = env.str('VIGIL_NOTIFY_FILE');
  if (file !== null) raw.push(...jsonReceivers(`VIGIL_NOTIFY_FILE (${file})`, () => readFileSync(file, 'utf8'), problems));
  const slack = env.str('VIGIL_SLACK_WEBHOOK_URL');
  if (slack !== null) raw.push({ where: 'VIGIL_SLACK_WEBHOOK_URL', value: { name: 'slack', type: 'slack', url: slack } });
  const hook = env.str('VIGIL_WEBHOOK_URL');
  const hookSecret = env.str('VIGIL_WEBHOOK_SECRET');
  if (hook !== null) raw.push({ where: 'VIGIL_WEBHOOK_URL', value: { name: 'webhook', type: 'webhook', url: hook, secret: hookSecret } });
  else if (hookSecret !== null) problems.push('VIGIL_WEBHOOK_SECRET: set without VIGIL_WEBHOOK_URL');
  const pdKey = env.str('VIGIL_PAGERDUTY_ROUTING_KEY');
  const pdUrl = env.str('VIGIL_PAGERDUTY_URL');
  if (pdKey !== null) {
    raw.push({ where: 'VIGIL_PAGERDUTY_ROUTING_KEY', value: { name: 'pagerduty', type: 'pagerduty', routing_key: pdKey, url: pdUrl ?? PAGERDUTY_EVENTS_URL } });
  }
  const am = env.str('VIGIL_ALERTMANAGER_URL');
  if (am !== null) raw.push({ where: 'VIGIL_ALERTMANAGER_URL', value: { name: 'alertmanager', type: 'alertmanager', url: am } });

  const receivers: ReceiverConfig[] = [];
  for (const { where, value } of raw) {
    const r = parseReceiver(value, where, defaults, problems);
    if (r === null) continue;
    if (receivers.some((o) => o.name === r.name)) problems.push(`${where}: receiver name ${JSON.stringify(r.name)} is used twice`);
    else receivers.push(r);
  }
  const retryBaseMs = env.int('VIGIL_NOTIFY_RETRY_BASE_MS', 1000, 10, 3_600_000);
  const retryMaxMs = env.int('VIGIL_NOTIFY_RETRY_MAX_MS', 300_000, 10, 86_400_000);
  if (retryMaxMs < retryBaseMs) problems.push(`VIGIL_NOTIFY_RETRY_MAX_MS (${retryMaxMs}) must be at least VIGIL_NOTIFY_RETRY_BASE_MS (${retryBaseMs})`);
  return {
    receivers,
    publicUrl: publicUrl.replace(/\/+$/, ''),
    retryBaseMs,
    retryMaxMs,
    giveUpAfterMs: env.int('VIGIL_NOTIFY_GIVE_UP_MS', 86_400_000, 1000, 30 * 86_400_000),
    alertmanagerRefreshMs: env.int('VIGIL_ALERTMANAGER_REFRESH_MS', 60_000, 100, 3_600_000),
  };
}

function jsonReceivers(where: string, read: () => string, problems: string[]): Array<{ where: string; value: unknown }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(read());
  } catch (err) {
    problems.push(`${where}: ${(err as NodeJS.ErrnoException).code ?? 'not valid JSON'} (${(err as Error).message})`);
    return [];
  }
  // A bare array, or {"receivers": [...]} so the file can grow other sections.
  const list = Array.isArray(parsed) ? parsed : (parsed as { receivers?: unknown } | null)?.receivers;
  if (!Array.isArray(list)) {
    problems.push(`${where}: expected a JSON array of receivers or {"receivers": [...]}`);
    return [];
  }
  return list.map((value, i) => ({ where: `${where}[${i}]`, value }));
}

function parseReceiver(
  value: unknown, where: string, defaults: { timeoutMs: number; repeatIntervalMs: number | null }, problems: string[],
): ReceiverConfig | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${where}: a receiver is an object {"name", "type", "url", ...}`);
    return null;
  }
  const v = value as Record<string, unknown>;
  const before = problems.length;
  const name = typeof v.name === 'string' && /^[\w.-]{1,64}$/.test(v.name) ? v.name : null;
  if (name === null) problems.push(`${where}: "name" must be 1-64 letters, digits, '.', '_' or '-'`);
  const kind = KINDS.find((k) => k === v.type) ?? null;
  if (kind === null) problems.push(`${where}: "type" must be one of ${KINDS.join(', ')}, got ${JSON.stringify(v.type)}`);
  const url = typeof v.url === 'string' ? v.url : '';
  if (!/^https?:\/\/[^\s]+$/.test(url)) problems.push(`${where}: "url" must be an http(s) URL, got ${JSON.stringify(v.url)}`);
  const secret = optionalString(v.secret, `${where}: "secret"`, problems);
  const routingKey = optionalString(v.routing_key, `${where}: "routing_key"`, problems);
  if (kind === 'pagerduty' && routingKey === null) problems.push(`${where}: "routing_key" is required for pagerduty`);
  const severity = { ...DEFAULT_SEVERITY };
  if (v.severity !== undefined) {
    const s = v.severity as Record<string, unknown> | null;
    for (const scope of ['property', 'title'] as const) {
      if (s?.[scope] === undefined) continue;
      const hit = SEVERITIES.find((x) => x === s[scope]);
      if (hit) severity[scope] = hit;
      else problems.push(`${where}: "severity.${scope}" must be one of ${SEVERITIES.join(', ')}`);
    }
  }
  const m = (v.match ?? {}) as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) problems.push(`${where}: "match" must be an object`);
  const list = (key: string): string[] | null => {
    const x = m[key];
    if (x === undefined || x === null) return null;
    if (!Array.isArray(x) || x.length === 0 || !x.every((e) => typeof e === 'string')) {
      problems.push(`${where}: "match.${key}" must be a non-empty array of strings`);
      return null;
    }
    return x as string[];
  };
  for (const key of Object.keys(m)) {
    if (!['property_id', 'video_title', 'error_type', 'scope'].includes(key)) problems.push(`${where}: unknown "match.${key}" (property_id, video_title, error_type, scope)`);
  }
  const scopes = list('scope');
  if (scopes?.some((s) => s !== 'property' && s !== 'title')) problems.push(`${where}: "match.scope" entries must be property or title`);
  const match: ReceiverMatch = { propertyIds: list('property_id'), videoTitles: list('video_title'), errorTypes: list('error_type'), scopes: scopes as Scope[] | null };
  const repeat = v.repeat_interval_ms;
  if (repeat !== undefined && repeat !== null && !(Number.isInteger(repeat) && (repeat as number) >= 1000)) {
    problems.push(`${where}: "repeat_interval_ms" must be an integer of at least 1000, or null`);
  }
  const timeout = v.timeout_ms;
  if (timeout !== undefined && !(Number.isInteger(timeout) && (timeout as number) >= 100)) problems.push(`${where}: "timeout_ms" must be an integer of at least 100`);
  if (problems.length > before) return null;
  return {
    name: name!, kind: kind!, url, secret, routingKey, severity, match,
    repeatIntervalMs: repeat === undefined ? defaults.repeatIntervalMs : (repeat as number | null),
    timeoutMs: (timeout as number | undefined) ?? defaults.timeoutMs,
  };
}

function optionalString(x: unknown, where: string, problems: string[]): string | null {
  if (x === undefined || x === null) return null;
  if (typeof x !== 'string' || x.length === 0) {
    problems.push(`${where} must be a non-empty string`);
    return null;
  }
  return x;
}
