import type { CommandDefinition, CommandHandler } from './command-handler.ts';
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

/**
 * Registers status, checkpoint, silence and unsilence. silence/unsilence take an incident id; without
 * one they are the matcher silences of the notification pipeline (silence-matching with property /
 * title / error type and an expiry; unsilence-matching with a silence id), registered there.
 */
export function registerBuiltinCommands(h: CommandHandler, deps: BuiltinDeps): void {
  h.register('status', { validate: () => [], run: () => deps.status() });
  h.register('checkpoint', { validate: () => [], run: () => deps.checkpoint() });
  const byIncident = [['silence', 'silence-matching', (id: number) => deps.manager.silence(id)], ['unsilence', 'unsilence-matching', (id: number) => deps.manager.unsilence(id)]] as const;
  for (const [name, matching, apply] of byIncident) {
    const other = (): CommandDefinition => {
      const d = h.definition(matching);
      if (!d) throw new CommandFailure('NOT_SUPPORTED', `${name} needs args.incident_id (${matching} is not available)`);
      return d;
    };
    h.register(name, {
      validate: (args) => (args.incident_id !== undefined || !h.definition(matching) ? incidentIdProblems(args) : other().validate(args)),
      run: (args, ctx) => {
        if (args.incident_id === undefined) return other().run(args, ctx);
        const incident = apply(args.incident_id as number);
        if (!incident) throw new CommandFailure('NOT_FOUND', `no incident ${String(args.incident_id)}`);
        return { incident_id: incident.id, notifications: incident.notifications };
      },
    });
  }
}
