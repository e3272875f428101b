import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { serviceEnv, waitUntil } from './services-env.ts';
import { TrackedSockets } from '../../src/ingest/tracked-sockets.ts';
import { patchKafkajs } from '../../src/ingest/kafkajs-patches.ts';

// After a broker restart kafkajs keeps a timer loop and broken connections alive (see the source's
// workarounds): without these the test process does not exit for minutes.
patchKafkajs();

/** A connection to the test broker started by scripts/services/kafka.sh. */
export class KafkaHarness {
  readonly brokers: string;
  readonly kafka: Kafka;
  private admin: Admin | null = null;
  private producer: Producer | null = null;

  private readonly sockets = new TrackedSockets();

  /** `retries`: how often a request is tried again (a broker restart takes tens of seconds). */
  constructor(retries = 30) {
    this.brokers = serviceEnv('VIGIL_TEST_KAFKA_BROKERS');
    this.kafka = new Kafka({ clientId: 'vigil-test', brokers: this.brokers.split(','), logLevel: logLevel.NOTHING,
      socketFactory: this.sockets.factory, retry: { initialRetryTime: 300, retries, maxRetryTime: 3000 } });
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

  /** High watermark (next offset to be written) per partition, by partition number. */
  async highWatermarks(topic: string): Promise<number[]> {
    const admin = await this.getAdmin();
    const highs: number[] = [];
    for (const o of await admin.fetchTopicOffsets(topic)) highs[o.partition] = Number(o.high);
    return highs;
  }

  /** The group's committed offset per partition, by partition number (-1: nothing committed). */
  async committedByPartition(group: string, topic: string): Promise<number[]> {
    const admin = await this.getAdmin();
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const out: number[] = [];
    for (const p of t.partitions) out[p.partition] = Number(p.offset);
    return out;
  }

  /** The group's committed offset summed over the topic's partitions (-1 partitions count as 0). */
  async committed(group: string, topic: string): Promise<number> {
    const admin = await this.getAdmin();
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return t.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
  }

  /**
   * Sets the group's committed offsets (by partition number), as an operator's offset reset would;
   * waits until the group has no members (a killed one leaves when its session times out).
   */
  async setCommitted(group: string, topic: string, offsets: number[]): Promise<void> {
    const admin = await this.getAdmin();
    await waitUntil(`group ${group} to be empty`, async () => (await admin.describeGroups([group])).groups[0].state === 'Empty', 60_000, 200);
    await admin.setOffsets({ groupId: group, topic, partitions: offsets.map((o, partition) => ({ partition, offset: String(o) })) });
  }

  /** Forgets connections (after the broker restarted). */
  async reset(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    this.sockets.destroyAll();
    this.producer = null;
    this.admin = null;
  }
}

/**
 * Stops the shared test broker: SIGTERM to the PID in VIGIL_TEST_KAFKA_PID_FILE, resolved once it
 * has exited. Every test run on this machine shares the broker, so a test does this once or twice at
 * most, and starts it again at once (startBroker). Asynchronous on purpose: the daemons a test runs
 * meanwhile write to pipes it must keep reading.
 */
export async function stopBroker(): Promise<void> {
  const pidFile = serviceEnv('VIGIL_TEST_KAFKA_PID_FILE');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  assert.ok(alive(), `the broker of ${pidFile} (pid ${pid}) is not running: is the broker on the port another checkout's?`);
  process.kill(pid, 'SIGTERM');
  await waitUntil(`the broker (pid ${pid}) to stop`, () => !alive(), 60_000, 200);
}

/** Starts the shared test broker with the services script that owns its PID file (`up` waits until it answers). */
export async function startBroker(): Promise<void> {
  // <services root>/.services/kafka.pid: the script of the checkout that started the broker, not
  // this worktree's (whose .services has no broker).
  const root = dirname(dirname(serviceEnv('VIGIL_TEST_KAFKA_PID_FILE')));
  await promisify(execFile)('bash', [`${root}/scripts/services.sh`, 'up', 'kafka'], { timeout: 240_000 });
}

/** Restarts the shared test broker (stopBroker, then startBroker). */
export async function restartBroker(): Promise<void> {
  await stopBroker();
  await startBroker();
}
