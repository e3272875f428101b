import type { Admin, Consumer, EachBatchPayload, Producer } from 'kafkajs';
import type { Statement } from 'better-sqlite3';
import { CommandFailure, type CommandContext, type CommandDefinition, type CommandHandler } from '../control/command-handler.ts';
import type { IncidentStore } from '../incidents/incident-store.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Commands every node runs, in the order of the control topic: what every node's detection and
 * notifications depend on (README "Cluster": which commands are per node and why). `silence` and
 * `unsilence` with a matcher instead of an incident id run these (through the handler's definition).
 */
export const SHARED_COMMANDS = ['set-thresholds', 'silence-matching', 'unsilence-matching'] as const;

/** How long a node waits for its own copy of a command to come back from the topic. */
const SUBMIT_TIMEOUT_MS = 30_000;
/** How long a start waits to have run the commands already on the topic. */
const CATCH_UP_TIMEOUT_MS = 60_000;

/** One command on `<cluster>.control`. */
interface ControlRecord {
  v: 1;
  id: string;
  command: string;
  args: Record<string, unknown>;
  /** The node that received it. */
  node: string;
}

/**
 * Commands the whole cluster runs (SHARED_COMMANDS): the node that receives one validates it and
 * publishes it to `<cluster>.control`; every node (the receiving one too) runs it when it reads it, in
 * the topic's order, and the receiving node answers with its own run's result. So every node's
 * detection parameters are the same sequence of changes, also for a node that joins later (the topic
 * keeps every command) or restarts (it resumes from its position, kept in its store).
 */
export class ClusterControl {
  readonly stats = { published: 0, run: 0, failed: 0 };
  private readonly originals = new Map<string, CommandDefinition>();
  private readonly waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly stmt: Record<'position' | 'setPosition', Statement>;
  private producer: Producer | null = null;

  constructor(store: IncidentStore, private readonly node: string, private readonly topic: string, private readonly log: Logger) {
    const db = store.database;
    this.stmt = {
      position: db.prepare('SELECT next_offset FROM cluster_positions WHERE topic = ? AND partition = 0').pluck(),
      setPosition: db.prepare(`INSERT INTO cluster_positions (topic, partition, next_offset) VALUES (?, 0, ?)
        ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`),
    };
  }

  /** The next offset this node has not run, or null before any. */
  position(): number | null {
    return (this.stmt.position.get(this.topic) as number | undefined) ?? null;
  }

  /** Makes the shared commands go through the topic (their definitions run when read back). */
  share(commands: CommandHandler): void {
    for (const name of SHARED_COMMANDS) {
      commands.wrap(name, (def) => {
        this.originals.set(name, def);
        // Published under its own name: `silence` with a matcher runs silence-matching's definition.
        return { validate: (args) => def.validate(args), run: (args, ctx) => this.submit(name, ctx.id, def.share?.(args, ctx) ?? args) };
      });
    }
  }

  /**
   * A command every node runs when it reads it from the topic (`everyNode`), answered by the receiving
   * node with `finish` once its own run is done: a cluster dump (every node writes the parts of its
   * tasks, the receiving node gathers them). `share` fixes the arguments every node gets. Before start().
   */
  gather(commands: CommandHandler, name: string, parts: {
    share: (args: Record<string, unknown>, ctx: CommandContext) => Record<string, unknown>;
    everyNode: CommandDefinition['run'];
    finish: (args: Record<string, unknown>, ctx: CommandContext) => Promise<unknown>;
  }): void {
    commands.wrap(name, (def) => {
      this.originals.set(name, { validate: def.validate, run: parts.everyNode });
      return {
        validate: (args) => def.validate(args),
        run: async (args, ctx) => {
          const shared = parts.share(args, ctx);
          await this.submit(name, ctx.id, shared);
          return parts.finish(shared, ctx);
        },
      };
    });
  }

  /** Runs the commands on the topic and waits (bounded) until those published before the start have run here. */
  async start(consumer: Consumer, producer: Producer, admin: Admin): Promise<void> {
    this.producer = producer;
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      const at = this.position();
      if (at !== null) consumer.seek({ topic: this.topic, partition: 0, offset: String(at) });
    });
    await consumer.run({ autoCommit: false, eachBatch: (p) => this.onBatch(p) });
    const [{ high }] = await admin.fetchTopicOffsets(this.topic);
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    while ((this.position() ?? 0) < Number(high) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if ((this.position() ?? 0) < Number(high)) this.log.warn({ topic: this.topic, high: Number(high), at: this.position() }, 'cluster commands not caught up at start; going on');
  }

  private async submit(command: string, id: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.producer === null) throw new CommandFailure('CLUSTER_NOT_STARTED', 'the cluster\'s control topic is not connected yet', true);
    const done = new Promise<unknown>((resolve, reject) => { this.waiting.set(id, { resolve, reject }); });
    const timer = setTimeout(() => this.settle(id, new CommandFailure('CLUSTER_COMMAND_TIMEOUT', `${command} ${id} was published to ${this.topic} but not read back within ${SUBMIT_TIMEOUT_MS / 1000} s`, true)), SUBMIT_TIMEOUT_MS);
    try {
      const record: ControlRecord = { v: 1, id, command, args, node: this.node };
      await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: command, value: JSON.stringify(record) }] });
      this.stats.published++;
      return await done;
    } catch (err) {
      this.waiting.delete(id);
      throw err instanceof CommandFailure ? err : new CommandFailure('CLUSTER_COMMAND_NOT_PUBLISHED', `${command} not published to ${this.topic}: ${(err as Error).message}`, true);
    } finally {
      clearTimeout(timer);
    }
  }

  private settle(id: string, outcome: { ok: unknown } | Error): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome.ok);
  }

  private async onBatch({ batch, isStale, heartbeat }: EachBatchPayload): Promise<void> {
    for (const m of batch.messages) {
      if (isStale()) return;
      const offset = Number(m.offset);
      if (offset < (this.position() ?? 0)) continue;
      let r: ControlRecord | null = null;
      try {
        r = JSON.parse(m.value?.toString() ?? '') as ControlRecord;
      } catch { /* counted below */ }
      const def = r?.v === 1 ? this.originals.get(r.command) : undefined;
      if (r === null || def === undefined) {
        this.stats.failed++;
        this.log.warn({ topic: this.topic, offset }, 'cluster command skipped: unreadable or unknown');
      } else {
        // Every node runs it; the node that received it answers with its own run.
        try {
          const result = await def.run(r.args ?? {}, { id: r.id, command: r.command, sequence: offset });
          this.stats.run++;
          if (r.node === this.node) this.settle(r.id, { ok: result });
        } catch (err) {
          this.stats.failed++;
          this.log.warn({ err, commandId: r.id, command: r.command, from: r.node }, 'cluster command failed here');
          if (r.node === this.node) this.settle(r.id, err as Error);
        }
      }
      this.stmt.setPosition.run(this.topic, offset + 1);
      await heartbeat();
    }
  }
}
