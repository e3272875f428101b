import amqplib from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../log/logger.ts';
import type { AmqpConfig } from '../config/control-env.ts';
import type { CommandHandler, CommandReply } from './command-handler.ts';

/** Reasons a message is dead-lettered (the x-vigil-reject-reason header), counted by reason. */
export type RejectReason = 'too_large' | 'not_json' | 'invalid_message' | 'unknown_command' | 'invalid_args';

const REJECT_BY_CODE: Record<string, RejectReason> = {
  INVALID_MESSAGE: 'invalid_message', UNKNOWN_COMMAND: 'unknown_command', INVALID_ARGS: 'invalid_args',
};

/** Collaborators of the RabbitMQ control consumer. */
export interface AmqpControlOptions {
  config: AmqpConfig;
  handler: CommandHandler;
  logger: Logger;
}

/**
 * Consumes control commands from a durable RabbitMQ queue and runs them through the one command
 * handler. A message is acked only after its command finished (and its reply was sent); invalid
 * messages are copied to the dead-letter exchange with the reason in a header, then acked. The
 * broker being away never stops detection: the consumer reconnects with backoff and resumes.
 */
export class AmqpControl {
  readonly stats = { received: 0, acked: 0, replies: 0, connects: 0, reconnects: 0, rejected: {} as Record<string, number> };
  private readonly log: Logger;
  private conn: ChannelModel | null = null;
  private ch: ConfirmChannel | null = null;
  private stopped = false;
  private started = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private inFlight = new Set<Promise<void>>();
  private connectedWaiters: Array<() => void> = [];

  constructor(private readonly opts: AmqpControlOptions) {
    this.log = opts.logger.child({ component: 'amqp-control' });
  }

  /** The queue that holds dead-lettered messages (bound to the dead-letter exchange). */
  get deadLetterQueue(): string {
    return `${this.opts.config.queue}.dead`;
  }

  /** Starts connecting in the background; never throws for an unreachable broker (it retries). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.connect();
  }

  /** True while a channel is consuming. */
  connected(): boolean {
    return this.ch !== null;
  }

