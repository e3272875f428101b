// The Kinesis source against kinesalite (scripts/services/kinesalite.sh) with the real AWS SDK
// client: throttling, expired iterators, per-shard rate limits, resharding while running, static
// node assignment, start positions and restarts. kinesalite never throttles nor expires an iterator
// within a test, so those errors are injected as the SDK's own exception classes by a middleware
// on the source's client; every other call reaches kinesalite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KinesisClient, CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand, PutRecordsCommand, SplitShardCommand,
  MergeShardsCommand, GetShardIteratorCommand, GetRecordsCommand, ProvisionedThroughputExceededException, LimitExceededException, ExpiredIteratorException,
  type Shard, type KinesisServiceException,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { KinesisSource, throttleBackoffMs } from '../src/ingest/kinesis-source.ts';
import type { KinesisConfig } from '../src/config/kinesis-config.ts';
import { loadConfig } from '../src/config/config.ts';
import type { ChunkOrigin, ChunkPosition, SourceSink } from '../src/ingest/source.ts';
import { shardNode } from '../src/ingest/shard-assignment.ts';
import { silentLogger } from '../src/log/logger.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
let endpoint: string;
let client: KinesisClient;
let dir: string;

before(() => {
  endpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT');
  client = new KinesisClient({ region: 'us-east-1', endpoint, credentials, requestHandler: new NodeHttpHandler() });
  dir = mkdtempSync(join(tmpdir(), 'vigil-kinesis-res-'));
});
// kinesalite is shared and caps the shards of its account (100): this file deletes its streams.
const created: string[] = [];
after(async () => {
  for (const name of created) await client.send(new DeleteStreamCommand({ StreamName: name })).catch(() => undefined);
  client?.destroy();
});

async function createStream(shards: number): Promise<string> {
  const name = `vigil-res-${Date.now()}-${created.length + 1}`;
  created.push(name);
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  await waitActive(name);
  return name;
}

async function waitActive(name: string): Promise<void> {
  await waitUntil(`stream ${name} ACTIVE`, async () =>
    (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
}

const listShards = async (name: string): Promise<Shard[]> => (await client.send(new ListShardsCommand({ StreamName: name }))).Shards!;

/** Puts values in order at one explicit hash key; returns their sequence numbers. */
async function put(name: string, hashKey: string, values: string[]): Promise<string[]> {
  const seqs: string[] = [];
  for (let i = 0; i < values.length; i += 100) {
    const Records = values.slice(i, i + 100).map((v) => ({ Data: Buffer.from(v), PartitionKey: 'k', ExplicitHashKey: hashKey }));
    const out = await client.send(new PutRecordsCommand({ StreamName: name, Records }));
    assert.equal(out.FailedRecordCount ?? 0, 0);
    seqs.push(...out.Records!.map((r) => r.SequenceNumber!));
  }
  return seqs;
}

/** `n` distinct small JSON lines tagged `tag`. */
const lines = (tag: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => JSON.stringify({ tag, i: from + i }));

/** Collects what the source writes, line by line, as an engine that evaluates at once: every position written is committable. */
class CollectingSink implements SourceSink {
  readonly lines: string[] = [];
  readonly positions = new Map<string, string>();
  async write(bytes: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> {
    const text = Buffer.from(bytes).toString('utf8');
    assert.ok(text.length === 0 || text.endsWith('\n'), 'a write holds whole lines');
    assert.equal(origin?.stream, position?.stream, 'a chunk and its position are of one shard');
    if (text.length > 0) this.lines.push(...text.slice(0, -1).split('\n'));
    if (position) this.positions.set(position.stream, position.next);
  }
  committable(): ReadonlyMap<string, string> {
    return this.positions;
  }
}

/** One SDK call of the source as the middleware saw it. */
interface Call {
  op: string;
  at: number;
  shardId?: string;
  input: Record<string, unknown>;
  error?: string;
  bytes?: number;
  records?: number;
}

/** Per operation, the 1-based number of the call on that shard (or of the operation) → an error to throw instead (may wait first). */
type Fault = (call: Call, nth: number) => KinesisServiceException | undefined | Promise<KinesisServiceException | undefined>;

/** Records every call of a client (shard of a GetRecords call from its iterator) and injects faults. */
class Recorder {
  readonly calls: Call[] = [];
  private readonly iteratorShard = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  /** `alter` may change what a call returns (kinesalite never says a shard is behind). */
  constructor(public fault: Fault = () => undefined, private readonly alter: (call: Call, output: Record<string, unknown>) => void = () => undefined) {}

  attach(c: KinesisClient): void {
    c.middlewareStack.add((next, context) => async (args) => {
      const op = (context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, unknown>;
      const shardId = op === 'GetRecords' ? this.iteratorShard.get(input.ShardIterator as string) : input.ShardId as string | undefined;
      const call: Call = { op, at: performance.now(), shardId, input };
      this.calls.push(call);
      const key = `${op}/${shardId ?? ''}`;
      const nth = (this.counts.get(key) ?? 0) + 1;
      this.counts.set(key, nth);
      const err = await this.fault(call, nth);
      if (err) {
        call.error = err.name;
        throw err;
      }
      const result = await next(args);
      this.alter(call, result.output as unknown as Record<string, unknown>);
      const out = result.output as { ShardIterator?: string; NextShardIterator?: string; Records?: Array<{ Data?: Uint8Array }> };
      if (op === 'GetShardIterator' && out.ShardIterator) this.iteratorShard.set(out.ShardIterator, shardId!);
      if (op === 'GetRecords') {
        if (out.NextShardIterator) this.iteratorShard.set(out.NextShardIterator, shardId!);
        call.records = out.Records?.length ?? 0;
        call.bytes = (out.Records ?? []).reduce((n, r) => n + (r.Data?.length ?? 0), 0);
      }
      return result;
    }, { step: 'initialize', priority: 'high', name: 'vigilTestRecorder' });
  }

  of(op: string, shardId?: string): Call[] {
    return this.calls.filter((c) => c.op === op && (shardId === undefined || c.shardId === shardId));
  }
}

const throttle = (op: string) => op === 'ListShards'
  ? new LimitExceededException({ message: 'Rate exceeded for stream', $metadata: {} })
  : new ProvisionedThroughputExceededException({ message: 'Rate exceeded for shard', $metadata: {} });
const expired = () => new ExpiredIteratorException({ message: 'Iterator expired', $metadata: {} });

function kinesisConfig(stream: string, over: Partial<KinesisConfig> = {}): KinesisConfig {
  return { stream, region: 'us-east-1', endpoint, startPosition: 'TRIM_HORIZON', startTimestampMs: null, nodeIndex: 0, nodeCount: 1,
    idlePollMs: 200, discoverMs: 1000, maxRecordsPerCall: 10, ...over };
}

function source(config: KinesisConfig, dataDir: string, rec: Recorder): KinesisSource {
  return new KinesisSource({ config, maxRecordBytes: 1 << 20, dataDir, logger: silentLogger(), credentials, onClient: (c) => rec.attach(c) });
}

interface Position {
  records: number; getRecordsCalls: number; throttled: number; iteratorsRenewed: number;
  throttledBy: Record<string, number>;
  shards: Record<string, { sequenceNumber: string | null; finished: boolean }>;
}
const pos = (s: KinesisSource) => s.position() as unknown as Position;
const savedPositions = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, 'kinesis-positions.json'), 'utf8')).shards as Position['shards'];

/** Every expected line exactly once, nothing else. */
function assertExactlyOnce(got: string[], expected: string[]): void {
  const count = new Map<string, number>();
  for (const l of got) count.set(l, (count.get(l) ?? 0) + 1);
  const twice = [...count].filter(([, n]) => n > 1).map(([l]) => l);
  assert.deepEqual(twice, [], 'records read twice');
  const want = new Set(expected);
  assert.deepEqual(expected.filter((l) => !count.has(l)), [], 'records lost');
  assert.deepEqual(got.filter((l) => !want.has(l)), [], 'records not expected');
}

/** The lines of `tag` appear in put order. */
function assertOrdered(got: string[], tag: string): void {
  const seen = got.map((l) => JSON.parse(l)).filter((r) => r.tag === tag).map((r) => r.i as number);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `records of ${tag} in order`);
}

