import type { CommandHandler } from './command-handler.ts';
import { CommandFailure } from './command-handler.ts';
import type { EngineView } from '../engine/engine.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { S3DumpConfig } from '../config/control-env.ts';
import type { ObjectPutter } from '../dump/s3-object-store.ts';
import { DumpWriter } from '../dump/dump-writer.ts';

/** What the dump commands need from the running daemon. */
export interface DumpDeps {
  engine: () => EngineView;
  manager: IncidentManager;
  /** Null when VIGIL_S3_BUCKET is not set: the commands answer DUMP_NOT_CONFIGURED. */
  s3: { config: S3DumpConfig; store: ObjectPutter } | null;
  now: () => number;
  /** Counters for status and metrics. */
  stats: { dumps: number; dumpsFailed: number };
}

const ALLOWED = {
  // wait_ms: a cluster's dump (src/cluster/cluster-dump.ts) waits that long for every task's share.
  'dump-error-rates': ['property_id', 'page_records', 'wait_ms'],
  'dump-incidents': [],
} as const;

function unknownArgs(args: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(args).filter((k) => !allowed.includes(k)).map((k) => `unknown argument args.${k} (allowed: ${allowed.join(', ') || 'none'})`);
}

/** Registers dump-error-rates (kernel figures per property/title x error type) and dump-incidents (open incidents), both to S3. */
export function registerDumpCommands(h: CommandHandler, deps: DumpDeps): void {
  const target = () => {
    if (!deps.s3) throw new CommandFailure('DUMP_NOT_CONFIGURED', 'dumps need VIGIL_S3_BUCKET (and VIGIL_S3_ENDPOINT for an S3-compatible store)');
    return deps.s3;
  };
  const run = async (kind: 'error-rates' | 'incidents', commandId: string, meta: Record<string, unknown>, fill: (w: DumpWriter) => Promise<void>) => {
    const s3 = target();
    const w = new DumpWriter(s3.store, s3.config.prefix, kind, { command_id: commandId, created_at: new Date(deps.now()).toISOString(), ...meta }, s3.config.partRecords, deps.now(), commandId);
    try {
      await fill(w);
      const r = await w.finish();
      deps.stats.dumps++;
      return { bucket: s3.config.bucket, ...r };
    } catch (err) {
      deps.stats.dumpsFailed++;
      const e = err as { retriable?: boolean; message: string };
      throw new CommandFailure('DUMP_FAILED', e.message, e.retriable ?? true);
    }
  };

  h.register('dump-error-rates', {
    validate: (args) => {
      const p = unknownArgs(args, ALLOWED['dump-error-rates']);
      if (args.property_id !== undefined && (typeof args.property_id !== 'string' || args.property_id.length === 0)) p.push('args.property_id must be a non-empty string');
      if (args.wait_ms !== undefined && !(Number.isInteger(args.wait_ms) && (args.wait_ms as number) >= 1000 && (args.wait_ms as number) <= 600_000)) p.push('args.wait_ms must be an integer from 1000 to 600000');
      if (args.page_records !== undefined && !(Number.isInteger(args.page_records) && (args.page_records as number) >= 1 && (args.page_records as number) <= 65536)) p.push('args.page_records must be an integer from 1 to 65536');
      return p;
    },
    run: (args, ctx) => run('error-rates', ctx.id, { property_id: args.property_id ?? null, max_event_ts: deps.engine().maxEventTs() }, async (w) => {
      // Each page is written (a full part uploaded) before the next is asked for: memory stays bounded.
      await deps.engine().dumpFigures((page) => w.add(page), { pageRecords: args.page_records as number | undefined, propertyId: args.property_id as string | undefined });
    }),
  });

  h.register('dump-incidents', {
    validate: (args) => unknownArgs(args, ALLOWED['dump-incidents']),
    run: (_args, ctx) => run('incidents', ctx.id, {}, async (w) => {
      await w.add(deps.manager.openIncidents());
    }),
  });
}
