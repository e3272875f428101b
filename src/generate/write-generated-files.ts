import { createWriteStream, type WriteStream } from 'node:fs';
import { resolveGenerateOptions, type GenerateOptions } from './generate-options.ts';
import { createGenerator } from './view-generator.ts';

/** Where writeGeneratedFiles sends the run: a file path or an open stream for the lines, and an optional labels file. */
export interface WriteGeneratedOptions extends GenerateOptions {
  /** NDJSON lines go here; a path is created/truncated and closed at the end, a stream is left open. */
  out: string | NodeJS.WritableStream;
  /** Labels (NDJSON, one per line) are written here as they become known. */
  labelsOut?: string;
}

/** Counts of what writeGeneratedFiles wrote. */
export interface WriteGeneratedResult {
  lines: number;
  labels: number;
}

// One minute of event time per write: ~20k lines (a few MB) at full realistic scale, large enough
// to amortize the write call and small enough to keep memory flat for any run length.
const SLICE_MS = 60_000;
// A deep buffer lets the disk write of one slice overlap the generation of the next.
const OWNED_HIGH_WATER_MARK = 16 * 1024 * 1024;

/**
 * Streams a run to `out` slice by slice, waiting for 'drain' whenever the stream asks to, and its labels
 * to `labelsOut`; resolves when a finite run is complete (an endless demo streams until a write fails).
 */
export async function writeGeneratedFiles(options: WriteGeneratedOptions): Promise<WriteGeneratedResult> {
  const { startMs } = resolveGenerateOptions(options);
  const generator = createGenerator(options);
  const owned: WriteStream[] = [];
  const out = typeof options.out === 'string' ? own(owned, createWriteStream(options.out, { highWaterMark: OWNED_HIGH_WATER_MARK })) : options.out;
  const labelsOut = options.labelsOut !== undefined ? own(owned, createWriteStream(options.labelsOut)) : null;
  const lineWriter = new GuardedWriter(out);
  const labelWriter = labelsOut !== null ? new GuardedWriter(labelsOut) : null;
  let lines = 0;
  let labelsWritten = 0;
  try {
    for (let untilMs = startMs + SLICE_MS; !generator.done(); untilMs += SLICE_MS) {
      const chunk = generator.nextChunk(untilMs);
      if (chunk.lines > 0) {
        lines += chunk.lines;
        await lineWriter.write(chunk.bytes);
      }
      // Labels only ever get appended, so the new ones are the tail.
      const labels = generator.labels();
      if (labelWriter !== null && labels.length > labelsWritten) {
        await labelWriter.write(labels.slice(labelsWritten).map((l) => JSON.stringify(l) + '\n').join(''));
      }
      labelsWritten = labels.length;
    }
    for (const stream of owned) await endStream(stream);
  } catch (err) {
    for (const stream of owned) stream.destroy();
    throw err;
  } finally {
    lineWriter.detach();
    labelWriter?.detach();
  }
  return { lines, labels: labelsWritten };
}

function own(owned: WriteStream[], stream: WriteStream): WriteStream {
  owned.push(stream);
  return stream;
}

// Remembers an 'error' raised between writes so the next write rejects instead of the error going unhandled.
class GuardedWriter {
  private failure: Error | null = null;
  private readonly onError = (err: Error): void => {
    this.failure = err;
  };

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', this.onError);
  }

  async write(chunk: string | Uint8Array): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (this.stream.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        this.stream.off('drain', onDrain);
        this.stream.off('error', onFail);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => settle();
      const onFail = (err: Error): void => settle(err);
      this.stream.on('drain', onDrain);
      this.stream.on('error', onFail);
    });
  }

  detach(): void {
    this.stream.off('error', this.onError);
  }
}

function endStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    // The callback gets the error when the stream failed before or while finishing.
    stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
}