/** Waits until the sink holds `count` lines, then for `more` GetRecords calls after that (which must bring nothing new). */
async function readAll(what: string, sink: CollectingSink, count: number, rec: Recorder, more: number, timeoutMs: number): Promise<void> {
  await waitUntil(what, () => sink.lines.length >= count, timeoutMs);
  const calls = rec.of('GetRecords').length;
  await waitUntil('more polls', () => rec.of('GetRecords').length >= calls + more);
}

async function run<T>(s: KinesisSource, sink: SourceSink, body: () => Promise<T>, resume?: ReadonlyMap<string, string>): Promise<T> {
  await s.start(sink, resume);
  try {
    return await body();
  } finally {
    await s.stop();
  }
}

test('throttled ListShards, GetShardIterator and GetRecords back off, are counted, and lose or repeat nothing; a restart resumes from the saved positions', async () => {
  const stream = await createStream(2);
  const [s0, s1] = await listShards(stream);
  const key0 = s0.HashKeyRange!.StartingHashKey!;
  const key1 = s1.HashKeyRange!.StartingHashKey!;
  const a = lines('a', 60);
  const b = lines('b', 40);
  const seqA = await put(stream, key0, a);
  const seqB = await put(stream, key1, b);

  // ListShards: the first 2 calls; GetShardIterator: the first 2 of shard 0; GetRecords: the 3rd-5th of
  // shard 0 (3 in a row, mid-stream) and the 2nd of shard 1.
  const rec = new Recorder((c, nth) => {
    if (c.op === 'ListShards' && nth <= 2) return throttle(c.op);
    if (c.op === 'GetShardIterator' && c.shardId === s0.ShardId && nth <= 2) return throttle(c.op);
    if (c.op === 'GetRecords' && c.shardId === s0.ShardId && nth >= 3 && nth <= 5) return throttle(c.op);
    if (c.op === 'GetRecords' && c.shardId === s1.ShardId && nth === 2) return throttle(c.op);
    return undefined;
  });
  const dataDir = join(dir, 'throttle');
  const sink = new CollectingSink();
  const src = source(kinesisConfig(stream), dataDir, rec);
  const p = await run(src, sink, async () => {
    await readAll('every record read', sink, a.length + b.length, rec, 4, 60_000);
    return pos(src);
  });
  assertExactlyOnce(sink.lines, [...a, ...b]);
  assertOrdered(sink.lines, 'a');
  assertOrdered(sink.lines, 'b');
  assert.deepEqual(p.throttledBy, { ListShards: 2, GetShardIterator: 2, GetRecords: 4 });
  assert.equal(p.throttled, 8);
  assert.equal(p.getRecordsCalls, rec.of('GetRecords').length);

  // Spacing: after the k-th throttle in a row the next call of that kind waits at least half of the
  // nominal backoff (jitter is ±25 %; a lower bound only, a slow machine only waits longer).
  const checkSpacing = (calls: Call[]) => {
    let streak = 0;
    for (let i = 0; i + 1 < calls.length; i++) {
      streak = calls[i].error ? streak + 1 : 0;
      if (streak === 0) continue;
      const gap = calls[i + 1].at - calls[i].at;
      assert.ok(gap >= throttleBackoffMs(streak, () => 0) * 2 / 3, `${calls[i].op} call ${i + 1} (throttle ${streak} in a row): next call after ${gap.toFixed(0)} ms`);
    }
    return calls.filter((c) => c.error).length;
  };
  assert.equal(checkSpacing(rec.of('ListShards').slice(0, 3)), 2);
  assert.equal(checkSpacing(rec.of('GetShardIterator', s0.ShardId)), 2);
  assert.equal(checkSpacing(rec.of('GetRecords', s0.ShardId)), 3);
  assert.equal(checkSpacing(rec.of('GetRecords', s1.ShardId)), 1);
  // The backoff of the unit: 400 ms doubling, capped at 10 s, ±25 %.
  assert.deepEqual([1, 2, 3, 6, 20].map((n) => throttleBackoffMs(n, () => 0.5)), [400, 800, 1600, 10_000, 10_000]);
  assert.equal(throttleBackoffMs(1, () => 0), 300);
  assert.equal(throttleBackoffMs(1, () => 1), 500);

  // Saved positions: the last record of each shard.
  const saved = savedPositions(dataDir);
  assert.equal(saved[s0.ShardId!].sequenceNumber, seqA.at(-1));
  assert.equal(saved[s1.ShardId!].sequenceNumber, seqB.at(-1));

  // Restart, throttled again from the first call of each shard: exactly the new records.
  const a2 = lines('a', 25, 60);
  const b2 = lines('b', 15, 40);
  const seqA2 = await put(stream, key0, a2);
  const seqB2 = await put(stream, key1, b2);
  const rec2 = new Recorder((c, nth) => (c.op !== 'ListShards' && nth <= 2 ? throttle(c.op) : undefined));
  const sink2 = new CollectingSink();
  const src2 = source(kinesisConfig(stream), dataDir, rec2);
  const p2 = await run(src2, sink2, async () => {
    await readAll('the new records read', sink2, a2.length + b2.length, rec2, 4, 60_000);
    return pos(src2);
  });
  assertExactlyOnce(sink2.lines, [...a2, ...b2]);
  assertOrdered(sink2.lines, 'a');
  assert.deepEqual(p2.throttledBy, { ListShards: 0, GetShardIterator: 4, GetRecords: 4 });
  for (const c of rec2.of('GetShardIterator').filter((x) => !x.error)) assert.equal(c.input.ShardIteratorType, 'AFTER_SEQUENCE_NUMBER');
  const saved2 = savedPositions(dataDir);
  assert.equal(saved2[s0.ShardId!].sequenceNumber, seqA2.at(-1));
  assert.equal(saved2[s1.ShardId!].sequenceNumber, seqB2.at(-1));
});

