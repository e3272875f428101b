import { readFileSync } from 'node:fs';
import { Kafka, PartitionAssigners, logLevel, type Admin, type Consumer, type EachBatchPayload, type KafkaMessage, type SASLOptions } from 'kafkajs';
import type { Logger } from '../log/logger.ts';
import type { KafkaConfig } from '../config/kafka-config.ts';
import type { ChunkOrigin, Source, SourceSink } from './source.ts';
import { emptySkipCounts, type SkipReason } from './skip-counts.ts';
import { ChunkFramer, type FramedChunk } from './chunk-framer.ts';
import { SourceError } from './source-error.ts';
import { kafkaLogCreator } from './kafka-log.ts';
import { TrackedSockets } from './tracked-sockets.ts';
import { untrustedCertificate } from './tls-check.ts';
import { patchKafkajs, recordBatchDecoder } from './kafkajs-patches.ts';
import { stickyAssigner } from './sticky-assigner.ts';
import { classify, upstreamStream } from '../cluster/repartition-record.ts';

patchKafkajs();

/** How often partitions with nothing to deliver are looked for (besides at each join), and paused ones resumed. */
const WATCH_INTERVAL_MS = 2000;
/** How soon a partition paused ahead of event time is looked at again while no batch arrives. */
const PAUSE_RECHECK_MS = 50;

