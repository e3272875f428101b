/** An HttpServer over a real incident store and manager on an ephemeral port, for the API, feed and dashboard tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { openIncidentStore, type IncidentStore } from '../../src/incidents/incident-store.ts';
import { IncidentManager } from '../../src/incidents/incident-manager.ts';
import { CommandHandler } from '../../src/control/command-handler.ts';
import { registerBuiltinCommands } from '../../src/control/builtin-commands.ts';
import { MetricsRegistry } from '../../src/metrics/metrics-registry.ts';
import { HttpServer } from '../../src/http/http-server.ts';
import { parseHttpConfig, type HttpConfig } from '../../src/config/http-config.ts';
import { parseNotifyConfig } from '../../src/config/notify-config.ts';
import { EnvReader } from '../../src/config/env-reader.ts';
import { SilenceRegistry } from '../../src/silence/silence-registry.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { Verdict, VerdictKind } from '../../src/kernel/verdict.ts';

export const MIN = 60_000;
export const T0 = Date.UTC(2026, 10, 27, 7, 25);

/** A verdict with the reference incident's figures, overridable. */
export function verdict(kind: VerdictKind, atMs: number, fields: Partial<Verdict> = {}): Verdict {
  const scope = fields.scope ?? 'property';
  return {
    kind, scope, propertyId: '177', videoTitle: scope === 'title' ? 'Enlace' : null, errorType: 'networkError', atMs,
    errorRatio: 0.224, thresholdRatio: 0.147, baselineRatio: 0.05, windowViews: 1200, windowFailures: 269, windowSpanMs: 10 * MIN,
    minWindowViews: 1000, viewsPerHour: 5486, impactedViews: 269, openedAtMs: atMs, ...fields,
  };
}

export interface Harness {
  server: HttpServer;
  manager: IncidentManager;
  store: IncidentStore;
  commands: CommandHandler;
  metrics: MetricsRegistry;
  /** The matcher silences the server shows (add some to see them). */
  silences: SilenceRegistry;
  base: string;
  wsBase: string;
  close(): void;
}

/** Starts a server; env holds VIGIL_* variables for the HTTP config (port 0 unless given) and the notification receivers. */
export async function startHarness(env: Record<string, string> = {}, overrides: Partial<HttpConfig> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-http-'));
  const store = openIncidentStore(join(dir, 'incidents.db'));
  const log = silentLogger();
  const manager = new IncidentManager({ store, logger: log });
  const commands = new CommandHandler(log);
  registerBuiltinCommands(commands, { manager, status: () => ({ ok: true }), checkpoint: async () => ({}) });
  const metrics = new MetricsRegistry();
  const problems: string[] = [];
  const config = { ...parseHttpConfig({ VIGIL_HTTP_PORT: '0', VIGIL_FEED_UPDATE_MS: '0', ...env }, problems), ...overrides };
  const notify = parseNotifyConfig(new EnvReader(env, problems), 'https://vigil.example');
  if (problems.length) throw new Error(problems.join('; '));
  const silences = new SilenceRegistry(store.database);
  const server = new HttpServer({
    config, logger: log, manager, commands, metrics, version: 'test', ready: () => ({ ok: true, checks: { source: true, workers: true } }),
    notifications: { receivers: notify.receivers, silences: () => silences.list() },
  });
  await server.start();
  const base = `http://127.0.0.1:${server.port}`;
  return {
    server, manager, store, commands, metrics, silences, base, wsBase: base.replace('http', 'ws'),
    close() { server.stop(); store.close(); },
  };
}

/** Polls cond until it holds or the deadline passes (no fixed sleeps in place of a condition). */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

/** A feed client that records every message. */
export interface FeedClient {
  ws: WebSocket;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- feed messages are checked field by field in the tests
  messages: Array<Record<string, any>>;
  closed: { code: number } | null;
}

/** Connects to /feed and waits for the snapshot (or for the refusal). */
export async function connectFeed(wsBase: string, query = '', headers: Record<string, string> = {}): Promise<FeedClient> {
  const ws = new WebSocket(`${wsBase}/feed${query}`, { headers });
  const c: FeedClient = { ws, messages: [], closed: null };
  ws.on('message', (d) => c.messages.push(JSON.parse(String(d))));
  ws.on('close', (code) => { c.closed = { code }; });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(Object.assign(new Error(`feed refused: ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.once('error', reject);
  });
  await waitFor('the snapshot', () => c.messages.length > 0);
  return c;
}
