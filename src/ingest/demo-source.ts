import type { Source, SourceSink } from './source.ts';
import { createGenerator, type ViewGenerator } from '../generate/index.ts';
import type { Logger } from '../log/logger.ts';

const encoder = new TextEncoder();

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
      const batch = this.generator.nextBatch(this.now());
      const labels = this.generator.labels();
      for (; announced < labels.length; announced++) {
        this.logger.info({ label: labels[announced] }, 'demo: incident scheduled');
      }
      if (batch.length === 0) return;
      this.lines += batch.length;
      this.busy = this.busy.then(() => sink.write(encoder.encode(batch.join('\n') + '\n')));
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
