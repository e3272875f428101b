import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SourceError } from './source-error.ts';

/**
 * A shard's committable position: the sequence number of the last record the latest durable checkpoint
 * holds (without checkpoints, the last whose verdicts are stored), and whether the shard is finished
 * (closed, and its last record committable).
 */
export interface ShardPosition {
  sequenceNumber: string | null;
  finished: boolean;
}

const FORMAT = 1;

/**
 * The Kinesis positions of one stream, saved in the data directory as JSON (temporary file,
 * fsync, rename: never half-written) and read back at start so that reading resumes. Without a path
 * (a cluster's task: its positions live in its checkpoints in S3) they are kept in memory only.
 */
export class KinesisPositions {
  private readonly shards = new Map<string, ShardPosition>();
  private dirty = false;
  /** With VIGIL_KINESIS_START=LATEST: when reading first started (see latestFromMs). */
  private latestFrom: number | null = null;

  constructor(private readonly path: string | null, private readonly stream: string) {}

  /** Loads the saved positions; a file for another stream is refused rather than mixed in. */
  load(): void {
    if (this.path === null || !existsSync(this.path)) return;
    let doc: { format?: number; stream?: string; latestFromMs?: number; shards?: Record<string, ShardPosition> };
    try {
      doc = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new SourceError('SOURCE_POSITIONS', `cannot read Kinesis positions ${this.path}: ${(err as Error).message}`, false, { cause: err });
    }
    if (doc.format !== FORMAT || doc.stream !== this.stream) {
      throw new SourceError('SOURCE_POSITIONS', `${this.path} holds positions of stream ${JSON.stringify(doc.stream)} (format ${doc.format}), not ${JSON.stringify(this.stream)}: move it away to start over`, false);
    }
    for (const [id, p] of Object.entries(doc.shards ?? {})) this.shards.set(id, { sequenceNumber: p.sequenceNumber ?? null, finished: !!p.finished });
    this.latestFrom = typeof doc.latestFromMs === 'number' ? doc.latestFromMs : null;
  }

  /**
   * The time (epoch ms) the first LATEST iterators were taken: a shard with no sequence number yet
   * (nothing read, a child, an expired iterator, a restart) continues AT_TIMESTAMP of it.
   */
  get latestFromMs(): number | null {
    return this.latestFrom;
  }

  set latestFromMs(ms: number | null) {
    this.latestFrom = ms;
    this.dirty = true;
  }

  /** The saved position of a shard, if any. */
  get(shardId: string): ShardPosition | undefined {
    return this.shards.get(shardId);
  }

  /** Records a shard's new position (committable records only); saved by the next save(). */
  set(shardId: string, position: ShardPosition): void {
    this.shards.set(shardId, position);
    this.dirty = true;
  }

  /** Writes the positions durably if they changed since the last save. */
  save(): void {
    if (!this.dirty || this.path === null) return;
    this.dirty = false;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      const latest = this.latestFrom === null ? {} : { latestFromMs: this.latestFrom };
      writeSync(fd, JSON.stringify({ format: FORMAT, stream: this.stream, ...latest, shards: Object.fromEntries(this.shards) }, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }

  /** All positions, for status. */
  snapshot(): Record<string, ShardPosition> {
    return Object.fromEntries(this.shards);
  }
}
