import uWS from 'uWebSockets.js';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Logger } from '../log/logger.ts';
import type { HttpConfig } from '../config/http-config.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { CommandHandler } from '../control/command-handler.ts';
import { negotiateFormat, PROMETHEUS_TEXT, type Counter, type MetricsRegistry } from '../metrics/metrics-registry.ts';
import { FeedHub } from './feed-hub.ts';
import { AccessControl, OPEN_GRANT, requireAdmin } from './access-control.ts';
import { apiRoutes, type NotificationSettingsSource, type PropertyErrorRates } from './api-routes.ts';
import { exchange, type ErrorReporter, type Handler, type Reply, type RequestInfo } from './http-exchange.ts';
import { uwsPattern, type RouteDef } from './route-table.ts';
import { HttpError } from './http-error.ts';
import { openApiDocument } from './openapi.ts';
import { loadStaticFiles, type StaticFile } from './static-files.ts';

/** Readiness as /readyz reports it. */
export interface Readiness {
  ok: boolean;
  checks: Record<string, boolean | string>;
}

/** The server's collaborators. */
export interface HttpServerOptions {
  config: HttpConfig;
  logger: Logger;
  manager: IncidentManager;
  commands: CommandHandler;
  metrics: MetricsRegistry;
  ready: () => Readiness;
  version: string;
  errorRates?: PropertyErrorRates;
  deliveries?: (incidentId: number) => unknown[];
  notifications?: NotificationSettingsSource;
  now?: () => number;
}

/** Thrown when the server cannot listen (port taken, bad host). */
export class HttpListenError extends Error {
  readonly code = 'HTTP_LISTEN_FAILED';
  readonly retriable = true;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

// uWebSockets.js exports the listen option at run time, but its typings have it only as a type-only
// enum, and the (host, port, options, cb) form of listen() not at all.
const LIBUS_LISTEN_EXCLUSIVE_PORT: number = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;

// The dashboard's only sources are this origin: no CDN, no fonts, no external requests.
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/**
 * The daemon's HTTP side on uWebSockets.js: the JSON API, /healthz, /readyz, /metrics, the OpenAPI
 * document, the WebSocket feed and the dashboard's static files, all on one port.
 */
export class HttpServer {
  readonly feed: FeedHub;
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private readonly access: AccessControl;
  private readonly files: Map<string, StaticFile>;
  private readonly log: Logger;
  /** Registered "METHOD path" pairs in OpenAPI form (/api/incidents/{id}). */
  readonly routes: string[] = [];
  /** The port listened on (resolved when configured as 0). */
  port = 0;
  private stopped = false;
  private readonly requests: Counter;
  /** Every operation the server answers, which the OpenAPI document is also made from. */
  readonly routeTable: RouteDef[];

  constructor(private readonly opts: HttpServerOptions) {
    this.log = opts.logger;
    this.access = new AccessControl(opts.config.tokens);
    this.files = loadStaticFiles();
    this.app = uWS.App();
    this.feed = new FeedHub({
      manager: opts.manager, logger: opts.logger.child({ component: 'feed' }), maxBufferedBytes: opts.config.feedMaxBufferedBytes,
      updateIntervalMs: opts.config.feedUpdateIntervalMs, now: opts.now, metrics: opts.metrics,
    });
    this.requests = opts.metrics.counter('vigil_http_requests_total',
      'HTTP requests by method, route (the OpenAPI path or page pattern; "unmatched" for unknown paths) and status code.', ['method', 'route', 'code']);
    this.routeTable = [...apiRoutes({
      manager: opts.manager, commands: opts.commands, errorRates: opts.errorRates, deliveries: opts.deliveries, notifications: opts.notifications,
    }), ...this.serviceRoutes()];
    this.register();
  }

  /** Probes, metrics and this document: the operations outside /api/ that clients rely on. */
  private serviceRoutes(): RouteDef[] {
    const health = (description: string) => ({ description, schema: 'Health' });
    return [
      {
        method: 'get', path: '/api/openapi.json', operationId: 'getOpenApiDocument', tag: 'service', access: 'public',
        summary: 'This document (OpenAPI 3.1), made from the routes the server registers',
        responses: { 200: { description: 'the OpenAPI document', mediaType: 'application/json' } },
        handler: (req) => ({ json: openApiDocument(this.routeTable, this.opts.version, this.opts.config.publicUrl ?? `http://${req.headers.host || 'localhost'}`) }),
      },
      {
        method: 'get', path: '/healthz', operationId: 'getHealth', tag: 'service', access: 'public',
        summary: 'Liveness: the process answers', responses: { 200: health('up') },
        handler: () => ({ json: { ok: true } }),
      },
      {
        method: 'get', path: '/readyz', operationId: 'getReadiness', tag: 'service', access: 'public',
        summary: 'Readiness: workers up, source started, nothing degraded (store, checkpoint, audit file, source, engine), not stopping',
        responses: { 200: health('ready'), 503: health('not ready; checks says what is missing, a degraded check holding its reason instead of true') },
        handler: () => {
          const r = this.opts.ready();
          return { status: r.ok ? 200 : 503, json: r };
        },
      },
      {
        method: 'get', path: '/metrics', operationId: 'getMetrics', tag: 'service', access: 'public',
        summary: 'Prometheus metrics; OpenMetrics when the Accept header prefers application/openmetrics-text',
        responses: { 200: { description: 'the metrics in the negotiated format', mediaType: PROMETHEUS_TEXT } },
        handler: async (req) => {
          const { body, contentType } = await this.opts.metrics.render(negotiateFormat(req.headers.accept));
          return { body, contentType };
        },
      },
    ];
  }

