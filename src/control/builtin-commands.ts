import type { CommandHandler } from './command-handler.ts';
import { CommandFailure } from './command-handler.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';

/** What the built-in commands need from the running daemon. */
export interface BuiltinDeps {
  manager: IncidentManager;
  status: () => Record<string, unknown>;
  checkpoint: () => Promise<Record<string, unknown>>;
}

const incidentIdProblems = (args: Record<string, unknown>): string[] =>
  Number.isSafeInteger(args.incident_id) && (args.incident_id as number) > 0 ? [] : ['args.incident_id must be a positive integer'];

/** Registers status, checkpoint, silence and unsilence (by incident id). */
export function registerBuiltinCommands(h: CommandHandler, deps: BuiltinDeps): void {
  h.register('status', { validate: () => [], run: () => deps.status() });
  h.register('checkpoint', { validate: () => [], run: () => deps.checkpoint() });
  for (const [name, apply] of [['silence', (id: number) => deps.manager.silence(id)], ['unsilence', (id: number) => deps.manager.unsilence(id)]] as const) {
    h.register(name, {
      validate: incidentIdProblems,
      run: (args) => {
        const incident = apply(args.incident_id as number);
        if (!incident) throw new CommandFailure('NOT_FOUND', `no incident ${String(args.incident_id)}`);
        return { incident_id: incident.id, notifications: incident.notifications };
      },
    });
  }
}
