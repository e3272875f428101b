import { randomUUID } from 'node:crypto';
import type { AccessGrant } from '../config/http-config.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { CommandHandler, CommandReply } from '../control/command-handler.ts';
import type { IncidentFilter, IncidentPage } from '../incidents/incident-filter.ts';
import { MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT, checkIncidentFilter } from '../incidents/incident-filter.ts';
import { IncidentError } from '../incidents/incident-error.ts';
import type { Incident } from '../incidents/incident.ts';
import type { CellFigures } from '../kernel/cell-figures.ts';
import { HttpError } from './http-error.ts';
import { jsonBody, type RequestInfo, type Reply } from './http-exchange.ts';
import { canSee } from './access-control.ts';
import type { RouteDef } from './route-table.ts';
import { incidentView, occurrenceView, sampleView } from './incident-view.ts';
import type { ReceiverConfig } from '../config/notify-config.ts';
import type { Silence } from '../silence/silence.ts';
import { routeMatches } from '../notify/receiver-route.ts';

/** Every kernel cell of one property (property and title scope, each error type), from the engine's dump. */
export type PropertyErrorRates = (propertyId: string) => Promise<CellFigures[]>;

const WORST_TITLES = 20;

/** What the API routes read and call. */
export interface ApiDeps {
  manager: IncidentManager;
  commands: CommandHandler;
  errorRates?: PropertyErrorRates;
  /** Delivery state of an incident's notifications, per receiver (from the notification log). */
  deliveries?: (incidentId: number) => unknown[];
  /** The configured receivers and the silences that have not ended (none: no notifications at all). */
  notifications?: NotificationSettingsSource;
}

/** What the read-only notification settings are read from. */
export interface NotificationSettingsSource {
  receivers: readonly ReceiverConfig[];
  silences: () => Silence[];
}

