// A Kinesis shard split while records are put live, one `vigil run` (kinesalite): a 2-shard stream
// keyed by property (one hash key per property; the first shard's two properties go one to each
// child), an hour of generated demo traffic put in steps 300 ms apart (an hour in about 40 s) while
// the daemon reads it, and the first shard split at 20 %: the parent holds the records before the
// split, its children those after. At the split the daemon is caught up, reads the parent to its end
// and its children once while they are still empty (the moment a live stream's split is exposed:
// nothing holds event time for the children but their parent's mark); the other shard's next records
// then arrive before the children's. At the end the daemon has counted exactly as many records late
// as `vigil replay` of the same records, and its incidents are the replay's (opened within one tick,
// nothing missing, nothing extra); the checkpoint its SIGTERM writes carries the marks of the shards
// it was reading. VIGIL_SPLIT_LIVE_RUNS runs it several times (each on a stream of its own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  KinesisClient, ListShardsCommand, PutRecordsCommand, SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';
import { compareIncidents, describeComparison, incidentSpans } from './support/incident-compare.ts';
import { generateAndReplay, type DemoRun } from './support/demo-run.ts';
import { newestLocalCheckpoint } from './support/local-checkpoints.ts';
import { KinesisHarness } from './support/kinesis-harness.ts';

const TICK_MS = 10_000;
const RUNS = Number(process.env.VIGIL_SPLIT_LIVE_RUNS ?? 1);
let endpoint: string;
let kinesis: KinesisHarness;
let client: KinesisClient;
let dir: string;
let demo: DemoRun;

before(() => {
  endpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT');
  kinesis = new KinesisHarness(endpoint);
  client = kinesis.client;
  dir = mkdtempSync(join(tmpdir(), 'vigil-split-live-'));
  demo = generateAndReplay(dir, 1, 7);
});

after(async () => {
  killLeftoverDaemons();
  await kinesis?.close();
});


