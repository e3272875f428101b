import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from '../log/logger.ts';
import type { AccessGrant } from '../config/http-config.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { IncidentTransition } from '../incidents/incident.ts';
import type { MetricsRegistry } from '../metrics/metrics-registry.ts';
import { incidentView } from './incident-view.ts';
import { HttpError, errorBody } from './http-error.ts';
import { canSee } from './access-control.ts';
import { UpdateThrottle } from './update-throttle.ts';

/** Close code for a client dropped because its unsent bytes passed the bound (4000-4999: application codes). */
export const CLOSE_TOO_SLOW = 4008;
/** Close code when the server cannot serve the client (e.g. the incident store failed under its snapshot). */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Close code when the daemon shuts down. */
export const CLOSE_GOING_AWAY = 1001;

/** The message types a feed client receives. */
export type FeedMessageType = 'snapshot' | 'opened' | 'updated' | 'resolved' | 'expired' | 'silenced' | 'unsilenced' | 'subscribed' | 'error';

/** What the hub needs. */
export interface FeedHubOptions {
  manager: IncidentManager;
  logger: Logger;
  /** A client with more unsent bytes than this is dropped with CLOSE_TOO_SLOW. */
  maxBufferedBytes: number;
  /** At most one `updated` per incident per this interval (0: all). */
  updateIntervalMs: number;
  now?: () => number;
  metrics?: MetricsRegistry;
}

interface ClientData {
  grant: AccessGrant;
  /** The one property this client subscribed to, or null for all it may see. */
  property: string | null;
  dropped: boolean;
}

type Client = WebSocket<ClientData>;

/**
 * The live incident feed at /feed: on connect a snapshot of the open incidents the token may see, then
 * deltas (opened, throttled updated, resolved, expired, silenced/unsilenced). A client may narrow the
 * feed to one property (`?property=` or a `{"type":"subscribe","property_id":...}` message). A client
 * whose unsent bytes pass the bound is closed with CLOSE_TOO_SLOW, so memory stays bounded however
 * many clients stop reading; it reconnects and gets a fresh snapshot.
 */
export class FeedHub {
  private readonly clients = new Set<Client>();
  private readonly throttle: UpdateThrottle;
  private readonly notifications = new Map<number, string>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  readonly stats = { connected: 0, dropped: 0, messages: 0, rejected: 0 };

  constructor(private readonly opts: FeedHubOptions) {
    this.throttle = new UpdateThrottle(opts.updateIntervalMs, opts.now ?? Date.now);
    this.log = opts.logger;
    const m = opts.metrics;
    if (m) {
      m.collect('vigil_feed_clients', 'Connected WebSocket feed clients.', 'gauge', () => this.clients.size);
      m.collect('vigil_feed_clients_dropped_total', 'Feed clients dropped because they read too slowly.', 'counter', () => this.stats.dropped);
      m.collect('vigil_feed_messages_total', 'Feed messages sent (one per client).', 'counter', () => this.stats.messages);
      m.collect('vigil_feed_buffered_bytes', 'Unsent bytes buffered for feed clients.', 'gauge', () => this.bufferedBytes());
    }
  }

  /** Registers the /feed route; authorize turns the upgrade's headers and query into a grant or throws HttpError. */
  attach(app: TemplatedApp, authorize: (authorization: string, query: URLSearchParams) => AccessGrant): void {
    app.ws<ClientData>('/feed', {
      maxPayloadLength: 4096,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      // Our own bound drops the client first; uWS's must be higher so it never silently skips a message.
      maxBackpressure: this.opts.maxBufferedBytes * 4 + (1 << 20),
      upgrade: (res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t) => {
        const query = new URLSearchParams(req.getQuery() ?? '');
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        let data: ClientData;
        try {
          const grant = authorize(req.getHeader('authorization'), query);
          const property = query.get('property');
          if (property !== null && !canSee(grant, property)) throw new HttpError(403, 'FORBIDDEN', 'this token may not see that property');
          data = { grant, property, dropped: false };
        } catch (err) {
          this.stats.rejected++;
          let e: HttpError;
          if (err instanceof HttpError) {
            e = err;
          } else {
            const requestId = randomUUID();
            this.log.error({ err, requestId }, 'feed upgrade failed');
            e = new HttpError(500, 'INTERNAL', `internal error (request id ${requestId})`, true, requestId);
          }
          res.cork(() => {
            res.writeStatus(`${e.status} ${e.status === 401 ? 'Unauthorized' : e.status === 403 ? 'Forbidden' : 'Error'}`).writeHeader('content-type', 'application/json').end(JSON.stringify(errorBody(e)), true);
          });
          return;
        }
        res.upgrade(data, key, protocol, extensions, ctx);
      },
      // A throw inside a uWS callback would end the process (e.g. the store failing under the snapshot):
      // the client is closed with 1011 instead, and the failure logged.
      open: (ws: Client) => {
        this.clients.add(ws);
        this.stats.connected++;
        this.guard(ws, () => this.sendSnapshot(ws));
      },
      message: (ws: Client, message: ArrayBuffer) => this.guard(ws, () => this.onMessage(ws, Buffer.from(message).toString('utf8'))),
      close: (ws: Client) => {
        this.clients.delete(ws);
      },
    });
  }

