import { EnvReader } from './env-reader.ts';

/** SASL mechanisms kafkajs supports with a username and password. */
export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/** How the Kafka source connects and consumes (VIGIL_KAFKA_*). */
export interface KafkaConfig {
  brokers: string[];
  topic: string;
  groupId: string;
  clientId: string;
  /** Where a group with no committed offset starts. */
  startFrom: 'earliest' | 'latest';
  tls: boolean;
  /** PEM file of the CA to trust instead of the system's (TLS only). */
  tlsCaFile: string | null;
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: string } | null;
  /** How often evaluated offsets are committed. */
  commitIntervalMs: number;
  /** Upper bound of one fetch response, all partitions (bounds memory together with the engine's in-flight chunks). */
  maxFetchBytes: number;
  /**
   * How long the group waits for a member that stopped heartbeating (a crashed one) before its
   * partitions move; a restarted member waits that long too. Within the broker's
   * group.min/max.session.timeout.ms (6 s to 30 min by default).
   */
  sessionTimeoutMs: number;
}

/**
 * Reads the VIGIL_KAFKA_* variables; `needed` makes brokers and topic required, `'brokers'` the
 * brokers only (a cluster reading Kinesis: Kafka coordinates it, no input topic; topic is then '').
 * Problems go to the reader. Not needed, they are read all the same (problems discarded, null
 * returned), so the reader knows them.
 */
export function readKafkaConfig(reader: EnvReader, needed: boolean | 'brokers'): KafkaConfig | null {
  const r = needed ? reader : reader.scratch();
  const why = needed === 'brokers' ? 'when VIGIL_CLUSTER=true (the cluster coordinates through Kafka)' : 'when VIGIL_SOURCE=kafka';
  const brokers = r.required('VIGIL_KAFKA_BROKERS', why).split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) r.problems.push(`VIGIL_KAFKA_BROKERS: expected host:port[,host:port...], got ${JSON.stringify(b)}`);
  }
  const topic = needed === 'brokers' ? (r.scratch().str('VIGIL_KAFKA_TOPIC') ?? '') : r.required('VIGIL_KAFKA_TOPIC', why);
  if (topic && !/^[a-zA-Z0-9._-]{1,249}$/.test(topic)) r.problems.push(`VIGIL_KAFKA_TOPIC: not a valid topic name: ${JSON.stringify(topic)}`);
  const mechanism = r.str('VIGIL_KAFKA_SASL_MECHANISM');
  const credentials = mechanism !== null ? r : r.scratch();
  const username = credentials.required('VIGIL_KAFKA_SASL_USERNAME', 'with VIGIL_KAFKA_SASL_MECHANISM');
  const password = credentials.required('VIGIL_KAFKA_SASL_PASSWORD', 'with VIGIL_KAFKA_SASL_MECHANISM');
  const sasl: KafkaConfig['sasl'] = mechanism === null ? null
    : { mechanism: r.oneOf<KafkaSaslMechanism>('VIGIL_KAFKA_SASL_MECHANISM', ['plain', 'scram-sha-256', 'scram-sha-512'], 'plain'), username, password };
  const config: KafkaConfig = {
    brokers,
    topic,
    groupId: r.str('VIGIL_KAFKA_GROUP') ?? 'vigil',
    clientId: r.str('VIGIL_KAFKA_CLIENT_ID') ?? 'vigil',
    startFrom: r.oneOf('VIGIL_KAFKA_START', ['earliest', 'latest'] as const, 'earliest'),
    tls: r.bool('VIGIL_KAFKA_TLS', false),
    tlsCaFile: r.str('VIGIL_KAFKA_TLS_CA_FILE'),
    sasl,
    commitIntervalMs: r.int('VIGIL_KAFKA_COMMIT_INTERVAL_MS', 1000, 50, 600_000),
    maxFetchBytes: r.int('VIGIL_KAFKA_MAX_FETCH_BYTES', 10 << 20, 1 << 16, 1 << 30),
    sessionTimeoutMs: r.int('VIGIL_KAFKA_SESSION_TIMEOUT_MS', 20_000, 1000, 1_800_000),
  };
  return needed ? config : null;
}
