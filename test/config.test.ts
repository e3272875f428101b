import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../src/config/config.ts';
import { memoryLimitBytes } from '../src/config/memory-caps.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';

test('defaults: demo source, validated detection defaults', () => {
  const c = loadConfig({});
  assert.equal(c.source, 'demo');
  assert.equal(c.keyGroups, 128);
  assert.deepEqual(c.params, DEFAULT_DETECTION_PARAMS);
  assert.equal(c.idleAdvance, true);
  assert.equal(c.fieldNames.errorType, 'error_type');
});

test('every problem is reported at once, with the variable name', () => {
  let err: unknown;
  try {
    loadConfig({
      VIGIL_SOURCE: 'kafkaa', VIGIL_WORKERS: 'two', VIGIL_CHUNK_BYTES: '12', VIGIL_LOG_LEVEL: 'loud',
      VIGIL_DETECTION: '{"property":{"minEffectRatio":0.5}}', VIGIL_CHECKPOINTS: 'maybe',
    });
  } catch (e) { err = e; }
  assert.ok(err instanceof ConfigError);
  const msg = (err as Error).message;
  for (const needle of ['VIGIL_SOURCE', 'VIGIL_WORKERS', 'VIGIL_CHUNK_BYTES', 'VIGIL_LOG_LEVEL', 'property.minEffectRatio', 'VIGIL_CHECKPOINTS']) {
    assert.ok(msg.includes(needle), `${needle} missing from: ${msg}`);
  }
  assert.equal((err as ConfigError).problems.length, 6);
});

test('file source needs a file; detection overrides merge per scope; field names map', () => {
  assert.throws(() => loadConfig({ VIGIL_SOURCE: 'file' }), /VIGIL_SOURCE_FILE/);
  const c = loadConfig({ VIGIL_DETECTION: '{"property":{"minViews":500}}', VIGIL_FIELD_ERROR_TYPE: 'player_error_code' });
  assert.equal(c.params.property.minViews, 500);
  assert.equal(c.params.property.minFailures, DEFAULT_DETECTION_PARAMS.property.minFailures);
  assert.equal(c.params.title.minViews, DEFAULT_DETECTION_PARAMS.title.minViews);
  assert.equal(c.fieldNames.errorType, 'player_error_code');
  assert.throws(() => loadConfig({ VIGIL_DETECTION: '{nope' }), /VIGIL_DETECTION: not valid JSON/);
});

test('unknown VIGIL_* variables are warnings with a "did you mean" from the names the readers read', async () => {
  const { knownVariables, unknownVariablesOf } = await import('../src/config/config.ts');
  const c = loadConfig({ VIGIL_SOURCE: 'demo', VIGIL_SOURCE_FIEL: '/tmp/x', VIGIL_WORKRES: '2', VIGIL_NOTIFY_RETRY_BASE: '5', VIGIL_SOMETHING_ELSE_ENTIRELY: '1', OTHER: 'x' });
  assert.deepEqual(c.unknownVariables, [
    { name: 'VIGIL_NOTIFY_RETRY_BASE', suggestion: 'VIGIL_NOTIFY_RETRY_BASE_MS' },
    { name: 'VIGIL_SOMETHING_ELSE_ENTIRELY', suggestion: null },
    { name: 'VIGIL_SOURCE_FIEL', suggestion: 'VIGIL_SOURCE_FILE' },
    { name: 'VIGIL_WORKRES', suggestion: 'VIGIL_WORKERS' },
  ]);
  // A section that is off still knows its variables (a Kafka setting with the demo source is no typo),
  // and one that is on, with its conditional parts, knows nothing more: the set does not depend on the values.
  const known = knownVariables();
  const all = Object.fromEntries(known.map((k) => [k, 'x']));
  for (const env of [all, { ...all, VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_SASL_MECHANISM: 'plain', VIGIL_AMQP_URL: 'amqp://h', VIGIL_S3_BUCKET: 'bucket' },
    { ...all, VIGIL_SOURCE: 'kinesis' }]) {
    assert.deepEqual(unknownVariablesOf(env), []);
  }
  for (const name of ['VIGIL_KAFKA_SASL_USERNAME', 'VIGIL_S3_SECRET_ACCESS_KEY', 'VIGIL_AMQP_RECONNECT_MAX_MS', 'VIGIL_PAGERDUTY_URL', 'VIGIL_KINESIS_START_TIMESTAMP', 'VIGIL_DB_BUSY_TIMEOUT_MS']) {
    assert.ok(known.includes(name), name);
  }
  assert.deepEqual(loadConfig({ VIGIL_SOURCE: 'file', VIGIL_SOURCE_FILE: import.meta.filename, VIGIL_KAFKA_TOPIC: 't', VIGIL_S3_REGION: 'eu-west-1' }).unknownVariables, []);
});

