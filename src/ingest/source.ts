import type { ChunkOrigin } from '../engine/engine.ts';
/** Where a source delivers bytes: whole or partial NDJSON lines, in order. */
export interface SourceSink {
  /** Accepts bytes; resolves when the engine has room for more (backpressure). */
  write(bytes: Uint8Array, origin?: ChunkOrigin): Promise<void>;
  /**
   * Resolves once every whole line written before this call has been evaluated and its verdicts
   * delivered: sources commit offsets/positions on it, never earlier. Absent: treat write() as evaluated.
   */
  evaluated?(): Promise<void>;
  /** The engine's chunk size: what a source that frames its own chunks (writeChunk) fills. */
  readonly chunkBytes?: number;
  /**
   * Accepts a chunk of whole lines, at most `chunkBytes`, that is a view at the start of a buffer of
   * its own (it is transferred to a worker: the source must not touch it again); resolves when the
   * engine has room for more. Lets a broker source skip write()'s copy through the line chunker;
   * do not mix it with a write() that ended mid-line.
   */
  writeChunk?(chunk: Uint8Array, origin?: ChunkOrigin): Promise<void>;
  /**
   * The partitions the source reads (each in event-time order, not in step with one another), whose
   * chunks it writes with a ChunkOrigin: event time then follows the slowest one still catching up.
   */
  declareStreams?(ids: string[]): void;
  /** A declared partition has nothing to deliver right now (caught up): it holds event time back no longer. */
  streamCaughtUp?(id: string): void;
}

/** A stream of view outcomes (demo generator, file, stdin; Kafka and Kinesis plug in here). */
export interface Source {
  readonly name: string;
  /** Starts delivering to the sink; resolves once started. */
  start(sink: SourceSink): Promise<void>;
  /** Stops delivering; resolves when no more writes will happen. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when a finite source has delivered everything (never, for endless ones). */
  finished(): Promise<void>;
  /** Where the source is, for status and metrics. */
  position(): Record<string, unknown>;
}
