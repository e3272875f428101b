import { SCHEMAS } from './api-schemas.ts';
import type { RouteDef } from './route-table.ts';

const TAGS = [
  { name: 'incidents', description: 'Incidents and the detector\'s current figures' },
  { name: 'control', description: 'Control commands (the same handler as the RabbitMQ control plane)' },
  { name: 'notifications', description: 'Notification receivers, routes and silences' },
  {
    name: 'service',
    description: 'Probes, metrics and this document. The live feed is a WebSocket at ws://HOST:PORT/feed[?property=P] (token as '
      + 'Authorization: Bearer or ?access_token=): a snapshot of the open incidents, then opened, updated, resolved, expired, silenced '
      + 'and unsilenced messages ({"type","at_ms","incident"}); send {"type":"subscribe","property_id":"P"} (or null) to change it.',
  },
];

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

/**
 * The OpenAPI 3.1 document served at /api/openapi.json, made from the same route table the server
 * registers (HttpServer.routeTable), so it cannot describe an operation that is not served or miss
 * one that is. `server` is the base URL the document names (the one the request came to).
 */
export function openApiDocument(routes: readonly RouteDef[], version: string, server: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(r.responses)) {
      const content = doc.schema
        ? { [doc.mediaType ?? 'application/json']: { schema: doc.mediaType && doc.mediaType !== 'application/json' ? { type: 'string' } : { $ref: `#/components/schemas/${doc.schema}` } } }
        : doc.mediaType ? { [doc.mediaType]: { schema: { type: 'string' } } } : undefined;
      responses[status] = { description: doc.description, ...(content ? { content } : {}), ...(doc.headers ? { headers: doc.headers } : {}) };
    }
    if (r.access !== 'public') responses['401'] ??= errorResponse('no valid token (tokens are configured)');
    if (r.access === 'admin') responses['403'] ??= errorResponse('not the admin token');
    responses['405'] ??= {
      ...errorResponse('another method than the path has (METHOD_NOT_ALLOWED)'),
      headers: { Allow: { description: 'the methods the path has', schema: { type: 'string' } } },
    };
    const parameters = [
      ...Object.entries(r.pathParams ?? {}).map(([name, p]) => ({ name, in: 'path', required: true, description: p.description, schema: p.schema })),
      ...(r.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, ...(q.description ? { description: q.description } : {}), schema: q.schema })),
    ];
    paths[r.path] ??= {};
    paths[r.path][r.method] = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      // Public operations say so: no token is needed, whatever the document's default.
      security: r.access === 'public' ? [] : [{ bearer: [] }, { accessToken: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(r.requestBody ? {
        requestBody: { description: r.requestBody.description, required: r.requestBody.required, content: { 'application/json': { schema: { $ref: `#/components/schemas/${r.requestBody.schema}` } } } },
      } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Vigil',
      version,
      description: 'Real-time error-rate alerting for video playback: incidents, their figures, notifications and control. '
        + 'Errors are {"error":{"code","message","retriable"}}. Unknown paths answer 404 NOT_FOUND, a known path with another '
        + 'method 405 METHOD_NOT_ALLOWED with an Allow header, bodies over the limit 413 BODY_TOO_LARGE, bad JSON 400 BAD_JSON, a malformed '
        + 'path or parameter 400 BAD_REQUEST; a bug 500 INTERNAL with "request_id", under which it is logged.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: server, description: 'this Vigil' }],
    security: [{ bearer: [] }, { accessToken: [] }],
    tags: TAGS,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'VIGIL_ADMIN_TOKEN, or a property-scoped read token (VIGIL_READ_TOKENS); with no tokens configured every operation is open (loopback only)' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token', description: 'the same token in the query (WebSocket clients, browsers)' },
      },
      schemas: SCHEMAS,
    },
    paths,
  };
}