test('the README documents exactly the variables the readers know', async () => {
  const { knownVariables } = await import('../src/config/config.ts');
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const known = new Set(knownVariables());
  // (The typo in the README's example of the warning is not a variable.)
  const documented = new Set(readme.match(/VIGIL_[A-Z0-9_]*[A-Z0-9]/g)!.filter((n) => !new RegExp(`unknown variable ${n} `).test(readme)));
  assert.deepEqual([...documented].filter((n) => !known.has(n)), [], 'documented but read by nobody');
  // `VIGIL_KAFKA_SASL_MECHANISM` / `_USERNAME`: a name may be documented by its tail after a documented head.
  const mentioned = (name: string) => documented.has(name) || name.split('_').some((_, i, parts) => {
    const head = parts.slice(0, i).join('_');
    return i > 1 && readme.includes(`\`_${parts.slice(i).join('_')}\``) && [...documented].some((d) => d.startsWith(`${head}_`));
  });
  assert.deepEqual([...known].filter((n) => !mentioned(n)), [], 'read but not documented');
});

test('key and cell caps: sized from the memory the process may use unless set, and refused beyond what a worker can hold', () => {
  const GiB = 2 ** 30;
  const small = loadConfig({ VIGIL_WORKERS: '2' }, 1 * GiB);
  const big = loadConfig({ VIGIL_WORKERS: '2' }, 16 * GiB);
  assert.ok(small.maxKeysPerWorker >= 200_000 && small.maxKeysPerWorker < 400_000, `${small.maxKeysPerWorker}`);
  assert.equal(small.maxCellsPerWorker, 2 * small.maxKeysPerWorker);
  // Eight times the memory: the caps grow with it until one worker's kernel (32-bit memory) is full.
  assert.ok(big.maxKeysPerWorker > 3_000_000, `${big.maxKeysPerWorker}`);
  const perWorker = (workers: number) => loadConfig({ VIGIL_WORKERS: String(workers) }, 4 * GiB).maxKeysPerWorker;
  assert.ok(Math.abs(perWorker(4) * 2 - perWorker(2)) <= 1, 'workers share the memory');
  assert.equal(loadConfig({ VIGIL_WORKERS: '1' }, 64 * GiB).maxKeysPerWorker, loadConfig({ VIGIL_WORKERS: '1' }, 32 * GiB).maxKeysPerWorker);
  const set = loadConfig({ VIGIL_MAX_KEYS_PER_WORKER: '1234', VIGIL_MAX_CELLS_PER_WORKER: '5678' }, 16 * GiB);
  assert.deepEqual([set.maxKeysPerWorker, set.maxCellsPerWorker], [1234, 5678]);
  assert.throws(() => loadConfig({ VIGIL_MAX_KEYS_PER_WORKER: '20000000' }, 16 * GiB), /VIGIL_MAX_KEYS_PER_WORKER .*add workers/);
});

test('the memory limit is the cgroup\'s when it is below the machine\'s', () => {
  const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;
  assert.equal(memoryLimitBytes(files({}), 8e9), 8e9);
  assert.equal(memoryLimitBytes(files({ '/sys/fs/cgroup/memory.max': 'max\n' }), 8e9), 8e9);
  assert.equal(memoryLimitBytes(files({ '/sys/fs/cgroup/memory.max': '2147483648\n' }), 8e9), 2147483648);
  assert.equal(memoryLimitBytes(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824' }), 8e9), 1073741824);
  // cgroup v1 writes a huge number for "no limit".
  assert.equal(memoryLimitBytes(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }), 8e9), 8e9);
});