test('an expired iterator is renewed after the last record read (or at the start/saved position): every record exactly once, positions right after a restart', async () => {
  const stream = await createStream(2);
  const [s0, s1] = await listShards(stream);
  const key0 = s0.HashKeyRange!.StartingHashKey!;
  const key1 = s1.HashKeyRange!.StartingHashKey!;
  const a = lines('a', 100);
  const b = lines('b', 30);
  const seqA = await put(stream, key0, a);
  await put(stream, key1, b);

  // Shard 0: the 4th GetRecords (after 3 × 10 records); shard 1: the very first one.
  const rec = new Recorder((c, nth) => {
    if (c.op === 'GetRecords' && c.shardId === s0.ShardId && nth === 4) return expired();
    if (c.op === 'GetRecords' && c.shardId === s1.ShardId && nth === 1) return expired();
    return undefined;
  });
  const dataDir = join(dir, 'expired');
  const sink = new CollectingSink();
  const src = source(kinesisConfig(stream), dataDir, rec);
  const p = await run(src, sink, async () => {
    await readAll('every record read', sink, a.length + b.length, rec, 4, 60_000);
    return pos(src);
  });
  assertExactlyOnce(sink.lines, [...a, ...b]);
  assertOrdered(sink.lines, 'a');
  assert.equal(p.iteratorsRenewed, 2);
  const it0 = rec.of('GetShardIterator', s0.ShardId).map((c) => c.input);
  assert.deepEqual(it0.map((i) => i.ShardIteratorType), ['TRIM_HORIZON', 'AFTER_SEQUENCE_NUMBER']);
  assert.equal(it0[1].StartingSequenceNumber, seqA[29], 'renewed after the 30th record, the last one read');
  assert.deepEqual(rec.of('GetShardIterator', s1.ShardId).map((c) => c.input.ShardIteratorType), ['TRIM_HORIZON', 'TRIM_HORIZON']);
  assert.equal(savedPositions(dataDir)[s0.ShardId!].sequenceNumber, seqA.at(-1));

  // Restart with an expiry on each shard's first call (renewed at the saved position) and one
  // mid-stream on shard 0.
  const a2 = lines('a', 40, 100);
  const b2 = lines('b', 10, 30);
  const seqA2 = await put(stream, key0, a2);
  const seqB2 = await put(stream, key1, b2);
  const rec2 = new Recorder((c, nth) => (c.op === 'GetRecords' && (nth === 1 || (c.shardId === s0.ShardId && nth === 3)) ? expired() : undefined));
  const sink2 = new CollectingSink();
  const src2 = source(kinesisConfig(stream), dataDir, rec2);
  const p2 = await run(src2, sink2, async () => {
    await readAll('the new records read', sink2, a2.length + b2.length, rec2, 4, 60_000);
    return pos(src2);
  });
  assertExactlyOnce(sink2.lines, [...a2, ...b2]);
  assertOrdered(sink2.lines, 'a');
  assert.equal(p2.iteratorsRenewed, 3);
  const it2 = rec2.of('GetShardIterator', s0.ShardId).map((c) => c.input);
  assert.deepEqual(it2.map((i) => i.StartingSequenceNumber), [seqA.at(-1), seqA.at(-1), seqA2[9]]);
  const saved = savedPositions(dataDir);
  assert.equal(saved[s0.ShardId!].sequenceNumber, seqA2.at(-1));
  assert.equal(saved[s1.ShardId!].sequenceNumber, seqB2.at(-1));
});

