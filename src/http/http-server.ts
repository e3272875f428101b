import uWS from 'uWebSockets.js';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Logger } from '../log/logger.ts';
import type { HttpConfig } from '../config/http-config.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { CommandHandler } from '../control/command-handler.ts';
import type { MetricsRegistry } from '../metrics/metrics-registry.ts';
import { FeedHub } from '../feed/feed-hub.ts';
import { AccessControl } from './access-control.ts';
import { apiRoutes, type NotificationSettingsSource, type PropertyErrorRates } from './api-routes.ts';
import { exchange, type Handler, type Reply } from './http-exchange.ts';
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
  /** Registered "METHOD path" pairs in OpenAPI form (/api/incidents/{id}), for the OpenAPI test. */
  readonly routes: string[] = [];
  /** The port listened on (resolved when configured as 0). */
  port = 0;
  private stopped = false;
  private readonly requests;

  constructor(private readonly opts: HttpServerOptions) {
    this.log = opts.logger;
    this.access = new AccessControl(opts.config.tokens);
    this.files = loadStaticFiles();
    this.app = uWS.App();
    this.feed = new FeedHub({
      manager: opts.manager, logger: opts.logger.child({ component: 'feed' }), maxBufferedBytes: opts.config.feedMaxBufferedBytes,
      updateIntervalMs: opts.config.feedUpdateIntervalMs, now: opts.now, metrics: opts.metrics,
    });
    this.requests = opts.metrics.counter('vigil_http_requests_total', 'HTTP requests, by route and status class.');
    this.register();
  }

  private route(method: 'get' | 'post', pattern: string, handler: Handler): void {
    const params = (pattern.match(/:\w+/g) ?? []).length;
    const name = `${method.toUpperCase()} ${pattern}`;
    this.routes.push(`${method.toUpperCase()} ${pattern.replace(/:(\w+)/g, '{$1}')}`);
    const onError = (err: unknown) => this.log.error({ err, route: name }, 'request failed');
    const counted: Handler = async (req) => {
      let status = 500;
      try {
        const reply = await handler(req);
        status = reply.status ?? 200;
        return reply;
      } catch (err) {
        status = err instanceof HttpError ? err.status : 500;
        throw err;
      } finally {
        this.requests.inc({ route: name, code: `${Math.floor(status / 100)}xx` });
      }
    };
    this.app[method](pattern, (res, req) => exchange(res, req, params, this.opts.config.maxBodyBytes, counted, onError));
  }

  private register(): void {
    const { config } = this.opts;
    const routes = apiRoutes({
      manager: this.opts.manager, commands: this.opts.commands, errorRates: this.opts.errorRates, deliveries: this.opts.deliveries,
      notifications: this.opts.notifications,
    });
    for (const [key, handler] of Object.entries(routes)) {
      const [method, pattern] = key.split(' ');
      this.route(method.toLowerCase() as 'get' | 'post', pattern, (req) => handler(req, this.access.grant(req.headers.authorization, req.query.get('access_token'))));
    }
    const doc = openApiDocument(this.opts.version);
    this.route('get', '/api/openapi.json', () => ({ json: doc }));
    this.route('get', '/healthz', () => ({ json: { ok: true } }));
    this.route('get', '/readyz', () => {
      const r = this.opts.ready();
      return { status: r.ok ? 200 : 503, json: r };
    });
    this.route('get', '/metrics', () => ({ body: this.opts.metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' }));
    this.feed.attach(this.app, (authorization, query) => this.access.grant(authorization, query.get('access_token')));
    this.routes.push('GET /feed');

    const page = (name: string): Handler => () => this.file(name);
    this.app.get('/', (res, req) => exchange(res, req, 0, config.maxBodyBytes, page('index.html'), () => {}));
    this.app.get('/incidents/:id', (res, req) => exchange(res, req, 0, config.maxBodyBytes, page('incident.html'), () => {}));
    this.app.get('/properties/:property/incidents/:id', (res, req) => exchange(res, req, 0, config.maxBodyBytes, page('incident.html'), () => {}));
    this.app.get('/settings/notifications', (res, req) => exchange(res, req, 0, config.maxBodyBytes, page('settings.html'), () => {}));
    this.app.get('/static/:name', (res, req) => exchange(res, req, 1, config.maxBodyBytes, (r) => this.file(r.params[0]), () => {}));
    // Browsers ask for it at the root whatever the pages link.
    this.app.get('/favicon.ico', (res, req) => exchange(res, req, 0, config.maxBodyBytes, page('favicon.ico'), () => {}));
    // Anything else: a JSON 404 with a stable code.
    this.app.any('/*', (res, req) => exchange(res, req, 0, config.maxBodyBytes, (r) => {
      throw new HttpError(404, 'NOT_FOUND', `no route ${r.method} ${r.path}`);
    }, () => {}));
  }

  private file(name: string): Reply {
    const f = this.files.get(name);
    if (!f) throw new HttpError(404, 'NOT_FOUND', `no file ${name}`);
    return { body: f.body, contentType: f.contentType, headers: { 'content-security-policy': CSP, 'cache-control': 'no-cache' } };
  }

  /** Listens on the configured host and port and starts the feed; throws HttpListenError when it cannot. */
  async start(): Promise<void> {
    const { host, port } = this.opts.config;
    const socket = await new Promise<us_listen_socket | false>((resolve) => this.app.listen(host, port, resolve));
    if (!socket) throw new HttpListenError(`cannot listen on ${host}:${port} (in use, or not an address of this machine); set VIGIL_HTTP_PORT / VIGIL_HTTP_HOST`);
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
