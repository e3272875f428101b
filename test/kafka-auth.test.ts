// The Kafka source through the test broker's SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256) and SSL listeners
// (scripts/services/kafka.sh: the same broker as the plaintext tests), configured only by VIGIL_KAFKA_*.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { silentLogger } from '../src/log/logger.ts';
import { buildTraffic } from './support/traffic.ts';
import { KafkaHarness } from './support/kafka-harness.ts';
import { serviceEnv, waitUntil } from './support/services-env.ts';
import { startDaemon, killLeftoverDaemons } from './support/daemon-process.ts';

let kafka: KafkaHarness;
let dir: string;
let lines: string[];

before(() => {
  kafka = new KafkaHarness();
  dir = mkdtempSync(join(tmpdir(), 'vigil-kafka-auth-'));
  lines = buildTraffic({ startMs: Date.UTC(2026, 10, 27, 6), minutes: 10, viewsPerSecond: 2, properties: ['alpha', 'beta'], outages: [] });
});

after(async () => {
  killLeftoverDaemons();
  await kafka?.close();
});

function env(name: string, topic: string, extra: Record<string, string>): Record<string, string> {
  return {
    VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_TOPIC: topic, VIGIL_KAFKA_GROUP: `g-${topic}`, VIGIL_DATA_DIR: join(dir, name),
    VIGIL_WORKERS: '1', VIGIL_HTTP: 'false', VIGIL_CHECKPOINTS: 'false', VIGIL_KAFKA_COMMIT_INTERVAL_MS: '200', ...extra,
  };
}

/** Runs the daemon in-process on `topic` until every record is evaluated and committed. */
async function consumeAll(name: string, topic: string, extra: Record<string, string>): Promise<void> {
  const e = env(name, topic, extra);
  const daemon = new Daemon(loadConfig(e), silentLogger());
  await daemon.start();
  try {
    await waitUntil('every record evaluated', () => (daemon.status().engine as { events: number }).events === lines.length);
    await waitUntil('offsets committed', async () => (await kafka.committed(e.VIGIL_KAFKA_GROUP, topic)) === lines.length);
  } finally {
    await daemon.stop();
  }
}

/** Runs `vigil run`, which must fail to start: resolves with its exit code and stderr (bounded). */
async function failingRun(e: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const d = startDaemon(e);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => {
      d.child.kill('SIGKILL');
      reject(new Error(`vigil run did not fail within ${timeoutMs} ms:\n${d.stderr().slice(-3000)}`));
    }, timeoutMs);
  });
  try {
    return { code: await Promise.race([d.exit, late]), stderr: d.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

test('SASL SCRAM-SHA-256: records consumed end to end and offsets committed', async () => {
  const topic = await kafka.topic('vigil-scram');
  await kafka.produce(topic, lines);
  await consumeAll('scram', topic, {
    VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_SASL_BROKERS'), VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-256',
    VIGIL_KAFKA_SASL_USERNAME: serviceEnv('VIGIL_TEST_KAFKA_SASL_SCRAM_USERNAME'), VIGIL_KAFKA_SASL_PASSWORD: serviceEnv('VIGIL_TEST_KAFKA_SASL_SCRAM_PASSWORD'),
  });
});

test('SASL PLAIN: records consumed end to end and offsets committed', async () => {
  const topic = await kafka.topic('vigil-plain');
  await kafka.produce(topic, lines);
  await consumeAll('plain', topic, {
    VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_SASL_BROKERS'), VIGIL_KAFKA_SASL_MECHANISM: 'plain',
    VIGIL_KAFKA_SASL_USERNAME: serviceEnv('VIGIL_TEST_KAFKA_SASL_PLAIN_USERNAME'), VIGIL_KAFKA_SASL_PASSWORD: serviceEnv('VIGIL_TEST_KAFKA_SASL_PLAIN_PASSWORD'),
  });
});

test('a wrong SASL password: vigil run fails at once, naming the mechanism, the user and the variables to check', async () => {
  const topic = await kafka.topic('vigil-badpass');
  for (const [mechanism, user] of [['scram-sha-256', serviceEnv('VIGIL_TEST_KAFKA_SASL_SCRAM_USERNAME')], ['plain', serviceEnv('VIGIL_TEST_KAFKA_SASL_PLAIN_USERNAME')]]) {
    const { code, stderr } = await failingRun(env(`badpass-${mechanism}`, topic, {
      VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_SASL_BROKERS'), VIGIL_KAFKA_SASL_MECHANISM: mechanism,
      VIGIL_KAFKA_SASL_USERNAME: user, VIGIL_KAFKA_SASL_PASSWORD: 'not-the-password',
    }));
    assert.notEqual(code, 0, stderr);
    assert.ok(stderr.includes(`SASL ${mechanism} authentication as "${user}" failed (check VIGIL_KAFKA_SASL_USERNAME and VIGIL_KAFKA_SASL_PASSWORD)`), stderr.slice(-3000));
    assert.ok(!stderr.includes('not-the-password'), 'the password must not be logged');
  }
});

test('TLS with the CA file: records consumed end to end and offsets committed', async () => {
  const topic = await kafka.topic('vigil-tls');
  await kafka.produce(topic, lines);
  await consumeAll('tls', topic, {
    VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_TLS_BROKERS'), VIGIL_KAFKA_TLS: 'true', VIGIL_KAFKA_TLS_CA_FILE: serviceEnv('VIGIL_TEST_KAFKA_TLS_CA_FILE'),
  });
});

test('TLS to a broker whose certificate is not trusted: vigil run fails at once and says which variable to set', async () => {
  const topic = await kafka.topic('vigil-tls-untrusted');
  const { code, stderr } = await failingRun(env('tls-untrusted', topic, {
    VIGIL_KAFKA_BROKERS: serviceEnv('VIGIL_TEST_KAFKA_TLS_BROKERS'), VIGIL_KAFKA_TLS: 'true',
  }));
  assert.notEqual(code, 0, stderr);
  assert.match(stderr, /the broker's certificate is not trusted \(self-signed certificate\); set VIGIL_KAFKA_TLS_CA_FILE/, stderr.slice(-3000));
});