test('per shard, GetRecords stays within 5 calls in any second and 2 MiB per second', async () => {
  const stream = await createStream(2);
  const shards = await listShards(stream);
  // Small records, 5 per call: each shard always has more to read, so only the limit spaces calls.
  for (const [k, s] of shards.entries()) await put(stream, s.HashKeyRange!.StartingHashKey!, lines(`s${k}`, 300));
  const rec = new Recorder();
  const sink = new CollectingSink();
  const src = source(kinesisConfig(stream, { maxRecordsPerCall: 5 }), join(dir, 'rate'), rec);
  await run(src, sink, () => waitUntil('12 calls on every shard', () => shards.every((s) => rec.of('GetRecords', s.ShardId).length >= 12), 60_000));
  for (const s of shards) {
    const at = rec.of('GetRecords', s.ShardId).map((c) => c.at);
    assert.ok(at.length >= 12);
    for (let i = 0; i + 5 < at.length; i++) {
      assert.ok(at[i + 5] - at[i] >= 1000, `${s.ShardId}: calls ${i + 1}-${i + 6} within ${(at[i + 5] - at[i]).toFixed(1)} ms: more than 5 in a second`);
    }
  }

  // Large records, 3 per call (~2.25 MB): a call that read b bytes is followed by the next only after b / 2 MiB s,
  // so in any second the calls started before the last one in it read at most 2 MiB.
  const big = await createStream(1);
  const value = (i: number) => JSON.stringify({ tag: 'big', i, pad: 'x'.repeat(750_000) });
  for (let i = 0; i < 12; i += 4) await put(big, '1', [0, 1, 2, 3].map((j) => value(i + j)));
  const recBig = new Recorder();
  const sinkBig = new CollectingSink();
  const srcBig = source(kinesisConfig(big, { maxRecordsPerCall: 3 }), join(dir, 'rate-big'), recBig);
  await run(srcBig, sinkBig, () => waitUntil('every big record read', () => sinkBig.lines.length >= 12, 60_000));
  const calls = recBig.of('GetRecords');
  assert.ok(calls.filter((c) => (c.bytes ?? 0) > 2_000_000).length >= 3, 'calls read ~2.1 MB each');
  for (let i = 0; i < calls.length; i++) {
    let bytes = 0;
    for (let j = i; j + 1 < calls.length && calls[j + 1].at - calls[i].at < 1000; j++) bytes += calls[j].bytes ?? 0;
    assert.ok(bytes <= 2 * 1024 * 1024, `from call ${i + 1}: ${bytes} bytes read within a second`);
  }
  assert.equal(new Set(sinkBig.lines).size, 12);
});

