import type { Source, SourceSink } from './source.ts';
import { createGenerator, type ViewGenerator } from '../generate/index.ts';
import type { Logger } from '../log/logger.ts';

/** The embedded default: the demo generator in real time, an injected incident every few minutes. */
export class DemoSource implements Source {
  readonly name = 'demo';
  private timer: NodeJS.Timeout | null = null;
  private generator: ViewGenerator | null = null;
  private busy: Promise<void> = Promise.resolve();
  private lines = 0;
  private stopped = false;

  constructor(
    private readonly seed: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly intervalMs = 1000,
  ) {}

  async start(sink: SourceSink): Promise<void> {
    this.generator = createGenerator({ seed: this.seed, hours: Infinity, profile: 'demo', startMs: this.now() });
    let announced = 0;
    const tick = () => {
      if (this.stopped || !this.generator) return;
      const { bytes, lines } = this.generator.nextChunk(this.now());
      const labels = this.generator.labels();
      for (; announced < labels.length; announced++) {
        const l = labels[announced];
        if (l.expect === 'alert') this.logger.info({ label: l }, `demo: injecting ${l.kind} of ${l.property_id}${l.video_title ? ` "${l.video_title}"` : ''} (${l.error_type}) from ${l.start} to ${l.end}`);
      }
      if (lines === 0) return;
      this.lines += lines;
      this.busy = this.busy.then(() => sink.write(bytes));
    };
    this.timer = setInterval(tick, this.intervalMs);
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
    return { lines: this.lines };
  }
}