// Where a receiver sends, without what identifies it (a Slack webhook's path is its secret, like a routing key).
function endpoint(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

/** The receivers and matcher silences as GET /api/notification-settings serves them: no URL paths, secrets or keys. */
export function notificationSettingsView(n: NotificationSettingsSource | undefined): { receivers: unknown[]; silences: unknown[] } {
  if (!n) return { receivers: [], silences: [] };
  return {
    receivers: n.receivers.map((r) => ({
      name: r.name, type: r.kind, endpoint: endpoint(r.url),
      match: { property_id: r.match.propertyIds, video_title: r.match.videoTitles, error_type: r.match.errorTypes, scope: r.match.scopes },
      repeat_interval_ms: r.repeatIntervalMs, timeout_ms: r.timeoutMs,
      severity: r.kind === 'pagerduty' ? { ...r.severity } : null, signed: r.kind === 'webhook' ? r.secret !== null : null,
    })),
    silences: n.silences().map((x) => ({
      id: x.id, property_id: x.propertyId, video_title: x.videoTitle, error_type: x.errorType, scope: x.scope,
      comment: x.comment, created_at_ms: x.createdAtMs, expires_at_ms: x.expiresAtMs, silenced_incidents: x.silencedIncidents,
    })),
  };
}

const STATUSES = ['open', 'resolved', 'expired'];
const SCOPES = ['property', 'title'];

/** Parses list filters from the query; 400 BAD_REQUEST names every bad parameter. */
export function parseListQuery(q: URLSearchParams): IncidentFilter {
  const problems: string[] = [];
  const f: IncidentFilter = {};
  const status = q.get('status');
  if (status !== null) {
    if (STATUSES.includes(status)) f.status = status as IncidentFilter['status'];
    else problems.push(`status must be one of ${STATUSES.join(', ')}`);
  }
  const scope = q.get('scope');
  if (scope !== null) {
    if (SCOPES.includes(scope)) f.scope = scope as IncidentFilter['scope'];
    else problems.push(`scope must be one of ${SCOPES.join(', ')}`);
  }
  if (q.get('property_id') !== null) f.propertyId = q.get('property_id')!;
  if (q.get('error_type') !== null) f.errorType = q.get('error_type')!;
  const search = q.get('q');
  if (search !== null && search !== '') f.search = search;
  for (const [name, field] of [['from', 'openedFromMs'], ['to', 'openedBeforeMs']] as const) {
    const v = q.get(name);
    if (v === null) continue;
    const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (Number.isFinite(ms)) f[field] = ms;
    else problems.push(`${name} must be epoch milliseconds or an ISO-8601 time`);
  }
  for (const [name, field, max] of [['cursor', 'cursor', Number.MAX_SAFE_INTEGER], ['limit', 'limit', MAX_PAGE_LIMIT]] as const) {
    const v = q.get(name);
    if (v === null) continue;
    const n = decimalId(v);
    if (n !== null && n <= max) f[field] = n;
    else problems.push(`${name} must be a decimal integer from 1 to ${max}`);
  }
  if (problems.length) throw new HttpError(400, 'BAD_REQUEST', problems.join('; '));
  return f;
}

// A reader with several properties: one query per property, merged newest first; exact pagination
// because each per-property page is itself ordered by id.
function listFor(manager: IncidentManager, filter: IncidentFilter, grant: AccessGrant): IncidentPage {
  if (grant.properties === null) return manager.list(filter);
  if (filter.propertyId !== undefined) {
    return canSee(grant, filter.propertyId) ? manager.list(filter) : { incidents: [], nextCursor: null };
  }
  const limit = filter.limit ?? DEFAULT_PAGE_LIMIT;
  const all: Incident[] = [];
  let more = false;
  for (const propertyId of grant.properties) {
    const page = manager.list({ ...filter, propertyId, limit });
    all.push(...page.incidents);
    if (page.nextCursor !== null) more = true;
  }
  all.sort((a, b) => b.id - a.id);
  const incidents = all.slice(0, limit);
  more ||= all.length > limit;
  return { incidents, nextCursor: more && incidents.length ? incidents[incidents.length - 1].id : null };
}

/**
 * A positive decimal integer written the one canonical way (digits, no sign, no leading zero), or null.
 * Number() alone would take 0x10, 1e1, " 1" or 0b1 for other ids than the client wrote.
 */
export function decimalId(text: string): number | null {
  if (!/^[1-9][0-9]{0,15}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

function incidentId(req: RequestInfo): number {
  const id = decimalId(req.params[0]);
  if (id === null) throw new HttpError(400, 'BAD_REQUEST', 'incident id must be a positive decimal integer');
  return id;
}

// A reader asking about another property's incident gets the same 404 as for a missing one: no existence leak.
function visibleIncident(manager: IncidentManager, id: number, grant: AccessGrant): Incident {
  const incident = manager.get(id);
  if (!incident || !canSee(grant, incident.propertyId)) throw new HttpError(404, 'NOT_FOUND', `no incident ${id}`);
  return incident;
}

// A command's failure as an HTTP status: the caller's mistake 4xx, a dump target that is not configured
// 503 and one that failed 502 (S3 is the upstream), anything else 500.
const COMMAND_STATUS: Record<string, number> = {
  NOT_FOUND: 404, INVALID_ARGS: 400, INVALID_MESSAGE: 400, UNKNOWN_COMMAND: 400, NOT_SUPPORTED: 400,
  DUMP_NOT_CONFIGURED: 503, DUMP_FAILED: 502,
};

function commandReply(reply: CommandReply): Reply {
  if (reply.ok) return { json: reply };
  // Not listed: a failure that may pass (the store locked, a disk full) is 503, try again later; else 500.
  return { status: COMMAND_STATUS[reply.error.code] ?? (reply.error.retriable ? 503 : 500), json: { error: reply.error, command: reply } };
}

const ID_PARAM = { id: { description: 'incident id, in decimal (0x10, 1e1 or 010 are 400)', schema: { type: 'integer', minimum: 1 } } };
const err = (description: string) => ({ description, schema: 'Error' });

/** The /api operations: handlers and their documentation, one entry each (see route-table.ts). */
export function apiRoutes(deps: ApiDeps): RouteDef[] {
  const { manager, commands } = deps;
  const command = (name: 'silence' | 'unsilence', operationId: string, summary: string): RouteDef => ({
    method: 'post', path: `/api/incidents/{id}/${name}`, operationId, summary, tag: 'incidents', access: 'admin', pathParams: ID_PARAM,
    responses: {
      200: { description: 'the command\'s reply: the incident\'s notification state', schema: 'CommandReply' }, 400: err('bad id'), 404: err('no such incident'),
      503: err('the incident store failed in a way that may pass (locked, full): retriable'),
    },
    handler: async (req) => commandReply(await commands.handle({ id: `http-${randomUUID()}`, command: name, args: { incident_id: incidentId(req) } })),
  });
  return [
    {
      method: 'get', path: '/api/incidents', operationId: 'listIncidents', tag: 'incidents', access: 'token',
      summary: 'Incidents, newest first, with filters and cursor pagination',
      description: 'A read token sees only the incidents of its properties.',
      query: [
        { name: 'status', schema: { enum: ['open', 'resolved', 'expired'] } },
        { name: 'property_id', schema: { type: 'string' } },
        { name: 'scope', schema: { enum: ['property', 'title'] } },
        { name: 'error_type', schema: { type: 'string' } },
        { name: 'q', description: 'text in the property id, video title or error type (ASCII letters in any case)', schema: { type: 'string' } },
        { name: 'from', description: 'opened at or after (epoch ms or ISO-8601)', schema: { type: 'string' } },
        { name: 'to', description: 'opened before (epoch ms or ISO-8601)', schema: { type: 'string' } },
        { name: 'cursor', description: 'next_cursor of the previous page', schema: { type: 'integer', minimum: 1 } },
        { name: 'limit', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT } },
      ],
      responses: { 200: { description: 'a page of incidents', schema: 'IncidentPage' }, 400: err('a bad filter (every bad parameter is named)') },
      handler: (req, grant) => {
        const filter = parseListQuery(req.query);
        let page: IncidentPage;
        try {
          checkIncidentFilter(filter);
          page = listFor(manager, filter, grant);
        } catch (e) {
          if (e instanceof IncidentError) throw new HttpError(400, 'BAD_REQUEST', e.message);
          throw e;
        }
        return { json: { incidents: page.incidents.map(incidentView), next_cursor: page.nextCursor } };
      },
    },
    {
      method: 'get', path: '/api/incidents/{id}', operationId: 'getIncident', tag: 'incidents', access: 'token', pathParams: ID_PARAM,
      summary: 'An incident: trigger, current status, notifications, timeline, other occurrences',
      responses: { 200: { description: 'the incident', schema: 'IncidentDetail' }, 400: err('bad id'), 404: err('no such incident (or not one of this token\'s properties)') },
      handler: (req, grant) => {
        const incident = visibleIncident(manager, incidentId(req), grant);
        return {
          json: {
            incident: incidentView(incident),
            timeline: manager.timeline(incident.id).map(sampleView),
            other_occurrences: manager.otherOccurrences(incident.id, 10).map(occurrenceView),
            deliveries: deps.deliveries ? deps.deliveries(incident.id) : [],
            // Who is told about this incident: the receivers whose routes take it.
            receivers: (deps.notifications?.receivers ?? []).filter((r) => routeMatches(r.match, incident)).map((r) => ({ name: r.name, type: r.kind })),
            receivers_configured: deps.notifications?.receivers.length ?? 0,
          },
        };
      },
    },
    command('silence', 'silenceIncident', 'Silence the incident\'s notifications (the "silence" command)'),
    command('unsilence', 'unsilenceIncident', 'Turn the incident\'s notifications back on (the "unsilence" command)'),
    {
      method: 'post', path: '/api/commands', operationId: 'runCommand', tag: 'control', access: 'admin',
      summary: 'Run a control command through the same handler as the RabbitMQ control plane',
      description: 'Without an id, each call is a new command; with one, a repeated id gets the first reply.',
      requestBody: { description: 'the command envelope', schema: 'CommandRequest', required: true },
      responses: {
        200: { description: 'the command\'s reply', schema: 'CommandReply' },
        400: err('bad JSON, an invalid envelope, an unknown command or invalid arguments (the reply is in "command")'),
        404: err('an incident or silence the command names does not exist'),
        413: err('body over VIGIL_HTTP_MAX_BODY_BYTES'),
        500: err('the command failed'),
        502: err('a dump could not be written to S3 (DUMP_FAILED, retriable)'),
        503: err('a dump command without S3 configured (DUMP_NOT_CONFIGURED: set VIGIL_S3_BUCKET), or a failure that may pass (the store locked, a disk full: CHECKPOINT_REFUSED, CHECKPOINT_WRITE_FAILED; a cluster dump missing a task\'s share: DUMP_INCOMPLETE, ...)'),
      },
      handler: async (req) => {
        const body = jsonBody(req);
        // The caller may name the id (at-most-once on retries); otherwise each call is new.
        const envelope = body && typeof body === 'object' && !Array.isArray(body) && !('id' in body) ? { ...body, id: `http-${randomUUID()}` } : body;
        return commandReply(await commands.handle(envelope));
      },
    },
    {
      method: 'get', path: '/api/properties/{id}/error-rates', operationId: 'getErrorRates', tag: 'incidents', access: 'token',
      pathParams: { id: { description: 'property id', schema: { type: 'string' } } },
      summary: 'Current figures per error type for a property, and its worst titles',
      responses: {
        200: { description: 'figures', schema: 'ErrorRates' },
        404: err('a property Vigil has no figures or incidents of (never seen, or no view of it ever failed), or not one of this token\'s'),
      },
      handler: async (req, grant) => errorRates(deps, req.params[0], grant),
    },
    {
      method: 'get', path: '/api/notification-settings', operationId: 'getNotificationSettings', tag: 'notifications', access: 'admin',
      summary: 'The notification receivers with their routes, and the matcher silences in force (read-only)',
      description: 'Routes and silences may name any property: the admin\'s view.',
      responses: { 200: { description: 'settings', schema: 'NotificationSettings' } },
      handler: () => ({ json: notificationSettingsView(deps.notifications) }),
    },
  ];
}

async function errorRates(deps: ApiDeps, propertyId: string, grant: AccessGrant): Promise<Reply> {
  const { manager } = deps;
  const unknown = () => new HttpError(404, 'NOT_FOUND', `no property ${propertyId}: Vigil has no figures or incidents of it`);
  if (!canSee(grant, propertyId)) throw unknown();
  const open = manager.list({ status: 'open', propertyId, limit: MAX_PAGE_LIMIT }).incidents;
  const incidentOf = new Map(open.map((i) => [`${i.scope}\u0000${i.videoTitle ?? ''}\u0000${i.errorType}`, i.id]));
  const idOf = (scope: string, title: string | null, errorType: string) => incidentOf.get(`${scope}\u0000${title ?? ''}\u0000${errorType}`) ?? null;
  const everHadIncident = () => manager.list({ propertyId, limit: 1 }).incidents.length > 0;
  if (deps.errorRates) {
    const cells = await deps.errorRates(propertyId);
    if (cells.length === 0 && !everHadIncident()) throw unknown();
    const row = (c: CellFigures) => ({
      error_type: c.error_type, error_ratio: c.error_ratio, window_views: c.window_views, window_failures: c.window_failures,
      recent_error_ratio: c.recent_error_ratio, recent_views: c.recent_views, baseline_ratio: c.baseline_ratio,
      threshold_ratio: c.open_threshold_ratio ?? c.threshold_ratio, at_ms: c.at_ms, incident_id: idOf(c.scope, c.video_title, c.error_type),
    });
    return {
      json: {
        property_id: propertyId, source: 'kernel',
        error_types: cells.filter((c) => c.scope === 'property').sort((a, b) => b.error_ratio - a.error_ratio).map(row),
        worst_titles: cells.filter((c) => c.scope === 'title' && c.window_views > 0)
          .sort((a, b) => b.error_ratio - a.error_ratio || b.window_failures - a.window_failures).slice(0, WORST_TITLES)
          .map((c) => ({ video_title: c.video_title, ...row(c) })),
      },
    };
  }
  // No engine (e.g. a server over a store alone): the figures of the keys that are in an incident now.
  if (open.length === 0 && !everHadIncident()) throw unknown();
  const row = (i: Incident) => ({
    error_type: i.errorType, error_ratio: i.currentErrorRatio, window_views: i.currentWindowViews, window_failures: null,
    recent_error_ratio: null, recent_views: null, baseline_ratio: i.baselineRatio, threshold_ratio: i.thresholdRatio,
    at_ms: i.updatedAtMs, incident_id: i.id,
  });
  return {
    json: {
      property_id: propertyId, source: 'incidents',
      error_types: open.filter((i) => i.scope === 'property').map(row),
      worst_titles: open.filter((i) => i.scope === 'title').sort((a, b) => b.currentErrorRatio - a.currentErrorRatio).slice(0, WORST_TITLES)
        .map((i) => ({ video_title: i.videoTitle, ...row(i) })),
    },
  };
}