  /** Subscribes to the incident manager and starts the update flush timer. */
  start(): void {
    if (this.unsubscribe) return;
    for (const i of this.opts.manager.openIncidents()) this.notifications.set(i.id, i.notifications);
    this.unsubscribe = this.opts.manager.subscribe((t) => this.onTransition(t));
    if (this.opts.updateIntervalMs > 0) {
      this.timer = setInterval(() => { for (const t of this.throttle.due()) this.broadcast('updated', t); }, Math.max(50, Math.min(1000, this.opts.updateIntervalMs / 4)));
      this.timer.unref();
    }
  }

  /** Unsubscribes and closes every client with CLOSE_GOING_AWAY; idempotent. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const ws of [...this.clients]) {
      try { ws.end(CLOSE_GOING_AWAY, 'vigil is stopping'); } catch { /* already closed */ }
    }
    this.clients.clear();
  }

  /** Connected clients. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Unsent bytes over all clients (what a slow client costs us). */
  bufferedBytes(): number {
    let n = 0;
    for (const ws of this.clients) n += ws.getBufferedAmount();
    return n;
  }

  private guard(ws: Client, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'feed client failed; closing it');
      this.clients.delete(ws);
      try { ws.end(CLOSE_INTERNAL_ERROR, 'internal error'); } catch { /* already closed */ }
    }
  }

  private onTransition(t: IncidentTransition): void {
    const id = t.incident.id;
    if (t.type === 'updated') {
      const before = this.notifications.get(id);
      this.notifications.set(id, t.incident.notifications);
      if (before !== undefined && before !== t.incident.notifications) {
        this.broadcast(t.incident.notifications === 'silenced' ? 'silenced' : 'unsilenced', t);
        return;
      }
    } else if (t.type === 'opened') {
      this.notifications.set(id, t.incident.notifications);
    } else {
      this.notifications.delete(id);
    }
    for (const out of this.throttle.offer(t)) this.broadcast(out.type, out);
  }

  private broadcast(type: FeedMessageType, t: IncidentTransition): void {
    if (this.clients.size === 0) return;
    // Serialized once for every client.
    const msg = JSON.stringify({ type, at_ms: t.atMs, incident: incidentView(t.incident) });
    const propertyId = t.incident.propertyId;
    for (const ws of this.clients) {
      const d = ws.getUserData();
      if (d.dropped || !canSee(d.grant, propertyId) || (d.property !== null && d.property !== propertyId)) continue;
      this.send(ws, msg);
    }
  }

  private send(ws: Client, msg: string): void {
    if (ws.getBufferedAmount() > this.opts.maxBufferedBytes) {
      this.drop(ws);
      return;
    }
    // 2: uWS dropped the message (its own limit); the client would miss a delta, so it goes too.
    if (ws.send(msg, false) === 2) this.drop(ws);
    else this.stats.messages++;
  }

  private drop(ws: Client): void {
    const d = ws.getUserData();
    if (d.dropped) return;
    d.dropped = true;
    this.stats.dropped++;
    this.clients.delete(ws);
    this.log.warn({ buffered: ws.getBufferedAmount() }, 'feed client dropped: reading too slowly');
    // Removed from the fan-out above, so nothing more is queued; uWS frees the socket's buffer when it closes.
    try { ws.end(CLOSE_TOO_SLOW, 'too slow'); } catch { /* already closed */ }
  }

  private sendSnapshot(ws: Client): void {
    const d = ws.getUserData();
    const incidents = this.opts.manager.openIncidents()
      .filter((i) => canSee(d.grant, i.propertyId) && (d.property === null || i.propertyId === d.property))
      .map(incidentView);
    this.send(ws, JSON.stringify({ type: 'snapshot', property_id: d.property, incidents }));
  }

  private onMessage(ws: Client, text: string): void {
    let m: { type?: unknown; property_id?: unknown };
    try {
      m = JSON.parse(text);
    } catch {
      this.send(ws, JSON.stringify({ type: 'error', error: { code: 'BAD_JSON', message: 'messages are JSON objects' } }));
      return;
    }
    if (m?.type !== 'subscribe' || (m.property_id !== null && typeof m.property_id !== 'string')) {
      this.send(ws, JSON.stringify({ type: 'error', error: { code: 'BAD_MESSAGE', message: 'expected {"type":"subscribe","property_id":string|null}' } }));
      return;
    }
    const d = ws.getUserData();
    if (m.property_id !== null && !canSee(d.grant, m.property_id)) {
      this.send(ws, JSON.stringify({ type: 'error', error: { code: 'FORBIDDEN', message: 'this token may not see that property' } }));
      return;
    }
    d.property = m.property_id;
    this.send(ws, JSON.stringify({ type: 'subscribed', property_id: d.property }));
    this.sendSnapshot(ws);
  }
}