test('cluster: off by default; on, it needs the Kafka source, S3 and checkpoints, each problem naming its variable', () => {
  assert.equal(loadConfig({}).cluster, null);
  const kafka = { VIGIL_SOURCE: 'kafka', VIGIL_KAFKA_BROKERS: '127.0.0.1:9092', VIGIL_KAFKA_TOPIC: 'views', VIGIL_KAFKA_GROUP: 'prod-vigil' };
  const s3 = { VIGIL_S3_BUCKET: 'vigil-state' };
  const on = loadConfig({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: 'node-1' }).cluster;
  assert.deepEqual(on, { name: 'prod-vigil', nodeId: 'node-1', workersPerTask: 1, maxTasks: loadConfig({}).workers, kinesisTasks: null, inputKeyedByProperty: true, repartitionPartitions: null });
  // The caps are sized for the kernels of the tasks a node is meant to own: each task's kernels get an equal share.
  const GiB = 2 ** 30;
  const caps = (env: Record<string, string>) => loadConfig({ ...kafka, ...s3, VIGIL_WORKERS: '4', ...env }, 8 * GiB).maxKeysPerWorker;
  const single = loadConfig({ ...kafka, ...s3, VIGIL_WORKERS: '4' }, 8 * GiB).maxKeysPerWorker;
  assert.equal(caps({ VIGIL_CLUSTER: 'true' }), single, 'by default sized for VIGIL_WORKERS tasks of one worker: the single node\'s caps');
  assert.equal(caps({ VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_WORKERS_PER_TASK: '2' }), single, 'two workers per task: half the tasks, the same kernels');
  assert.ok(Math.abs(caps({ VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_MAX_TASKS: '8' }) - single / 2) <= 1, 'sized for 8 tasks: half of each kernel\'s share');
  assert.ok(Math.abs(caps({ VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_MAX_TASKS: '4', VIGIL_CLUSTER_WORKERS_PER_TASK: '2' }) - single / 2) <= 1, '4 tasks x 2 workers: 8 kernels');
  assert.equal(loadConfig({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_MAX_TASKS: '3' }).cluster?.maxTasks, 3);
  const repartitioned = loadConfig({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY: 'false', VIGIL_CLUSTER_REPARTITION_PARTITIONS: '12' }).cluster;
  assert.equal(repartitioned?.inputKeyedByProperty, false);
  assert.equal(repartitioned?.repartitionPartitions, 12);
  assert.equal(loadConfig({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NAME: 'eu', VIGIL_CLUSTER_WORKERS_PER_TASK: '2' }).cluster?.name, 'eu');
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
    return [];
  };
  assert.deepEqual(problems({ VIGIL_SOURCE: 'demo', ...s3, VIGIL_CLUSTER: 'true' }).filter((p) => p.startsWith('VIGIL_CLUSTER:')).length, 1);
  assert.match(problems({ VIGIL_SOURCE: 'demo', ...s3, VIGIL_CLUSTER: 'true' }).join('\n'), /VIGIL_CLUSTER: a cluster needs VIGIL_SOURCE=kafka/);
  assert.match(problems({ ...kafka, VIGIL_CLUSTER: 'true' }).join('\n'), /VIGIL_CLUSTER: .*VIGIL_S3_BUCKET/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CHECKPOINTS: 'false' }).join('\n'), /VIGIL_CLUSTER: .*VIGIL_CHECKPOINTS=false/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_NODE_ID: 'a/b' }).join('\n'), /VIGIL_CLUSTER_NODE_ID: expected/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_WORKERS_PER_TASK: '0' }).join('\n'), /VIGIL_CLUSTER_WORKERS_PER_TASK/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_MAX_TASKS: '0' }).join('\n'), /VIGIL_CLUSTER_MAX_TASKS: expected an integer from 1/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY: 'maybe' }).join('\n'), /VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_REPARTITION_PARTITIONS: '-1' }).join('\n'), /VIGIL_CLUSTER_REPARTITION_PARTITIONS/);
  assert.match(problems({ ...kafka, ...s3, VIGIL_CLUSTER: 'true', VIGIL_CLUSTER_WORKERS_PER_TASK: '8', VIGIL_KEY_GROUPS: '4', VIGIL_WORKERS: '2' }).join('\n'),
    /VIGIL_CLUSTER_WORKERS_PER_TASK \(8\) must not exceed VIGIL_KEY_GROUPS \(4\)/);
  // Off, its variables are known (no typo warning) and not checked.
  assert.deepEqual(loadConfig({ VIGIL_CLUSTER_NODE_ID: 'a/b' }).unknownVariables, []);
});

test('cluster with Kinesis input: Kafka coordinates it (brokers, no topic); the static split is refused', () => {
  const kinesis = { VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: 'views', VIGIL_S3_BUCKET: 'vigil-state', VIGIL_CLUSTER: 'true' };
  const c = loadConfig({ ...kinesis, VIGIL_KAFKA_BROKERS: '127.0.0.1:9092', VIGIL_CLUSTER_KINESIS_TASKS: '16' });
  assert.equal(c.cluster?.kinesisTasks, 16);
  assert.equal(c.cluster?.name, 'vigil');
  assert.deepEqual(c.kafka?.brokers, ['127.0.0.1:9092']);
  assert.equal(c.kafka?.topic, '');
  assert.equal(loadConfig({ ...kinesis, VIGIL_KAFKA_BROKERS: '127.0.0.1:9092' }).cluster?.kinesisTasks, null);
  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems.join('\n');
    }
    return '';
  };
  assert.match(problems(kinesis), /VIGIL_KAFKA_BROKERS: required when VIGIL_CLUSTER=true/);
  assert.doesNotMatch(problems(kinesis), /VIGIL_KAFKA_TOPIC/);
  assert.match(problems({ ...kinesis, VIGIL_KAFKA_BROKERS: '127.0.0.1:9092', VIGIL_KINESIS_NODE_COUNT: '2' }), /VIGIL_KINESIS_NODE_COUNT: a cluster assigns the shards/);
  assert.match(problems({ ...kinesis, VIGIL_KAFKA_BROKERS: '127.0.0.1:9092', VIGIL_CLUSTER_KINESIS_TASKS: '0' }), /VIGIL_CLUSTER_KINESIS_TASKS/);
  assert.match(problems({ ...kinesis, VIGIL_KAFKA_BROKERS: '127.0.0.1:9092', VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY: 'false' }), /VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY=false: the repartition stage reads a Kafka topic/);
  // Without the cluster, Kinesis needs no Kafka.
  assert.equal(loadConfig({ VIGIL_SOURCE: 'kinesis', VIGIL_KINESIS_STREAM: 'views' }).kafka, null);
});
