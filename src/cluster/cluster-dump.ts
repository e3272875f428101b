import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { CommandFailure, type CommandContext, type CommandHandler } from '../control/command-handler.ts';
import type { S3DumpConfig } from '../config/control-env.ts';
import { DUMP_SCHEMA_VERSION, DumpWriter, dumpBase } from '../dump/dump-writer.ts';
import type { ObjectPutter } from '../dump/s3-object-store.ts';
import type { Logger } from '../log/logger.ts';
import type { ClusterControl } from './cluster-control.ts';
import type { ClusterTasks } from './task-engines.ts';

/** How long the receiving node waits for every task's share by default (args.wait_ms changes it). */
export const DUMP_WAIT_MS = 60_000;
const POLL_MS = 500;

/** A dump request as every node reads it from the control topic. */
interface DumpRequest {
  id: string;
  base: string;
  createdAtMs: number;
  untilMs: number;
  propertyId: string | undefined;
  pageRecords: number | undefined;
  /** Tasks this node has written (or is writing) a share of, by ownership: each at most once per ownership. */
  written: WeakSet<object>;
}

/** One task's share found in S3: `<base>tasks/<partition>/<node>-g<generation>/manifest.json`. */
interface Share {
  partition: number;
  node: string;
  generation: number;
  key: string;
}

const SHARE_KEY = /tasks\/(\d+)\/(.+)-g(\d+)\/manifest\.json$/;

/** What a cluster dump needs. */
export interface ClusterDumpOptions {
  tasks: ClusterTasks;
  s3: { config: S3DumpConfig; store: ObjectPutter; client: Pick<S3Client, 'send'> };
  node: string;
  cluster: string;
  /** The input topic's partitions now: a share of each is awaited. */
  partitions: () => Promise<number>;
  now: () => number;
  log: Logger;
  /** The control plane's dump counters (status, metrics). */
  stats: { dumps: number; dumpsFailed: number };
}

/**
 * `dump-error-rates` of a cluster: the kernel figures are split over the tasks, so the node that
 * receives the command publishes it on the control topic; every node (the receiving one too) writes a
 * share of each task it owns, `<dump>/tasks/<partition>/<node>-g<generation>/` (parts, then that share's
 * manifest), and so does a node that gains a task while the dump is open (a task that moves is not
 * missed); the receiving node waits until a complete share of every partition of the input is in S3,
 * takes one per partition (the newest ownership: never a task twice) and writes the dump's manifest
 * listing their parts. A partition without a share when the wait ends fails the command
 * (DUMP_INCOMPLETE, naming the partitions), and no manifest is written.
 */
export class ClusterDump {
  private readonly open = new Map<string, DumpRequest>();

  constructor(private readonly o: ClusterDumpOptions) {
    o.tasks.onTaskReady((task) => {
      for (const req of this.live()) this.writeShares(req, task);
    });
  }

  /** Makes dump-error-rates a command of the whole cluster (before the control topic is read). */
  share(control: ClusterControl, commands: CommandHandler): void {
    control.gather(commands, 'dump-error-rates', {
      share: (args, ctx) => {
        const wait = (args.wait_ms as number | undefined) ?? DUMP_WAIT_MS;
        const createdAtMs = this.o.now();
        const { wait_ms: _w, ...rest } = args;
        return { ...rest, base: dumpBase(this.o.s3.config.prefix, 'error-rates', createdAtMs, ctx.id), created_at_ms: createdAtMs, until_ms: createdAtMs + wait };
      },
      everyNode: (args, ctx) => this.requested(args, ctx),
      finish: (args, ctx) => this.gatherShares(args, ctx),
    });
  }

  /** Every node: the request read from the control topic. Writes in the background: the topic's next commands do not wait. */
  private requested(args: Record<string, unknown>, ctx: CommandContext): Record<string, unknown> {
    const req: DumpRequest = {
      id: ctx.id, base: args.base as string, createdAtMs: args.created_at_ms as number, untilMs: args.until_ms as number,
      propertyId: args.property_id as string | undefined, pageRecords: args.page_records as number | undefined, written: new WeakSet(),
    };
    // A request read again at a restart, or by a node that joined after it, is over: nobody waits for it.
    if (this.o.now() >= req.untilMs) return { shares: 0, over: true };
    this.open.set(req.id, req);
    const tasks = this.o.tasks.readyTasks();
    for (const t of tasks) this.writeShares(req, t.task);
    return { shares: tasks.length };
  }

  private live(): DumpRequest[] {
    const now = this.o.now();
    for (const [id, r] of this.open) if (now >= r.untilMs) this.open.delete(id);
    return [...this.open.values()];
  }