test('resharding while running: split and merge children are found without a restart and read after their parents', async () => {
  const stream = await createStream(1);
  const [parent] = await listShards(stream);
  // The parent is throttled from its 3rd call until the children are seen: they are found while it is still being read.
  let childrenSeen = false;
  const rec = new Recorder((c, nth) => (c.op === 'GetRecords' && c.shardId === parent.ShardId && nth > 2 && !childrenSeen ? throttle(c.op) : undefined));
  const sink = new CollectingSink();
  const dataDir = join(dir, 'reshard');
  const src = source(kinesisConfig(stream, { maxRecordsPerCall: 5 }), dataDir, rec);
  const half = (2n ** 127n).toString();
  const upper = (2n ** 127n + 1n).toString();
  const p = await run(src, sink, async () => {
    await waitUntil('the parent polled', () => rec.of('GetRecords').length > 0);
    const pa = lines('p', 150);
    await put(stream, '1', pa);
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: parent.ShardId!, NewStartingHashKey: half }));
    await waitActive(stream);
    const children = (await listShards(stream)).filter((s) => s.ParentShardId === parent.ShardId);
    assert.equal(children.length, 2);
    await put(stream, '1', lines('lo', 20));
    await put(stream, upper, lines('hi', 20));
    await waitUntil('the children discovered while the parent is read', () => {
      const reading = (src.position() as { reading: string[] }).reading;
      return children.every((c) => reading.includes(c.ShardId!));
    }, 30_000);
    childrenSeen = true;
    assert.ok(sink.lines.length < pa.length, 'the parent was not read to its end yet');
    const [lo, hi] = children.sort((x, y) => (BigInt(x.HashKeyRange!.StartingHashKey!) < BigInt(y.HashKeyRange!.StartingHashKey!) ? -1 : 1));
    await client.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: lo.ShardId!, AdjacentShardToMerge: hi.ShardId! }));
    await waitActive(stream);
    await put(stream, '1', lines('m', 10));
    await put(stream, upper, lines('m', 10, 10));
    await waitUntil('every record read', () => sink.lines.length >= 210, 60_000);
    return pos(src);
  });
  assertExactlyOnce(sink.lines, [...lines('p', 150), ...lines('lo', 20), ...lines('hi', 20), ...lines('m', 20)]);
  const tags = sink.lines.map((l) => JSON.parse(l).tag as string);
  const first = (t: string) => tags.indexOf(t);
  const last = (t: string) => tags.lastIndexOf(t);
  assert.ok(last('p') < first('lo') && last('p') < first('hi'), 'split children after their parent');
  assert.ok(last('lo') < first('m') && last('hi') < first('m'), 'merged child after both parents');
  for (const t of ['p', 'lo', 'hi', 'm']) assertOrdered(sink.lines, t);
  const shards = await listShards(stream);
  assert.equal(shards.length, 4);
  assert.deepEqual(Object.keys(p.shards).sort(), shards.map((s) => s.ShardId!).sort());
  for (const s of shards) assert.equal(p.shards[s.ShardId!].finished, !!s.SequenceNumberRange!.EndingSequenceNumber, s.ShardId);
});

