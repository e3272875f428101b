// Integration: the daemon consumes control messages from a real RabbitMQ and writes dumps to a real
// S3 API (s3rver); both are started by `npm run services:up`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { S3Client, CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import type { Source, SourceSink } from '../src/ingest/source.ts';
import type { CellFigures } from '../src/kernel/cell-figures.ts';
import type { Incident } from '../src/incidents/incident.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { ParamOverrides } from '../src/control/param-overrides.ts';
import { buildTraffic } from './support/traffic.ts';
import { serviceEnv, waitUntil, testS3Client } from './support/services-env.ts';

const run = promisify(execFile);
const START = Date.UTC(2026, 10, 27, 3, 0, 0);
const LINES = buildTraffic({ startMs: START, minutes: 90, viewsPerSecond: 20, properties: ['a', 'b', 'c'], outages: [{ property: 'a', fromMin: 70, toMin: 90, ratio: 0.3 }] });
const SUFFIX = `${process.pid}-${Date.now()}`;
const EXCHANGE = `vigil.test.${SUFFIX}`;
const QUEUE = `vigil.test.${SUFFIX}`;
const DLX = `vigil.test.dlx.${SUFFIX}`;
const BUCKET = `vigil-test-${SUFFIX}`;

/** A live source the test feeds by hand. */
class PushSource implements Source {
  readonly name = 'push';
  sink!: SourceSink;
  private writes = 0;
  async start(sink: SourceSink): Promise<void> { this.sink = sink; }
  async stop(): Promise<void> {}
  finished(): Promise<void> { return new Promise(() => {}); }
  position(): Record<string, unknown> { return {}; }
  /** Writes the lines, each write with a position, and waits until the last is committable: evaluated and stored (no checkpoints here). */
  async push(lines: string[]): Promise<void> {
    for (let i = 0; i < lines.length; i += 2000) {
      await this.sink.write(Buffer.from(lines.slice(i, i + 2000).join('\n') + '\n'), undefined, { stream: 'push', next: String(++this.writes) });
    }
    const last = String(this.writes);
    await waitUntil('the lines evaluated', () => this.sink.committable?.().get('push') === last, 30_000, 5);
  }
}

let amqpUrl: string;
let s3: S3Client;
let daemon: Daemon;
let source: PushSource;
let dataDir: string;
let client: ChannelModel;
let ch: Channel;
let replyQueue: string;
const replies = new Map<string, (r: Record<string, unknown>) => void>();

async function openClient(): Promise<void> {
  client = await amqplib.connect(amqpUrl);
  client.on('error', () => {});
  ch = await client.createChannel();
  ch.on('error', () => {});
  replyQueue = (await ch.assertQueue('', { exclusive: true })).queue;
  await ch.consume(replyQueue, (m) => {
    if (!m) return;
    replies.get(m.properties.correlationId)?.(JSON.parse(m.content.toString()));
  }, { noAck: true });
}

