import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Source, SourceSink } from './source.ts';
import { SourceError } from './source-error.ts';

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

  /** Reads from the start, or (a file) from `resume`'s `file` byte offset: a restored checkpoint's position. */
  async start(sink: SourceSink, resume?: ReadonlyMap<string, string>): Promise<void> {
    const offset = Number(resume?.get('file') ?? 0);
    if (this.path && offset > 0) {
      const size = statSync(this.path).size;
      if (size < offset) {
        throw new SourceError('SOURCE_CONFIG', `VIGIL_SOURCE_FILE ${this.path} has ${size} bytes, but the checkpoint in the data directory read it to byte ${offset}: `
          + 'is it another file? Use another VIGIL_DATA_DIR for it (or remove its checkpoints directory)', false);
      }
    }
    this.bytes = offset;
    const stream = this.path ? createReadStream(this.path, { highWaterMark: this.chunkBytes, start: offset }) : process.stdin;
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