test('a shard with records still to deliver (Kinesis says it is behind, or a read brought records) is reported behind, also while throttled; one read to the end, caught up', async () => {
  const stream = await createStream(2);
  const [s0, s1] = await listShards(stream);
  const a = lines('a', 30);
  const b = lines('b', 30);
  await put(stream, s0.HashKeyRange!.StartingHashKey!, a);
  await put(stream, s1.HashKeyRange!.StartingHashKey!, b);
  /** Throttles still to inject into shard 0's reads. */
  let throttles = 0;
  const rec = new Recorder(
    (c) => {
      if (c.op !== 'GetRecords' || c.shardId !== s0.ShardId || throttles === 0) return undefined;
      throttles--;
      return throttle(c.op);
    },
    // Shard 0: Kinesis says every read is a minute behind the tip (as when records arrive faster than read).
    (c, out) => { if (c.op === 'GetRecords' && c.shardId === s0.ShardId) out.MillisBehindLatest = 60_000; },
  );
  /** What the source told the clock, in order, per shard: behind, caughtUp, or a chunk written. */
  class ClockSink extends CollectingSink {
    readonly events: Array<[string, string]> = [];
    override async write(bytes: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> {
      this.events.push([origin!.stream, origin!.live ? 'chunk live' : 'chunk']);
      await super.write(bytes, origin, position);
    }
    streamBehind(id: string): void { this.events.push([id, 'behind']); }
    streamCaughtUp(id: string): void { this.events.push([id, 'caughtUp']); }
    of(id: string): string[] { return this.events.filter(([s]) => s === id).map(([, e]) => e); }
  }
  const sink = new ClockSink();
  const src = source(kinesisConfig(stream), join(dir, 'behind'), rec);
  await run(src, sink, async () => {
    await waitUntil('shard 0 read', () => sink.lines.filter((l) => l.includes('"a"')).length === a.length, 30_000);
    // Then a backoff the backlog must outlast: 3 throttles in a row (400 + 800 + 1600 ms, ±25 %).
    throttles = 3;
    await readAll('every record read', sink, a.length + b.length, rec, 8, 30_000);
    await waitUntil('the throttles of shard 0 waited out', () => {
      const calls = rec.of('GetRecords', s0.ShardId);
      const lastThrottled = calls.map((x) => x.error !== undefined).lastIndexOf(true);
      return throttles === 0 && lastThrottled >= 0 && calls.length - lastThrottled > 2;
    }, 30_000);
  });
  // Every chunk comes after a report that its shard is behind (the read brought records).
  for (const id of [s0.ShardId!, s1.ShardId!]) {
    const ev = sink.of(id);
    ev.forEach((e, i) => { if (e.startsWith('chunk')) assert.equal(ev[i - 1], 'behind', `${id}: ${ev.join(', ')}`); });
  }
  // Shard 0 is never caught up; every call (throttled or not) but one cut by stop reports it behind.
  const ev0 = sink.of(s0.ShardId!);
  assert.ok(!ev0.includes('caughtUp'), ev0.join(', '));
  const calls0 = rec.of('GetRecords', s0.ShardId).length;
  const behind0 = ev0.filter((e) => e === 'behind').length;
  const throttled0 = rec.of('GetRecords', s0.ShardId).filter((x) => x.error !== undefined).length;
  assert.equal(throttled0, 3);
  assert.ok(behind0 >= calls0 - 1 && behind0 <= calls0, `shard 0: ${behind0} reports behind, ${calls0} calls (${throttled0} throttled)`);
  // Shard 1 was behind while it had records, and is caught up after its last one.
  const ev1 = sink.of(s1.ShardId!);
  const lastChunk = ev1.map((e) => e.startsWith('chunk')).lastIndexOf(true);
  assert.ok(ev1.slice(lastChunk + 1).length > 0 && ev1.slice(lastChunk + 1).every((e) => e === 'caughtUp'), ev1.join(', '));
  assertExactlyOnce(sink.lines, [...a, ...b]);
});

test('a restored checkpoint wins over a positions file ahead of it: a shard it names resumes at its position, one it does not from the start; without a checkpoint the file wins', async () => {
  const stream = await createStream(2);
  const [s0, s1] = await listShards(stream);
  const key0 = s0.HashKeyRange!.StartingHashKey!;
  const a = lines('a', 20);
  const b = lines('b', 20);
  const seqA = await put(stream, key0, a);
  await put(stream, s1.HashKeyRange!.StartingHashKey!, b);
  const dataDir = join(dir, 'older-checkpoint');
  const rec = new Recorder();
  const sink = new CollectingSink();
  await run(source(kinesisConfig(stream), dataDir, rec), sink, () => readAll('every record read', sink, a.length + b.length, rec, 4, 30_000));
  assertExactlyOnce(sink.lines, [...a, ...b]);
  // An older checkpoint is restored (the newest was refused): it holds shard 0 up to its 10th record
  // and nothing of shard 1, while the file has both read to their last record.
  const rec2 = new Recorder();
  const sink2 = new CollectingSink();
  await run(source(kinesisConfig(stream), dataDir, rec2), sink2,
    () => readAll('the records after the checkpoint read', sink2, a.length - 10 + b.length, rec2, 4, 30_000), new Map([[s0.ShardId!, seqA[9]]]));
  assertExactlyOnce(sink2.lines, [...a.slice(10), ...b]);
  // No checkpoint restored: the file says where each shard continues.
  const a2 = lines('a', 5, 20);
  await put(stream, key0, a2);
  const rec3 = new Recorder();
  const sink3 = new CollectingSink();
  await run(source(kinesisConfig(stream), dataDir, rec3), sink3, () => readAll('the new records read', sink3, a2.length, rec3, 4, 30_000));
  assertExactlyOnce(sink3.lines, a2);
});

test('a closed shard is finished only once its last sequence number is committable; its children do not wait for that', async () => {
  const stream = await createStream(1);
  const [parent] = await listShards(stream);
  const p = lines('p', 30);
  const seqP = await put(stream, '1', p);
  await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: parent.ShardId!, NewStartingHashKey: (2n ** 127n).toString() }));
  await waitActive(stream);
  const lo = lines('lo', 10);
  await put(stream, '1', lo);
  /** An engine whose checkpoints lag: only what the test allows is committable. */
  class LaggingSink extends CollectingSink {
    readonly allowed = new Map<string, string>();
    override committable(): ReadonlyMap<string, string> {
      return this.allowed;
    }
  }
  const sink = new LaggingSink();
  const dataDir = join(dir, 'finished');
  const rec = new Recorder();
  const src = source(kinesisConfig(stream), dataDir, rec);
  await run(src, sink, async () => {
    // The children are read once the parent's records are all written, not once they are committable.
    await readAll('every record read', sink, p.length + lo.length, rec, 4, 30_000);
    assert.equal(pos(src).shards[parent.ShardId!], undefined, 'a position that is not committable');
    sink.allowed.set(parent.ShardId!, seqP[19]);
    await waitUntil('the committable position taken', () => pos(src).shards[parent.ShardId!]?.sequenceNumber === seqP[19]);
    assert.equal(pos(src).shards[parent.ShardId!].finished, false, 'finished before its last record is committable');
    sink.allowed.set(parent.ShardId!, seqP.at(-1)!);
    await waitUntil('the parent finished', () => pos(src).shards[parent.ShardId!]?.finished === true);
  });
  assertExactlyOnce(sink.lines, [...p, ...lo]);
  assert.deepEqual(savedPositions(dataDir)[parent.ShardId!], { sequenceNumber: seqP.at(-1), finished: true });
  // A restart does not read a finished shard again; its children continue from the start (none of
  // theirs was committable).
  const rec2 = new Recorder();
  const sink2 = new CollectingSink();
  await run(source(kinesisConfig(stream), dataDir, rec2), sink2, async () => {
    await readAll('the children read', sink2, lo.length, rec2, 4, 30_000);
  });
  assertExactlyOnce(sink2.lines, lo);
  assert.equal(rec2.of('GetShardIterator', parent.ShardId).length, 0, 'the finished parent was read again');
});

