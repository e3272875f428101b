import { availableParallelism } from 'node:os';
import { readFileSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { resolve } from 'node:path';
import {
  DEFAULT_DETECTION_PARAMS, mergeDetectionParams, validateDetectionParams,
  type DetectionParams, type DeepPartial,
} from '../kernel/detection-params.ts';
import { DEFAULT_FIELD_NAMES, type FieldNames } from '../ingest/field-names.ts';
import { EnvReader, unknownVariables, type UnknownVariable } from './env-reader.ts';
import { defaultCaps, memoryLimitBytes, BYTES_PER_KEY, BYTES_PER_CELL, KERNEL_STATE_LIMIT } from './memory-caps.ts';
import { readKafkaConfig, type KafkaConfig } from './kafka-config.ts';
import { readKinesisConfig, type KinesisConfig } from './kinesis-config.ts';
import { parseHttpConfig, type HttpConfig } from './http-config.ts';
import { parseNotifyConfig, type NotifyConfig } from './notify-config.ts';
import { parseControlEnv, type AmqpConfig, type S3DumpConfig } from './control-env.ts';
import { readClusterConfig, type ClusterConfig } from './cluster-config.ts';

/** Where the daemon reads view outcomes from. */
export type SourceKind = 'demo' | 'file' | 'stdin' | 'kafka' | 'kinesis';

/** The daemon's whole configuration, validated at start. */
export interface VigilConfig {
  dataDir: string;
  source: SourceKind;
  sourceFile: string | null;
  workers: number;
  keyGroups: number;
  chunkBytes: number;
  maxKeysPerWorker: number;
  maxCellsPerWorker: number;
  maxLineBytes: number;
  fieldNames: FieldNames;
  params: DetectionParams;
  transitionsFile: string | null;
  logLevel: string;
  demoSeed: number;
  /** Advance event time to the wall clock when the source is idle (live sources whose event time is now). */
  idleAdvance: boolean;
  /** Write checkpoints (periodically and on shutdown) and restore the newest on start. */
  checkpoints: boolean;
  /** How often a checkpoint is written while running. */
  checkpointIntervalMs: number;
  /** Incremental checkpoints between two full ones (0: every checkpoint full). */
  checkpointMaxDeltas: number;
  /** How event time is judged across partitions and against device clocks (see src/engine/event-clock.ts). */
  eventTime: EventTimeConfig;
  /** How long a write to the incident database waits for a lock held by another connection (SQLite busy_timeout). */
  dbBusyTimeoutMs: number;
  /** A degraded state (store, checkpoint, audit file, source) lasting this long ends the daemon with exit code 1; 0: never. */
  degradedExitMs: number;
  /** VIGIL_* variables set but unknown to every reader (typos): reported at start as warnings, never errors. */
  unknownVariables: UnknownVariable[];
  /** VIGIL_KAFKA_* (set when VIGIL_SOURCE=kafka; see kafka-config.ts). */
  kafka: KafkaConfig | null;
  /** VIGIL_KINESIS_* (set when VIGIL_SOURCE=kinesis; see kinesis-config.ts). */
  kinesis: KinesisConfig | null;
  /** HTTP API, WebSocket feed and dashboard (see http-config.ts). */
  http: HttpConfig;
  /** Notification receivers, routes and delivery settings (see notify-config.ts). */
  notify: NotifyConfig;
  /** RabbitMQ control messages (VIGIL_AMQP_*; null: off; see control-env.ts). */
  amqp: AmqpConfig | null;
  /** S3 dumps (VIGIL_S3_*; null: off). */
  s3: S3DumpConfig | null;
  /** Several nodes in one Kafka group acting as one (VIGIL_CLUSTER_*; null: a single node; see cluster-config.ts). */
  cluster: ClusterConfig | null;
}

/** VIGIL_FUTURE_* and the partition timing of the engine's event-time clock. */
export interface EventTimeConfig {
  futureToleranceMs: number;
  futurePolicy: 'clamp' | 'drop';
  streamIdleMs: number;
  caughtUpWaitMs: number;
  maxAheadMs: number;
}

/** Thrown when the environment is invalid; lists every problem with its variable. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly retriable = false;
  constructor(readonly problems: string[], options?: { cause?: unknown }) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`, options);
  }
}

/** Bounds of a chunk's size (VIGIL_CHUNK_BYTES, `replay --chunk-bytes`); the kernel's staging area is sized by it. */
export const CHUNK_BYTES_MIN = 65536;
export const CHUNK_BYTES_MAX = 64 << 20;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads and validates the VIGIL_* variables (the only place that reads the environment); throws ConfigError with every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, memoryBytes = memoryLimitBytes()): VigilConfig {
  const { config, problems } = readConfig(env, memoryBytes);
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** Every VIGIL_* variable some reader of the configuration reads (whatever else is set). */
export function knownVariables(): string[] {
  return [...readConfig({}).names].sort();
}

/** The unknown VIGIL_* variables of env, whether or not the rest of it is valid. */
export function unknownVariablesOf(env: NodeJS.ProcessEnv): UnknownVariable[] {
  return readConfig(env).config.unknownVariables;
}

function readConfig(env: NodeJS.ProcessEnv, memoryBytes = memoryLimitBytes()): { config: VigilConfig; problems: string[]; names: ReadonlySet<string> } {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);
  const int = (name: string, def: number, min: number, max: number): number => reader.int(name, def, min, max);
  const str = (name: string): string | null => reader.str(name);

  const source = (str('VIGIL_SOURCE') ?? 'demo') as SourceKind;
  if (!['demo', 'file', 'stdin', 'kafka', 'kinesis'].includes(source)) {
    problems.push(`VIGIL_SOURCE: expected one of demo, file, stdin, kafka, kinesis, got ${JSON.stringify(source)}`);
  }
  const sourceFile = str('VIGIL_SOURCE_FILE');
  if (source === 'file' && !sourceFile) problems.push('VIGIL_SOURCE_FILE: required when VIGIL_SOURCE=file');
  if (source === 'file' && sourceFile) checkReadableFile('VIGIL_SOURCE_FILE', sourceFile, problems);

  const workers = int('VIGIL_WORKERS', Math.max(1, Math.min(availableParallelism(), 8)), 1, 64);
  const keyGroups = int('VIGIL_KEY_GROUPS', 128, 1, 65536);
  if (keyGroups < workers) problems.push(`VIGIL_KEY_GROUPS (${keyGroups}) must be at least VIGIL_WORKERS (${workers})`);

  const fieldNames: FieldNames = { ...DEFAULT_FIELD_NAMES };
  const fieldVars: Array<[keyof FieldNames, string]> = [
    ['viewId', 'VIGIL_FIELD_VIEW_ID'], ['propertyId', 'VIGIL_FIELD_PROPERTY_ID'], ['videoTitle', 'VIGIL_FIELD_VIDEO_TITLE'],
    ['errorType', 'VIGIL_FIELD_ERROR_TYPE'], ['ts', 'VIGIL_FIELD_TS'],
  ];
  for (const [field, name] of fieldVars) {
    const v = str(name);
    if (v === null) continue;
    if (Buffer.byteLength(v) > 64) problems.push(`${name}: a field name is at most 64 bytes`);
    else fieldNames[field] = v;
  }

  let params = DEFAULT_DETECTION_PARAMS;
  const paramsFile = str('VIGIL_DETECTION_FILE');
  const paramsJson = str('VIGIL_DETECTION');
  for (const [name, text] of [['VIGIL_DETECTION_FILE', paramsFile && readText(paramsFile, problems, 'VIGIL_DETECTION_FILE')], ['VIGIL_DETECTION', paramsJson]] as const) {
    if (!text) continue;
    try {
      params = mergeDetectionParams(params, JSON.parse(text) as DeepPartial<DetectionParams>);
    } catch (err) {
      problems.push(`${name}: not valid JSON (${(err as Error).message})`);
    }
  }
  for (const p of validateDetectionParams(params)) problems.push(`detection parameters: ${p}`);

  const logLevel = str('VIGIL_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`VIGIL_LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  const bool = (name: string, def: boolean): boolean => reader.bool(name, def);

  const http = parseHttpConfig(env, problems, reader);
  const control = parseControlEnv(env, problems, reader);
  const degradedExitMs = int('VIGIL_DEGRADED_EXIT_MS', 300_000, 0, 7 * 86_400_000);
  // A cluster node runs a kernel per worker of every task it owns: sized for the tasks it is meant to
  // own (VIGIL_CLUSTER_MAX_TASKS); read here with a scratch reader, the cluster section reads it for real below.
  const clusterSizing = readClusterConfig(reader.scratch(), { source, kafkaGroupId: null, s3Configured: true, checkpoints: true, workers });
  const kernels = clusterSizing === null ? workers : clusterSizing.maxTasks * clusterSizing.workersPerTask;
  // Unset caps are sized from the memory the process may use (memory-caps.ts).
  const caps = defaultCaps(kernels, memoryBytes);
  const maxKeysPerWorker = int('VIGIL_MAX_KEYS_PER_WORKER', caps.maxKeys, 16, 50_000_000);
  const maxCellsPerWorker = int('VIGIL_MAX_CELLS_PER_WORKER', caps.maxCells, 16, 50_000_000);
  // A worker's kernel has 32-bit memory: caps it could never reach at full use are a mistake.
  if (maxKeysPerWorker * BYTES_PER_KEY + maxCellsPerWorker * BYTES_PER_CELL > KERNEL_STATE_LIMIT) {
    problems.push(`VIGIL_MAX_KEYS_PER_WORKER / VIGIL_MAX_CELLS_PER_WORKER: ${maxKeysPerWorker} keys and ${maxCellsPerWorker} cells need up to `
      + `${Math.round((maxKeysPerWorker * BYTES_PER_KEY + maxCellsPerWorker * BYTES_PER_CELL) / 2 ** 20)} MiB in one worker, over the ${KERNEL_STATE_LIMIT / 2 ** 20} MiB a worker's kernel can hold; add workers`);
  }
  if (degradedExitMs > 0 && degradedExitMs < 1000) problems.push(`VIGIL_DEGRADED_EXIT_MS: expected 0 (never) or at least 1000, got ${degradedExitMs}`);
  const config: VigilConfig = {
    dataDir: resolve(str('VIGIL_DATA_DIR') ?? '.data'),
    source,
    sourceFile,
    workers,
    keyGroups,
    chunkBytes: int('VIGIL_CHUNK_BYTES', 1 << 20, CHUNK_BYTES_MIN, CHUNK_BYTES_MAX),
    maxKeysPerWorker,
    maxCellsPerWorker,
    maxLineBytes: int('VIGIL_MAX_LINE_BYTES', 65536, 256, 16 << 20),
    fieldNames,
    params,
    transitionsFile: str('VIGIL_TRANSITIONS_FILE'),
    logLevel,
    demoSeed: int('VIGIL_DEMO_SEED', 1, 0, 2 ** 31 - 1),
    idleAdvance: bool('VIGIL_IDLE_ADVANCE', source === 'demo'),
    checkpoints: bool('VIGIL_CHECKPOINTS', true),
    checkpointIntervalMs: int('VIGIL_CHECKPOINT_INTERVAL_MS', 15_000, 1000, 3_600_000),
    checkpointMaxDeltas: int('VIGIL_CHECKPOINT_MAX_DELTAS', 20, 0, 1000),
    eventTime: {
      futureToleranceMs: int('VIGIL_FUTURE_TOLERANCE_MS', 30_000, 1000, 24 * 3_600_000),
      futurePolicy: reader.oneOf('VIGIL_FUTURE_POLICY', ['clamp', 'drop'] as const, 'clamp'),
      streamIdleMs: int('VIGIL_PARTITION_IDLE_MS', 10_000, 100, 3_600_000),
      caughtUpWaitMs: int('VIGIL_PARTITION_CAUGHT_UP_WAIT_MS', 0, 0, 3_600_000),
      maxAheadMs: int('VIGIL_PARTITION_MAX_AHEAD_MS', 5 * 60_000, 10_000, 30 * 60_000),
    },
    dbBusyTimeoutMs: int('VIGIL_DB_BUSY_TIMEOUT_MS', 5000, 0, 600_000),
    degradedExitMs,
    unknownVariables: [],
    // A cluster reading Kinesis coordinates its nodes through Kafka: brokers, no input topic. (Peeked at
    // with a scratch reader: readClusterConfig reads VIGIL_CLUSTER and reports its problems.)
    kafka: readKafkaConfig(reader, source === 'kafka' ? true : source === 'kinesis' && reader.scratch().bool('VIGIL_CLUSTER', false) ? 'brokers' : false),
    kinesis: readKinesisConfig(reader, source === 'kinesis'),
    http,
    notify: parseNotifyConfig(reader, http.publicUrl ?? `http://${http.host}:${http.port}`),
    amqp: control.amqp,
    s3: control.s3,
    cluster: null,
  };
  config.cluster = readClusterConfig(reader, {
    source, kafkaGroupId: config.kafka?.groupId ?? null, s3Configured: config.s3 !== null, checkpoints: config.checkpoints, workers,
    kinesisStaticSplit: (config.kinesis?.nodeCount ?? 1) > 1,
  });
  if (config.cluster && config.cluster.workersPerTask > keyGroups) {
    problems.push(`VIGIL_CLUSTER_WORKERS_PER_TASK (${config.cluster.workersPerTask}) must not exceed VIGIL_KEY_GROUPS (${keyGroups})`);
  }
  if (config.maxLineBytes > config.chunkBytes) problems.push(`VIGIL_MAX_LINE_BYTES (${config.maxLineBytes}) must not exceed VIGIL_CHUNK_BYTES (${config.chunkBytes})`);
  // Only now has every reader asked for its variables; whatever else is set is unknown.
  config.unknownVariables = unknownVariables(env, reader.names);
  return { config, problems, names: reader.names };
}

function checkReadableFile(name: string, path: string, problems: string[]): void {
  try {
    if (statSync(path).isDirectory()) {
      problems.push(`${name}: ${path} is a directory, not a file`);
      return;
    }
    accessSync(path, fsConstants.R_OK);
  } catch (err) {
    problems.push(`${name}: cannot read ${path} (${describeFsError(err)})`);
  }
}

/**
 * "ENOENT: no such file or directory" from a file system error (without the call and path Node adds
 * to its message), "SQLITE_NOTADB: file is not a database" from a database error.
 */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.message !== 'string') return String(err);
  const node = /^([A-Z0-9_]+): ([^,]+)/.exec(e.message);
  if (node) return `${node[1]}: ${node[2]}`;
  return e.code ? `${e.code}: ${e.message}` : e.message;
}

function readText(path: string, problems: string[], name: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return null;
  }
}