/** `topic:partition` keys as kafkajs's pause/resume argument. */
function topicPartitions(keys: string[]): Array<{ topic: string; partitions: number[] }> {
  const byTopic = new Map<string, number[]>();
  for (const k of keys) {
    const i = k.lastIndexOf(':');
    const list = byTopic.get(k.slice(0, i)) ?? [];
    list.push(Number(k.slice(i + 1)));
    byTopic.set(k.slice(0, i), list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

/** What the Kafka source needs besides its configuration. */
export interface KafkaSourceOptions {
  config: KafkaConfig;
  /** Records longer than this are skipped and counted as too_large (the engine's line limit). */
  maxRecordBytes: number;
  logger: Logger;
  /**
   * The topic is a repartition stage's internal topic (a cluster whose input is not keyed by property):
   * each view's chunk origin is the input partition it was read from (its header), not the partition
   * it is read from here, and progress records go to the sink (upstreamProgress), not the engine.
   */
  repartitioned?: { inputTopic: string };
}

/**
 * The fetch settings of Vigil's consumer, in one place so that the benchmark's raw kafkajs peer
 * (bench/kafka.js) consumes with exactly the same ones.
 */
export function kafkaFetchOptions(c: KafkaConfig): { maxBytes: number; maxBytesPerPartition: number; minBytes: number; maxWaitTimeInMs: number } {
  return {
    maxBytes: c.maxFetchBytes,
    // Measured with bench/kafka.js: 256 KiB, 1 MiB or 4 MiB per partition, and 1, 2 or 10 MiB per
    // fetch, move neither side beyond the noise; smaller fetches cost raw kafkajs throughput.
    maxBytesPerPartition: Math.min(c.maxFetchBytes, 1 << 20),
    // A fetch returns as soon as any record is there (live traffic: latency), else after 500 ms (the
    // Java client's fetch.max.wait.ms). A partition resumed or assigned while a fetch waits is only
    // fetched by the next one, and with kafkajs's 5 s a backlog drain stalled 5 s when the partitions
    // still fetched had reached their end while one paused ahead of event time was resumed
    // (bench/kafka.js, zstd topic: 3 runs of 6 took 6.4 s instead of 1.3 s).
    minBytes: 1,
    maxWaitTimeInMs: 500,
  };
}

/** Per-partition progress. Offsets are "next offset" style: everything below is done. */
interface PartitionProgress {
  topic: string;
  partition: number;
  /** Next offset not yet written to the engine by this process (duplicates below it are dropped). */
  deliveredNext: number;
  /** Next offset committed to the group by this process. */
  committedNext: number;
}

/**
 * Consumes a topic as a member of a consumer group and writes record values to the sink as NDJSON.
 * Offsets are committed only as far as the sink says they are committable (sink.committable(): the
 * latest durable checkpoint's), on a timer and at stop (after the final checkpoint); a record
 * re-delivered within this process's lifetime (after a broker restart or a rejoin) is dropped
 * because the kernel already counted it. Backpressure: the batch handler
 * awaits the sink, and kafkajs does not fetch again from a broker until the handler returns.
 */
export class KafkaSource implements Source {
  readonly name = 'kafka';
  private consumer: Consumer | null = null;
  /** Reads high watermarks and committed offsets: a partition with nothing to deliver must never hold event time back. */
  private admin: Admin | null = null;
  /** Partitions paused because they are too far ahead of evaluated event time. */
  private readonly paused = new Set<string>();
  /** Gained partitions paused while the sink loads their state (sink.partitionsChanged), with that load. */
  private readonly loading = new Map<string, Promise<string | null>>();
  private watchTimer: NodeJS.Timeout | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private watching: Promise<void> | null = null;
  /** When the watch round in flight started (a round that outlasts WATCH_INTERVAL_MS cannot reach the broker). */
  private watchStartedAt = 0;
  private sink!: SourceSink;
  private readonly progress = new Map<string, PartitionProgress>();
  /**
   * Per partition, the position after the last chunk written to the sink. A partition is caught up
   * only once it is written as far as it is delivered: records still in the framer, or in chunks
   * waiting for room in the engine, must be planned before the partition stops holding event time.
   */
  private readonly written = new Map<string, number>();
  /** Each partition's high watermark at its latest fetch (a cluster task's lag). */
  private readonly highWater = new Map<string, number>();
  private assigned = new Set<string>();
  /** The group generation of the latest assignment (null before the first, or when kafkajs did not say). */
  private generation: number | null = null;
  private readonly skipped = emptySkipCounts();
  private records = 0;
  private batches = 0;
  private duplicates = 0;
  private commits = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private closing = false;
  private disconnected = false;
  /** Stopping a consumer that kafkajs restarted after the stop. */
  private lateStop: Promise<void> | null = null;
  private busy: Promise<void> = Promise.resolve();
  private framer!: ChunkFramer;
  /** Where a restart resumes each partition (a checkpoint's offsets): sought to at the first join. */
  private resume = new Map<string, number>();
  private flushScheduled = false;
  /** The partition being framed (for skip samples, and the position of the chunk being filled). */
  private partition = '';
  /** The origin of the chunk being filled: that partition, or (repartitioned) the input partition its views come from. */
  private stream = '';
  /** Whether that partition was caught up after its latest batch. */
  private partitionLive = false;
  private committing: Promise<void> | null = null;
  private rejectFinished!: (err: Error) => void;
  private readonly done: Promise<void>;
  private readonly log: Logger;
  private readonly sockets = new TrackedSockets();

  constructor(private readonly opts: KafkaSourceOptions) {
    this.log = opts.logger.child({ component: 'kafka', topic: opts.config.topic, group: opts.config.groupId });
    this.done = new Promise<void>((_resolve, reject) => { this.rejectFinished = reject; });
    this.done.catch(() => undefined);
  }

  async start(sink: SourceSink, resume?: ReadonlyMap<string, string>): Promise<void> {
    this.sink = sink;
    const c = this.opts.config;
    for (const [k, v] of resume ?? []) if (k.startsWith(`${c.topic}:`)) this.resume.set(k, Number(v));
    this.framer = new ChunkFramer(sink.chunkBytes ?? 1 << 20, this.opts.maxRecordBytes, this.skipped,
      // A split record is found when its chunk is sealed, maybe while another partition is framed.
      (r, v) => this.sampleSkip(r, v, r === 'newline' ? null : this.partition));
    let ssl: { ca: string[] } | true | undefined;
    if (c.tls) {
      try {
        ssl = c.tlsCaFile ? { ca: [readFileSync(c.tlsCaFile, 'utf8')] } : true;
      } catch (err) {
        throw new SourceError('SOURCE_CONFIG', `VIGIL_KAFKA_TLS_CA_FILE: cannot read ${c.tlsCaFile}: ${(err as Error).message}`, false, { cause: err });
      }
      const untrusted = await untrustedCertificate(c.brokers[0], ssl === true ? {} : ssl);
      if (untrusted) {
        throw new SourceError('SOURCE_CONNECT', `cannot consume ${c.topic} from ${c.brokers.join(',')}: TLS to ${c.brokers[0]}: the broker's certificate is not trusted (${untrusted.message}); ` +
          (c.tlsCaFile ? `is ${c.tlsCaFile} (VIGIL_KAFKA_TLS_CA_FILE) the PEM of its CA?` : 'set VIGIL_KAFKA_TLS_CA_FILE to the PEM file of its CA'), false, { cause: untrusted });
      }
    }
    const kafka = new Kafka({
      clientId: c.clientId,
      brokers: c.brokers,
      ssl,
      sasl: c.sasl ? ({ mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password } as SASLOptions) : undefined,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(this.log, () => this.disconnected),
      socketFactory: this.sockets.factory,
      // A broker restart takes seconds to tens of seconds: keep trying rather than crash.
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30 },
    });
    const consumer = kafka.consumer({
      groupId: c.groupId,
      ...kafkaFetchOptions(c),
      // Heartbeats a third of the session apart (kafkajs's 3 s would not fit a 6 s session).
      sessionTimeout: c.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(c.sessionTimeoutMs / 3)),
      // Partitions stay where they are at a rebalance but for a fair share (a moved partition costs its
      // new owner a restore and a re-read from its checkpoint); round robin while a member lacks it.
      partitionAssigners: [stickyAssigner(() => ({ partitions: [...this.assigned].sort(), generation: this.generation })), PartitionAssigners.roundRobin],
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30, restartOnFailure: async (err) => {
        this.log.warn({ err }, 'kafka consumer failed; restarting it');
        return !this.closing;
      } },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (this.disconnected) return;
      const mine = new Set<string>();
      for (const [topic, parts] of Object.entries(e.payload.memberAssignment)) for (const p of parts) mine.add(`${topic}:${p}`);
      const revoked = [...this.assigned].filter((k) => !mine.has(k));
      const gained = [...mine].filter((k) => !this.assigned.has(k));
      // Never commit for a partition this member gave up: it would overwrite its new owner's commits.
      for (const k of revoked) {
        this.progress.delete(k);
        this.written.delete(k);
        this.loading.delete(k);
      }
      this.assigned = mine;
      this.generation = (e.payload as { generationId?: number }).generationId ?? null;
      this.loadPartitions(gained, revoked, this.generation);
      // Event time follows the slowest assigned partition that is still catching up.
      this.sink.declareStreams?.([...mine].sort());
      for (const k of revoked) this.paused.delete(k);
      this.seekToCheckpoint(mine);
      this.log.info({ partitions: [...mine].sort(), revoked }, 'kafka group joined');
      // Empty partitions, and those already read to their end, deliver no batch at all: say so now.
      void this.watch();
    });
    // kafkajs 2.2.4 restarts a crashed consumer (a broker outage) from a timer, as a new runner that
    // connects and joins; a disconnect that comes while that runner is still connecting finds nothing
    // running to stop, and the runner joins and fetches afterwards, forever (vigil run never exited
    // after SIGTERM, refetching the same batch in a loop). Once this source is disconnected, a fetch
    // means that happened: disconnect again, now that it runs.
    consumer.on(consumer.events.FETCH_START, () => {
      if (this.disconnected) this.stopLateConsumer(consumer);
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'kafka consumer crashed');
      if (!e.payload.restart && !this.closing) {
        this.rejectFinished(new SourceError('SOURCE_READ', `kafka consumer stopped: ${e.payload.error.message}`, false, { cause: e.payload.error }));
      }
    });
    this.admin = kafka.admin();
    try {
      await this.admin.connect();
      await consumer.connect();
      await consumer.subscribe({ topics: [c.topic], fromBeginning: c.startFrom === 'earliest' });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.onBatch(payload),
      });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      await this.admin.disconnect().catch(() => undefined);
      this.sockets.destroyAll();
      // Credentials a broker refuses stay refused: say which variables to check, and do not retry.
      const auth = (err as Error).name === 'KafkaJSSASLAuthenticationError' && c.sasl
        ? `SASL ${c.sasl.mechanism} authentication as ${JSON.stringify(c.sasl.username)} failed (check VIGIL_KAFKA_SASL_USERNAME and VIGIL_KAFKA_SASL_PASSWORD): `
        : '';
      throw new SourceError('SOURCE_CONNECT', `cannot consume ${c.topic} from ${c.brokers.join(',')}: ${auth}${(err as Error).message}`, auth === '', { cause: err });
    }
    this.timer = setInterval(() => { void this.commit(); }, c.commitIntervalMs);
    this.timer.unref();
    this.watchTimer = setInterval(() => { void this.watch(); }, WATCH_INTERVAL_MS);
    this.watchTimer.unref();
    this.log.info({ brokers: c.brokers, startFrom: c.startFrom, recordBatchDecoder: recordBatchDecoder() }, 'kafka source started');
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    if (this.closing || isStale() || batch.messages.length === 0) return;
    let release!: () => void;
    const prev = this.busy;
    this.busy = new Promise<void>((r) => { release = r; });
    try {
      await prev;
      const key = `${batch.topic}:${batch.partition}`;
      // A batch of a partition this member no longer owns (none are expected: kafkajs stops fetching
      // before it rejoins) belongs to the new owner; counting it here would only duplicate it. One
      // whose state is still loading is not resolved: it is fetched again from where the load says.
      if (!this.assigned.has(key) || this.loading.has(key)) return;
      const msgs = batch.messages;
      this.highWater.set(key, Number(batch.highWatermark));
      let p = this.progress.get(key);
      if (!p) {
        const first = Number(msgs[0].offset);
        p = { topic: batch.topic, partition: batch.partition, deliveredNext: first, committedNext: first };
        this.progress.set(key, p);
      }
      // Offsets rise within a batch, so re-delivered records (below deliveredNext) are a prefix.
      let i = 0;
      if (Number(msgs[0].offset) < p.deliveredNext) {
        while (i < msgs.length && Number(msgs[i].offset) < p.deliveredNext) i++;
        this.duplicates += i;
      }
      if (i < msgs.length && this.opts.repartitioned) {
        await this.frameRepartitioned(key, msgs, i, this.opts.repartitioned.inputTopic);
        this.records += msgs.length - i;
        this.batches++;
        p.deliveredNext = Number(msgs[msgs.length - 1].offset) + 1;
        this.partitionLive = batch.offsetLag() === '0';
        this.scheduleFlush();
      } else if (i < msgs.length) {
        // One partition per chunk: the engine tracks each partition's event time from its chunks.
        if (this.partition !== key || this.stream !== key) await this.pushChunks(this.framer.takeAll(), this.origin());
        this.partition = key;
        this.stream = key;
        const framer = this.framer;
        // Each value with the offset after it: a chunk's position is where its partition resumes.
        for (let j = i; j < msgs.length; j++) framer.add(msgs[j].value, Number(msgs[j].offset) + 1);
        this.records += msgs.length - i;
        this.batches++;
        p.deliveredNext = Number(msgs[msgs.length - 1].offset) + 1;
        // Full chunks go to the engine now (awaiting it is the backpressure); the partial one waits
        // for more batches until the event loop turns (flush()), so chunks stay full.
        await this.pushChunks(this.framer.takeSealed(), { stream: key, live: false }, key);
        this.partitionLive = batch.offsetLag() === '0';
        this.scheduleFlush();
      }
      this.pauseAhead();
      // The fetch position moves on; the commit waits for evaluation (commit()).
      resolveOffset(batch.lastOffset());
      await heartbeat();
    } finally {
      release();
    }
  }

  /**
   * Frames a batch of a repartition stage's internal topic: one chunk per input partition's run of
   * views (the engine's clock tracks each input partition), positioned in this partition; a progress
   * record goes to the sink after the views before it were written.
   */
  private async frameRepartitioned(key: string, msgs: KafkaMessage[], from: number, inputTopic: string): Promise<void> {
    for (let j = from; j < msgs.length; j++) {
      const m = msgs[j];
      const r = classify(m.headers, m.value);
      if (r.kind === 'progress') {
        await this.pushChunks(this.framer.takeAll(), this.origin(), this.partition);
        this.sink.upstreamProgress?.(key, upstreamStream(inputTopic, r.progress.p), r.progress.m, r.progress.c);
        continue;
      }
      const stream = r.kind === 'view' ? upstreamStream(inputTopic, r.upstream) : key;
      if (this.partition !== key || this.stream !== stream) {
        await this.pushChunks(this.framer.takeAll(), this.origin(), this.partition);
        this.partition = key;
        this.stream = stream;
      }
      this.framer.add(m.value, Number(m.offset) + 1);
    }
    await this.pushChunks(this.framer.takeSealed(), { stream: this.stream, live: false }, key);
  }

  /** Writes chunks of one origin; their positions are in `partition` (the origin's, unless repartitioned). */
  private async pushChunks(chunks: FramedChunk[], origin: ChunkOrigin, partition = origin.stream): Promise<void> {
    const sink = this.sink;
    for (const { chunk, next } of chunks) {
      const position = next === undefined ? undefined : { stream: partition, next };
      await (sink.writeChunk ? sink.writeChunk(chunk, origin, position) : sink.write(chunk, origin, position));
      if (next !== undefined) this.written.set(partition, Number(next));
    }
  }

  /** The origin of the chunk being filled: its partition, and whether that one is caught up. */
  private origin(): ChunkOrigin {
    return { stream: this.stream, live: this.partitionLive };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush().catch((err: Error) => this.log.error({ err }, 'kafka records could not be written to the engine'));
    });
  }

  /**
   * Writes the partial chunk, so what was read is evaluated without waiting for a full chunk. Runs
   * when the event loop turns after batches (kafkajs hands over the batches of one fetch response
   * back to back), and at stop.
   */
  private async flush(): Promise<void> {
    let release!: () => void;
    const prev = this.busy;
    this.busy = new Promise<void>((r) => { release = r; });
    try {
      await prev;
      await this.pushChunks(this.framer.takeAll(), this.origin(), this.partition);
    } finally {
      release();
    }
  }

  /**
   * Gained partitions whose state the sink loads (a cluster's tasks) are paused until it is loaded,
   * then read from the position it says (a task checkpoint's offset; null: the group's commit). A
   * load that resolves after its partition was lost (or lost and gained again) is ignored.
   */
  private loadPartitions(gained: string[], lost: string[], generation: number | null): void {
    const loads = this.sink.partitionsChanged?.({ gained, lost, generation });
    if (!loads) return;
    for (const [key, load] of loads) this.loading.set(key, load);
    // Also those still loading from before: a consumer kafkajs restarted has forgotten its pauses.
    if (this.loading.size) this.consumer!.pause(topicPartitions([...this.loading.keys()]));
    for (const [key, load] of loads) {
      load.then((next) => {
        if (this.loading.get(key) !== load || this.closing) return;
        this.loading.delete(key);
        const i = key.lastIndexOf(':');
        const topic = key.slice(0, i);
        const partition = Number(key.slice(i + 1));
        if (next !== null) {
          this.progress.set(key, { topic, partition, deliveredNext: Number(next), committedNext: 0 });
          this.written.set(key, Number(next));
          this.consumer!.seek({ topic, partition, offset: next });
        }
        if (!this.paused.has(key)) this.consumer!.resume([{ topic, partitions: [partition] }]);
        this.log.info({ partition: key, offset: next }, 'kafka partition state loaded: reading');
        void this.watch();
      }, (err: Error) => {
        // The sink retries its loads; one that fails for good leaves the partition paused (its state must not start cold).
        this.log.error({ err, partition: key }, 'kafka partition state could not be loaded: the partition stays paused');
      });
    }
  }

  /**
   * A restored checkpoint's partitions are read from its offsets, not from the group's commit (which
   * may be behind it, after a crash between a checkpoint and its commit, or ahead of it, when an older
   * checkpoint had to be taken): seek there, and drop anything below (kafkajs may have fetched already).
   */
  private seekToCheckpoint(mine: Set<string>): void {
    for (const key of mine) {
      const offset = this.resume.get(key);
      if (offset === undefined) continue;
      this.resume.delete(key);
      const i = key.lastIndexOf(':');
      const topic = key.slice(0, i);
      const partition = Number(key.slice(i + 1));
      this.progress.set(key, { topic, partition, deliveredNext: offset, committedNext: 0 });
      this.written.set(key, offset);
      this.consumer!.seek({ topic, partition, offset: String(offset) });
      this.log.info({ partition: key, offset }, 'kafka partition resumes at the checkpoint');
    }
  }

  /**
   * Pauses the partitions that are too far ahead of evaluated event time (the kernel's rings could
   * not hold them) and resumes those that no longer are. kafkajs applies it from the next fetch.
   */
  private pauseAhead(): void {
    const consumer = this.consumer;
    const ahead = this.sink.streamAhead;
    if (!consumer || !ahead || this.closing) return;
    const pause: string[] = [];
    const resume: string[] = [];
    for (const key of this.assigned) {
      if (this.loading.has(key)) continue;
      const isAhead = ahead(key);
      if (isAhead && !this.paused.has(key)) pause.push(key);
      else if (!isAhead && this.paused.has(key)) resume.push(key);
    }
    for (const k of pause) this.paused.add(k);
    for (const k of resume) this.paused.delete(k);
    if (pause.length) consumer.pause(topicPartitions(pause));
    if (resume.length) consumer.resume(topicPartitions(resume));
    if (pause.length || resume.length) this.log.debug({ paused: pause, resumed: resume }, 'partitions paused ahead of event time');
    // Batches call this, but once the partitions still fetched reach their end none come: look again
    // soon while any is paused, rather than at the next watch (a backlog drain stalled 2 s on it).
    if (this.paused.size > 0 && !this.recheckTimer) {
      this.recheckTimer = setTimeout(() => { this.recheckTimer = null; this.pauseAhead(); }, PAUSE_RECHECK_MS);
      this.recheckTimer.unref();
    }
  }

  /**
   * Tells the engine which assigned partitions have nothing to deliver (their position is at the
   * high watermark: empty, or read to the end): they must not hold event time back; and which have a
   * backlog still (not paused): they must, however long their next fetch takes. kafkajs hands no
   * batch for a partition at its end, so this asks the broker, at each join and every
   * WATCH_INTERVAL_MS. Also resumes paused partitions while no batch arrives.
   */
  private watch(): Promise<void> {
    this.pauseAhead();
    if (this.watching && Date.now() - this.watchStartedAt > WATCH_INTERVAL_MS) this.holdUnknown();
    if (this.watching || !this.admin || this.closing || this.assigned.size === 0) return this.watching ?? Promise.resolve();
    const admin = this.admin;
    const topic = this.opts.config.topic;
    this.watchStartedAt = Date.now();
    this.watching = (async () => {
      try {
        const [highs, [committed]] = await Promise.all([
          admin.fetchTopicOffsets(topic),
          admin.fetchOffsets({ groupId: this.opts.config.groupId, topics: [topic] }),
        ]);
        const committedOf = new Map(committed.partitions.map((p) => [p.partition, Number(p.offset)]));
        for (const h of highs) {
          const key = `${topic}:${h.partition}`;
          if (!this.assigned.has(key)) continue;
          const high = Number(h.high);
          const progress = this.progress.get(key);
          // Where this member reads next: what it delivered, else the group's commit, else the start position.
          const c = committedOf.get(h.partition) ?? -1;
          const next = progress ? progress.deliveredNext : c >= 0 ? c : this.opts.config.startFrom === 'latest' ? high : Number(h.low);
          const unwritten = progress !== undefined && (this.written.get(key) ?? -1) < progress.deliveredNext;
          if (next >= high && !unwritten) this.sink.streamCaughtUp?.(key);
          else if (!this.paused.has(key)) this.sink.streamBehind?.(key);
        }
      } catch (err) {
        this.holdUnknown();
        this.log.debug({ err: (err as Error).message }, 'kafka high watermarks not read');
      } finally {
        this.watching = null;
      }
    })();
    return this.watching;
  }

  /**
   * The broker cannot be asked (a round failed, or outlasts the interval: a broker restart, an
   * outage): whether a partition has records to deliver is unknown, so each one not paused is
   * reported behind, and event time holds at its mark until the broker answers again (then it is
   * caught up or still behind by its word). Left to the idle timeout, a partition that had a backlog,
   * or whose producers buffered records during the outage, would be passed by event time after
   * VIGIL_PARTITION_IDLE_MS, and its records read after the outage counted late (a 20 s broker
   * restart while records were produced: 833 of 125,871 late, 5 in the replay).
   */
  private holdUnknown(): void {
    if (this.closing) return;
    for (const key of this.assigned) if (!this.paused.has(key)) this.sink.streamBehind?.(key);
  }

  private sampleSkip(reason: SkipReason, value: Uint8Array | null | undefined, partition: string | null): void {
    const n = this.skipped[reason];
    if (n <= 5 || n % 1000 === 0) {
      const head = value ? Buffer.from(value.subarray(0, 120)).toString('utf8') : null;
      this.log.warn({ reason, partition, bytes: value?.length ?? 0, head, skippedSoFar: n }, 'kafka record skipped');
    }
  }

  /**
   * Commits, for every partition this member owns, the offset the sink says is committable: that of
   * the latest durable checkpoint (or, without checkpoints, of the records evaluated), so the group's
   * offsets serve lag monitoring and are never ahead of the state a restart restores.
   */
  async commit(): Promise<void> {
    if (this.committing) return this.committing;
    const consumer = this.consumer;
    const committable = this.sink.committable?.();
    if (!consumer || !committable) return;
    const due: Array<{ p: PartitionProgress; offset: number }> = [];
    for (const [k, p] of this.progress) {
      const c = committable.get(k);
      if (c === undefined || !this.assigned.has(k)) continue;
      const offset = Number(c);
      if (offset > p.committedNext) due.push({ p, offset });
    }
    if (due.length === 0) return;
    const offsets = due.map(({ p, offset }) => ({ topic: p.topic, partition: p.partition, offset: String(offset) }));
    this.committing = (async () => {
      try {
        await consumer.commitOffsets(offsets);
        for (const { p, offset } of due) p.committedNext = Math.max(p.committedNext, offset);
        this.commits++;
      } catch (err) {
        // A rebalance or a broker restart: the offsets stay due and go with the next commit.
        this.log.warn({ err: (err as Error).message, offsets }, 'kafka offset commit failed; will retry');
      } finally {
        this.committing = null;
      }
    })();
    return this.committing;
  }

  stop(beforeClose?: () => Promise<void>): Promise<void> {
    this.stopping ??= this.doStop(beforeClose);
    return this.stopping;
  }

  private async doStop(beforeClose?: () => Promise<void>): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    if (!this.consumer) {
      await beforeClose?.();
      return;
    }
    await this.busy;
    try {
      await this.flush();
      // The final checkpoint, then its offsets: the group's commit ends where the state does.
      await beforeClose?.();
      await this.commit();
    } catch (err) {
      this.log.error({ err }, 'final offsets not committed: the uncommitted tail will be read again');
    }
    await this.watching;
    await this.consumer.disconnect().catch((err) => this.log.warn({ err }, 'kafka disconnect failed'));
    await this.admin?.disconnect().catch((err) => this.log.warn({ err }, 'kafka admin disconnect failed'));
    this.disconnected = true;
    const leaked = this.sockets.destroyAll();
    if (leaked > 0) this.log.debug({ sockets: leaked }, 'closed broker connections kafkajs left open');
    this.log.info(this.position(), 'kafka source stopped');
  }

  /** Stops a consumer kafkajs restarted after this source was stopped (see the FETCH_START handler). */
  private stopLateConsumer(consumer: Consumer): void {
    if (this.lateStop) return;
    this.log.warn('kafka consumer restarted by kafkajs after the stop: stopping it again');
    this.lateStop = consumer.disconnect().catch(() => undefined).then(() => {
      this.sockets.destroyAll();
      this.lateStop = null;
    });
  }

  finished(): Promise<void> {
    return this.done;
  }

  /** A partition's (`<topic>:<partition>`) high watermark at its latest fetch, or null before any. */
  highWatermark(key: string): number | null {
    return this.highWater.get(key) ?? null;
  }

  position(): Record<string, unknown> {
    const partitions: Record<string, unknown> = {};
    for (const [k, p] of this.progress) partitions[k] = { delivered: p.deliveredNext, committed: p.committedNext };
    return { topic: this.opts.config.topic, group: this.opts.config.groupId, records: this.records, batches: this.batches,
      duplicatesDropped: this.duplicates, commits: this.commits, skipped: { ...this.skipped }, partitions };
  }
}