test('two nodes (0 of 2, 1 of 2) while a shard of each splits: every shard read by exactly one node, every record exactly once', async () => {
  const stream = await createStream(4);
  const initial = await listShards(stream);
  const byId = new Map(initial.map((s) => [s.ShardId!, s]));
  const nodeOf = (s: Shard) => shardNode(s, byId, 2);
  assert.deepEqual([0, 1].map((n) => initial.some((s) => nodeOf(s) === n)), [true, true], 'each node owns a shard');
  const keyOf = (s: Shard) => s.HashKeyRange!.StartingHashKey!;
  const all: string[] = [];
  const putAll = async (tag: string, targets: Shard[], n: number) => {
    for (const [k, s] of targets.entries()) {
      all.push(...lines(`${tag}${k}`, n));
      await put(stream, keyOf(s), lines(`${tag}${k}`, n));
    }
  };
  await putAll('s', initial, 30);

  const recs = [new Recorder(), new Recorder()];
  const sinks = [new CollectingSink(), new CollectingSink()];
  const srcs = [0, 1].map((n) => source(kinesisConfig(stream, { nodeIndex: n, nodeCount: 2 }), join(dir, `node-${n}`), recs[n]));
  await srcs[0].start(sinks[0]);
  await srcs[1].start(sinks[1]);
  let positions: Position[];
  try {
    await waitUntil('the first records read', () => sinks[0].lines.length + sinks[1].lines.length >= all.length, 60_000);
    // Split one shard of each node, then put into every open shard.
    for (const n of [0, 1]) {
      const s = initial.find((x) => nodeOf(x) === n)!;
      const mid = (BigInt(s.HashKeyRange!.StartingHashKey!) + BigInt(s.HashKeyRange!.EndingHashKey!)) / 2n;
      await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: s.ShardId!, NewStartingHashKey: mid.toString() }));
      await waitActive(stream);
    }
    const open = (await listShards(stream)).filter((s) => !s.SequenceNumberRange!.EndingSequenceNumber);
    assert.equal(open.length, 6);
    await putAll('o', open, 20);
    await waitUntil('every record read', () => sinks[0].lines.length + sinks[1].lines.length >= all.length, 60_000);
    const calls = recs.map((r) => r.of('GetRecords').length);
    await waitUntil('more polls', () => recs.every((r, n) => r.of('GetRecords').length >= calls[n] + 6));
    positions = srcs.map(pos);
  } finally {
    await Promise.all(srcs.map((s) => s.stop()));
  }
  assertExactlyOnce([...sinks[0].lines, ...sinks[1].lines], all);
  const shards = await listShards(stream);
  assert.equal(shards.length, 8);
  const fullMap = new Map(shards.map((s) => [s.ShardId!, s]));
  for (const n of [0, 1]) {
    // A node only ever asked for iterators of its own shards (children included), and read all of them.
    const asked = new Set(recs[n].of('GetShardIterator').map((c) => c.shardId!));
    const own = shards.filter((s) => shardNode(s, fullMap, 2) === n).map((s) => s.ShardId!);
    assert.deepEqual([...asked].sort(), own.sort(), `node ${n} shards`);
    assert.deepEqual(Object.keys(positions[n].shards).sort(), own.sort());
  }
});

