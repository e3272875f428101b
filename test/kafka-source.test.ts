// Kafka source against the real broker of scripts/services/kafka.sh (npm run services:up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { KafkaSource } from '../src/ingest/kafka-source.ts';
import { recordBatchDecoder } from '../src/ingest/kafkajs-patches.ts';
import kafkajs from 'kafkajs';
import { buildTraffic } from './support/traffic.ts';
import { KafkaHarness, startBroker, stopBroker } from './support/kafka-harness.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';
import { VIGIL, startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';

const { CompressionTypes } = kafkajs;
const START = Date.UTC(2026, 10, 27, 6);
let dir: string;
let kafka: KafkaHarness;
let lines: string[];
let wholeFile: string;
let expected: string;

before(() => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-kafka-'));
  lines = buildTraffic({
    startMs: START, minutes: 160, viewsPerSecond: 6, properties: ['alpha', 'beta'],
    outages: [{ property: 'alpha', fromMin: 70, toMin: 100, ratio: 0.3 }],
  });
  wholeFile = join(dir, 'whole.ndjson');
  writeFileSync(wholeFile, lines.join('\n') + '\n');
  const replayed = spawnSync(process.execPath, [VIGIL, 'replay', wholeFile], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(replayed.status, 0, replayed.stderr);
  expected = replayed.stdout;
  assert.match(expected, /"type":"opened".*"property_id":"alpha"/);
  assert.match(expected, /"type":"resolved"/);
});

after(async () => {
  killLeftoverDaemons();
  await kafka?.close();
});

function daemonEnv(topic: string, group: string, name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: group,
    VIGIL_DATA_DIR: join(dir, `${name}-data`), VIGIL_TRANSITIONS_FILE: join(dir, `${name}-audit.ndjson`),
    VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200', VIGIL_CHECKPOINT_INTERVAL_MS: '1000', ...extra,
  };
}

function engineEvents(d: Daemon): number {
  return (d.status().engine as { events: number }).events;
}

