import type { Logger } from '../log/logger.ts';

/** A control command as it arrives from RabbitMQ or the HTTP admin API. */
export interface CommandRequest {
  id: string;
  command: string;
  args?: Record<string, unknown>;
}

/** Why a command failed: a stable code, a message for people, and whether retrying may help. */
export interface CommandError {
  code: string;
  message: string;
  retriable: boolean;
}

/** The reply to a command (also what a repeated id gets). */
export type CommandReply =
  | { id: string; command: string; ok: true; result: unknown }
  | { id: string; command: string; ok: false; error: CommandError };

/** Thrown by a command implementation for a failure with a stable code. */
export class CommandFailure extends Error {
  constructor(readonly code: string, message: string, readonly retriable = false) {
    super(message);
  }
}

/** Which request a command runs for (e.g. to name what it writes after the command id). */
export interface CommandContext {
  id: string;
  command: string;
  /**
   * A cluster command run from the cluster's control topic: its offset there, the same on every node
   * (so what the command creates can be numbered alike everywhere). Undefined for a command run where
   * it was received.
   */
  sequence?: number;
}

/** One command: validates its arguments (returning problems) and runs. */
export interface CommandDefinition {
  /** Returns every problem with the arguments; empty when valid. */
  validate(args: Record<string, unknown>): string[];
  run(args: Record<string, unknown>, ctx: CommandContext): Promise<unknown> | unknown;
  /**
   * A cluster command: the arguments every node runs it with, fixed by the node that received it
   * (times relative to its clock made absolute, so that every node's run means the same).
   */
  share?(args: Record<string, unknown>, ctx: CommandContext): Record<string, unknown>;
}

const ID_PATTERN = /^[\w.:@/-]{1,128}$/;

/**
 * The one command handler behind every control channel (RabbitMQ, HTTP admin): validates the
 * envelope and the arguments, runs each command id at most once (delivery is at-least-once:
 * a repeated id gets the first reply), and turns every failure into a reply with a code.
 */
export class CommandHandler {
  private readonly commands = new Map<string, CommandDefinition>();
  private readonly seen = new Map<string, Promise<CommandReply>>();
  readonly stats = { handled: 0, duplicates: 0, invalid: 0, failed: 0 };

  constructor(private readonly log: Logger, private readonly rememberIds = 10_000) {}

  /** Adds a command; throws when the name is taken. */
  register(name: string, def: CommandDefinition): void {
    if (this.commands.has(name)) throw new Error(`command ${name} is already registered`);
    this.commands.set(name, def);
  }

  /** Replaces a registered command's definition with `wrap` of it (a cluster shares some commands through a topic); throws when unknown. */
  wrap(name: string, wrap: (def: CommandDefinition) => CommandDefinition): void {
    const def = this.commands.get(name);
    if (!def) throw new Error(`command ${name} is not registered`);
    this.commands.set(name, wrap(def));
  }

  /** A registered command's definition (for commands that delegate to another). */
  definition(name: string): CommandDefinition | undefined {
    return this.commands.get(name);
  }

  /** Names of the registered commands. */
  names(): string[] {
    return [...this.commands.keys()].sort();
  }

  /** Validates and runs a command envelope (any JSON value); never throws. */
  handle(envelope: unknown): Promise<CommandReply> {
    const problem = envelopeProblem(envelope);
    const e = envelope as CommandRequest;
    const id = typeof e?.id === 'string' ? e.id : '';
    const command = typeof e?.command === 'string' ? e.command : '';
    if (problem) {
      this.stats.invalid++;
      return Promise.resolve(fail(id, command, 'INVALID_MESSAGE', problem));
    }
    const prior = this.seen.get(id);
    if (prior) {
      this.stats.duplicates++;
      return prior;
    }
    const reply = this.run(e);
    this.seen.set(id, reply);
    // A retriable failure is forgotten so that a redelivery may try again.
    void reply.then((r) => { if (!r.ok && r.error.retriable && this.seen.get(id) === reply) this.seen.delete(id); });
    if (this.seen.size > this.rememberIds) this.seen.delete(this.seen.keys().next().value!);
    return reply;
  }

  private async run(req: CommandRequest): Promise<CommandReply> {
    const def = this.commands.get(req.command);
    if (!def) {
      this.stats.invalid++;
      return fail(req.id, req.command, 'UNKNOWN_COMMAND', `unknown command ${JSON.stringify(req.command)}; known: ${this.names().join(', ')}`);
    }
    const args = req.args ?? {};
    const problems = def.validate(args);
    if (problems.length) {
      this.stats.invalid++;
      return fail(req.id, req.command, 'INVALID_ARGS', problems.join('; '));
    }
    try {
      const result = await def.run(args, { id: req.id, command: req.command });
      this.stats.handled++;
      this.log.info({ commandId: req.id, command: req.command }, 'command done');
      return { id: req.id, command: req.command, ok: true, result };
    } catch (err) {
      this.stats.failed++;
      const f = err instanceof CommandFailure ? err : failureOf(err);
      this.log.warn({ commandId: req.id, command: req.command, code: f.code, err }, 'command failed');
      return fail(req.id, req.command, f.code, f.message, f.retriable);
    }
  }
}

// Vigil's errors carry a stable code and a retriable flag (CHECKPOINT_WRITE_FAILED, ...): kept as they are.
function failureOf(err: unknown): CommandFailure {
  const e = err as { code?: unknown; retriable?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.code) && typeof e.retriable === 'boolean') return new CommandFailure(e.code, String(e.message), e.retriable);
  return new CommandFailure('COMMAND_FAILED', String(e?.message ?? err), true);
}

function fail(id: string, command: string, code: string, message: string, retriable = false): CommandReply {
  return { id, command, ok: false, error: { code, message, retriable } };
}

function envelopeProblem(e: unknown): string | null {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'a command is a JSON object {"id", "command", "args"}';
  const r = e as Record<string, unknown>;
  if (typeof r.id !== 'string' || !ID_PATTERN.test(r.id)) return '"id" must be a string of 1-128 letters, digits or ._:@/-';
  if (typeof r.command !== 'string' || r.command.length === 0) return '"command" must be a non-empty string';
  if (r.args !== undefined && (r.args === null || typeof r.args !== 'object' || Array.isArray(r.args))) return '"args" must be an object when present';
  return null;
}
