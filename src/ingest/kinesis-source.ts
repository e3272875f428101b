import { join } from 'node:path';
import {
  KinesisClient, ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand,
  type Shard, type GetShardIteratorCommandInput,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { Logger } from '../log/logger.ts';
import type { KinesisConfig } from '../config/kinesis-config.ts';
import type { Source, SourceSink } from './source.ts';
import { emptySkipCounts, type SkipReason } from './skip-counts.ts';
import { ChunkFramer } from './chunk-framer.ts';
import { KinesisPositions, type ShardPosition } from './kinesis-positions.ts';
import { shardNode } from './shard-assignment.ts';
import { SourceError } from './source-error.ts';

/** What the Kinesis source needs besides its configuration. */
export interface KinesisSourceOptions {
  config: KinesisConfig;
  maxRecordBytes: number;
  /** Positions are saved in `${dataDir}/kinesis-positions.json`; null: kept in memory only (a cluster's task, whose positions are in its checkpoints). */
  dataDir: string | null;
  logger: Logger;
  /** Explicit credentials (tests); otherwise the AWS SDK's default provider chain. */
  credentials?: AwsCredentialIdentity;
  /** Called once with the source's client, before any call (tests add SDK middleware here). */
  onClient?: (client: KinesisClient) => void;
  /**
   * Which shards this source reads, given the listing (ShardLineage ids). Default: the static split,
   * node VIGIL_KINESIS_NODE_INDEX of VIGIL_KINESIS_NODE_COUNT (shardNode). A cluster's task reads its
   * lineages (shardTask). Children must go with their parent (ParentShardId): the order of a
   * lineage's records is kept within one source.
   */
  owns?: (shard: Shard, byId: ReadonlyMap<string, Shard>) => boolean;
}

// Kinesis limits per shard: 5 GetRecords calls/s, 2 MiB/s read. Each gap has a margin: the service
// counts calls as they arrive, and a request can leave a few ms later than its slot.
const MARGIN_MS = 10;
const MIN_CALL_GAP_MS = 200 + MARGIN_MS;
/** How often a shard paused ahead of event time looks again. */
const AHEAD_POLL_MS = 250;
const MAX_BYTES_PER_S = 2 * 1024 * 1024;
const THROTTLE_CODES = new Set(['ProvisionedThroughputExceededException', 'LimitExceededException', 'ThrottlingException']);
/** ListShards throttled this many times in a row fails the discovery (at start: the start). */
const MAX_LIST_THROTTLES = 8;
type KinesisOperation = 'ListShards' | 'GetShardIterator' | 'GetRecords';

const isThrottle = (err: unknown): boolean => THROTTLE_CODES.has((err as Error)?.name);

/** Backoff after the n-th throttle in a row (n ≥ 1): 400 ms doubling to 10 s, jittered ±25 %. */
export function throttleBackoffMs(n: number, random = Math.random): number {
  return Math.min(10_000, 400 * 2 ** Math.min(n - 1, 10)) * (0.75 + random() / 2);
}

interface ShardReader {
  shardId: string;
  done: Promise<void>;
}

/** A GetRecords record as the source uses it. */
interface KinesisRecord {
  Data?: Uint8Array;
  SequenceNumber?: string;
}

/**
 * Reads every shard assigned to this node (one loop per shard, within the per-shard limits) and
 * frames each read into chunks of NDJSON for the engine, each with its shard (ChunkOrigin) and the
 * sequence number of its last record (ChunkPosition). Saves in the data directory, per shard, the
 * sequence number the sink says is committable (that of the latest durable checkpoint), so the file
 * is never ahead of the state a restart restores; a restored checkpoint's positions win over it. A
 * child shard is read only after its parents' records were all accepted by the engine, in order.
 */
export class KinesisSource implements Source {
  readonly name = 'kinesis';
  private readonly client: KinesisClient;
  private readonly streamName: string;
  private readonly positions: KinesisPositions;
  private readonly readers = new Map<string, ShardReader>();
  /** Shards whose records are being read (parents ended): declared to the engine's clock. */
  private readonly active = new Set<string>();
  /** Children whose parents have not all ended yet, with those parents. */
  private readonly waiting = new Map<string, string[]>();
  /** The parents (those this source reads) of each shard that has any: declared with it, it starts at their event time. */
  private readonly parentsOf = new Map<string, string[]>();
  /** Shards the listing says are closed (resharded): they never count as caught up, only their end lets time pass. */
  private readonly closed = new Set<string>();
  /** Shards the listing shows a child of. */
  private readonly withChildren = new Set<string>();
  /**
   * Shards with nothing more to read: every record accepted by the engine in this process (read to
   * the end of a closed shard), or finished by the positions file. Their children may be read.
   */
  private readonly endedShards = new Set<string>();
  /** Shards read to their end in this process, with their last sequence number (null: the shard never had a record for us). */
  private readonly finalSeq = new Map<string, string | null>();
  private readonly endWaiters = new Map<string, Array<() => void>>();
  /**
   * Per shard, the sequence number reading continues after: that of the last record in a chunk the
   * engine accepted in this process, else the restored checkpoint's, else the positions file's. A
   * reader started again (after a failure) continues from here, so nothing is counted twice.
   */
  private readonly next = new Map<string, string>();
  private readonly skipped = emptySkipCounts();
  private readonly abort = new AbortController();
  private sink!: SourceSink;
  private framer!: ChunkFramer;
  /** The shard whose records are being framed (for skip samples). */
  private framing = '';
  private writeChain: Promise<void> = Promise.resolve();
  private discoverTimer: NodeJS.Timeout | null = null;
  private saveTimer: NodeJS.Timeout | null = null;
  private records = 0;
  private getRecordsCalls = 0;
  /** Polls skipped because the shard was too far ahead of evaluated event time. */
  private pausedPolls = 0;
  private readonly throttled: Record<KinesisOperation, number> = { ListShards: 0, GetShardIterator: 0, GetRecords: 0 };
  private discovering: Promise<void> | null = null;
  private iteratorsRenewed = 0;
  private stopping: Promise<void> | null = null;
  /** LATEST is taken only for the shards of the first discovery of the first run (see newIterator). */
  private latestAllowed = false;
  private readonly log: Logger;
  private readonly owns: NonNullable<KinesisSourceOptions['owns']>;

  constructor(private readonly opts: KinesisSourceOptions) {
    const c = opts.config;
    this.streamName = /:stream\/(.+)$/.exec(c.stream)?.[1] ?? c.stream;
    this.log = opts.logger.child({ component: 'kinesis', stream: this.streamName });
    this.client = new KinesisClient({
      region: c.region,
      endpoint: c.endpoint ?? undefined,
      credentials: opts.credentials,
      // HTTP/1.1 (kinesalite and proxies speak nothing else); keep-alive for the polling loops.
      requestHandler: new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 30_000 }),
      maxAttempts: 3,
    });
    opts.onClient?.(this.client);
    this.positions = new KinesisPositions(opts.dataDir === null ? null : join(opts.dataDir, 'kinesis-positions.json'), this.streamName);
    this.owns = opts.owns ?? ((s, byId) => shardNode(s, byId, c.nodeCount) === c.nodeIndex);
  }

  async start(sink: SourceSink, resume?: ReadonlyMap<string, string>): Promise<void> {
    this.sink = sink;
    // A split record is found when its chunk is sealed: that is still inside the shard's write.
    this.framer = new ChunkFramer(sink.chunkBytes ?? 1 << 20, this.opts.maxRecordBytes, this.skipped, (r, v) => this.sampleSkip(r, v, this.framing));
    this.positions.load();
    // A restored checkpoint's positions win over the file: the state holds exactly the records up to
    // them. (The file may be behind them, saved before that checkpoint; or ahead, when an older
    // checkpoint was restored.) A shard the file says is finished stays so only at the same position;
    // one with records that the checkpoint does not name (read after it) is read from the start again.
    if (resume) {
      for (const [id, p] of Object.entries(this.positions.snapshot())) {
        if (p.sequenceNumber !== null && !resume.has(id)) this.positions.set(id, { sequenceNumber: null, finished: false });
      }
      for (const [id, seq] of resume) {
        if (this.positions.get(id)?.sequenceNumber !== seq) this.positions.set(id, { sequenceNumber: seq, finished: false });
      }
    }
    for (const [id, p] of Object.entries(this.positions.snapshot())) {
      if (p.finished) this.endedShards.add(id);
      if (p.sequenceNumber !== null) this.next.set(id, p.sequenceNumber);
    }
    if (this.opts.config.startPosition === 'LATEST' && this.positions.latestFromMs === null) {
      // Taken before the first LATEST iterator: every record after those iterators arrives at or after
      // it, and none before them. Arrival times are whole milliseconds: a record acknowledged before
      // this start may have arrived in the millisecond of `now`, so the mark is the next millisecond,
      // and the iterators are taken only once the clock has reached it.
      const now = Date.now();
      while (Date.now() <= now) { /* at most a millisecond, once */ }
      this.positions.latestFromMs = now + 1;
      this.latestAllowed = true;
    }
    try {
      await this.discover();
    } catch (err) {
      throw new SourceError('SOURCE_CONNECT', `cannot list the shards of ${this.streamName}: ${(err as Error).message}`, true, { cause: err });
    } finally {
      this.latestAllowed = false;
    }
    this.savePositions();
    this.discoverTimer = setInterval(() => {
      if (this.discovering) return;
      this.discovering = this.discover()
        .catch((err) => this.log.warn({ err: (err as Error).message }, 'shard discovery failed; will retry'))
        .finally(() => { this.discovering = null; });
    }, this.opts.config.discoverMs);
    this.discoverTimer.unref();
    this.saveTimer = setInterval(() => this.savePositions(), 1000);
    this.saveTimer.unref();
    this.log.info({ shards: [...this.readers.keys()], node: this.opts.config.nodeIndex, nodes: this.opts.config.nodeCount }, 'kinesis source started');
  }

  /** Lists all shards (paginated) and starts a reader for each new shard of this node. */
  private async discover(): Promise<void> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const input = token ? { NextToken: token } : { StreamName: this.streamName };
      let out;
      for (let throttles = 0; ; ) {
        try {
          out = await this.client.send(new ListShardsCommand(input), { abortSignal: this.abort.signal });
          break;
        } catch (err) {
          if (!isThrottle(err) || this.abort.signal.aborted || ++throttles > MAX_LIST_THROTTLES) throw err;
          this.throttled.ListShards++;
          if (!(await this.sleep(throttleBackoffMs(throttles)))) return;
        }
      }
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
    const byId = new Map(shards.map((s) => [s.ShardId!, s]));
    for (const s of shards) {
      if (s.SequenceNumberRange?.EndingSequenceNumber) this.closed.add(s.ShardId!);
      for (const p of [s.ParentShardId, s.AdjacentParentShardId]) if (p) this.withChildren.add(p);
    }
    const ours = new Set(shards.filter((s) => this.owns(s, byId)).map((s) => s.ShardId!));
    for (const s of shards) {
      const id = s.ShardId!;
      if (!ours.has(id) || this.readers.has(id) || this.endedShards.has(id) || this.abort.signal.aborted) continue;
      // Per-key order across a reshard: the parents' records go first. A parent that another node
      // reads (only the adjacent parent of a merge can be) or that has aged out is not waited for.
      const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p && ours.has(p));
      if (parents.length > 0) this.parentsOf.set(id, parents);
      // Declared (below) before any of them reads, so that the first to deliver cannot run ahead of the others.
      if (parents.every((p) => this.endedShards.has(p))) this.active.add(id);
      else this.waiting.set(id, parents);
      const reader: ShardReader = { shardId: id, done: this.readShard(id, parents, this.latestAllowed && parents.length === 0) };
      reader.done.catch((err) => {
        // Forgotten, so that the next discovery starts the shard again from its last position.
        if (this.readers.get(id) === reader) this.readers.delete(id);
        this.log.error({ err, shardId: id }, 'shard reader failed; the next discovery restarts it');
      });
      this.readers.set(id, reader);
    }
    this.declareActive();
  }

  private async waitEnded(shardId: string): Promise<void> {
    if (this.endedShards.has(shardId)) return;
    await new Promise<void>((resolve) => {
      const list = this.endWaiters.get(shardId) ?? [];
      list.push(resolve);
      this.endWaiters.set(shardId, list);
      this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private async readShard(shardId: string, parents: string[], latestAllowed: boolean): Promise<void> {
    const log = this.log.child({ shardId });
    for (const p of parents) await this.waitEnded(p);
    if (this.abort.signal.aborted) return;
    // Event time follows the slowest shard being read that is still catching up (a child whose
    // parents ended is declared in the same step as they leave: see end()).
    if (!this.active.has(shardId)) {
      this.active.add(shardId);
      this.declareActive();
    }
    try {
      await this.readShardRecords(shardId, parents, log, latestAllowed);
    } finally {
      this.waiting.delete(shardId);
      // A stop leaves the shards declared: the checkpoint taken at the stop carries their marks (without
      // them, a split's children restored from it would have no parent's mark to hold event time at).
      if (!this.abort.signal.aborted && this.active.delete(shardId)) this.declareActive();
    }
  }

  /**
   * The shards being read, to the engine's clock, with the parents of each child: a child that has
   * delivered nothing yet holds event time at its parents' mark (one whose first reads are empty,
   * its records not put yet, would otherwise hold nothing back while the other shards run ahead).
   */
  private declareActive(): void {
    const ids = [...this.active].sort();
    const parents = new Map(ids.flatMap((id) => (this.parentsOf.has(id) ? [[id, this.parentsOf.get(id)!] as const] : [])));
    this.sink.declareStreams?.(ids, parents);
  }

  private async readShardRecords(shardId: string, parents: string[], log: Logger, latestAllowed: boolean): Promise<void> {
    let lastSeq = this.next.get(shardId) ?? null;
    let iterator = await this.newIterator(shardId, lastSeq, latestAllowed);
    let lastCallAt = -Infinity;
    let lastBytes = 0;
    let backoffMs = 0;
    let throttles = 0;
    let failures = 0;
    /** The last read showed records still to deliver (see below). */
    let behind = false;
    log.info({ from: lastSeq ?? this.opts.config.startPosition, parents }, 'reading shard');
    while (iterator && !this.abort.signal.aborted) {
      // Too far ahead of evaluated event time (the kernel's rings could not hold more of it): wait.
      // An iterator unused for 5 minutes expires; the renewal below takes care of that.
      if (this.sink.streamAhead?.(shardId)) {
        this.pausedPolls++;
        if (!(await this.sleep(AHEAD_POLL_MS))) break;
        continue;
      }
      // Per shard at most one call per MIN_CALL_GAP_MS and 2 MB/s (bytes of the last read), or the
      // backoff. Measured on the monotonic clock, and checked again after the sleep: a timer may fire early.
      const gap = Math.max(MIN_CALL_GAP_MS, (lastBytes / MAX_BYTES_PER_S) * 1000 + MARGIN_MS, backoffMs);
      let wait;
      while ((wait = lastCallAt + gap - performance.now()) > 0) if (!(await this.sleep(Math.ceil(wait)))) break;
      if (this.abort.signal.aborted) break;
      lastCallAt = performance.now();
      let out;
      try {
        this.getRecordsCalls++;
        out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.opts.config.maxRecordsPerCall }), { abortSignal: this.abort.signal });
        backoffMs = 0;
        throttles = 0;
        failures = 0;
      } catch (err) {
        if (this.abort.signal.aborted) break;
        const name = (err as Error).name;
        // A backlog waiting out a throttle or a failure still holds event time back (a backoff may
        // last longer than the idle timeout).
        if (behind) this.sink.streamBehind?.(shardId);
        if (isThrottle(err)) {
          this.throttled.GetRecords++;
          backoffMs = throttleBackoffMs(++throttles);
          continue;
        }
        if (name === 'ExpiredIteratorException') {
          this.iteratorsRenewed++;
          log.info({ lastSeq }, 'shard iterator expired; renewing from the last sequence number');
          iterator = await this.newIterator(shardId, lastSeq, false);
          continue;
        }
        backoffMs = Math.min(10_000, 1000 * 2 ** Math.min(failures++, 4));
        log.warn({ err: (err as Error).message }, 'GetRecords failed; retrying');
        continue;
      }
      const recs = out.Records ?? [];
      lastBytes = 0;
      // A closed shard is never caught up, not even at its end: that would let the other shards take
      // event time past its children's first records before end() declares them (they would be late).
      const caughtUp = !this.closed.has(shardId) && !!out.NextShardIterator && (out.MillisBehindLatest ?? 0) === 0;
      // Behind (a backlog the engine has not seen yet): Kinesis says so, or the read brought records
      // (more may follow; the write may wait for room), or the shard is closed and not read to its end.
      // Such a shard holds event time back however long its next chunk takes, never taken for idle.
      behind = (out.MillisBehindLatest ?? 0) > 0 || recs.length > 0 || (this.closed.has(shardId) && !!out.NextShardIterator);
      if (behind) this.sink.streamBehind?.(shardId);
      if (recs.length > 0) {
        for (const r of recs) lastBytes += r.Data?.length ?? 0;
        this.records += recs.length;
        // Caught up: nothing behind by Kinesis's word, and less than a full batch (kinesalite always says 0).
        await this.write(shardId, recs, caughtUp && recs.length < this.opts.config.maxRecordsPerCall);
        lastSeq = recs[recs.length - 1].SequenceNumber!;
      } else if (caughtUp) {
        this.sink.streamCaughtUp?.(shardId);
      }
      iterator = out.NextShardIterator;
      if (!iterator) {
        // Closed (resharded) and read to its end: its children may start. When the last listing did
        // not show them yet (it was split while read), list now, so they join the clock as it leaves.
        this.closed.add(shardId);
        if (!this.withChildren.has(shardId)) {
          await this.discover().catch((err) => log.warn({ err: (err as Error).message }, 'shard discovery at the end of a shard failed; the next one finds its children'));
        }
        await this.end(shardId, lastSeq);
        log.info({ lastSeq }, 'shard read to its end');
        break;
      }
      // Caught up: poll slowly until records arrive.
      if (recs.length === 0 && (out.MillisBehindLatest ?? 0) === 0) backoffMs = this.opts.config.idlePollMs;
    }
  }

  /**
   * Frames one read of a shard into chunks (each record's position is its sequence number) and
   * hands them to the engine, in order across shard loops (one chain, so each read's chunks stay
   * together). A record whose chunk the engine accepted is where this process continues the shard.
   */
  private write(shardId: string, recs: KinesisRecord[], live: boolean): Promise<void> {
    const run = this.writeChain.then(async () => {
      const sink = this.sink;
      this.framing = shardId;
      for (const r of recs) this.framer.add(r.Data, r.SequenceNumber);
      const chunks = this.framer.takeAll();
      for (let i = 0; i < chunks.length; i++) {
        const { chunk, next } = chunks[i];
        // Only the read's last chunk may say the shard is caught up.
        const origin = { stream: shardId, live: live && i === chunks.length - 1 };
        const position = { stream: shardId, next: next! };
        await (sink.writeChunk ? sink.writeChunk(chunk, origin, position) : sink.write(chunk, origin, position));
        this.next.set(shardId, next!);
      }
    });
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /**
   * A closed shard read to its end, all its records accepted by the engine (in order: anything of
   * its children comes after them). It leaves the clock and its children whose parents have all
   * ended join in one declaration, so event time cannot run past the children's first records in
   * between. Its `finished` flag is saved once its last sequence number is committable (savePositions).
   */
  private end(shardId: string, lastSeq: string | null): Promise<void> {
    const run = this.writeChain.then(() => {
      this.finalSeq.set(shardId, lastSeq);
      this.endedShards.add(shardId);
      this.active.delete(shardId);
      for (const [child, parents] of this.waiting) {
        if (!parents.every((p) => this.endedShards.has(p))) continue;
        this.waiting.delete(child);
        this.active.add(child);
      }
      this.declareActive();
      for (const w of this.endWaiters.get(shardId) ?? []) w();
      this.endWaiters.delete(shardId);
      this.savePositions();
    });
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /**
   * An iterator after `afterSeq`; with none, at the start position. A child shard (its parents read
   * first) therefore starts at TRIM_HORIZON, or AT_TIMESTAMP of the start: its records before that
   * time are not wanted, those after it all are, however the parents were read. LATEST is taken only
   * when `latestAllowed` (a shard of the first listing ever); any later iterator of a shard with nothing
   * read (child, expired iterator, restart) is AT_TIMESTAMP of that first listing, so nothing that
   * arrived meanwhile is skipped.
   */
  private async newIterator(shardId: string, afterSeq: string | null, latestAllowed: boolean): Promise<string | undefined> {
    const c = this.opts.config;
    const input: GetShardIteratorCommandInput = { StreamName: this.streamName, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' };
    const latestFrom = this.positions.latestFromMs;
    if (afterSeq) {
      input.ShardIteratorType = 'AFTER_SEQUENCE_NUMBER';
      input.StartingSequenceNumber = afterSeq;
    } else if (c.startPosition === 'LATEST' && latestAllowed) {
      input.ShardIteratorType = 'LATEST';
    } else if (c.startPosition === 'LATEST' && latestFrom !== null) {
      input.ShardIteratorType = 'AT_TIMESTAMP';
      input.Timestamp = new Date(latestFrom);
    } else if (c.startPosition === 'AT_TIMESTAMP') {
      input.ShardIteratorType = 'AT_TIMESTAMP';
      input.Timestamp = new Date(c.startTimestampMs!);
    }
    // Throttles are waited out (counted); other errors are retried 20 times, then the reader fails.
    for (let failures = 0, throttles = 0; ;) {
      try {
        const out = await this.client.send(new GetShardIteratorCommand(input), { abortSignal: this.abort.signal });
        return out.ShardIterator;
      } catch (err) {
        if (this.abort.signal.aborted) return undefined;
        let ms;
        if (isThrottle(err)) {
          this.throttled.GetShardIterator++;
          ms = throttleBackoffMs(++throttles);
        } else {
          if (failures >= 20) throw new SourceError('SOURCE_READ', `no iterator for shard ${shardId}: ${(err as Error).message}`, true, { cause: err });
          ms = Math.min(10_000, 250 * 2 ** failures++);
        }
        if (!(await this.sleep(ms))) return undefined;
      }
    }
  }

  /** Sleeps unless stopped; false when stopped. */
  private sleep(ms: number): Promise<boolean> {
    if (this.abort.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.abort.signal.removeEventListener('abort', onAbort); resolve(true); }, ms);
      const onAbort = () => { clearTimeout(t); resolve(false); };
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private sampleSkip(reason: SkipReason, value: Uint8Array | null | undefined, shardId: string): void {
    const n = this.skipped[reason];
    if (n <= 5 || n % 1000 === 0) {
      const head = value ? Buffer.from(value.subarray(0, 120)).toString('utf8') : null;
      this.log.warn({ reason, shardId, bytes: value?.length ?? 0, head, skippedSoFar: n }, 'kinesis record skipped');
    }
  }

  /**
   * Takes the committable positions (those of the latest durable checkpoint; without checkpoints,
   * of the records whose verdicts are stored) into the positions: never ahead of what a restart
   * restores. A shard is finished once its last sequence number is the committable one. Shards the
   * sink does not name keep their saved position.
   */
  private refreshPositions(): void {
    const committable = this.sink?.committable?.();
    for (const [id, seq] of committable ?? []) {
      if (this.positions.get(id)?.sequenceNumber !== seq) this.positions.set(id, { sequenceNumber: seq, finished: false });
    }
    for (const [id, last] of this.finalSeq) {
      const p = this.positions.get(id);
      if (!p?.finished && (p?.sequenceNumber ?? null) === last) this.positions.set(id, { sequenceNumber: last, finished: true });
    }
  }

  private savePositions(): void {
    try {
      this.refreshPositions();
      this.positions.save();
    } catch (err) {
      this.log.error({ err }, 'kinesis positions not saved; will retry');
    }
  }

  stop(beforeClose?: () => Promise<void>): Promise<void> {
    this.stopping ??= this.doStop(beforeClose);
    return this.stopping;
  }

  private async doStop(beforeClose?: () => Promise<void>): Promise<void> {
    if (this.discoverTimer) clearInterval(this.discoverTimer);
    if (this.saveTimer) clearInterval(this.saveTimer);
    this.abort.abort();
    await Promise.all([...this.readers.values()].map((r) => r.done.catch(() => undefined)));
    await this.writeChain;
    try {
      // The final checkpoint, then its positions: the file ends where the state does.
      await beforeClose?.();
    } catch (err) {
      this.log.error({ err }, 'final checkpoint failed: the positions file stays at the previous one');
    }
    this.savePositions();
    this.client.destroy();
    this.log.info(this.position(), 'kinesis source stopped');
  }

  finished(): Promise<void> {
    return new Promise<void>(() => undefined);
  }

  position(): Record<string, unknown> {
    const t = this.throttled;
    return { stream: this.streamName, records: this.records, getRecordsCalls: this.getRecordsCalls, pausedPolls: this.pausedPolls,
      throttled: t.ListShards + t.GetShardIterator + t.GetRecords, throttledBy: { ...t }, iteratorsRenewed: this.iteratorsRenewed, skipped: { ...this.skipped },
      shards: this.positionsNow(), read: Object.fromEntries(this.next), reading: [...this.readers.keys()].filter((id) => !this.endedShards.has(id)) };
  }

  /** The positions as they would be saved now (the file catches up within a second). */
  private positionsNow(): Record<string, ShardPosition> {
    if (this.sink) this.refreshPositions();
    return this.positions.snapshot();
  }
}
