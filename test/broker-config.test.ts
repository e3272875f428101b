import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../src/config/config.ts';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('kafka configuration: defaults, and every problem reported at once', () => {
  const c = loadConfig({ VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: 'a:9092, b:9093', VIGIL_KAFKA_TOPIC: 'views' });
  assert.deepEqual(c.kafka, {
    brokers: ['a:9092', 'b:9093'], topic: 'views', groupId: 'vigil', clientId: 'vigil', startFrom: 'earliest', tls: false,
    tlsCaFile: null, sasl: null, commitIntervalMs: 1000, maxFetchBytes: 10 << 20, sessionTimeoutMs: 20_000,
  });
  assert.equal(c.kinesis, null);
  const p = problems({ VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: 'nohost', VIGIL_KAFKA_START: 'middle', VIGIL_KAFKA_SASL_MECHANISM: 'scram-sha-256',
    VIGIL_KAFKA_SESSION_TIMEOUT_MS: '500' });
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_SESSION_TIMEOUT_MS')), p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_BROKERS: expected host:port')), p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_TOPIC: required')));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_START: expected one of earliest, latest')));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_SASL_USERNAME: required')));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KAFKA_SASL_PASSWORD: required')));
});

test('kinesis configuration: region from an ARN, start positions, node i of n', () => {
  const c = loadConfig({ VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: 'arn:aws:kinesis:eu-west-1:123456789012:stream/views',
    VIGIL_KINESIS_START: 'at_timestamp', VIGIL_KINESIS_START_TIMESTAMP: '2026-11-27T00:00:00Z', VIGIL_KINESIS_NODE_INDEX: '1', VIGIL_KINESIS_NODE_COUNT: '3' });
  assert.equal(c.kinesis!.region, 'eu-west-1');
  assert.equal(c.kinesis!.startPosition, 'AT_TIMESTAMP');
  assert.equal(c.kinesis!.startTimestampMs, Date.UTC(2026, 10, 27));
  assert.equal(c.kinesis!.nodeIndex, 1);
  const p = problems({ VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_START: 'AT_TIMESTAMP', VIGIL_KINESIS_NODE_INDEX: '2', VIGIL_KINESIS_NODE_COUNT: '2',
    VIGIL_KINESIS_ENDPOINT: 'localhost:4567' });
  assert.ok(p.some((x) => x.startsWith('VIGIL_KINESIS_STREAM: required')), p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KINESIS_START_TIMESTAMP: required')));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KINESIS_NODE_INDEX (2) must be below')));
  assert.ok(p.some((x) => x.startsWith('VIGIL_KINESIS_ENDPOINT: expected an http(s) URL')));
});
