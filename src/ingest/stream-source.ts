import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Source, SourceSink } from './source.ts';

/** A file or stdin read once to its end; the daemon keeps running afterwards. */
export class StreamSource implements Source {
  readonly name: string;
  private stream: Readable | null = null;
  private bytes = 0;
  private done!: Promise<void>;
  private stopped = false;

  constructor(private readonly path: string | null, private readonly chunkBytes: number) {
    this.name = path ? 'file' : 'stdin';
  }

  async start(sink: SourceSink): Promise<void> {
    const stream = this.path ? createReadStream(this.path, { highWaterMark: this.chunkBytes }) : process.stdin;
    this.stream = stream;
    this.done = (async () => {
      try {
        for await (const data of stream) {
          if (this.stopped) break;
          const buf = typeof data === 'string' ? Buffer.from(data) : (data as Buffer);
          this.bytes += buf.length;
          await sink.write(buf);
        }
      } catch (err) {
        // stop() destroys the stream on purpose: that is a shutdown, not a failure.
        if (!this.stopped) throw err;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.destroy();
    await this.done?.catch(() => undefined);
  }

  finished(): Promise<void> {
    return this.done;
  }

  position(): Record<string, unknown> {
    return { path: this.path ?? '-', bytes: this.bytes };
  }
}
