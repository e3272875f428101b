// Kinesis source against kinesalite from scripts/services/kinesalite.sh (npm run services:up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KinesisClient, CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, ListShardsCommand, PutRecordsCommand, SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { buildTraffic } from './support/traffic.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const START = Date.UTC(2026, 10, 27, 6);
let endpoint: string;
let client: KinesisClient;
let dir: string;

before(() => {
  endpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT');
  // kinesalite accepts any signature; the daemon's client takes credentials from the SDK's default chain.
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  client = new KinesisClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: new NodeHttpHandler() });
  dir = mkdtempSync(join(tmpdir(), 'vigil-kinesis-'));
});
// kinesalite is shared and caps the shards of its account (100): this file deletes its streams.
const created: string[] = [];
after(async () => {
  for (const name of created) await client.send(new DeleteStreamCommand({ StreamName: name })).catch(() => undefined);
  client?.destroy();
});

async function createStream(name: string, shards: number): Promise<void> {
  created.push(name);
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  await waitActive(name);
}

async function waitActive(name: string): Promise<void> {
  await waitUntil(`stream ${name} ACTIVE`, async () =>
    (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
}

/** Puts lines in order, each at the explicit hash key `hashKeyOf(line)` (pins a property to a shard). */
async function put(name: string, lines: string[], hashKeyOf: (line: string) => string): Promise<void> {
  for (let i = 0; i < lines.length; i += 500) {
    const Records = lines.slice(i, i + 500).map((l) => ({ Data: Buffer.from(l), PartitionKey: 'k', ExplicitHashKey: hashKeyOf(l) }));
    const out = await client.send(new PutRecordsCommand({ StreamName: name, Records }));
    assert.equal(out.FailedRecordCount ?? 0, 0);
  }
}

function env(stream: string, name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: stream, VIGIL_KINESIS_ENDPOINT: endpoint, VIGIL_KINESIS_REGION: 'us-east-1',
    VIGIL_KINESIS_IDLE_POLL_MS: '200', VIGIL_KINESIS_DISCOVER_MS: '1000', VIGIL_DATA_DIR: join(dir, `${name}-data`),
    VIGIL_TRANSITIONS_FILE: join(dir, `${name}-audit.ndjson`), VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', ...extra,
  };
}

const events = (d: Daemon) => (d.status().engine as { events: number }).events;
const records = (path: string) => readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('several shards: every shard read, incidents detected, positions saved in the data dir and resumed after a restart', async () => {
  const stream = `vigil-shards-${Date.now()}`;
  await createStream(stream, 3);
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  assert.equal(shards.length, 3);
  const props = ['alpha', 'beta', 'gamma'];
  const keyOf = (l: string) => shards[props.indexOf(JSON.parse(l).property_id)].HashKeyRange!.StartingHashKey!;
  const lines = buildTraffic({ startMs: START, minutes: 160, viewsPerSecond: 9, properties: props,
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }] });
  const half = Math.floor(lines.length / 2);
  await put(stream, lines.slice(0, half), keyOf);

  const e = env(stream, 'shards', { VIGIL_KINESIS_MAX_RECORDS: '300' });
  const first = new Daemon(loadConfig(e), silentLogger());
  await first.start();
  try {
    await waitUntil('the first half evaluated', () => events(first) === half, 120_000);
    // The shards are read batch by batch, each ~100 s of event time: event time follows the slowest
    // shard, so no record of another shard is counted late.
    assert.equal((first.status().kernel as { late: number }).late, 0);
  } finally {
    await first.stop();
  }
  const saved = JSON.parse(readFileSync(join(e.VIGIL_DATA_DIR, 'kinesis-positions.json'), 'utf8'));
  assert.deepEqual(Object.keys(saved.shards).sort(), shards.map((s) => s.ShardId).sort());
  for (const p of Object.values(saved.shards) as Array<{ sequenceNumber: string }>) assert.match(p.sequenceNumber, /^\d+$/);

  await put(stream, lines.slice(half), keyOf);
  const second = new Daemon(loadConfig(e), silentLogger());
  await second.start();
  let secondEvents = 0;
  try {
    await waitUntil('the second half evaluated', () => events(second) >= lines.length - half, 120_000);
    // Idle polls in the meantime must not bring anything more.
    await waitUntil('every shard polled again', () => (second.status().position as { getRecordsCalls: number }).getRecordsCalls > 12);
    secondEvents = events(second);
  } finally {
    await second.stop();
  }
  // Exactly the records after the saved positions were read again: none lost, none twice.
  assert.equal(secondEvents, lines.length - half);
  const alpha = records(e.VIGIL_TRANSITIONS_FILE).filter((r) => r.property_id === 'alpha' && r.scope === 'property');
  assert.deepEqual(alpha.map((r) => r.type), ['opened', 'resolved']);
});

