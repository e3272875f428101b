/**
 * Where a chunk comes from, for sources that read several partitions (Kafka partitions, Kinesis
 * shards), each in event-time order but not in step with one another: event time then advances
 * only as far as the slowest partition that is still catching up (src/engine/event-clock.ts).
 */
export interface ChunkOrigin {
  /** The partition every line of the chunk comes from. */
  stream: string;
  /** The partition is caught up after this chunk (no backlog): it no longer holds event time back. */
  live: boolean;
}

/**
 * Where a source resumes after a chunk's records, for one of its streams (a Kafka partition: the
 * next offset; a Kinesis shard: the last sequence number read; a file: the byte offset after the
 * chunk's last line). Opaque to everyone but the source: the engine keeps the latest per stream in
 * ingest order, a checkpoint stores those of exactly the records in its state, and the source seeks
 * back to them on restore.
 */
export interface ChunkPosition {
  stream: string;
  next: string;
}

/** A consumer group's rebalance as a member sees it: the partitions it gained and lost, at which generation. */
export interface PartitionChange {
  gained: string[];
  lost: string[];
  /** The group generation of the new assignment (null when the client does not tell). */
  generation: number | null;
}

/** Where a source delivers bytes: whole or partial NDJSON lines, in order. */
export interface SourceSink {
  /**
   * Accepts bytes; resolves when the engine has room for more (backpressure). A source whose writes
   * are whole lines may give the position after them (a file source's offsets are the daemon's).
   */
  write(bytes: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void>;
  /** The engine's chunk size: what a source that frames its own chunks (writeChunk) fills. */
  readonly chunkBytes?: number;
  /**
   * Accepts a chunk of whole lines, at most `chunkBytes`, that is a view at the start of a buffer of
   * its own (it is transferred to a worker: the source must not touch it again); resolves when the
   * engine has room for more. Lets a broker source skip write()'s copy through the line chunker;
   * do not mix it with a write() that ended mid-line.
   */
  writeChunk?(chunk: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void>;
  /**
   * Positions the source may commit (Kafka offsets, Kinesis positions file), by stream: those of the
   * latest durable checkpoint, or without checkpoints those of the records whose verdicts are
   * evaluated and stored. Never ahead of the state a restart would restore. Absent: nothing is.
   */
  committable?(): ReadonlyMap<string, string>;
  /**
   * The partitions the source reads (each in event-time order, not in step with one another), whose
   * chunks it writes with a ChunkOrigin: event time then follows the slowest one still catching up.
   * `parents`: partitions that continue others (a Kinesis split's or merge's children, by their
   * parents): one that has no mark of its own yet starts at its parents' (EventClock.declare).
   */
  declareStreams?(ids: string[], parents?: ReadonlyMap<string, readonly string[]>): void;
  /** A declared partition has nothing to deliver right now (caught up): it holds event time back no longer. */
  streamCaughtUp?(id: string): void;
  /**
   * A declared partition has records it has not delivered yet (its source can see a backlog): it holds
   * event time back however long its next chunk takes, instead of being taken for idle.
   */
  streamBehind?(id: string): void;
  /**
   * Whether a partition is further ahead of evaluated event time than the kernel can hold: the
   * source should stop reading it (Kafka pause, Kinesis: no GetRecords) until this turns false.
   */
  streamAhead?(id: string): boolean;
  /**
   * The source's assignment changed (Kafka: a group join). Given, the sink owns per-partition state
   * (a cluster's tasks): for each gained partition it returns a promise of where to read it from once
   * its state is loaded (a checkpoint's position; null: where the group's commit says). The source
   * reads nothing of a gained partition until its promise resolves (Kafka: paused), and forgets a lost one.
   */
  partitionsChanged?(change: PartitionChange): Map<string, Promise<string | null>>;
  /**
   * A progress record of a repartition stage, read from `partition` (ARCHITECTURE.md "Cluster: input
   * not keyed by property"): the upstream partition's mark and whether it is caught up, in order with
   * the chunks written before it.
   */
  upstreamProgress?(partition: string, upstream: string, mark: number | null, caughtUp: boolean): void;
}

/** A stream of view outcomes (demo generator, file, stdin; Kafka and Kinesis plug in here). */
export interface Source {
  readonly name: string;
  /**
   * Starts delivering to the sink; resolves once started. `resume` holds the positions of a restored
   * checkpoint of this source (ChunkPosition): the source reads each of its streams from there, whatever
   * it committed; the state holds no record of a stream it does not name. Absent when no such checkpoint
   * was restored (the source's own committed positions are all there is).
   */
  start(sink: SourceSink, resume?: ReadonlyMap<string, string>): Promise<void>;
  /**
   * Stops delivering; then runs `beforeClose` (the daemon's final checkpoint), commits what is
   * committable and lets go of its broker. Resolves when no more writes will happen. Idempotent.
   */
  stop(beforeClose?: () => Promise<void>): Promise<void>;
  /** Resolves when a finite source has delivered everything (never, for endless ones). */
  finished(): Promise<void>;
  /** Where the source is, for status and metrics. */
  position(): Record<string, unknown>;
}
