// Event time across Kafka partitions against the real broker: a backlog read from several
// partitions must give the incidents `vigil replay` gives for the same records (openings and
// closings within one evaluation tick), whether a partition is empty or every one is busy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { KafkaHarness } from './support/kafka-harness.ts';
import { waitUntil } from './support/services-env.ts';
import { compareIncidents, describeComparison, incidentSpans } from './support/incident-compare.ts';
import { generateAndReplay } from './support/demo-run.ts';

let dir: string;
let kafka: KafkaHarness;
let lines: string[];
let valid: number;
let maxTs: number;
let replayed: string;
let replayLate: number;

before(() => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-evt-'));
  // The demo profile: five properties of very different sizes, labelled incidents, a few malformed lines.
  ({ lines, replayed, valid, late: replayLate, maxTs } = generateAndReplay(dir, 2, 3));
});

after(async () => {
  await kafka?.close();
});

/** Runs vigil run on the topic until it has evaluated everything, and returns its transitions and kernel counters. */
async function consume(topic: string, name: string, records = lines.length, events = valid): Promise<{ audit: string; late: number }> {
  const env = {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `g-${topic}`,
    VIGIL_DATA_DIR: join(dir, `${name}-data`), VIGIL_TRANSITIONS_FILE: join(dir, `${name}-audit.ndjson`),
    VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200', VIGIL_CHECKPOINT_INTERVAL_MS: '1000',
    // Partitions never go idle here: an empty one must be known to have nothing to deliver.
    VIGIL_PARTITION_IDLE_MS: '3600000',
  };
  const daemon = new Daemon(loadConfig(env), silentLogger());
  await daemon.start();
  let late = 0;
  try {
    const status = () => daemon.status() as { engine: { events: number }; kernel: { late: number } };
    await waitUntil('every record counted', () => status().engine.events === events, 180_000);
    await waitUntil('offsets committed', async () => (await kafka.committed(env.VIGIL_KAFKA_GROUP, topic)) === records, 60_000);
    // Every partition caught up: event time reaches the newest record without more input.
    await waitUntil('event time at the end of the data', () => (daemon.engineEventTime() ?? 0) >= maxTs, 60_000);
    late = status().kernel.late;
  } finally {
    await daemon.stop();
  }
  return { audit: readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8'), late };
}

function assertSameIncidents(audit: string, what: string): void {
  // At the very same ticks (no tolerance): a tick sees exactly the records before it, however the
  // partitions interleave. The replay evaluates past the end at finish; the daemon stops at the newest record.
  const c = compareIncidents(incidentSpans(replayed), incidentSpans(audit), 0, maxTs - 5 * 60_000);
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `${what}: ${describeComparison(c)}`);
  assert.ok(c.matched >= 10, `${what}: ${describeComparison(c)}`);
}

test('a topic keyed by property with an empty partition, read as a backlog: the replay\'s incidents and late records', async () => {
  const topic = await kafka.topic('vigil-evt-keyed', 4);
  await kafka.produce(topic, lines);
  const counts = await kafka.partitionCounts(topic);
  assert.ok(counts.some((n) => n === 0), `one partition must be empty (records per partition: ${counts.join(', ')})`);
  const { audit, late } = await consume(topic, 'keyed');
  assertSameIncidents(audit, 'keyed by property');
  assert.equal(late, replayLate, `late records: stream ${late}, replay ${replayLate}`);
});

test('one partition per property, all busy, read as a backlog: the replay\'s incidents', async () => {
  const props = [...new Set(lines.map((l) => { try { return String(JSON.parse(l).property_id); } catch { return null; } }).filter((p) => p !== null))].sort();
  const topic = await kafka.topic('vigil-evt-perprop', props.length);
  await kafka.produceTo(topic, lines.map((value) => {
    let p = 0;
    try { p = props.indexOf(String(JSON.parse(value).property_id)); } catch { p = 0; }
    return { partition: p, value };
  }));
  const counts = await kafka.partitionCounts(topic);
  assert.ok(counts.every((n) => n > 0), `every partition busy: ${counts.join(', ')}`);
  const { audit, late } = await consume(topic, 'perprop');
  assertSameIncidents(audit, 'one partition per property');
  assert.equal(late, replayLate, `late records: stream ${late}, replay ${replayLate}`);
});

test('one partition per property, a device a day ahead on the busiest: the replay of the same records\' incidents and late records', async () => {
  // A partition that holds one property has no other property to judge a jump by: a view a day ahead
  // of its records (not of the wall clock: this is a backlog of the past) must not move its time.
  const parsed = lines.map((l) => { try { return JSON.parse(l) as { property_id: unknown; ts: number }; } catch { return null; } });
  const props = [...new Set(parsed.filter((r) => r !== null).map((r) => String(r!.property_id)))].sort();
  const sizes = props.map((p) => parsed.filter((r) => r !== null && String(r.property_id) === p).length);
  const busiest = props[sizes.indexOf(Math.max(...sizes))];
  const own = parsed.map((r, i) => (r !== null && String(r.property_id) === busiest ? i : -1)).filter((i) => i >= 0);
  const at = own[own.length >> 1];
  const ahead = JSON.stringify({ ...parsed[at]!, view_id: 'v-a-day-ahead', error_type: null, ts: parsed[at]!.ts + 86_400_000 });
  const dirty = [...lines.slice(0, at + 1), ahead, ...lines.slice(at + 1)];
  const file = join(dir, 'day-ahead.ndjson');
  writeFileSync(file, dirty.join('\n') + '\n');
  const rep = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'vigil.js'), 'replay', file], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(rep.status, 0, rep.stderr);
  const summary = JSON.parse(rep.stderr.trim().split('\n').pop()!) as { late_events: number; future_events: number };
  assert.equal(summary.future_events, 1, 'the replay takes the view for one from the future');

  const topic = await kafka.topic('vigil-evt-ahead', props.length);
  await kafka.produceTo(topic, dirty.map((value) => {
    let p = 0;
    try { p = props.indexOf(String(JSON.parse(value).property_id)); } catch { p = 0; }
    return { partition: p, value };
  }));
  const { audit, late } = await consume(topic, 'ahead', dirty.length, valid + 1);
  const c = compareIncidents(incidentSpans(rep.stdout), incidentSpans(audit), 0, maxTs - 5 * 60_000);
  assert.ok(c.missing.length === 0 && c.extra.length === 0 && c.closeDiffers.length === 0, `a day ahead on ${busiest}: ${describeComparison(c)}`);
  assert.equal(late, summary.late_events, `late records: stream ${late}, replay ${summary.late_events}`);
});
