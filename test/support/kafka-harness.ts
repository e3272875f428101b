import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { serviceEnv } from './services-env.ts';

/** A connection to the test broker started by scripts/services/kafka.sh. */
export class KafkaHarness {
  readonly brokers: string;
  readonly kafka: Kafka;
  private admin: Admin | null = null;
  private producer: Producer | null = null;

  constructor() {
    this.brokers = serviceEnv('VIGIL_TEST_KAFKA_BROKERS');
    this.kafka = new Kafka({ clientId: 'vigil-test', brokers: this.brokers.split(','), logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 300, retries: 30, maxRetryTime: 3000 } });
  }

  private async getAdmin(): Promise<Admin> {
    if (!this.admin) { this.admin = this.kafka.admin(); await this.admin.connect(); }
    return this.admin;
  }

  /** Creates a fresh topic with a unique name. */
  async topic(prefix: string, partitions = 1): Promise<string> {
    const name = `${prefix}-${process.pid}-${Date.now()}`;
    const admin = await this.getAdmin();
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    return name;
  }

  /** Produces NDJSON lines as records keyed by property_id (null key for lines that are not JSON). */
  async produce(topic: string, values: Array<string | Buffer | null>, batch = 2000): Promise<void> {
    if (!this.producer) { this.producer = this.kafka.producer({ allowAutoTopicCreation: false }); await this.producer.connect(); }
    for (let i = 0; i < values.length; i += batch) {
      const messages = values.slice(i, i + batch).map((value) => {
        let key: string | null = null;
        if (typeof value === 'string') { try { key = String(JSON.parse(value).property_id); } catch { key = null; } }
        return { key, value };
      });
      await this.producer.send({ topic, messages });
    }
  }

  /** Produces values to the given partitions (no key). */
  async produceTo(topic: string, records: Array<{ partition: number; value: string }>, batch = 2000): Promise<void> {
    if (!this.producer) { this.producer = this.kafka.producer({ allowAutoTopicCreation: false }); await this.producer.connect(); }
    for (let i = 0; i < records.length; i += batch) {
      await this.producer.send({ topic, messages: records.slice(i, i + batch).map(({ partition, value }) => ({ partition, value })) });
    }
  }

  /** Records per partition (high minus low watermark), by partition number. */
  async partitionCounts(topic: string): Promise<number[]> {
    const admin = await this.getAdmin();
    const offsets = await admin.fetchTopicOffsets(topic);
    const counts: number[] = [];
    for (const o of offsets) counts[o.partition] = Number(o.high) - Number(o.low);
    return counts;
  }

  /** The group's committed offset summed over the topic's partitions (-1 partitions count as 0). */
  async committed(group: string, topic: string): Promise<number> {
    const admin = await this.getAdmin();
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return t.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
  }

  /** Forgets connections (after the broker restarted). */
  async reset(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    this.producer = null;
    this.admin = null;
  }
}