test('start positions: LATEST reads only what arrives after the start (and resumes from saved positions); AT_TIMESTAMP from that time', async () => {
  const stream = await createStream(1);
  await put(stream, '1', lines('before', 10));
  const env = { VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`, VIGIL_KINESIS_ENDPOINT: endpoint,
    VIGIL_KINESIS_IDLE_POLL_MS: '200', VIGIL_KINESIS_DISCOVER_MS: '1000' };
  const latest = loadConfig({ ...env, VIGIL_KINESIS_START: 'LATEST' }).kinesis!;
  assert.equal(latest.region, 'us-east-1');
  const dataDir = join(dir, 'latest');
  // Round 2 restarts from the saved position: it reads what was put while stopped, then its own.
  const between = lines('between', 5);
  for (const round of [1, 2]) {
    const rec = new Recorder();
    const sink = new CollectingSink();
    const src = source(latest, dataDir, rec);
    const after = lines(`after${round}`, 10);
    const expected = round === 1 ? after : [...between, ...after];
    await run(src, sink, async () => {
      await waitUntil('the shard polled', () => rec.of('GetRecords').some((c) => c.records !== undefined));
      await put(stream, '1', after);
      await readAll('the new records read', sink, expected.length, rec, 3, 30_000);
    });
    assertExactlyOnce(sink.lines, expected);
    assert.deepEqual(rec.of('GetShardIterator').map((c) => c.input.ShardIteratorType), [round === 1 ? 'LATEST' : 'AFTER_SEQUENCE_NUMBER']);
    if (round === 1) await put(stream, '1', between);
  }

  // AT_TIMESTAMP: a time strictly between two puts (kinesalite stamps arrivals with the same clock).
  const ts = await createStream(1);
  await put(ts, '1', lines('old', 10));
  const sinceOld = Date.now();
  await waitUntil('the clock moved', () => Date.now() > sinceOld + 1, 1000, 1);
  const t = Date.now();
  await waitUntil('the clock moved', () => Date.now() > t + 1, 1000, 1);
  const fresh = lines('new', 10);
  await put(ts, '1', fresh);
  const at = loadConfig({ ...env, VIGIL_KINESIS_STREAM: ts, VIGIL_KINESIS_START: 'AT_TIMESTAMP', VIGIL_KINESIS_START_TIMESTAMP: new Date(t).toISOString() }).kinesis!;
  assert.equal(at.startTimestampMs, t);
  const rec = new Recorder();
  const sink = new CollectingSink();
  await run(source(at, join(dir, 'at'), rec), sink, async () => {
    await readAll('the new records read', sink, fresh.length, rec, 3, 30_000);
  });
  assertExactlyOnce(sink.lines, fresh);
  assert.equal(rec.of('GetShardIterator')[0].input.ShardIteratorType, 'AT_TIMESTAMP');
});

test('a shard reader that fails is started again by the next discovery, after the last record the sink took', async () => {
  const stream = await createStream(1);
  const a = lines('a', 50);
  await put(stream, '1', a);
  // The 3rd write fails once (as an engine failure would): that reader dies.
  class FailingSink extends CollectingSink {
    writes = 0;
    override async write(bytes: Uint8Array, origin?: ChunkOrigin, position?: ChunkPosition): Promise<void> {
      if (++this.writes === 3) throw new Error('engine unavailable');
      return super.write(bytes, origin, position);
    }
  }
  const rec = new Recorder();
  const sink = new FailingSink();
  const src = source(kinesisConfig(stream), join(dir, 'restart-reader'), rec);
  await run(src, sink, async () => {
    await readAll('every record read', sink, a.length, rec, 3, 30_000);
  });
  // Records 21-30 were in the failed write; the new reader starts after the last one the sink took (20).
  assertExactlyOnce(sink.lines, a);
  assert.deepEqual(rec.of('GetShardIterator').map((c) => c.input.ShardIteratorType), ['TRIM_HORIZON', 'AFTER_SEQUENCE_NUMBER']);
});

// LATEST with nothing read yet from a shard: an expired iterator, a restart and the children of an
// earlier reshard continue AT_TIMESTAMP of the first start, skipping nothing after it, reading nothing before.
const latestConfig = (stream: string) => kinesisConfig(stream, { startPosition: 'LATEST' });

test('LATEST, an iterator that expires before the first record: what arrived meanwhile is read', async () => {
  const config = latestConfig;
  const stream = await createStream(1);
  await put(stream, '1', lines('old', 5));
  const during = lines('during', 5);
  const rec = new Recorder(async (c, nth) => {
    if (c.op !== 'GetRecords' || nth !== 1) return undefined;
    await put(stream, '1', during);
    return expired();
  });
  const dataDir = join(dir, 'latest-nothing');
  const sink = new CollectingSink();
  await run(source(config(stream), dataDir, rec), sink, async () => {
    await readAll('the records put during the expiry', sink, during.length, rec, 3, 30_000);
  });
  assertExactlyOnce(sink.lines, during);
  assert.deepEqual(rec.of('GetShardIterator').map((c) => c.input.ShardIteratorType), ['LATEST', 'AT_TIMESTAMP']);

});

test('LATEST, a first run that reads nothing, then records while stopped: the restart reads them', async () => {
  const config = latestConfig;
  const quiet = await createStream(1);
  await put(quiet, '1', lines('old', 5));
  const quietDir = join(dir, 'latest-quiet');
  const rec1 = new Recorder();
  await run(source(config(quiet), quietDir, rec1), new CollectingSink(), () => waitUntil('polled', () => rec1.of('GetRecords').length >= 3));
  const between = lines('between', 5);
  await put(quiet, '1', between);
  const rec2 = new Recorder();
  const sink2 = new CollectingSink();
  await run(source(config(quiet), quietDir, rec2), sink2, async () => {
    await readAll('the records put while stopped', sink2, between.length, rec2, 3, 30_000);
  });
  assertExactlyOnce(sink2.lines, between);
  assert.deepEqual(rec2.of('GetShardIterator').map((c) => c.input.ShardIteratorType), ['AT_TIMESTAMP']);

});

test('LATEST on a stream split before the first start: the closed parent gives nothing, its children only what arrives after the start', async () => {
  const config = latestConfig;
  const split = await createStream(1);
  const [parent] = await listShards(split);
  await put(split, '1', lines('parent', 5));
  await client.send(new SplitShardCommand({ StreamName: split, ShardToSplit: parent.ShardId!, NewStartingHashKey: (2n ** 127n).toString() }));
  await waitActive(split);
  const upper = (2n ** 127n + 1n).toString();
  await put(split, '1', lines('lo-old', 5));
  await put(split, upper, lines('hi-old', 5));
  // kinesalite dates a split's children 1 s ahead, and their records with them: start once those times have passed.
  let newest = 0;
  for (const s of (await listShards(split)).filter((x) => x.ParentShardId)) {
    const it = await client.send(new GetShardIteratorCommand({ StreamName: split, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
    const got = await client.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator! }));
    for (const r of got.Records!) newest = Math.max(newest, r.ApproximateArrivalTimestamp!.getTime());
  }
  assert.ok(newest > 0);
  await waitUntil('the children\'s records in the past', () => Date.now() > newest + 1, 5000, 20);
  // kinesalite answers AT_TIMESTAMP only once a record at or after it exists: the children's iterators wait for the new records.
  let release!: () => void;
  const fresh = new Promise<void>((r) => { release = r; });
  const rec3 = new Recorder(async (c) => {
    if (c.op === 'GetShardIterator' && c.shardId !== parent.ShardId) await fresh;
    return undefined;
  });
  const sink3 = new CollectingSink();
  const expected = [...lines('lo-new', 5), ...lines('hi-new', 5)];
  await run(source(config(split), join(dir, 'latest-split'), rec3), sink3, async () => {
    await waitUntil('the parent polled', () => rec3.of('GetRecords', parent.ShardId).length > 0);
    await put(split, '1', lines('lo-new', 5));
    await put(split, upper, lines('hi-new', 5));
    release();
    await readAll('the new records', sink3, expected.length, rec3, 4, 30_000);
  });
  assertExactlyOnce(sink3.lines, expected);
  const types = new Map(rec3.of('GetShardIterator').map((c) => [c.shardId, c.input.ShardIteratorType]));
  assert.equal(types.get(parent.ShardId), 'LATEST');
  assert.deepEqual([...types.values()].filter((t) => t === 'AT_TIMESTAMP').length, 2);
});