for (let run = 1; run <= RUNS; run++) {
  test(`a shard split while records are put live and read (run ${run} of ${RUNS}): the replay's late records and incidents`, async (t) => {
    const started = Date.now();
    const stream = `vigil-split-live-${process.pid}-${Date.now()}`;
    await kinesis.createStream(stream, 2);
    const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
    const [s0] = shards.sort((a, b) => (BigInt(a.HashKeyRange!.StartingHashKey!) < BigInt(b.HashKeyRange!.StartingHashKey!) ? -1 : 1));
    const s0End = BigInt(s0.HashKeyRange!.EndingHashKey!);
    const splitAt = s0End / 2n;
    const props = demo.properties;
    const keyOf = new Map(props.map((p, i) => [p, (2n ** 128n * BigInt(2 * i + 1)) / BigInt(2 * props.length)]));
    const inS0 = [...keyOf.values()].filter((k) => k <= s0End);
    assert.ok(inS0.some((k) => k < splitAt) && inS0.some((k) => k >= splitAt), 'the split shard\'s properties go to both children');
    const hashKey = (line: string) => {
      let p: string | undefined;
      try { p = String((JSON.parse(line) as { property_id: unknown }).property_id); } catch { p = undefined; }
      return (keyOf.get(p ?? '') ?? keyOf.get(props[0])!).toString();
    };

    const lastPut = new Map<string, string>();
    /** Puts lines [from, to) in steps of 2000 a little apart: about 4,000 records (2 minutes of event time) a second. */
    const putLines = async (lines: string[]) => {
      for (let j = 0; j < lines.length; j += 500) {
        const batch = lines.slice(j, j + 500);
        const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch.map((l) => ({ Data: Buffer.from(l), PartitionKey: 'p', ExplicitHashKey: hashKey(l) })) }));
        assert.equal(out.FailedRecordCount ?? 0, 0);
        for (const r of out.Records!) lastPut.set(r.ShardId!, r.SequenceNumber!);
      }
    };
    const putLive = async (from: number, to: number) => {
      for (let i = from; i < to; i += 2000) {
        await putLines(demo.lines.slice(i, Math.min(i + 2000, to)));
        await delay(300);
      }
    };
    const splitAtRecords = Math.floor(demo.lines.length / 5 / 2000) * 2000;
    // The first step before the daemon starts, so that each shard has records when it is first read (a
    // shard that is caught up before it ever delivered holds nothing back: with both shards empty at
    // the start, the one read first would take event time past the other's first records).
    await putLive(0, 2000);
    const data = join(dir, `data-${run}`);
    const audit = join(dir, `audit-${run}.ndjson`);
    const d = startDaemon({
      VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: stream, VIGIL_KINESIS_ENDPOINT: endpoint, VIGIL_KINESIS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      VIGIL_KINESIS_IDLE_POLL_MS: '200', VIGIL_KINESIS_MAX_RECORDS: '500',
      VIGIL_DATA_DIR: data, VIGIL_TRANSITIONS_FILE: audit, VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_CHECKPOINT_INTERVAL_MS: '1000',
      // An hour of records put in about half a minute: a caught-up shard waits a little for more (longer
      // than the pause around the split).
      VIGIL_PARTITION_CAUGHT_UP_WAIT_MS: '10000',
    });
    await waitUntil('the daemon to run', () => /vigil running/.test(d.stderr()), 60_000);

    await putLive(2000, splitAtRecords);
    // The split while the daemon reads live: the parent's records so far stay in it, the next go to
    // its children. Nothing is put from the split until the daemon has read the parent to its end and
    // its children once (a caught-up shard polls every 200 ms), so the children join the clock empty:
    // the moment a child of a live stream is most exposed (a second or two, well within the caught-up wait).
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: s0.ShardId!, NewStartingHashKey: splitAt.toString() }));
    await kinesis.waitActive(stream);
    const ended = () => d.stderr().split('\n').some((l) => l.includes('"msg":"shard read to its end"') && l.includes(`"shardId":"${s0.ShardId}"`));
    await waitUntil('the parent read to its end', ended, 30_000, 20);
    await delay(600);
    // The next step's records of the other shard first, then (once the daemon has read them) those of
    // the children: each property's order is the file's, and the replay's outcome does not depend on
    // how the shards interleave; the other shard's newer records just must not take event time past
    // the children's.
    const next = demo.lines.slice(splitAtRecords, splitAtRecords + 2000);
    const other = next.filter((l) => BigInt(hashKey(l)) > s0End);
    await putLines(other);
    await delay(600);
    await putLines(next.filter((l) => BigInt(hashKey(l)) <= s0End));
    await delay(300);
    await putLive(splitAtRecords + 2000, demo.lines.length);
    const all = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
    assert.equal(all.length, 4, 'the first shard was split into two children');
    const children = all.filter((s) => s.ParentShardId === s0.ShardId).map((s) => s.ShardId!);
    assert.ok(children.every((c) => lastPut.has(c)) && lastPut.has(s0.ShardId!), 'records went to the parent before the split and to both children after it');

    // Run until a checkpoint covers every record and event time reached the newest, then stop cleanly.
    await waitUntil('a checkpoint of every record', () => {
      const cp = newestLocalCheckpoint(data);
      return cp !== null && [...lastPut].every(([shard, seq]) => cp.positions[shard] === seq) && (cp.eventTime.reached ?? 0) >= demo.maxTs;
    }, 120_000, 250);
    d.child.kill('SIGTERM');
    assert.equal(await d.exit, 0, d.stderr().slice(-3000));
    // The checkpoint of the stop carries the marks of the shards it was reading (the children and the
    // other shard), from which a restart's children hold event time.
    const marks = Object.fromEntries((newestLocalCheckpoint(data)?.eventTime.streams ?? []).map((s) => [s.id, s.high]));
    const reading = [...children, ...all.filter((s) => s.ShardId !== s0.ShardId && !children.includes(s.ShardId!)).map((s) => s.ShardId!)].sort();
    assert.deepEqual(Object.keys(marks).filter((id) => reading.includes(id)).sort(), reading, `marks in the stop's checkpoint: ${JSON.stringify(marks)}`);
    assert.ok(reading.every((id) => typeof marks[id] === 'number'), `marks in the stop's checkpoint: ${JSON.stringify(marks)}`);
    const log = join(dir, `daemon-${run}.log`);
    writeFileSync(log, d.stderr());
    const stopped = d.stderr().split('\n').filter((l) => l.includes('"msg":"vigil stopped"')).map((l) => JSON.parse(l) as { kernel: { events: number; heldNow: number; late: number } });
    assert.equal(stopped.length, 1);
    const { kernel } = stopped[0];
    const c = compareIncidents(incidentSpans(demo.replayed), incidentSpans(readFileSync(audit, 'utf8')), TICK_MS, demo.maxTs - 5 * 60_000);
    t.diagnostic(`split at ${splitAtRecords} of ${demo.lines.length} records put; late ${kernel.late} (replay ${demo.late}); ${describeComparison(c)}; ${Math.round((Date.now() - started) / 1000)} s; log ${log}`);
    assert.equal(kernel.events + kernel.heldNow, demo.valid, 'every record counted once');
    assert.equal(kernel.late, demo.late, `records counted late: the daemon ${kernel.late}, the replay ${demo.late} (log ${log})`);
    assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `${describeComparison(c)} (log ${log})`);
    assert.ok(c.matched >= 10, describeComparison(c));
  });
}