test('resharding: a child shard is read only after its parent is finished; transitions equal vigil replay', async () => {
  const stream = `vigil-split-${Date.now()}`;
  await createStream(stream, 1);
  const lines = buildTraffic({ startMs: START, minutes: 160, viewsPerSecond: 6, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }] });
  const cut = Math.floor(lines.length * 0.6);
  // Every record at hash key 1: before the split in the parent, after it in the lower child.
  await put(stream, lines.slice(0, cut), () => '1');
  const [parent] = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: parent.ShardId!, NewStartingHashKey: (2n ** 127n).toString() }));
  await waitActive(stream);
  await put(stream, lines.slice(cut), () => '1');

  const e = env(stream, 'split', { VIGIL_KINESIS_MAX_RECORDS: '5000' });
  const daemon = new Daemon(loadConfig(e), silentLogger());
  await daemon.start();
  let late = -1;
  try {
    await waitUntil('every record evaluated', () => events(daemon) === lines.length, 120_000);
    late = (daemon.status().kernel as { late: number }).late;
  } finally {
    await daemon.stop();
  }
  const saved = JSON.parse(readFileSync(join(e.VIGIL_DATA_DIR, 'kinesis-positions.json'), 'utf8'));
  assert.equal(saved.shards[parent.ShardId!].finished, true);
  // Had a child been read before its parent finished, its records would have pushed event time
  // ahead and the parent's would be late; and the transitions would differ from replay's.
  assert.equal(late, 0);
  const whole = join(dir, 'split.ndjson');
  writeFileSync(whole, lines.join('\n') + '\n');
  const replayed = spawnSync(process.execPath, [VIGIL, 'replay', whole], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(replayed.status, 0, replayed.stderr);
  assert.equal(readFileSync(e.VIGIL_TRANSITIONS_FILE, 'utf8'), replayed.stdout);
});

const positionsFile = (e: Record<string, string>) => join(e.VIGIL_DATA_DIR, 'kinesis-positions.json');
/** The sequence number per shard in the positions file ({} before it names any). */
const savedSeqs = (e: Record<string, string>): Record<string, string | null> => {
  if (!existsSync(positionsFile(e))) return {};
  const shards = JSON.parse(readFileSync(positionsFile(e), 'utf8')).shards as Record<string, { sequenceNumber: string | null }>;
  return Object.fromEntries(Object.entries(shards).map(([k, p]) => [k, p.sequenceNumber]));
};
const getRecordsCalls = (d: Daemon) => (d.status().position as { getRecordsCalls: number }).getRecordsCalls;

/**
 * Starts a daemon on `e` until it has evaluated `expected` records, lets it poll `polls` more times
 * (records read twice would show up meanwhile), stops it and returns what it counted.
 */
async function eventsOfARestart(e: Record<string, string>, expected: number, polls: number): Promise<number> {
  const d = new Daemon(loadConfig(e), silentLogger());
  await d.start();
  try {
    await waitUntil('the second half evaluated', () => events(d) >= expected, 120_000);
    const calls = getRecordsCalls(d);
    await waitUntil('more polls', () => getRecordsCalls(d) >= calls + polls, 30_000);
    return events(d);
  } finally {
    await d.stop();
  }
}