  /** Writes the share of one task for a request (unless this ownership wrote it already); never throws. */
  private writeShares(req: DumpRequest, task: string): void {
    const t = this.o.tasks.readyTasks().find((x) => x.task === task);
    if (t === undefined || req.written.has(t.ownership)) return;
    req.written.add(t.ownership);
    const partition = task.slice(task.lastIndexOf(':') + 1);
    const base = `${req.base}tasks/${partition}/${this.o.node}-g${t.generation}/`;
    void (async () => {
      const w = new DumpWriter(this.o.s3.store, this.o.s3.config.prefix, 'error-rates', {
        command_id: req.id, task, partition: Number(partition), node: this.o.node, generation: t.generation, created_at: new Date(this.o.now()).toISOString(),
        property_id: req.propertyId ?? null, max_event_ts: this.o.tasks.taskEventTime(task),
      }, this.o.s3.config.partRecords, this.o.now(), req.id, base);
      const dumped = await this.o.tasks.dumpTask(task, (page) => w.add(page), { pageRecords: req.pageRecords, propertyId: req.propertyId });
      // A task that moved meanwhile: its new owner writes the share (a manifest here could mix two owners' figures).
      if (!dumped || !this.o.tasks.stillOwned(task, t.ownership)) {
        this.o.log.info({ commandId: req.id, task }, 'dump share not finished: the task moved; its new owner writes it');
        return;
      }
      const r = await w.finish();
      this.o.log.info({ commandId: req.id, task, records: r.records, manifest: r.manifest_key }, 'dump share of a task written');
    })().catch((err) => this.o.log.warn({ err, commandId: req.id, task }, 'dump share of a task not written'));
  }

  /** The receiving node: waits for a share of every partition, then writes the dump's manifest. */
  private async gatherShares(args: Record<string, unknown>, ctx: CommandContext): Promise<unknown> {
    const base = args.base as string;
    const untilMs = args.until_ms as number;
    const s3 = this.o.s3;
    try {
      const partitions = await this.o.partitions();
      let chosen = new Map<number, Share>();
      for (;;) {
        chosen = await this.shares(base);
        if (chosen.size >= partitions || this.o.now() >= untilMs) break;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      const missing = Array.from({ length: partitions }, (_, p) => p).filter((p) => !chosen.has(p));
      if (missing.length > 0) {
        throw new CommandFailure('DUMP_INCOMPLETE', `no share of partition(s) ${missing.join(', ')} of the input within ${Math.round((untilMs - (args.created_at_ms as number)) / 1000)} s `
          + `(their tasks are not ready anywhere: moving, or their node is down); no manifest written under s3://${s3.config.bucket}/${base}`, true);
      }
      const parts: Array<{ key: string; records: number; bytes: number; task: number }> = [];
      const tasks: Array<Record<string, unknown>> = [];
      let records = 0;
      let bytes = 0;
      let maxEventTs: number | null = null;
      for (const share of [...chosen.values()].sort((a, b) => a.partition - b.partition)) {
        const m = JSON.parse(Buffer.from(await this.get(share.key)).toString('utf8')) as { parts: Array<{ key: string; records: number; bytes: number }>; records: number; max_event_ts?: number | null };
        for (const p of m.parts) parts.push({ ...p, task: share.partition });
        records += m.records;
        bytes += m.parts.reduce((a, p) => a + p.bytes, 0);
        tasks.push({ partition: share.partition, node: share.node, generation: share.generation, records: m.records, manifest_key: share.key });
        if (typeof m.max_event_ts === 'number') maxEventTs = Math.max(maxEventTs ?? -Infinity, m.max_event_ts);
      }
      const manifestKey = `${base}manifest.json`;
      const manifest = {
        schema: 'vigil.dump.error-rates', schema_version: DUMP_SCHEMA_VERSION, command_id: ctx.id, created_at: new Date(args.created_at_ms as number).toISOString(),
        property_id: args.property_id ?? null, max_event_ts: maxEventTs, cluster: this.o.cluster, records, parts, tasks, complete: true,
      };
      await s3.store.put(manifestKey, Buffer.from(JSON.stringify(manifest, null, 1) + '\n'), 'application/json');
      this.o.stats.dumps++;
      return { bucket: s3.config.bucket, manifest_key: manifestKey, part_keys: parts.map((p) => p.key), records, bytes, tasks: tasks.length };
    } catch (err) {
      this.o.stats.dumpsFailed++;
      if (err instanceof CommandFailure) throw err;
      const e = err as { retriable?: boolean; message: string };
      throw new CommandFailure('DUMP_FAILED', e.message, e.retriable ?? true);
    }
  }

  /** The complete shares under a dump, one per partition: the newest ownership's (generation, then node name). */
  private async shares(base: string): Promise<Map<number, Share>> {
    const out = new Map<number, Share>();
    let token: string | undefined;
    do {
      const page = await this.o.s3.client.send(new ListObjectsV2Command({ Bucket: this.o.s3.config.bucket, Prefix: `${base}tasks/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const m = SHARE_KEY.exec(o.Key ?? '');
        if (!m) continue;
        const s: Share = { partition: Number(m[1]), node: m[2], generation: Number(m[3]), key: o.Key! };
        const prior = out.get(s.partition);
        if (prior === undefined || s.generation > prior.generation || (s.generation === prior.generation && s.node > prior.node)) out.set(s.partition, s);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async get(key: string): Promise<Uint8Array> {
    const out = await this.o.s3.client.send(new GetObjectCommand({ Bucket: this.o.s3.config.bucket, Key: key }));
    return out.Body!.transformToByteArray();
  }
}
