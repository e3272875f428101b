import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import type { Logger } from '../log/logger.ts';
import { Engine } from '../engine/engine.ts';
import { LineChunker } from '../ingest/line-chunker.ts';
import { openIncidentStore } from '../incidents/incident-store.ts';
import { IncidentManager } from '../incidents/incident-manager.ts';
import { toReplayRecord } from '../incidents/replay-record.ts';
import type { DetectionParams } from '../kernel/detection-params.ts';
import type { FieldNames } from '../ingest/field-names.ts';

/** What a replay reads, how it runs, and where its transitions go. */
export interface ReplayOptions {
  input: string | Readable;
  output: Writable;
  workers: number;
  groups: number;
  chunkBytes: number;
  params: DetectionParams;
  maxKeysPerWorker: number;
  maxCellsPerWorker: number;
  fieldNames?: FieldNames;
  /** Longer lines are rejected as too_large (VIGIL_MAX_LINE_BYTES, as in the daemon). */
  maxLineBytes?: number;
  logger: Logger;
  /** Called every ~second with bytes read so far (progress display). */
  onProgress?: (p: { bytes: number; events: number }) => void;
}

/** Summary of a replay run. */
export interface ReplaySummary {
  events: number;
  rejected: Record<string, number>;
  late: number;
  /** Views dropped as duplicates (same property and view id within the dedup horizon). */
  duplicates: number;
  /** Records the engine's clock judged to be from the future (clamped or dropped). */
  future: number;
  incidents: number;
  transitions: number;
  seconds: number;
  eventsPerSecond: number;
}

/** Runs the daemon's engine over NDJSON as fast as it can and writes one JSON line per incident transition. */
export async function replay(opts: ReplayOptions): Promise<ReplaySummary> {
  const started = process.hrtime.bigint();
  const store = openIncidentStore(':memory:');
  const manager = new IncidentManager({ store, logger: opts.logger.child({ component: 'incidents' }) });
  let transitions = 0;
  let incidents = 0;
  let outBuf = '';
  manager.subscribe((t) => {
    const rec = toReplayRecord(t);
    if (!rec) return;
    transitions++;
    if (t.type === 'opened') incidents++;
    outBuf += JSON.stringify(rec) + '\n';
  });
  const engine = new Engine({
    workers: opts.workers,
    groups: opts.groups,
    chunkBytes: opts.chunkBytes,
    params: opts.params,
    maxKeysPerWorker: opts.maxKeysPerWorker,
    maxCellsPerWorker: opts.maxCellsPerWorker,
    fieldNames: opts.fieldNames,
    maxLineBytes: opts.maxLineBytes,
    logger: opts.logger,
    onVerdicts: (v) => { manager.applyBatch(v); },
  });
  await engine.start();
  const flush = async () => {
    if (outBuf.length === 0) return;
    const s = outBuf;
    outBuf = '';
    if (!opts.output.write(s)) await once(opts.output, 'drain');
  };
  try {
    const chunker = new LineChunker(opts.chunkBytes);
    const pending: Uint8Array[] = [];
    const collect = (c: Uint8Array) => pending.push(c);
    let bytes = 0;
    let lastProgress = Date.now();
    const evaluate = async () => {
      engine.countOversized(chunker.takeOversized());
      while (pending.length) await engine.push(pending.shift()!);
      await flush();
      if (opts.onProgress && Date.now() - lastProgress > 1000) {
        lastProgress = Date.now();
        opts.onProgress({ bytes, events: engine.stats.events });
      }
    };
    if (typeof opts.input === 'string') {
      // A file is read straight into the chunks the engine transfers to its workers: no copy.
      const fh = await open(opts.input, 'r');
      try {
        const read = async (buf: Uint8Array, offset: number, length: number) => (await fh.read(buf, offset, length, null)).bytesRead;
        for (let n = await chunker.pull(read, collect); n > 0; n = await chunker.pull(read, collect)) {
          bytes += n;
          await evaluate();
        }
      } finally {
        await fh.close();
      }
    } else {
      for await (const data of opts.input) {
        const buf = typeof data === 'string' ? Buffer.from(data) : (data as Buffer);
        bytes += buf.length;
        chunker.push(buf, collect);
        await evaluate();
      }
    }
    chunker.end(collect);
    engine.countOversized(chunker.takeOversized());
    while (pending.length) await engine.push(pending.shift()!);
    await engine.finish();
    await flush();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const kc = engine.kernelCounters();
    return {
      events: engine.stats.events,
      rejected: { ...engine.stats.rejected },
      late: kc.late,
      duplicates: kc.duplicates,
      future: engine.clock.stats.future,
      incidents,
      transitions,
      seconds,
      eventsPerSecond: engine.stats.events / seconds,
    };
  } finally {
    await engine.stop();
    store.close();
  }
}

/** Opens the replay output: a file, or stdout for '-' / undefined. */
export function openOutput(path: string | undefined): Writable {
  return !path || path === '-' ? process.stdout : createWriteStream(path);
}
