// The VIGIL_AMQP_* and VIGIL_S3_* variables (RabbitMQ control messages, S3 dumps). Called by
// loadConfig with the environment it was given, so config.ts stays the only reader of process.env.

import { EnvReader } from './env-reader.ts';

/** Where control messages come from and where bad ones go. */
export interface AmqpConfig {
  url: string;
  /** Durable direct exchange the commands are published to. */
  exchange: string;
  /** Durable queue the daemon consumes; bound to the exchange with routingKey. */
  queue: string;
  routingKey: string;
  /** Rejected messages go here (fanout) with an x-vigil-reject-reason header; a durable queue of the same name + '.queue' holds them. */
  deadLetterExchange: string;
  maxMessageBytes: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** Where dumps are written (any S3-compatible store). */
export interface S3DumpConfig {
  bucket: string;
  /** Key prefix, '' or ending with '/'. */
  prefix: string;
  region: string;
  endpoint: string | null;
  forcePathStyle: boolean;
  /** Explicit credentials; null leaves them to the AWS SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
  /** Records per NDJSON part of a dump (bounds the memory of one upload). */
  partRecords: number;
  maxAttempts: number;
}

/** The control-plane part of the configuration; null sections are off. */
export interface ControlEnv {
  amqp: AmqpConfig | null;
  s3: S3DumpConfig | null;
}

/** Reads the control-plane variables from env, pushing every problem (with the variable's name) onto problems. */
export function parseControlEnv(env: NodeJS.ProcessEnv, problems: string[], reader = new EnvReader(env, problems)): ControlEnv {
  return { amqp: readAmqp(reader), s3: readS3(reader) };
}

// Each section is read whole whether it is on or not (off: with a scratch reader, whose problems are
// discarded), so the reader knows every variable of it.
function readAmqp(reader: EnvReader): AmqpConfig | null {
  const url = reader.str('VIGIL_AMQP_URL');
  const r = url !== null ? reader : reader.scratch();
  const problems = r.problems;
  const name = (v: string, def: string): string => {
    const s = r.str(v) ?? def;
    if (!/^[\w.:-]{1,200}$/.test(s)) problems.push(`${v}: expected 1-200 letters, digits or ._:-, got ${JSON.stringify(s)}`);
    return s;
  };
  if (url !== null && !/^amqps?:\/\//.test(url)) problems.push(`VIGIL_AMQP_URL: expected amqp://user:pass@host:port[/vhost] or amqps://…, got ${JSON.stringify(url.replace(/\/\/[^@]*@/, '//…@'))}`);
  const amqp: AmqpConfig = {
    url: url ?? '',
    exchange: name('VIGIL_AMQP_EXCHANGE', 'vigil.control'),
    queue: name('VIGIL_AMQP_QUEUE', 'vigil.control'),
    routingKey: name('VIGIL_AMQP_ROUTING_KEY', 'vigil.control'),
    deadLetterExchange: name('VIGIL_AMQP_DEAD_LETTER_EXCHANGE', 'vigil.control.dlx'),
    maxMessageBytes: r.int('VIGIL_AMQP_MAX_MESSAGE_BYTES', 65536, 64, 16 << 20),
    reconnectMinMs: r.int('VIGIL_AMQP_RECONNECT_MIN_MS', 500, 10, 60_000),
    reconnectMaxMs: r.int('VIGIL_AMQP_RECONNECT_MAX_MS', 30_000, 10, 600_000),
  };
  if (amqp.reconnectMaxMs < amqp.reconnectMinMs) problems.push('VIGIL_AMQP_RECONNECT_MAX_MS must be at least VIGIL_AMQP_RECONNECT_MIN_MS');
  if (url !== null) return amqp;
  for (const v of ['VIGIL_AMQP_EXCHANGE', 'VIGIL_AMQP_QUEUE', 'VIGIL_AMQP_ROUTING_KEY', 'VIGIL_AMQP_DEAD_LETTER_EXCHANGE']) {
    if (reader.str(v) !== null) reader.problems.push(`${v}: set without VIGIL_AMQP_URL`);
  }
  return null;
}

function readS3(reader: EnvReader): S3DumpConfig | null {
  const bucket = reader.str('VIGIL_S3_BUCKET');
  const r = bucket !== null ? reader : reader.scratch();
  const problems = r.problems;
  if (bucket !== null && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) problems.push(`VIGIL_S3_BUCKET: not a valid bucket name: ${JSON.stringify(bucket)}`);
  let prefix = r.str('VIGIL_S3_PREFIX') ?? 'vigil/';
  if (prefix.startsWith('/')) problems.push('VIGIL_S3_PREFIX: must not start with /');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const endpoint = r.str('VIGIL_S3_ENDPOINT');
  if (endpoint !== null && !/^https?:\/\/[^\s/]+/.test(endpoint)) problems.push(`VIGIL_S3_ENDPOINT: expected http(s)://host[:port], got ${JSON.stringify(endpoint)}`);
  const pathStyle = (r.str('VIGIL_S3_FORCE_PATH_STYLE') ?? (endpoint ? 'true' : 'false')).toLowerCase();
  if (!['true', 'false', '1', '0'].includes(pathStyle)) problems.push(`VIGIL_S3_FORCE_PATH_STYLE: expected true or false, got ${JSON.stringify(pathStyle)}`);
  const keyId = r.str('VIGIL_S3_ACCESS_KEY_ID');
  const secret = r.str('VIGIL_S3_SECRET_ACCESS_KEY');
  if ((keyId === null) !== (secret === null)) problems.push('VIGIL_S3_ACCESS_KEY_ID and VIGIL_S3_SECRET_ACCESS_KEY go together');
  const s3: S3DumpConfig = {
    bucket: bucket ?? '', prefix, region: r.str('VIGIL_S3_REGION') ?? 'us-east-1', endpoint,
    forcePathStyle: pathStyle === 'true' || pathStyle === '1',
    credentials: keyId !== null && secret !== null ? { accessKeyId: keyId, secretAccessKey: secret } : null,
    partRecords: r.int('VIGIL_S3_PART_RECORDS', 50_000, 1, 10_000_000),
    maxAttempts: r.int('VIGIL_S3_MAX_ATTEMPTS', 5, 1, 20),
  };
  return bucket !== null ? s3 : null;
}
