// The JSON shapes the API answers with (components/schemas of the OpenAPI document). The handlers in
// api-routes.ts build these objects; test/http-api.test.ts checks every answer against them.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const str = { type: 'string' } as const;
const ratio = { type: 'number', minimum: 0, maximum: 1 } as const;
const nullable = (type: string) => ({ type: [type, 'null'] });
const obj = (required: string[], properties: Record<string, unknown>, description?: string) =>
  ({ type: 'object', ...(description ? { description } : {}), required, properties });

const ERROR_RATE_FIELDS = {
  error_type: str,
  error_ratio: { ...ratio, description: 'failures / views of the detector\'s window' },
  window_views: int,
  window_failures: nullable('integer'),
  recent_error_ratio: { type: ['number', 'null'], description: 'of the recent window (what an open incident reports); null from incidents' },
  recent_views: nullable('integer'),
  baseline_ratio: ratio,
  threshold_ratio: { ...ratio, description: 'what the window must clear now (an open incident: the threshold it crossed)' },
  at_ms: { ...int, description: 'event time of the figures' },
  incident_id: { type: ['integer', 'null'], description: 'the open incident of this cell, if any' },
};

export const SCHEMAS: Record<string, unknown> = {
  Error: obj(['error'], {
    error: obj(['code', 'message', 'retriable'], {
      code: { ...str, description: 'stable: NOT_FOUND, BAD_REQUEST, BAD_JSON, BODY_TOO_LARGE, UNAUTHORIZED, FORBIDDEN, METHOD_NOT_ALLOWED, a command\'s code, INTERNAL' },
      message: str,
      retriable: { type: 'boolean', description: 'whether the same request may succeed later' },
      request_id: { ...str, description: 'on 500 INTERNAL only: the id under which the failure is logged' },
    }),
  }),
  Incident: obj(
    ['id', 'scope', 'property_id', 'video_title', 'error_type', 'status', 'summary', 'opened_at_ms', 'closed_at_ms', 'trigger', 'current', 'notifications'],
    {
      id: int, scope: { enum: ['property', 'title'] }, property_id: str, video_title: nullable('string'),
      error_type: str, status: { enum: ['open', 'resolved', 'expired'] }, summary: { ...str, description: 'the reference\'s wording' },
      opened_at_ms: int, closed_at_ms: nullable('integer'), notifications: { enum: ['on', 'silenced'] },
      trigger: obj(['opened_at_ms', 'error_ratio', 'views_per_hour', 'threshold_ratio', 'baseline_ratio', 'min_window_views'], {
        opened_at_ms: int, error_ratio: ratio, views_per_hour: num, threshold_ratio: ratio, baseline_ratio: ratio, min_window_views: int,
      }, 'the figures that opened it'),
      current: obj(['error_ratio', 'views_per_hour', 'window_views', 'updated_at_ms', 'open_for_ms', 'impacted_views', 'impacted_views_per_hour'], {
        error_ratio: ratio, views_per_hour: num, window_views: int, updated_at_ms: int,
        open_for_ms: int, impacted_views: int, impacted_views_per_hour: int,
      }, 'the latest figures'),
    },
  ),
  IncidentPage: obj(['incidents', 'next_cursor'], {
    incidents: { type: 'array', items: ref('Incident') },
    next_cursor: { type: ['integer', 'null'], description: 'pass as cursor for the next page; null on the last' },
  }),
  TimelineSample: obj(['at_ms', 'error_ratio', 'threshold_ratio', 'window_views'], { at_ms: int, error_ratio: ratio, threshold_ratio: ratio, window_views: int }),
  Occurrence: obj(['id', 'status', 'opened_at_ms', 'closed_at_ms', 'duration_ms'], {
    id: int, status: { enum: ['open', 'resolved', 'expired'] }, opened_at_ms: int, closed_at_ms: nullable('integer'), duration_ms: nullable('integer'),
  }),
  Delivery: obj(['receiver', 'kind', 'state', 'attempts', 'last_status', 'last_error'], {
    receiver: str, kind: { enum: ['opened', 'resolved', 'expired', 'repeat', 'unsilenced'] }, state: { enum: ['pending', 'delivered', 'failed', 'held'] },
    attempts: int, last_status: nullable('integer'), last_error: nullable('string'),
  }, 'one notification to one receiver'),
  RoutedReceiver: obj(['name', 'type'], { name: str, type: { enum: ['slack', 'webhook', 'pagerduty', 'alertmanager'] } }),
  IncidentDetail: obj(['incident', 'timeline', 'other_occurrences', 'deliveries', 'receivers', 'receivers_configured'], {
    incident: ref('Incident'),
    timeline: { type: 'array', items: ref('TimelineSample'), description: 'one sample a minute while open' },
    other_occurrences: { type: 'array', items: ref('Occurrence'), description: 'earlier incidents of the same key, newest first' },
    deliveries: { type: 'array', items: ref('Delivery') },
    receivers: { type: 'array', items: ref('RoutedReceiver'), description: 'the receivers whose routes take this incident' },
    receivers_configured: { ...int, description: 'how many receivers are configured in all' },
  }),
  ErrorRate: obj(Object.keys(ERROR_RATE_FIELDS), ERROR_RATE_FIELDS, 'one error type of the property (or of one title)'),
  TitleErrorRate: obj(['video_title', ...Object.keys(ERROR_RATE_FIELDS)], { video_title: str, ...ERROR_RATE_FIELDS }),
  ErrorRates: obj(['property_id', 'source', 'error_types', 'worst_titles'], {
    property_id: str,
    source: { enum: ['kernel', 'incidents'], description: 'kernel: the detector\'s figures for every cell; incidents: only keys in an open incident (no engine attached)' },
    error_types: { type: 'array', items: ref('ErrorRate') },
    worst_titles: { type: 'array', items: ref('TitleErrorRate'), description: 'at most 20, worst first' },
  }),
  CommandRequest: obj(['command'], {
    id: { ...str, description: 'makes retries run once: a repeated id gets the first reply' },
    command: { ...str, description: 'status, checkpoint, silence, unsilence, silence-matching, unsilence-matching, silences, notifications, set-thresholds, dump-error-rates, dump-incidents' },
    args: { type: 'object', additionalProperties: true },
  }),
  CommandReply: obj(['id', 'command', 'ok'], {
    id: str, command: str, ok: { type: 'boolean' },
    result: { description: 'the command\'s result (ok: true)' },
    error: obj(['code', 'message', 'retriable'], { code: str, message: str, retriable: { type: 'boolean' } }, 'ok: false'),
  }),
  Health: obj(['ok'], { ok: { type: 'boolean' }, checks: { type: 'object', additionalProperties: { type: ['boolean', 'string'] } } }),
  Receiver: obj(['name', 'type', 'endpoint', 'match', 'repeat_interval_ms', 'timeout_ms', 'severity', 'signed'], {
    name: str, type: { enum: ['slack', 'webhook', 'pagerduty', 'alertmanager'] },
    endpoint: { ...str, description: 'scheme, host and port only (a Slack webhook\'s path is its secret)' },
    match: obj(['property_id', 'video_title', 'error_type', 'scope'], {
      property_id: { type: ['array', 'null'], items: str }, video_title: { type: ['array', 'null'], items: str },
      error_type: { type: ['array', 'null'], items: str }, scope: { type: ['array', 'null'], items: str },
    }, 'every list that is set must contain the incident\'s value; null: any'),
    repeat_interval_ms: nullable('integer'), timeout_ms: int,
    severity: { type: ['object', 'null'], description: 'PagerDuty: severity per scope', additionalProperties: str },
    signed: { type: ['boolean', 'null'], description: 'webhook: whether requests carry an HMAC signature' },
  }),
  Silence: obj(['id', 'property_id', 'video_title', 'error_type', 'scope', 'comment', 'created_at_ms', 'expires_at_ms', 'silenced_incidents'], {
    id: int, property_id: nullable('string'), video_title: nullable('string'), error_type: nullable('string'), scope: nullable('string'),
    comment: str, created_at_ms: int, expires_at_ms: int, silenced_incidents: { type: 'array', items: int },
  }),
  NotificationSettings: obj(['receivers', 'silences'], {
    receivers: { type: 'array', items: ref('Receiver') },
    silences: { type: 'array', items: ref('Silence'), description: 'matcher silences that have not ended' },
  }),
};
