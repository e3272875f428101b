/** The OpenAPI 3.1 document served at /api/openapi.json; test/http-api.test.ts checks it against the server's routes. */
export function openApiDocument(version: string): Record<string, unknown> {
  const err = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
  const json = (description: string, ref: string) => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
  const auth = [{ bearer: [] }, { accessToken: [] }];
  const command = (summary: string) => ({
    summary, security: auth, parameters: [idParam],
    responses: { 200: json('the command reply', 'CommandReply'), 400: err('bad id'), 401: err('no valid token'), 403: err('not the admin token'), 404: err('no such incident') },
  });
  return {
    openapi: '3.1.0',
    info: { title: 'Vigil', version, description: 'Live video-playback incidents. Errors are {"error":{"code","message","retriable"}}; unknown routes 404 NOT_FOUND, bodies over the limit 413 BODY_TOO_LARGE, bad JSON 400 BAD_JSON.' },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'admin token or a property-scoped read token' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token' },
      },
      schemas: {
        Error: {
          type: 'object', required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message', 'retriable'], properties: { code: { type: 'string' }, message: { type: 'string' }, retriable: { type: 'boolean' } } } },
        },
        Incident: {
          type: 'object',
          required: ['id', 'scope', 'property_id', 'video_title', 'error_type', 'status', 'summary', 'opened_at_ms', 'closed_at_ms', 'trigger', 'current', 'notifications'],
          properties: {
            id: { type: 'integer' }, scope: { enum: ['property', 'title'] }, property_id: { type: 'string' }, video_title: { type: ['string', 'null'] },
            error_type: { type: 'string' }, status: { enum: ['open', 'resolved', 'expired'] }, summary: { type: 'string' },
            opened_at_ms: { type: 'integer' }, closed_at_ms: { type: ['integer', 'null'] }, notifications: { enum: ['on', 'silenced'] },
            trigger: {
              type: 'object', required: ['opened_at_ms', 'error_ratio', 'views_per_hour', 'threshold_ratio', 'baseline_ratio', 'min_window_views'],
              properties: { opened_at_ms: { type: 'integer' }, error_ratio: { type: 'number' }, views_per_hour: { type: 'number' }, threshold_ratio: { type: 'number' }, baseline_ratio: { type: 'number' }, min_window_views: { type: 'integer' } },
            },
            current: {
              type: 'object', required: ['error_ratio', 'views_per_hour', 'window_views', 'updated_at_ms', 'open_for_ms', 'impacted_views', 'impacted_views_per_hour'],
              properties: {
                error_ratio: { type: 'number' }, views_per_hour: { type: 'number' }, window_views: { type: 'integer' }, updated_at_ms: { type: 'integer' },
                open_for_ms: { type: 'integer' }, impacted_views: { type: 'integer' }, impacted_views_per_hour: { type: 'integer' },
              },
            },
          },
        },
        IncidentPage: {
          type: 'object', required: ['incidents', 'next_cursor'],
          properties: { incidents: { type: 'array', items: { $ref: '#/components/schemas/Incident' } }, next_cursor: { type: ['integer', 'null'] } },
        },
        IncidentDetail: {
          type: 'object', required: ['incident', 'timeline', 'other_occurrences'],
          properties: {
            incident: { $ref: '#/components/schemas/Incident' },
            timeline: { type: 'array', items: { type: 'object', required: ['at_ms', 'error_ratio', 'threshold_ratio', 'window_views'] } },
            other_occurrences: { type: 'array', items: { type: 'object', required: ['id', 'status', 'opened_at_ms', 'closed_at_ms', 'duration_ms'] } },
            deliveries: { type: 'array', description: 'Notification deliveries per receiver and transition: state (pending, delivered, failed, held), attempts, last HTTP status and error.', items: { type: 'object', required: ['receiver', 'kind', 'state', 'attempts'] } },
            receivers: { type: 'array', description: 'The receivers whose routes take this incident', items: { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { enum: ['slack', 'webhook', 'pagerduty', 'alertmanager'] } } } },
            receivers_configured: { type: 'integer', description: 'How many receivers are configured in all' },
          },
        },
        NotificationSettings: {
          type: 'object', required: ['receivers', 'silences'],
          properties: {
            receivers: { type: 'array', items: { type: 'object', required: ['name', 'type', 'endpoint', 'match', 'repeat_interval_ms', 'timeout_ms'], properties: { name: { type: 'string' }, type: { type: 'string' }, endpoint: { type: 'string', description: 'scheme, host and port only' }, match: { type: 'object' }, repeat_interval_ms: { type: ['integer', 'null'] }, timeout_ms: { type: 'integer' }, severity: { type: ['object', 'null'] }, signed: { type: ['boolean', 'null'] } } } },
            silences: { type: 'array', items: { type: 'object', required: ['id', 'comment', 'created_at_ms', 'expires_at_ms'], properties: { id: { type: 'integer' }, property_id: { type: ['string', 'null'] }, video_title: { type: ['string', 'null'] }, error_type: { type: ['string', 'null'] }, scope: { type: ['string', 'null'] }, comment: { type: 'string' }, created_at_ms: { type: 'integer' }, expires_at_ms: { type: 'integer' }, silenced_incidents: { type: 'array', items: { type: 'integer' } } } } },
          },
        },
        ErrorRates: {
          type: 'object', required: ['property_id', 'source', 'error_types', 'worst_titles'],
          properties: {
            property_id: { type: 'string' },
            source: { enum: ['kernel', 'incidents'], description: 'kernel: the detector\'s figures for every cell; incidents: only keys in an open incident (no engine attached)' },
            error_types: { type: 'array', items: { type: 'object', required: ['error_type', 'error_ratio', 'window_views', 'threshold_ratio', 'incident_id'] } },
            worst_titles: { type: 'array', items: { type: 'object', required: ['video_title', 'error_type', 'error_ratio', 'window_views', 'threshold_ratio', 'incident_id'] } },
          },
        },
        CommandReply: { type: 'object', required: ['id', 'command', 'ok'], properties: { id: { type: 'string' }, command: { type: 'string' }, ok: { type: 'boolean' }, result: {}, error: {} } },
        Health: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' }, checks: { type: 'object' } } },
      },
    },
    paths: {
      '/api/incidents': {
        get: {
          summary: 'Incidents, newest first, with filters and cursor pagination', security: auth,
          parameters: [
            { name: 'status', in: 'query', schema: { enum: ['open', 'resolved', 'expired'] } },
            { name: 'property_id', in: 'query', schema: { type: 'string' } },
            { name: 'scope', in: 'query', schema: { enum: ['property', 'title'] } },
            { name: 'error_type', in: 'query', schema: { type: 'string' } },
            { name: 'q', in: 'query', description: 'text in the property id, video title or error type (ASCII letters case-insensitively)', schema: { type: 'string' } },
            { name: 'from', in: 'query', description: 'opened at or after (epoch ms or ISO-8601)', schema: { type: 'string' } },
            { name: 'to', in: 'query', description: 'opened before (epoch ms or ISO-8601)', schema: { type: 'string' } },
            { name: 'cursor', in: 'query', description: 'next_cursor of the previous page', schema: { type: 'integer' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          ],
          responses: { 200: json('a page of incidents', 'IncidentPage'), 400: err('bad filter'), 401: err('no valid token') },
        },
      },
      '/api/incidents/{id}': {
        get: {
          summary: 'An incident: trigger, current status, notifications, timeline, other occurrences', security: auth, parameters: [idParam],
          responses: { 200: json('the incident', 'IncidentDetail'), 400: err('bad id'), 401: err('no valid token'), 404: err('no such incident (or not visible to this token)') },
        },
      },
      '/api/incidents/{id}/silence': { post: command('Silence the incident\'s notifications (admin; the "silence" command)') },
      '/api/incidents/{id}/unsilence': { post: command('Turn the incident\'s notifications back on (admin; the "unsilence" command)') },
      '/api/commands': {
        post: {
          summary: 'Run a control command through the same handler as the RabbitMQ control plane (admin)', security: auth,
          requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['command'], properties: { id: { type: 'string' }, command: { type: 'string' }, args: { type: 'object' } } } } } },
          responses: { 200: json('the command reply', 'CommandReply'), 400: err('bad JSON or invalid command'), 401: err('no valid token'), 403: err('not the admin token'), 404: err('unknown incident'), 413: err('body too large'), 500: err('the command failed') },
        },
      },
      '/api/properties/{id}/error-rates': {
        get: {
          summary: 'Current figures per error type for a property and its worst titles', security: auth,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: json('figures', 'ErrorRates'), 401: err('no valid token'), 404: err('not visible to this token') },
        },
      },
      '/api/notification-settings': {
        get: {
          summary: 'The notification receivers with their routes, and the matcher silences that have not ended (read-only; admin)', security: auth,
          responses: { 200: json('settings', 'NotificationSettings'), 401: err('no valid token'), 403: err('not the admin token') },
        },
      },
      '/api/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/healthz': { get: { summary: 'The process is up', responses: { 200: json('up', 'Health') } } },
      '/readyz': { get: { summary: 'Source connected and workers up', responses: { 200: json('ready', 'Health'), 503: json('not ready', 'Health') } } },
      '/metrics': { get: { summary: 'Prometheus text format', responses: { 200: { description: 'metrics', content: { 'text/plain': {} } } } } },
      '/feed': { get: { summary: 'WebSocket live feed (upgrade): snapshot, then opened/updated/resolved/expired/silenced/unsilenced deltas; ?property= narrows to one property', security: auth, responses: { 101: { description: 'switching protocols' }, 401: err('no valid token'), 403: err('property not visible') } } },
    },
  };
}
