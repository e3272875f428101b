// The stream against the replay, at full size: `vigil generate --profile demo --hours 24 --seed 3`
// (2.8M records, 5 properties) produced to the real test broker twice, keyed by property into 4
// partitions (some partitions empty) and one partition per property, each read by `vigil run` as a
// backlog; the incidents are compared with `vigil replay` of the same records (openings and closings
// within one 10 s tick, and at exactly the same ticks). Not a timed test: run it by hand with the services up
// (`npm run build && bash scripts/services.sh up kafka && eval "$(bash scripts/services.sh env)" &&
// node --import tsx bench/stream.ts [--hours 24] [--seed 3]`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { KafkaHarness } from '../test/support/kafka-harness.ts';
import { waitUntil } from '../test/support/services-env.ts';
import { compareIncidents, describeComparison, incidentSpans } from '../test/support/incident-compare.ts';

const VIGIL = join(import.meta.dirname, '..', 'bin', 'vigil.js');
const { values } = parseArgs({ options: { hours: { type: 'string', default: '24' }, seed: { type: 'string', default: '3' } } });
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-stream-'));
const file = join(dir, 'demo.ndjson');

function run(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8', maxBuffer: 1 << 30, env: { PATH: process.env.PATH } });
  if (r.status !== 0) throw new Error(`vigil ${args[0]} failed: ${r.stderr}`);
  return r;
}

run(['generate', '--profile', 'demo', '--hours', values.hours!, '--seed', values.seed!, '--out', file, '--labels', join(dir, 'labels.ndjson')]);
const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
const rep = run(['replay', file, '--json']);
const summary = JSON.parse(rep.stderr.trim().split('\n').pop()!) as { events: number; late_events: number; incidents: number };
let maxTs = 0;
const props: string[] = [];
const propOf = lines.map((l) => {
  try {
    const o = JSON.parse(l) as { property_id: unknown; ts: unknown };
    maxTs = Math.max(maxTs, Number(o.ts) || 0);
    const p = String(o.property_id);
    if (!props.includes(p)) props.push(p);
    return p;
  } catch {
    return null;
  }
});
console.log(JSON.stringify({ records: lines.length, valid: summary.events, replayIncidents: summary.incidents, replayLate: summary.late_events, properties: props.length }));

const kafka = new KafkaHarness();

async function measure(name: string, topic: string): Promise<void> {
  const env = {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: kafka.brokers, VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `g-${topic}`,
    VIGIL_DATA_DIR: join(dir, `${name}-data`), VIGIL_TRANSITIONS_FILE: join(dir, `${name}-audit.ndjson`),
    VIGIL_WORKERS: '2', VIGIL_HTTP: 'false', VIGIL_LOG_LEVEL: 'warn',
  };
  const daemon = new Daemon(loadConfig(env), silentLogger());
  const started = Date.now();
  await daemon.start();
  const status = () => daemon.status() as { engine: { events: number; clock: { cappedChunks: number } }; kernel: { late: number; held: number; heldOverflow: number } };
  let s;
  try {
    await waitUntil('every record counted', () => status().engine.events === summary.events, 3_600_000, 500);
    await waitUntil('event time at the end of the data', () => (daemon.engineEventTime() ?? 0) >= maxTs, 600_000, 500);
    s = status();
  } finally {
    await daemon.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  const audit = readFileSync(env.VIGIL_TRANSITIONS_FILE, 'utf8');
  const c = compareIncidents(incidentSpans(rep.stdout), incidentSpans(audit), 10_000, maxTs - 5 * 60_000);
  // The same with no tolerance: openings and closings at the very same tick.
  const exact = compareIncidents(incidentSpans(rep.stdout), incidentSpans(audit), 0, maxTs - 5 * 60_000);
  console.log(JSON.stringify({
    topic: name, partitions: await kafka.partitionCounts(topic), seconds, eventsPerSecond: Math.round(summary.events / seconds),
    late: s.kernel.late, held: s.kernel.held, heldOverflow: s.kernel.heldOverflow, cappedChunks: s.engine.clock.cappedChunks,
    comparison: describeComparison(c), exact: describeComparison(exact),
  }));
}

try {
  const keyed = await kafka.topic('bench-stream-keyed', 4);
  await kafka.produce(keyed, lines, 5000);
  await measure('keyed-4', keyed);
  const perProp = await kafka.topic('bench-stream-perprop', props.length);
  await kafka.produceTo(perProp, lines.map((value, i) => ({ partition: Math.max(0, props.indexOf(propOf[i] ?? props[0])), value })), 5000);
  await measure('one-per-property', perProp);
} finally {
  await kafka.close();
}
