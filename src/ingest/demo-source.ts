import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Source, SourceSink } from './source.ts';
import { createGenerator, type ViewGenerator } from '../generate/index.ts';
import type { Logger } from '../log/logger.ts';

/** How the demo source is set up. */
export interface DemoSourceOptions {
  seed: number;
  logger: Logger;
  now?: () => number;
  /** How often views are generated up to the clock. */
  intervalMs?: number;
  /** Where the schedule's start is kept across restarts (the daemon's data directory); none: every start is a first. */
  dataDir?: string | null;
}

/** What a demo keeps in its data directory: the seed and the start of its incident schedule. */
interface DemoState {
  version: 1;
  seed: number;
  schedule_start_ms: number;
}

export const DEMO_STATE_FILE = 'demo-schedule.json';

/**
 * The embedded default: the demo generator in real time, an injected incident every few minutes.
 * The schedule's start is kept in the data directory, so a restarted demo goes on with the incident
 * due then instead of starting over (and injecting the first incident again).
 */
export class DemoSource implements Source {
  readonly name = 'demo';
  private timer: NodeJS.Timeout | null = null;
  private generator: ViewGenerator | null = null;
  private busy: Promise<void> = Promise.resolve();
  private lines = 0;
  private stopped = false;
  private scheduleStartMs = 0;
  private readonly now: () => number;

  constructor(private readonly opts: DemoSourceOptions) {
    this.now = opts.now ?? Date.now;
  }

  async start(sink: SourceSink): Promise<void> {
    const startMs = this.now();
    this.scheduleStartMs = this.scheduleStart(startMs);
    this.generator = createGenerator({ seed: this.opts.seed, hours: Infinity, profile: 'demo', startMs, scheduleStartMs: this.scheduleStartMs });
    let announced = 0;
    const tick = () => {
      if (this.stopped || !this.generator) return;
      const { bytes, lines } = this.generator.nextChunk(this.now());
      const labels = this.generator.labels();
      for (; announced < labels.length; announced++) {
        const l = labels[announced];
        if (l.expect === 'alert') this.opts.logger.info({ label: l }, `demo: injecting ${l.kind} of ${l.property_id}${l.video_title ? ` "${l.video_title}"` : ''} (${l.error_type}) from ${l.start} to ${l.end}`);
      }
      if (lines === 0) return;
      this.lines += lines;
      this.busy = this.busy.then(() => sink.write(bytes));
    };
    this.timer = setInterval(tick, this.opts.intervalMs ?? 1000);
  }

  // The saved start when it belongs to this seed and is not in the future (a clock set back); else now, saved.
  private scheduleStart(nowMs: number): number {
    const dir = this.opts.dataDir;
    if (!dir) return nowMs;
    const file = join(dir, DEMO_STATE_FILE);
    let saved: DemoState | null = null;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8')) as DemoState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.logger.warn({ err, file }, 'demo: unreadable schedule state, starting the schedule over');
    }
    if (saved && saved.version === 1 && saved.seed === this.opts.seed && Number.isSafeInteger(saved.schedule_start_ms) && saved.schedule_start_ms >= 0 && saved.schedule_start_ms <= nowMs) {
      this.opts.logger.info({ scheduleStart: new Date(saved.schedule_start_ms).toISOString() }, 'demo: continuing the incident schedule of an earlier run');
      return saved.schedule_start_ms;
    }
    const state: DemoState = { version: 1, seed: this.opts.seed, schedule_start_ms: nowMs };
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(state) + '\n');
    renameSync(`${file}.tmp`, file);
    return nowMs;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.busy;
  }

  finished(): Promise<void> {
    return new Promise(() => {});
  }

  position(): Record<string, unknown> {
    return { lines: this.lines, schedule_start: new Date(this.scheduleStartMs).toISOString() };
  }
}
