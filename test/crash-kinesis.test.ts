// Crash anywhere, Kinesis source (kinesalite): `vigil run` reads a 2-shard stream of generated demo
// traffic, put in four parts, and is killed with SIGKILL at random points (seeded) while it reads,
// restarted each time from its last periodic checkpoint; halfway through, one shard is split while it runs. At the
// end the state holds every valid record exactly once (the kernel's event count, carried by the
// checkpoints, equals the replay's, and so does its late count), the incidents are `vigil replay`'s (openings and closings within
// one tick, nothing missing, nothing extra), the incident database agrees with the audit file, and the
// positions file was never ahead of the newest checkpoint. VIGIL_FAULT_POINTS sets the number of
// kills (`npm run test:faults` runs 24).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  KinesisClient, ListShardsCommand, PutRecordsCommand, SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';
import { TestRng } from './support/detection-streams.ts';
import { assertDatabaseAgrees, compareIncidents, describeComparison, incidentSpans } from './support/incident-compare.ts';
import { generateAndReplay } from './support/demo-run.ts';
import { newestLocalCheckpoint } from './support/local-checkpoints.ts';
import { KinesisHarness } from './support/kinesis-harness.ts';

const POINTS = Number(process.env.VIGIL_FAULT_POINTS ?? 4);
const TICK_MS = 10_000;
let endpoint: string;
let kinesis: KinesisHarness;
let client: KinesisClient;
let dir: string;
let lines: string[];
let replayed: string;
let valid: number;
let late: number;
let maxTs: number;

before(() => {
  endpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT');
  kinesis = new KinesisHarness(endpoint);
  client = kinesis.client;
  dir = mkdtempSync(join(tmpdir(), 'vigil-crash-kinesis-'));
  ({ lines, replayed, valid, late, maxTs } = generateAndReplay(dir, 1, 7));
});

after(async () => {
  killLeftoverDaemons();
  await kinesis?.close();
});

const newestSeq = (data: string) => newestLocalCheckpoint(data)?.seq ?? 0;

type SavedShards = Record<string, { sequenceNumber: string | null; finished: boolean }>;
const savedPositions = (data: string): SavedShards | null => {
  const path = join(data, 'kinesis-positions.json');
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')).shards : null;
};

/**
 * Where the positions file is ahead of the newest checkpoint, or calls a shard finished before its last
 * record (`lastPut`): a restart would skip records the state never had.
 */
function aheadOfCheckpoint(data: string, lastPut: ReadonlyMap<string, string>): string[] {
  const saved = savedPositions(data) ?? {};
  const cp = newestLocalCheckpoint(data)?.positions ?? {};
  const problems: string[] = [];
  for (const [shard, p] of Object.entries(saved)) {
    if (p.sequenceNumber === null) continue;
    const c = cp[shard];
    if (c === undefined || BigInt(p.sequenceNumber) > BigInt(c)) problems.push(`${shard}: file ${p.sequenceNumber}, checkpoint ${c ?? 'none'}`);
    else if (p.finished && (c !== p.sequenceNumber || lastPut.get(shard) !== p.sequenceNumber)) {
      problems.push(`${shard}: finished at ${p.sequenceNumber}, checkpoint at ${c}, its last record ${lastPut.get(shard)}`);
    }
  }
  return problems;
}

