import type { AccessGrant } from '../config/http-config.ts';
import type { Reply, RequestInfo } from './http-exchange.ts';

/** Who may call an operation: anyone, any valid token (a read token sees only its properties), or only the admin token. */
export type Access = 'public' | 'token' | 'admin';

/** One documented answer of an operation. */
export interface ResponseDoc {
  description: string;
  /** The components/schemas entry of a JSON body. */
  schema?: string;
  /** A non-JSON body's media type (the schema, if any, then describes it as a string). */
  mediaType?: string;
  /** Response headers, by name. */
  headers?: Record<string, { description: string; schema: Record<string, unknown> }>;
}

/**
 * One HTTP operation, from which both the router and the OpenAPI document are made: what is served
 * is what is documented, and the other way round.
 */
export interface RouteDef {
  method: 'get' | 'post';
  /** In OpenAPI form, e.g. /api/incidents/{id}; each {param} is one path segment. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  /** Query parameters (path parameters are given by `pathParams`). */
  query?: Array<{ name: string; description?: string; schema: Record<string, unknown> }>;
  pathParams?: Record<string, { description: string; schema: Record<string, unknown> }>;
  requestBody?: { description: string; schema: string; required: boolean };
  /** Status -> answer; the document adds 401/403 of the access level and 405 (another method). */
  responses: Record<number, ResponseDoc>;
  handler: (req: RequestInfo, grant: AccessGrant) => Reply | Promise<Reply>;
}

/** The uWS pattern of an OpenAPI path: /api/incidents/{id} -> /api/incidents/:id. */
export function uwsPattern(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}
