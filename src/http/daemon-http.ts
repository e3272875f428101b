import type { HttpConfig } from '../config/http-config.ts';
import type { Logger } from '../log/logger.ts';
import type { EngineView } from '../engine/engine.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { CommandHandler } from '../control/command-handler.ts';
import type { MetricsRegistry } from '../metrics/metrics-registry.ts';
import type { CellFigures } from '../kernel/cell-figures.ts';
import { HttpServer, type Readiness } from './http-server.ts';
import type { NotificationSettingsSource } from './api-routes.ts';

/** The daemon's parts the HTTP server is built from. */
export interface DaemonHttpParts {
  config: HttpConfig;
  logger: Logger;
  engine: () => EngineView;
  manager: IncidentManager;
  commands: CommandHandler;
  metrics: MetricsRegistry;
  version: string;
  ready: () => Readiness;
  deliveries?: (incidentId: number) => unknown[];
  notifications?: NotificationSettingsSource;
}

/** Builds the daemon's HTTP server; error rates come from the engine's kernel dump of the one property. */
export function createDaemonHttp(p: DaemonHttpParts): HttpServer {
  return new HttpServer({
    config: p.config, logger: p.logger.child({ component: 'http' }), manager: p.manager, commands: p.commands,
    metrics: p.metrics, version: p.version, ready: p.ready, deliveries: p.deliveries, notifications: p.notifications,
    errorRates: async (propertyId) => {
      const cells: CellFigures[] = [];
      await p.engine().dumpFigures((page) => { cells.push(...page); }, { propertyId });
      return cells;
    },
  });
}
