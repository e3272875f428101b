import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Admin, type ITopicConfig, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '../config/kafka-config.ts';
import type { Logger } from '../log/logger.ts';
import { kafkaLogCreator } from '../ingest/kafka-log.ts';
import { patchKafkajs } from '../ingest/kafkajs-patches.ts';
import { TrackedSockets } from '../ingest/tracked-sockets.ts';
import { ClusterError } from './cluster-error.ts';

patchKafkajs();

/** The cluster's connection to the source's brokers (same brokers, TLS and SASL as the Kafka source). */
export interface ClusterKafka {
  kafka: Kafka;
  sockets: TrackedSockets;
}

/** A kafkajs client with the source's connection settings; `closed()` turns kafkajs's errors after a stop into debug lines. */
export function clusterKafka(c: KafkaConfig, clientId: string, log: Logger, closed: () => boolean): ClusterKafka {
  let ssl: { ca: string[] } | true | undefined;
  if (c.tls) {
    try {
      ssl = c.tlsCaFile ? { ca: [readFileSync(c.tlsCaFile, 'utf8')] } : true;
    } catch (err) {
      throw new ClusterError('CLUSTER_CONNECT', `VIGIL_KAFKA_TLS_CA_FILE: cannot read ${c.tlsCaFile}: ${(err as Error).message}`, { retriable: false, cause: err });
    }
  }
  const sockets = new TrackedSockets();
  const kafka = new Kafka({
    clientId,
    brokers: c.brokers,
    ssl,
    sasl: c.sasl ? ({ mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password } as SASLOptions) : undefined,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(log, closed),
    socketFactory: sockets.factory,
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 30 },
  });
  return { kafka, sockets };
}

/**
 * Creates the topic unless it exists (several nodes starting at once: "already exists" is success).
 * Nothing of an existing topic is changed: an operator may have tuned it.
 */
export async function ensureTopic(admin: Admin, topic: ITopicConfig): Promise<boolean> {
  try {
    const existing = await admin.listTopics();
    if (existing.includes(topic.topic)) return false;
    return await admin.createTopics({ topics: [topic], waitForLeaders: true });
  } catch (err) {
    if ((err as { type?: string }).type === 'TOPIC_ALREADY_EXISTS' || /already exists/i.test(String((err as Error).message))) return false;
    throw new ClusterError('CLUSTER_TOPIC', `cannot create the cluster topic ${topic.topic}: ${(err as Error).message}`, { retriable: true, cause: err });
  }
}
