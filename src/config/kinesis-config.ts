import { EnvReader } from './env-reader.ts';

/** Where a shard with no saved position starts. */
export type KinesisStartPosition = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP';

/** How the Kinesis source reads (VIGIL_KINESIS_*). */
export interface KinesisConfig {
  /** Stream name, or its ARN. */
  stream: string;
  region: string;
  /** Endpoint override (kinesalite, LocalStack, a VPC endpoint). */
  endpoint: string | null;
  startPosition: KinesisStartPosition;
  startTimestampMs: number | null;
  /** Static shard assignment: this node reads the shards whose root ancestor's id hashes to nodeIndex mod nodeCount (shard-assignment.ts). */
  nodeIndex: number;
  nodeCount: number;
  /** Wait between GetRecords calls of a shard that returned nothing (at least 200 ms: 5 calls/s per shard). */
  idlePollMs: number;
  /** How often the shard list is listed again to find new shards. */
  discoverMs: number;
  /** GetRecords Limit: smaller batches interleave shards more finely while catching up (see ARCHITECTURE.md). */
  maxRecordsPerCall: number;
}

/** Reads the VIGIL_KINESIS_* variables (problems go to the reader); not `needed`, they are read all the same and null is returned. */
export function readKinesisConfig(reader: EnvReader, needed: boolean): KinesisConfig | null {
  const r = needed ? reader : reader.scratch();
  const stream = r.required('VIGIL_KINESIS_STREAM', 'when VIGIL_SOURCE=kinesis (stream name or ARN)');
  const arnRegion = /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):/.exec(stream)?.[1];
  const startPosition = r.oneOf<KinesisStartPosition>('VIGIL_KINESIS_START', ['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'], 'TRIM_HORIZON');
  let startTimestampMs: number | null = null;
  const ts = r.str('VIGIL_KINESIS_START_TIMESTAMP');
  if (ts !== null) {
    startTimestampMs = /^\d+$/.test(ts) ? Number(ts) : Date.parse(ts);
    if (!Number.isFinite(startTimestampMs)) {
      r.problems.push(`VIGIL_KINESIS_START_TIMESTAMP: expected epoch milliseconds or an ISO-8601 time, got ${JSON.stringify(ts)}`);
      startTimestampMs = null;
    }
  }
  if (startPosition === 'AT_TIMESTAMP' && startTimestampMs === null && ts === null) {
    r.problems.push('VIGIL_KINESIS_START_TIMESTAMP: required when VIGIL_KINESIS_START=AT_TIMESTAMP');
  }
  const nodeCount = r.int('VIGIL_KINESIS_NODE_COUNT', 1, 1, 1024);
  const nodeIndex = r.int('VIGIL_KINESIS_NODE_INDEX', 0, 0, 1023);
  if (nodeIndex >= nodeCount) r.problems.push(`VIGIL_KINESIS_NODE_INDEX (${nodeIndex}) must be below VIGIL_KINESIS_NODE_COUNT (${nodeCount})`);
  const endpoint = r.str('VIGIL_KINESIS_ENDPOINT');
  if (endpoint !== null && !/^https?:\/\/[^\s]+$/.test(endpoint)) r.problems.push(`VIGIL_KINESIS_ENDPOINT: expected an http(s) URL, got ${JSON.stringify(endpoint)}`);
  const config: KinesisConfig = {
    stream,
    region: r.str('VIGIL_KINESIS_REGION') ?? arnRegion ?? 'us-east-1',
    endpoint,
    startPosition,
    startTimestampMs,
    nodeIndex,
    nodeCount,
    idlePollMs: r.int('VIGIL_KINESIS_IDLE_POLL_MS', 1000, 200, 60_000),
    discoverMs: r.int('VIGIL_KINESIS_DISCOVER_MS', 30_000, 1000, 3_600_000),
    maxRecordsPerCall: r.int('VIGIL_KINESIS_MAX_RECORDS', 10_000, 1, 10_000),
  };
  return needed ? config : null;
}