test('records produced with kafkajs: incidents end to end, transitions equal vigil replay, offsets committed', async () => {
  const topic = await kafka.topic('vigil-kafkajs');
  await kafka.produce(topic, lines);
  const env = daemonEnv(topic, `g-${topic}`, 'kafkajs');
  const daemon = new Daemon(loadConfig(env), silentLogger());
  await daemon.start();
  try {
    await waitUntil('every record evaluated', () => engineEvents(daemon) === lines.length);
    await waitUntil('offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === lines.length);
  } finally {
    await daemon.stop();
  }
  assert.equal(readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8'), expected);
});

test('records produced with kcat (vigil run as a child process): transitions equal vigil replay', async () => {
  const topic = await kafka.topic('vigil-kcat');
  const env = daemonEnv(topic, `g-${topic}`, 'kcat');
  const d = startDaemon(env);
  await waitUntil('the daemon to run', () => /vigil running/.test(d.stderr()), 60_000);
  // kcat: one message per line of the file, produced by librdkafka, a client no one here wrote.
  execFileSync('kcat', ['-P', '-b', kafka.brokers, '-t', topic, '-l', wholeFile], { stdio: 'pipe' });
  await waitUntil('offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === lines.length, 120_000);
  d.child.kill('SIGTERM');
  assert.equal(await d.exit, 0, d.stderr());
  assert.equal(readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8'), expected);
});

for (const codec of ['snappy', 'lz4', 'zstd']) {
  test(`records produced with kcat, ${codec}-compressed: transitions equal vigil replay`, async () => {
    const topic = await kafka.topic(`vigil-${codec}`);
    // Batches of many records (linger), compressed by librdkafka.
    execFileSync('kcat', ['-P', '-b', kafka.brokers, '-t', topic, '-z', codec, '-X', 'linger.ms=100', '-l', wholeFile], { stdio: 'pipe' });
    const env = daemonEnv(topic, `g-${topic}`, codec);
    const daemon = new Daemon(loadConfig(env), silentLogger());
    await daemon.start();
    try {
      await waitUntil('every record evaluated', () => engineEvents(daemon) === lines.length, 60_000);
      await waitUntil('offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === lines.length);
    } finally {
      await daemon.stop();
    }
    assert.equal(readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8'), expected);
  });
}

test('poison records never block a partition: bad JSON, embedded newline, oversized and empty values are skipped and counted', async () => {
  const topic = await kafka.topic('vigil-poison', 2);
  const good = lines.slice(0, 2000);
  const values: Array<string | Buffer | null> = [];
  good.forEach((l, i) => {
    values.push(l);
    if (i === 10) values.push('{not json');
    if (i === 20) values.push('{"property_id":"alpha",\n"ts":1}');
    if (i === 30) values.push(JSON.stringify({ property_id: 'alpha', ts: START, pad: 'x'.repeat(5000) }));
    if (i === 40) values.push(null);
  });
  await kafka.produce(topic, values);
  // A partition whose only record is bad: its offset must move past it all the same.
  await kafka.produceTo(topic, [{ partition: 1, value: '' }]);
  values.push('');
  const env = daemonEnv(topic, `g-${topic}`, 'poison', { VIGIL_MAX_LINE_BYTES: '4096' });
  const daemon = new Daemon(loadConfig(env), silentLogger());
  await daemon.start();
  try {
    await waitUntil('offsets committed past the poison', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === values.length);
    await waitUntil('good records evaluated', () => engineEvents(daemon) === good.length);
    const pos = daemon.status().position as { skipped: Record<string, number> };
    assert.deepEqual(pos.skipped, { empty: 2, too_large: 1, newline: 1 });
    const rejected = (daemon.status().engine as { rejected: Record<string, number> }).rejected;
    assert.equal(Object.values(rejected).reduce((a, b) => a + b, 0), 1, JSON.stringify(rejected));
  } finally {
    await daemon.stop();
  }
});

test('offsets committed are exactly the positions the sink says are committable (the durable checkpoint\'s), never the records written', async () => {
  const topic = await kafka.topic('vigil-commit');
  await kafka.produce(topic, lines.slice(0, 500));
  const group = `g-${topic}`;
  let written = 0;
  let lastPosition: string | undefined;
  const committable = new Map<string, string>();
  const config = loadConfig(daemonEnv(topic, group, 'commit', { VIGIL_KAFKA_COMMIT_INTERVAL_MS: '50' })).kafka!;
  const source = new KafkaSource({ config, maxRecordBytes: 65536, logger: silentLogger() });
  await source.start({
    write: async (bytes, _origin, position) => {
      written += bytes.filter((b: number) => b === 10).length;
      if (position) lastPosition = position.next;
    },
    committable: () => committable,
  });
  try {
    await waitUntil('all records written', () => written === 500);
    assert.equal(lastPosition, '500', 'the last chunk ends at offset 500');
    await source.commit();
    assert.equal(await kafka.committed(group, topic), 0, 'nothing is committed before the sink says so');
    committable.set(`${topic}:0`, '321');
    await waitUntil('the committable offset committed', async () => (await kafka.committed(group, topic)) === 321);
    committable.set(`${topic}:0`, '500');
    await waitUntil('the next one', async () => (await kafka.committed(group, topic)) === 500);
  } finally {
    await source.stop();
  }
});

test('every record\'s offset, timestamp, key, value and headers through Vigil\'s record batch decoder, plain and gzip batches, as the producer sent them', async () => {
  assert.equal(recordBatchDecoder(), 'vigil', 'importing the Kafka source installs the decoder');
  const topic = await kafka.topic('vigil-decode', 1);
  const producer = kafka.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // Batches with first offsets and first timestamps of their own (and of other lengths as strings).
  const T0 = 1_795_000_000_000;
  type Seen = { offset: string; timestamp: string; key: string | null; value: string; headers: Record<string, string | string[]> };
  const sent: Seen[] = [];
  for (let b = 0; b < 6; b++) {
    const messages = Array.from({ length: 7 + b * 5 }, (_, i) => ({
      key: i % 3 === 0 ? null : `k${b}.${i}`,
      value: `b${b}r${i}`,
      timestamp: String(T0 + b * 987_654 + i * 3),
      headers: i % 4 === 1 ? { kind: 'x', many: ['1', '2'] } : undefined,
    }));
    await producer.send({ topic, messages, compression: b % 2 ? CompressionTypes.GZIP : CompressionTypes.None });
    for (const m of messages) sent.push({ offset: String(sent.length), timestamp: m.timestamp, key: m.key, value: m.value, headers: m.headers ?? {} });
  }
  await producer.disconnect();
  const got: Seen[] = [];
  const text = (v: unknown): string | string[] => (Array.isArray(v) ? v.map((x) => String(x)) : String(v));
  const consumer = kafka.kafka.consumer({ groupId: `vigil-decode-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  try {
    await consumer.run({ eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        got.push({ offset: m.offset, timestamp: m.timestamp, key: m.key ? m.key.toString() : null, value: String(m.value),
          headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, text(v)])) });
      }
    } });
    await waitUntil('every record read', () => got.length >= sent.length, 30_000);
  } finally {
    await consumer.disconnect();
  }
  assert.deepEqual(got.slice(0, sent.length), sent);
});

test('kill -9 mid-stream: the restarted daemon resumes at the committed offset and nothing is lost', async () => {
  const topic = await kafka.topic('vigil-crash');
  const env = daemonEnv(topic, `g-${topic}`, 'crash', { VIGIL_WORKERS: '1', VIGIL_CHECKPOINTS: 'false', VIGIL_KAFKA_MAX_FETCH_BYTES: '65536' });
  const first = startDaemon(env);
  await waitUntil('the daemon to run', () => /vigil running/.test(first.stderr()), 60_000);
  await kafka.produce(topic, lines);
  await waitUntil('some offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) > 0, 120_000, 20);
  first.child.kill('SIGKILL');
  await first.exit;
  const committedAtCrash = await kafka.committed(env.VIGIL_KAFKA_GROUP, topic);
  assert.ok(committedAtCrash > 0 && committedAtCrash <= lines.length);

  const second = startDaemon(env);
  await waitUntil('all offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === lines.length, 120_000);
  second.child.kill('SIGTERM');
  assert.equal(await second.exit, 0, second.stderr());
  const stopped = second.stderr().split('\n').filter((l) => l.includes('"msg":"vigil stopped"')).map((l) => JSON.parse(l))[0];
  // The second run read exactly the uncommitted tail: every record after the committed offset, none before.
  assert.equal(stopped.engine.events, lines.length - committedAtCrash, second.stderr().slice(-2000));
});

/** Whether each partition holds event time back now, by the daemon's status. */
function holding(d: Daemon): boolean[] {
  return Object.values((d.status().engine as { partitions: Record<string, { holding: boolean }> }).partitions).map((p) => p.holding);
}

test('broker stopped and started mid-stream: the consumer reconnects; a partition holds event time while the broker cannot say it is caught up; transitions equal vigil replay', async () => {
  const pidFile = serviceEnv('VIGIL_TEST_KAFKA_PID_FILE');
  assert.ok(existsSync(pidFile), `no ${pidFile}: run npm run services:up`);
  const topic = await kafka.topic('vigil-restart');
  const half = Math.floor(lines.length / 2);
  await kafka.produce(topic, lines.slice(0, half));
  const env = daemonEnv(topic, `g-${topic}`, 'restart');
  const daemon = new Daemon(loadConfig(env), silentLogger());
  await daemon.start();
  try {
    await waitUntil('the first half evaluated', () => engineEvents(daemon) === half);
    await waitUntil('the partition caught up', () => holding(daemon).length === 1 && !holding(daemon)[0]);
    await kafka.reset();
    await stopBroker();
    try {
      // Whether it has records now is unknown (its producers may be buffering them): not caught up.
      await waitUntil('the partition to hold event time while the broker is down', () => holding(daemon)[0], 15_000, 100);
    } finally {
      // The broker is shared: started again whatever happened here.
      await startBroker();
    }
    await kafka.produce(topic, lines.slice(half));
    await waitUntil('the second half evaluated', () => engineEvents(daemon) === lines.length, 180_000);
    await waitUntil('offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === lines.length, 120_000);
  } finally {
    await daemon.stop();
  }
  assert.equal(readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8'), expected);
});