  // Every answer is counted by method (known ones; "other" else), route and status code.
  private counted(route: string, handler: Handler): Handler {
    return async (req) => {
      let status = 500;
      try {
        const reply = await handler(req);
        status = reply.status ?? 200;
        return reply;
      } catch (err) {
        status = err instanceof HttpError ? err.status : 500;
        throw err;
      } finally {
        this.requests.inc({ method: KNOWN_METHODS.has(req.method) ? req.method : 'other', route, code: String(status) });
      }
    };
  }

  private handle(pattern: string, route: string, handler: Handler): (res: HttpResponse, req: HttpRequest) => void {
    const params = (pattern.match(/:\w+/g) ?? []).length;
    // A bug or a store error: logged under the request id its 500 answer carries.
    const onError: ErrorReporter = (err, requestId) => this.log.error({ err, route, requestId }, 'request failed');
    const counted = this.counted(route, handler);
    return (res, req) => exchange(res, req, params, this.opts.config.maxBodyBytes, counted, onError);
  }

  private register(): void {
    // The route table: each operation's handler, behind its access level.
    const methodsOf = new Map<string, Set<string>>();
    const allow = (pattern: string, method: string) => (methodsOf.get(pattern) ?? methodsOf.set(pattern, new Set()).get(pattern)!).add(method.toUpperCase());
    for (const r of this.routeTable) {
      this.routes.push(`${r.method.toUpperCase()} ${r.path}`);
      const pattern = uwsPattern(r.path);
      allow(pattern, r.method);
      const { handler } = r;
      const h = this.handle(pattern, r.path, (req) => {
        const grant = r.access === 'public' ? OPEN_GRANT : this.access.grant(req.headers.authorization, req.query.get('access_token'));
        if (r.access === 'admin') requireAdmin(grant);
        return handler(req, grant);
      });
      this.app[r.method](pattern, h);
      // HEAD wherever GET is (monitors and link checkers ask with it): the same answer without its body.
      if (r.method === 'get') {
        allow(pattern, 'head');
        this.app.head(pattern, h);
      }
    }
    // The WebSocket feed (described in the document's "service" tag: OpenAPI has no WebSocket operations).
    this.feed.attach(this.app, (authorization, query) => this.access.grant(authorization, query.get('access_token')));

    // The dashboard: pages and their files (no token: they carry no property data).
    const pages: Array<[string, (req: RequestInfo) => Reply]> = [
      ['/', () => this.file('index.html')],
      ['/incidents/:id', () => this.file('incident.html')],
      ['/properties/:property/incidents/:id', () => this.file('incident.html')],
      ['/settings/notifications', () => this.file('settings.html')],
      ['/static/:name', (req) => this.file(req.params[0])],
      // Browsers ask for it at the root whatever the pages link.
      ['/favicon.ico', () => this.file('favicon.ico')],
    ];
    for (const [pattern, page] of pages) {
      allow(pattern, 'get');
      allow(pattern, 'head');
      const h = this.handle(pattern, pattern, page);
      this.app.get(pattern, h);
      this.app.head(pattern, h);
    }
    // A known path asked with another method: 405 naming the ones it has (uWS tries a pattern's
    // method handlers before its any handler).
    for (const [pattern, methods] of methodsOf) {
      const allowed = [...methods].sort().join(', ');
      const route = pattern.replace(/:(\w+)/g, '{$1}');
      this.app.any(pattern, this.handle(pattern, route, (req) => {
        throw Object.assign(new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${route}; allowed: ${allowed}`), { headers: { allow: allowed } });
      }));
    }
    // Anything else: a JSON 404 with a stable code, counted as "unmatched".
    this.app.any('/*', this.handle('/*', 'unmatched', (r) => {
      throw new HttpError(404, 'NOT_FOUND', `no route ${r.method} ${r.path.slice(0, 200)}`);
    }));
  }

  private file(name: string): Reply {
    const f = this.files.get(name);
    if (!f) throw new HttpError(404, 'NOT_FOUND', `no file ${name}`);
    return { body: f.body, contentType: f.contentType, headers: { 'content-security-policy': CSP, 'cache-control': 'no-cache' } };
  }

  /** Listens on the configured host and port and starts the feed; throws HttpListenError when it cannot. */
  async start(): Promise<void> {
    const { host, port } = this.opts.config;
    // uWS listens with SO_REUSEPORT by default on Linux: a second daemon on the same port would bind it
    // too and take half the requests. Exclusive, the second one fails here and says so.
    const listen = this.app.listen as unknown as (host: string, port: number, options: number, cb: (s: us_listen_socket | false) => void) => void;
    const socket = await new Promise<us_listen_socket | false>((resolve) => listen.call(this.app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve));
    if (!socket) {
      throw new HttpListenError(`cannot listen on ${host}:${port}: port ${port} is in use (another process listens there) or ${host} is not an address of this machine; ` +
        'set VIGIL_HTTP_PORT / VIGIL_HTTP_HOST');
    }
    this.listenSocket = socket;
    this.port = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
    this.feed.start();
    this.log.info({ host, port: this.port, url: `http://${host.includes(':') ? `[${host}]` : host}:${this.port}/`, tokens: this.access.enforced },
      this.access.enforced ? 'http listening' : 'http listening without tokens (open to anyone on this machine; loopback only)');
  }

  /** Stops listening and closes feed clients; idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.feed.stop();
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
  }
}