test(`a 2-shard stream, one shard split mid-run, vigil run killed with SIGKILL at ${POINTS} random points: every record once, the replay's incidents, the database agrees`, async (t) => {
  const stream = `vigil-crash-${process.pid}-${Date.now()}`;
  await kinesis.createStream(stream, 2);
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  assert.equal(shards.length, 2);
  const [s0] = shards.sort((a, b) => (BigInt(a.HashKeyRange!.StartingHashKey!) < BigInt(b.HashKeyRange!.StartingHashKey!) ? -1 : 1));
  const s0End = BigInt(s0.HashKeyRange!.EndingHashKey!);
  const splitAt = s0End / 2n;
  // One hash key per property, spread over the key space: two of the five properties land in the
  // first shard, one on each side of where it will be split; the others in the second shard.
  const props = [...new Set(lines.map((l) => { try { return String(JSON.parse(l).property_id); } catch { return null; } }).filter((p) => p !== null))].sort();
  const keyOf = new Map(props.map((p, i) => [p, (2n ** 128n * BigInt(2 * i + 1)) / BigInt(2 * props.length)]));
  const inS0 = [...keyOf.values()].filter((k) => k <= s0End);
  assert.ok(inS0.some((k) => k < splitAt) && inS0.some((k) => k >= splitAt), 'the split shard\'s properties go to both children');
  const hashKey = (line: string) => {
    let p: string | undefined;
    try { p = String(JSON.parse(line).property_id); } catch { p = undefined; }
    return (keyOf.get(p ?? '') ?? keyOf.get(props[0])!).toString();
  };
  /** The last sequence number put into each shard, and how many records each sequence number ends. */
  const lastPut = new Map<string, string>();
  const recordsUpTo = new Map<string, number>();
  const put = async (from: number, to: number) => {
    for (let i = from; i < to; i += 500) {
      const batch = lines.slice(i, Math.min(i + 500, to));
      const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch.map((l) => ({ Data: Buffer.from(l), PartitionKey: 'p', ExplicitHashKey: hashKey(l) })) }));
      assert.equal(out.FailedRecordCount ?? 0, 0);
      for (const r of out.Records!) {
        lastPut.set(r.ShardId!, r.SequenceNumber!);
        recordsUpTo.set(r.SequenceNumber!, recordsUpTo.size + 1);
      }
    }
  };

  const data = join(dir, 'data');
  const audit = join(dir, 'audit.ndjson');
  const env = {
    VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: stream, VIGIL_KINESIS_ENDPOINT: endpoint, VIGIL_KINESIS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    VIGIL_KINESIS_IDLE_POLL_MS: '200', VIGIL_KINESIS_DISCOVER_MS: '1000', VIGIL_KINESIS_MAX_RECORDS: '500',
    // Checkpoints out of step with the source's saves of its positions file (every second): a file saved
    // from anything but the checkpoint would be ahead of it at most kills.
    VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_CHECKPOINT_INTERVAL_MS: '2500',
    // A shard never goes idle here: one with nothing to deliver must be known to have nothing (caught up).
    VIGIL_PARTITION_IDLE_MS: '3600000',
  };
  /** Records the newest checkpoint holds (positions are per shard; each names its last record). */
  const checkpointed = () => {
    let n = 0;
    for (const seq of Object.values(newestLocalCheckpoint(data)?.positions ?? {})) n = Math.max(n, recordsUpTo.get(seq) ?? 0);
    return n;
  };
  const rng = new TestRng(7 * 7919 + POINTS);
  // The records are put in SEGMENTS parts, each before the first daemon that reads it, and a short tail
  // for the last daemon (it must count something: its kernel counters are read from its last task). The
  // first shard is split while the daemon that found the middle part runs (that part still goes to it).
  const SEGMENTS = 4;
  const tail = lines.length - 1000;
  const putUpTo = (seg: number) => put(Math.floor((tail * seg) / SEGMENTS), Math.floor((tail * (seg + 1)) / SEGMENTS));
  let segmentsPut = 0;
  let split = false;
  const splitShard = async () => {
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: s0.ShardId!, NewStartingHashKey: splitAt.toString() }));
    await kinesis.waitActive(stream);
    split = true;
  };
  /** Restarts that found a checkpoint, and those of them that restored it. */
  let withCheckpoint = 0;
  let restored = 0;
  const ahead: string[] = [];
  /** After each kill: records put so far, and the newest checkpoint's last record among them. */
  const progress: Array<[number, number]> = [];
  for (let i = 0; i < POINTS; i++) {
    // Each daemon finds a backlog: what the last one read after its newest checkpoint, and new parts.
    const due = Math.floor((i * SEGMENTS) / POINTS) + 1;
    const splitNow = !split && due > SEGMENTS / 2;
    while (segmentsPut < due) await putUpTo(segmentsPut++);
    if (newestSeq(data) > 0) withCheckpoint++;
    const d = startDaemon(env);
    await waitUntil('the daemon to run', () => /vigil running/.test(d.stderr()), 60_000);
    if (/engine restored from checkpoint/.test(d.stderr())) restored++;
    // Split while it reads: the parent's records so far stay in it, the next parts go to its children.
    if (splitNow) await splitShard();
    // Anywhere: a quarter of the kills in the first second (restoring, the first reads), the others
    // after this daemon's first checkpoint: while catching up, between checkpoints, while the parent
    // ends or its children start, or once all is read.
    if (rng.int(0, 3) === 0) {
      await delay(rng.int(0, 1000));
    } else {
      const seq = newestSeq(data);
      await waitUntil('a checkpoint of this daemon', () => newestSeq(data) > seq, 30_000, 20);
      await delay(rng.int(0, 2000));
    }
    d.child.kill('SIGKILL');
    await d.exit;
    writeFileSync(join(dir, `daemon-${i}.log`), d.stderr());
    ahead.push(...aheadOfCheckpoint(data, lastPut).map((p) => `after kill ${i + 1}: ${p}`));
    progress.push([recordsUpTo.size, checkpointed()]);
  }
  const logs = `(daemon logs in ${dir}; after each kill, records put and the newest checkpoint's last record: ${JSON.stringify(progress)})`;
  t.diagnostic(logs);
  assert.deepEqual(ahead, [], `the positions file was ahead of the newest checkpoint ${logs}`);
  // The kills fell while records were read: some left a checkpoint in the middle of what was put.
  assert.ok(progress.some(([put, cp]) => cp > 0 && cp < put), `no kill fell while reading ${logs}`);
  assert.equal(restored, withCheckpoint, `every restart that found a checkpoint restored it ${logs}`);
  assert.ok(withCheckpoint >= POINTS / 2, `restarts from a checkpoint: ${withCheckpoint} ${logs}`);

  // Last: the rest of the records, then run until a checkpoint covers every record and event time
  // reached the end, and stop cleanly.
  if (!split) await splitShard();
  while (segmentsPut < SEGMENTS) await putUpTo(segmentsPut++);
  await put(tail, lines.length);
  const all = await client.send(new ListShardsCommand({ StreamName: stream }));
  assert.equal(all.Shards!.length, 4, 'the first shard was split into two children');
  const last = startDaemon(env);
  await waitUntil('the daemon to run', () => /vigil running/.test(last.stderr()), 60_000);
  const fromSeq = newestSeq(data);
  await waitUntil('a checkpoint of every record', () => {
    const cp = newestLocalCheckpoint(data);
    return cp !== null && cp.seq > fromSeq && [...lastPut].every(([shard, seq]) => cp.positions[shard] === seq) && (cp.eventTime.reached ?? 0) >= maxTs;
  }, 120_000, 250);
  last.child.kill('SIGTERM');
  assert.equal(await last.exit, 0, `${last.stderr()} ${logs}`);
  writeFileSync(join(dir, 'daemon-last.log'), last.stderr());
  const stopped = last.stderr().split('\n').filter((l) => l.includes('"msg":"vigil stopped"')).map((l) => JSON.parse(l) as { kernel: { events: number; heldNow: number; late: number } });
  assert.equal(stopped.length, 1);

  // Every valid record counted into the state exactly once, whatever was read twice after a kill.
  const { kernel } = stopped[0];
  assert.equal(kernel.events + kernel.heldNow, valid, `records in the state: ${kernel.events} counted + ${kernel.heldNow} held, valid records ${valid} ${logs}`);
  // None counted late that the replay does not count late, restarts after the split included.
  assert.equal(kernel.late, late, `records counted late: ${kernel.late}, in the replay ${late} ${logs}`);
  // The positions file ends where the final checkpoint does; the split parent is finished.
  const saved = savedPositions(data)!;
  assert.deepEqual(Object.fromEntries(Object.entries(saved).map(([k, p]) => [k, p.sequenceNumber])), newestLocalCheckpoint(data)!.positions);
  assert.equal(saved[s0.ShardId!].finished, true, 'the split shard is finished');
  assert.deepEqual(Object.keys(saved).sort(), all.Shards!.map((s) => s.ShardId!).sort(), 'every shard, children included, has a position');

  // The incidents of the replay of the same records, within one tick (the daemon's event time stops at
  // the newest record; the replay's end evaluates further).
  const got = readFileSync(audit, 'utf8');
  const c = compareIncidents(incidentSpans(replayed), incidentSpans(got), TICK_MS, maxTs - 5 * 60_000);
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `${describeComparison(c)} ${logs}`);
  assert.ok(c.matched >= 10, describeComparison(c));

  // The database holds the same incidents as the audit file, opened and closed at the same times, with the same ids.
  assertDatabaseAgrees(data, got);
});