  /** Resolves when a channel is consuming (now, or after the next successful connect). */
  whenConnected(): Promise<void> {
    if (this.ch) return Promise.resolve();
    return new Promise((r) => this.connectedWaiters.push(r));
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const c = this.opts.config;
    let conn: ChannelModel | null = null;
    try {
      conn = await amqplib.connect(c.url, { clientProperties: { connection_name: 'vigil-control' } });
      conn.on('error', (err) => this.log.warn({ err: err.message }, 'RabbitMQ connection error'));
      conn.on('close', () => this.lost('connection closed'));
      const ch = await conn.createConfirmChannel();
      ch.on('error', (err) => this.log.warn({ err: err.message }, 'RabbitMQ channel error'));
      ch.on('close', () => this.lost('channel closed'));
      await ch.assertExchange(c.deadLetterExchange, 'fanout', { durable: true });
      await ch.assertQueue(this.deadLetterQueue, { durable: true });
      await ch.bindQueue(this.deadLetterQueue, c.deadLetterExchange, '');
      await ch.assertExchange(c.exchange, 'direct', { durable: true });
      await ch.assertQueue(c.queue, { durable: true, deadLetterExchange: c.deadLetterExchange });
      await ch.bindQueue(c.queue, c.exchange, c.routingKey);
      await ch.prefetch(4);
      await ch.consume(c.queue, (msg) => {
        // null: the broker cancelled the consumer (queue deleted, node going down): start over.
        if (msg === null) { this.log.warn({ queue: c.queue }, 'consumer cancelled by the broker; reconnecting'); this.drop(); return; }
        this.track(this.onMessage(ch, msg));
      }, { noAck: false });
      if (this.stopped) { await conn.close().catch(() => {}); return; }
      this.conn = conn;
      this.ch = ch;
      this.stats.connects++;
      if (this.attempt > 0) this.stats.reconnects++;
      this.attempt = 0;
      this.log.info({ exchange: c.exchange, queue: c.queue, routingKey: c.routingKey }, 'consuming control messages');
      for (const w of this.connectedWaiters.splice(0)) w();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, attempt: this.attempt + 1 }, 'cannot consume control messages from RabbitMQ; will retry');
      conn?.close().catch(() => {});
      this.schedule();
    }
  }

  private lost(why: string): void {
    if (this.ch === null && this.conn === null) return;
    this.log.warn({ why }, 'RabbitMQ control connection lost; reconnecting with backoff');
    this.drop();
  }

  private drop(): void {
    const conn = this.conn;
    this.conn = null;
    this.ch = null;
    conn?.close().catch(() => {});
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.retryTimer) return;
    const c = this.opts.config;
    const delay = Math.min(c.reconnectMaxMs, c.reconnectMinMs * 2 ** Math.min(this.attempt, 20)) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.connect(); }, delay);
    this.retryTimer.unref();
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async onMessage(ch: ConfirmChannel, msg: ConsumeMessage): Promise<void> {
    this.stats.received++;
    const props = msg.properties;
    try {
      let reply: CommandReply;
      let reject: { reason: RejectReason; message: string } | null = null;
      if (msg.content.length > this.opts.config.maxMessageBytes) {
        reject = { reason: 'too_large', message: `message of ${msg.content.length} bytes exceeds ${this.opts.config.maxMessageBytes}` };
        reply = { id: '', command: '', ok: false, error: { code: 'TOO_LARGE', message: reject.message, retriable: false } };
      } else {
        let envelope: unknown;
        try {
          envelope = JSON.parse(msg.content.toString('utf8'));
        } catch (err) {
          reject = { reason: 'not_json', message: `not JSON: ${(err as Error).message}` };
        }
        if (reject) {
          reply = { id: '', command: '', ok: false, error: { code: 'NOT_JSON', message: reject.message, retriable: false } };
        } else {
          reply = await this.opts.handler.handle(envelope);
          const reason = !reply.ok ? REJECT_BY_CODE[reply.error.code] : undefined;
          if (!reply.ok && reason) reject = { reason, message: reply.error.message };
        }
      }
      if (props.replyTo) {
        ch.sendToQueue(props.replyTo, Buffer.from(JSON.stringify(reply)), { correlationId: props.correlationId, contentType: 'application/json' });
        this.stats.replies++;
      }
      if (reject) {
        this.stats.rejected[reject.reason] = (this.stats.rejected[reject.reason] ?? 0) + 1;
        this.log.warn({ reason: reject.reason, message: reject.message, commandId: reply.id || undefined, bytes: msg.content.length }, 'control message rejected');
        // The reason travels in a header, which a plain nack cannot add: publish the copy (confirmed), then ack.
        // The copy is kept for someone to look at: persistent, and without the original's expiration
        // (a command that may go stale would otherwise vanish from the dead-letter queue too), which
        // is kept in a header instead. userId is not copied: the broker checks it against our login.
        const { expiration, userId: _userId, deliveryMode: _deliveryMode, ...kept } = props;
        const headers: Record<string, unknown> = {
          ...props.headers, 'x-vigil-reject-reason': reject.reason, 'x-vigil-reject-message': reject.message.slice(0, 500),
          'x-vigil-original-routing-key': msg.fields.routingKey,
        };
        if (expiration !== undefined) headers['x-vigil-original-expiration'] = String(expiration);
        ch.publish(this.opts.config.deadLetterExchange, '', msg.content, { ...kept, headers, persistent: true });
        await ch.waitForConfirms();
      } else if (props.replyTo) {
        await ch.waitForConfirms();
      }
      ch.ack(msg);
      this.stats.acked++;
    } catch (err) {
      // The channel went away mid-command: the message is redelivered and the handler's memory of the id keeps it from running twice.
      this.log.warn({ err: (err as Error).message }, 'control message not acked (will be redelivered)');
    }
  }

  /** Stops consuming, waits for commands in progress, and closes the connection; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.connectedWaiters.splice(0)) w();
    await Promise.allSettled([...this.inFlight]);
    const conn = this.conn;
    this.conn = null;
    this.ch = null;
    await conn?.close().catch(() => {});
  }
}