/** Publishes a raw body with reply_to and waits for the reply. */
async function call(body: string | Buffer): Promise<Record<string, unknown>> {
  const corr = randomUUID();
  const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no reply to ${String(body).slice(0, 80)}`)), 60_000);
    replies.set(corr, (r) => { clearTimeout(t); resolve(r); });
  });
  ch.publish(EXCHANGE, 'cmd', Buffer.isBuffer(body) ? body : Buffer.from(body), { replyTo: replyQueue, correlationId: corr, persistent: true });
  return reply;
}
const command = (id: string, cmd: string, args?: Record<string, unknown>) => call(JSON.stringify({ id, command: cmd, args }));

async function getText(key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return r.Body!.transformToString();
}

/** Reads a dump the way a reader should: the manifest, then its parts. */
async function readDump<T>(manifestKey: string): Promise<{ manifest: Record<string, unknown>; records: T[] }> {
  const manifest = JSON.parse(await getText(manifestKey));
  const records: T[] = [];
  for (const p of manifest.parts as Array<{ key: string; records: number }>) {
    const lines = (await getText(p.key)).split('\n').filter(Boolean);
    assert.equal(lines.length, p.records, p.key);
    for (const l of lines) records.push(JSON.parse(l));
  }
  assert.equal(records.length, manifest.records);
  return { manifest, records };
}

function rabbitmqctl(...args: string[]) {
  return run('rabbitmqctl', ['-n', serviceEnv('VIGIL_TEST_RABBITMQ_NODENAME'), ...args], {
    env: { ...process.env, HOME: serviceEnv('VIGIL_TEST_RABBITMQ_HOME'), ERL_EPMD_PORT: '4370', PATH: `/usr/lib/rabbitmq/bin:${process.env.PATH}` },
    timeout: 120_000,
  });
}

before(async () => {
  amqpUrl = serviceEnv('VIGIL_TEST_AMQP_URL');
  const endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT');
  serviceEnv('VIGIL_TEST_RABBITMQ_NODENAME');
  s3 = testS3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  dataDir = mkdtempSync(join(tmpdir(), 'vigil-control-'));
  const config = loadConfig({
    // Without checkpoints the daemon's committable positions are those evaluated and stored (PushSource waits for them).
    VIGIL_DATA_DIR: dataDir, VIGIL_WORKERS: '2', VIGIL_KEY_GROUPS: '16', VIGIL_HTTP: 'false', VIGIL_LOG_LEVEL: 'silent', VIGIL_SOURCE: 'stdin', VIGIL_CHECKPOINTS: 'false',
    VIGIL_AMQP_URL: amqpUrl, VIGIL_AMQP_EXCHANGE: EXCHANGE, VIGIL_AMQP_QUEUE: QUEUE, VIGIL_AMQP_ROUTING_KEY: 'cmd', VIGIL_AMQP_DEAD_LETTER_EXCHANGE: DLX,
    VIGIL_AMQP_MAX_MESSAGE_BYTES: '4096', VIGIL_AMQP_RECONNECT_MIN_MS: '200', VIGIL_AMQP_RECONNECT_MAX_MS: '2000',
    VIGIL_S3_BUCKET: BUCKET, VIGIL_S3_PREFIX: 'dumps', VIGIL_S3_ENDPOINT: endpoint, VIGIL_S3_ACCESS_KEY_ID: 'S3RVER', VIGIL_S3_SECRET_ACCESS_KEY: 'S3RVER',
    VIGIL_S3_PART_RECORDS: '7',
  });
  source = new PushSource();
  daemon = new Daemon(config, silentLogger(), { source });
  await daemon.start();
  await source.push(LINES);
  // One later view of another property moves the watermark past every view above: each key's last
  // evaluation then saw all of its data, so the dump and the incident report the same tick. (Within
  // the clock's future tolerance: one view much further ahead would be judged a wrong device clock.)
  const lastTs = Math.max(...LINES.map((l) => JSON.parse(l).ts as number));
  await source.push([JSON.stringify({ property_id: 'z', ts: lastTs + 20_000 })]);
  await daemon.control!.amqp!.whenConnected();
  await openClient();
});

after(async () => {
  await client?.close().catch(() => {});
  await daemon?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const keyOf = (f: { scope: string; property_id: string; video_title: string | null; error_type: string }) => `${f.scope}|${f.property_id}|${f.video_title ?? ''}|${f.error_type}`;

test('dump-error-rates over RabbitMQ writes parts and a manifest to S3 whose figures match the engine', async () => {
  const reply = await command('dump-1', 'dump-error-rates');
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const result = reply.result as { manifest_key: string; part_keys: string[]; records: number; bucket: string };
  assert.equal(result.bucket, BUCKET);
  assert.match(result.manifest_key, /^dumps\/error-rates\/.*-dump-1\/manifest\.json$/);
  assert.ok(result.part_keys.length > 1, 'a dump of many cells is written in parts');
  const { manifest, records } = await readDump<CellFigures>(result.manifest_key);
  assert.equal(manifest.schema, 'vigil.dump.error-rates');
  assert.equal(manifest.schema_version, 1);
  assert.equal(manifest.complete, true);

  // The open incident's figures are the ones the engine reported for it at the same tick.
  const incident = daemon.manager.openIncidents().find((i) => i.scope === 'property' && i.propertyId === 'a')!;
  assert.ok(incident, 'the outage of a is open');
  const a = records.find((r) => keyOf(r) === 'property|a||networkError')!;
  assert.equal(a.open, true);
  assert.equal(a.at_ms, incident.updatedAtMs);
  assert.equal(a.recent_error_ratio, incident.currentErrorRatio);
  assert.equal(a.recent_views, incident.currentWindowViews);
  assert.equal(a.open_threshold_ratio, incident.thresholdRatio);
  assert.equal(a.open_baseline_ratio, incident.baselineRatio);

  // Quiet properties: the window equals counts taken straight from the data.
  for (const p of ['b', 'c']) {
    const slots = new Map<number, { v: number; x: number }>();
    for (const l of LINES) {
      const e = JSON.parse(l);
      if (e.property_id !== p) continue;
      const s = Math.floor(e.ts / 60000);
      const c = slots.get(s) ?? { v: 0, x: 0 };
      c.v++;
      if (e.error_type) c.x++;
      slots.set(s, c);
    }
    let s = Math.max(...slots.keys());
    let v = 0;
    let x = 0;
    while (v < DEFAULT_DETECTION_PARAMS.property.minViews) { v += slots.get(s)?.v ?? 0; x += slots.get(s)?.x ?? 0; s--; }
    const r = records.find((f) => keyOf(f) === `property|${p}||networkError`)!;
    assert.equal(r.window_views, v);
    assert.equal(r.window_failures, x);
    assert.equal(r.open, false);
  }
  // Property and title figures for every property with errors.
  assert.equal(records.filter((r) => r.scope === 'title' && r.property_id === 'b').length, 10);

  // One property only.
  const only = await command('dump-2', 'dump-error-rates', { property_id: 'b' });
  const bRecords = (await readDump<CellFigures>((only.result as { manifest_key: string }).manifest_key)).records;
  assert.ok(bRecords.length === 11 && bRecords.every((r) => r.property_id === 'b'));
});

test('dump-incidents writes the active incidents; a command id sent twice runs once', async () => {
  const first = await command('incidents-1', 'dump-incidents');
  const again = await command('incidents-1', 'dump-incidents');
  assert.deepEqual(again, first);
  const { records } = await readDump<Incident>((first.result as { manifest_key: string }).manifest_key);
  assert.deepEqual(records, JSON.parse(JSON.stringify(daemon.manager.openIncidents())));
  assert.ok(records.length >= 1);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dumps/incidents/' }));
  assert.equal(listed.Contents!.filter((o) => o.Key!.includes('-incidents-1/') && o.Key!.endsWith('manifest.json')).length, 1);
  assert.ok(daemon.commands.stats.duplicates >= 1);
});

test('set-thresholds changes the global parameters, validated, effective at once and kept on disk', async () => {
  const ok = await command('thr-1', 'set-thresholds', { property: { minEffectAbs: 0.05 } });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  assert.equal(daemon.config.params.property.minEffectAbs, 0.05);
  const stored = JSON.parse(readFileSync(join(dataDir, 'detection-overrides.json'), 'utf8'));
  assert.deepEqual(stored.overrides.property, { minEffectAbs: 0.05 });
  const dump = await command('dump-3', 'dump-error-rates', { property_id: 'b' });
  const b = (await readDump<CellFigures>((dump.result as { manifest_key: string }).manifest_key)).records.find((r) => r.scope === 'property')!;
  assert.equal(b.threshold_ratio, Math.max(b.baseline_ratio + 0.05, b.baseline_ratio * 1.5));
  assert.ok(existsSync(join(dataDir, 'detection-overrides.json')));
});

test('set-thresholds for one property: its figures use its own parameters, the others the global ones; kept on disk; reset goes back', async () => {
  const propertyFigures = async (id: string) => {
    const dump = await command(`dump-${id}-${randomUUID()}`, 'dump-error-rates');
    assert.equal(dump.ok, true, JSON.stringify(dump));
    const all = (await readDump<CellFigures>((dump.result as { manifest_key: string }).manifest_key)).records;
    const byProperty = (p: string) => all.find((r) => r.scope === 'property' && r.property_id === p)!;
    return { b: byProperty('b'), c: byProperty('c') };
  };
  const global = daemon.config.params.property.minEffectAbs;
  const thr = (f: CellFigures, abs: number) => Math.min(1, Math.max(f.baseline_ratio + abs, f.baseline_ratio * daemon.config.params.property.minEffectRatio));
  const ok = await command('thr-p1', 'set-thresholds', { property_id: 'b', property: { minEffectAbs: 0.2 }, title: { minViews: 12 } });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  const res = ok.result as { property_id: string; property: { minEffectAbs: number }; title: { minViews: number } };
  assert.equal(res.property_id, 'b');
  assert.equal(res.property.minEffectAbs, 0.2);
  assert.equal(res.title.minViews, 12);
  assert.equal(daemon.config.params.property.minEffectAbs, global, 'the global parameters did not change');
  let f = await propertyFigures('b');
  assert.equal(f.b.threshold_ratio, thr(f.b, 0.2), 'b is held to its own minimum effect');
  assert.equal(f.c.threshold_ratio, thr(f.c, global), 'c keeps the global one');
  const stored = JSON.parse(readFileSync(join(dataDir, 'detection-overrides.json'), 'utf8'));
  assert.deepEqual(stored.overrides.perProperty, { b: { property: { minEffectAbs: 0.2 }, title: { minViews: 12 } } });
  // A restart applies the same overrides (what the daemon loads at start).
  const reloaded = new ParamOverrides(dataDir).load(DEFAULT_DETECTION_PARAMS);
  assert.equal(reloaded.problem, null);
  assert.equal(reloaded.params.perProperty?.b.property?.minEffectAbs, 0.2);

  for (const [args, pattern] of [
    [{ property_id: 'b', property: { slotMs: 1 } }, /property\.slotMs cannot change at run time/],
    [{ property_id: 7, property: { minViews: 1 } }, /property_id must be a non-empty string/],
    [{ property_id: 'b', property: { minEffectRatio: 0.5 } }, /perProperty\.b\.property\.minEffectRatio must be >= 1/],
  ] as const) {
    const r = await command(`thr-bad-${randomUUID()}`, 'set-thresholds', args);
    assert.equal(r.ok, false);
    assert.equal((r.error as { code: string }).code, 'INVALID_ARGS');
    assert.match((r.error as { message: string }).message, pattern);
  }
  f = await propertyFigures('b');
  assert.equal(f.b.threshold_ratio, thr(f.b, 0.2), 'a rejected change changed nothing');
  const dead: GetMessage[] = [];
  await waitUntil('the rejected changes in the dead-letter queue', async () => {
    for (let m = await ch.get(`${QUEUE}.dead`, { noAck: true }); m; m = await ch.get(`${QUEUE}.dead`, { noAck: true })) dead.push(m);
    return dead.length >= 3;
  }, 30_000);
  assert.deepEqual(dead.map((m) => m.properties.headers!['x-vigil-reject-reason']), ['invalid_args', 'invalid_args', 'invalid_args']);

  const reset = await command('thr-p2', 'set-thresholds', { property_id: 'b', reset: true });
  assert.equal(reset.ok, true, JSON.stringify(reset));
  f = await propertyFigures('b');
  assert.equal(f.b.threshold_ratio, thr(f.b, global), 'b is back on the global parameters');
  assert.equal(JSON.parse(readFileSync(join(dataDir, 'detection-overrides.json'), 'utf8')).overrides.perProperty, undefined);
});

test('silence / unsilence by property, title or error type match with an expiry, and by incident id', async () => {
  const open = daemon.manager.openIncidents().filter((i) => i.propertyId === 'a' && i.errorType === 'networkError');
  assert.ok(open.length >= 1, 'the outage of a is open');
  const on = await command('sil-1', 'silence', { property_id: 'a', error_type: 'networkError', duration_ms: 600_000, comment: 'known CDN issue' });
  assert.equal(on.ok, true, JSON.stringify(on));
  const silence = on.result as { silence_id: number; silenced_now: number[]; expires_at: string };
  assert.deepEqual([...silence.silenced_now].sort(), open.map((i) => i.id).sort());
  assert.ok(Date.parse(silence.expires_at) > Date.now());
  for (const i of open) assert.equal(daemon.manager.get(i.id)!.notifications, 'silenced');
  const off = await command('sil-2', 'unsilence', { silence_id: silence.silence_id });
  assert.equal(off.ok, true, JSON.stringify(off));
  for (const i of open) assert.equal(daemon.manager.get(i.id)!.notifications, 'on');
  const one = await command('sil-3', 'silence', { incident_id: open[0].id });
  assert.equal(one.ok, true, JSON.stringify(one));
  assert.equal(daemon.manager.get(open[0].id)!.notifications, 'silenced');
  assert.equal((await command('sil-4', 'unsilence', { incident_id: open[0].id })).ok, true);
  assert.equal(daemon.manager.get(open[0].id)!.notifications, 'on');
});

test('bad messages are answered with an error and dead-lettered with the reason in a header', async () => {
  const invalidArgsBefore = daemon.control!.amqp!.stats.rejected.invalid_args ?? 0;
  const cases: Array<[string | Buffer, string, string]> = [
    ['{not json', 'NOT_JSON', 'not_json'],
    [JSON.stringify({ id: 'bad-1', command: 'reboot-everything' }), 'UNKNOWN_COMMAND', 'unknown_command'],
    [JSON.stringify({ id: 'bad-2', command: 'dump-error-rates', args: { page_records: -1 } }), 'INVALID_ARGS', 'invalid_args'],
    [JSON.stringify({ id: 'bad-3', command: 'set-thresholds', args: { property: { slotMs: 1 } } }), 'INVALID_ARGS', 'invalid_args'],
    [JSON.stringify({ command: 'status' }), 'INVALID_MESSAGE', 'invalid_message'],
    [Buffer.alloc(5000, 0x20), 'TOO_LARGE', 'too_large'],
  ];
  for (const [body, code] of cases) {
    const r = await call(body);
    assert.equal(r.ok, false);
    assert.equal((r.error as { code: string }).code, code, String(body).slice(0, 60));
  }
  const dead: GetMessage[] = [];
  await waitUntil('dead letters', async () => {
    for (let m = await ch.get(`${QUEUE}.dead`, { noAck: true }); m; m = await ch.get(`${QUEUE}.dead`, { noAck: true })) dead.push(m);
    return dead.length >= cases.length;
  }, 30_000);
  assert.deepEqual(dead.map((m) => m.properties.headers!['x-vigil-reject-reason']), cases.map((c) => c[2]));
  assert.equal(dead[1].content.toString(), cases[1][0]);
  assert.ok(daemon.status().control);
  const stats = daemon.control!.amqp!.stats;
  assert.equal(stats.rejected.invalid_args - invalidArgsBefore, 2);
});

test('dead letters are persistent, do not inherit the original\'s expiration, and keep the reason and the original headers', async () => {
  const corr = randomUUID();
  const reply = new Promise<Record<string, unknown>>((resolve) => replies.set(corr, resolve));
  // Transient, expiring after 1.5 s, with a header of the sender's.
  ch.publish(EXCHANGE, 'cmd', Buffer.from('{expiring and not json'), {
    replyTo: replyQueue, correlationId: corr, expiration: '1500', persistent: false, headers: { 'x-sender': 'ops' },
  });
  assert.equal(((await reply).error as { code: string }).code, 'NOT_JSON');
  // Longer than the original expiration: a copy that inherited it would be gone by now.
  await new Promise((r) => setTimeout(r, 3000));
  const found: GetMessage[] = [];
  for (let m = await ch.get(`${QUEUE}.dead`, { noAck: true }); m; m = await ch.get(`${QUEUE}.dead`, { noAck: true })) found.push(m);
  const dead = found.find((m) => m.content.toString() === '{expiring and not json');
  assert.ok(dead, `the dead letter is still there (${found.length} in the queue)`);
  assert.equal(dead.properties.deliveryMode, 2, 'persistent');
  assert.equal(dead.properties.expiration, undefined);
  assert.equal(dead.properties.headers!['x-vigil-reject-reason'], 'not_json');
  assert.equal(dead.properties.headers!['x-vigil-original-expiration'], '1500');
  assert.equal(dead.properties.headers!['x-sender'], 'ops');
});

test('commands published with RabbitMQ\'s own CLI (rabbitmqctl eval) are run', async () => {
  const body = JSON.stringify({ id: 'cli-1', command: 'dump-incidents' }).replace(/"/g, '\\"');
  const erl = `rabbit_basic:publish(rabbit_misc:r(<<"/">>, exchange, <<"${EXCHANGE}">>), <<"cmd">>, [{content_type, <<"application/json">>}, {delivery_mode, 2}], <<"${body}">>).`;
  await rabbitmqctl('eval', erl);
  await waitUntil('the CLI-published dump in S3', async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dumps/incidents/' }));
    return (listed.Contents ?? []).some((o) => o.Key!.includes('-cli-1/') && o.Key!.endsWith('manifest.json'));
  }, 60_000);
});

test('a RabbitMQ restart is survived: detection goes on, the consumer reconnects and resumes', async () => {
  const amqp = daemon.control!.amqp!;
  const connectsBefore = amqp.stats.connects;
  await client.close().catch(() => {});
  await rabbitmqctl('stop_app');
  try {
    await waitUntil('the consumer to notice', () => !amqp.connected(), 30_000);
    // Detection does not wait for the broker.
    // (The engine's count: the kernels count a record when its tick is due, and these 5 s of records wait for theirs.)
    const eventsBefore = daemon.status().engine as { events: number };
    const lastTs = Math.max(...LINES.map((l) => JSON.parse(l).ts as number));
    await source.push(Array.from({ length: 500 }, (_, i) => JSON.stringify({ property_id: 'b', ts: lastTs + 61_000 + i * 10 })));
    assert.equal((daemon.status().engine as { events: number }).events, eventsBefore.events + 500);
  } finally {
    await rabbitmqctl('start_app');
  }
  await waitUntil('the consumer to reconnect', () => amqp.connected() && amqp.stats.connects > connectsBefore, 60_000);
  assert.ok(amqp.stats.reconnects >= 1);
  await openClient();
  const status = await command('status-after-restart', 'status');
  assert.equal(status.ok, true);
  assert.equal(((status.result as { control: { amqp: { connected: boolean } } }).control.amqp.connected), true);
});
