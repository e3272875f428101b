/** An incident manager wired to a NotificationPipeline over a real store, for the notification tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIncidentStore, type IncidentStore } from '../../src/incidents/incident-store.ts';
import { IncidentManager } from '../../src/incidents/incident-manager.ts';
import { NotificationPipeline } from '../../src/notify/notification-pipeline.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../src/config/notify-config.ts';
import { EnvReader } from '../../src/config/env-reader.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { Verdict, VerdictKind } from '../../src/kernel/verdict.ts';
import { MetricsRegistry } from '../../src/metrics/metrics-registry.ts';

export const MIN = 60_000;
export const T0 = Date.UTC(2026, 10, 27, 7, 25);

/** A verdict with the reference incident's figures (title "Grupo Formula 104.1", 86.0%, 11908 views/h), overridable. */
export function verdict(kind: VerdictKind, atMs: number, fields: Partial<Verdict> = {}): Verdict {
  const scope = fields.scope ?? 'title';
  return {
    kind, scope, propertyId: '177', videoTitle: scope === 'title' ? 'Grupo Formula 104.1' : null, errorType: 'networkError', atMs,
    errorRatio: 0.86, thresholdRatio: 0.147, baselineRatio: 0.05, windowViews: 50, windowFailures: 43, windowSpanMs: 10 * MIN,
    minWindowViews: 30, viewsPerHour: 11908, impactedViews: 184, openedAtMs: atMs, ...fields,
  };
}

/** Notify configuration from VIGIL_* variables (fast retries unless given). */
export function notifyConfig(env: Record<string, string>): NotifyConfig {
  const problems: string[] = [];
  const c = parseNotifyConfig(new EnvReader({ VIGIL_NOTIFY_RETRY_BASE_MS: '20', VIGIL_NOTIFY_RETRY_MAX_MS: '200', VIGIL_NOTIFY_TIMEOUT_MS: '2000', ...env }, problems), 'https://vigil.example');
  if (problems.length) throw new Error(problems.join('; '));
  return c;
}

export interface NotifyHarness {
  dir: string;
  store: IncidentStore;
  manager: IncidentManager;
  pipeline: NotificationPipeline;
  metrics: MetricsRegistry;
  close(): Promise<void>;
}

/** Opens (or reopens, given dir) a store and starts a pipeline and manager on it. */
export function startNotify(config: NotifyConfig, dir = mkdtempSync(join(tmpdir(), 'vigil-notify-')), opts: { now?: () => number } = {}): NotifyHarness {
  const store = openIncidentStore(join(dir, 'incidents.db'));
  const logger = silentLogger();
  const metrics = new MetricsRegistry();
  const pipeline = new NotificationPipeline({ config, store, logger, now: opts.now, tickMs: 50, metrics });
  const manager = new IncidentManager({ store, logger, isSilenced: pipeline.isSilenced, beforeCommit: pipeline.beforeCommit, afterRollback: pipeline.afterRollback });
  pipeline.start(manager);
  return {
    dir, store, manager, pipeline, metrics,
    async close() { await pipeline.stop(200); store.close(); },
  };
}