test('the positions file follows the checkpoints, never the records read; a restored checkpoint wins over a file behind it', async () => {
  const stream = `vigil-cp-${process.pid}-${Date.now()}`;
  await createStream(stream, 2);
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards!;
  const keyOf = (l: string) => shards[JSON.parse(l).property_id === 'alpha' ? 0 : 1].HashKeyRange!.StartingHashKey!;
  const lines = buildTraffic({ startMs: START, minutes: 40, viewsPerSecond: 4, properties: ['alpha', 'beta'], outages: [] });
  const half = Math.floor(lines.length / 2);
  await put(stream, lines.slice(0, half), keyOf);
  // No periodic checkpoint: only the one asked for, and the final one.
  const e = env(stream, 'cp', { VIGIL_CHECKPOINT_INTERVAL_MS: '3600000', VIGIL_KINESIS_MAX_RECORDS: '500' });
  const first = new Daemon(loadConfig(e), silentLogger());
  await first.start();
  let checkpointed: Record<string, string>;
  try {
    await waitUntil('the first half evaluated', () => events(first) === half, 120_000);
    // Seconds of polls (the file is saved every second): every record is evaluated, none is checkpointed.
    const calls = getRecordsCalls(first);
    await waitUntil('more polls', () => getRecordsCalls(first) >= calls + 12, 30_000);
    assert.deepEqual(savedSeqs(e), {}, 'positions saved that no checkpoint holds');
    checkpointed = (await first.checkpointNow()).positions as Record<string, string>;
    assert.deepEqual(Object.keys(checkpointed).sort(), shards.map((s) => s.ShardId!).sort());
    await waitUntil('the file at the checkpoint', () => JSON.stringify(savedSeqs(e)) === JSON.stringify(checkpointed), 10_000);
  } finally {
    await first.stop();
  }
  // A crash after a checkpoint and before the file caught up: the file is behind the checkpoint. The
  // restart reads from the checkpoint's positions, so nothing it holds is counted again.
  const doc = JSON.parse(readFileSync(positionsFile(e), 'utf8'));
  writeFileSync(positionsFile(e), JSON.stringify({ ...doc, shards: {} }));
  await put(stream, lines.slice(half), keyOf);
  assert.equal(await eventsOfARestart(e, lines.length - half, 12), lines.length - half);
  for (const [shard, seq] of Object.entries(savedSeqs(e))) assert.ok(BigInt(seq!) > BigInt(checkpointed[shard]), `${shard} moved on at the final checkpoint`);
});

test('without checkpoints the positions file takes the positions whose verdicts are stored, and a restart resumes there', async () => {
  const stream = `vigil-nocp-${process.pid}-${Date.now()}`;
  await createStream(stream, 1);
  const lines = buildTraffic({ startMs: START, minutes: 30, viewsPerSecond: 4, properties: ['alpha'], outages: [] });
  const half = Math.floor(lines.length / 2);
  await put(stream, lines.slice(0, half), () => '1');
  const e = env(stream, 'nocp', { VIGIL_CHECKPOINTS: 'false', VIGIL_KINESIS_MAX_RECORDS: '500' });
  const first = new Daemon(loadConfig(e), silentLogger());
  await first.start();
  try {
    await waitUntil('the first half evaluated', () => events(first) === half, 120_000);
    const read = (first.status().position as { read: Record<string, string> }).read;
    await waitUntil('the file at the records evaluated', () => JSON.stringify(savedSeqs(e)) === JSON.stringify(read), 10_000);
  } finally {
    await first.stop();
  }
  await put(stream, lines.slice(half), () => '1');
  assert.equal(await eventsOfARestart(e, lines.length - half, 6), lines.length - half);
});
