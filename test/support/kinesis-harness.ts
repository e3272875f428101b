import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { serviceEnv, waitUntil } from './services-env.ts';

/**
 * A client of the test Kinesis (kinesalite, HTTP/1.1 only: NodeHttpHandler) and the streams a test
 * file made with it, deleted at close(): kinesalite is shared and caps the shards of its account.
 */
export class KinesisHarness {
  readonly client: KinesisClient;
  private readonly created: string[] = [];

  constructor(readonly endpoint = serviceEnv('VIGIL_TEST_KINESIS_ENDPOINT')) {
    this.client = new KinesisClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, requestHandler: new NodeHttpHandler() });
  }

  /** Creates a stream (deleted by close()) and waits until it is ACTIVE. */
  async createStream(name: string, shards: number): Promise<void> {
    this.created.push(name);
    await this.client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
    await this.waitActive(name);
  }

  async waitActive(name: string): Promise<void> {
    await waitUntil(`stream ${name} ACTIVE`, async () =>
      (await this.client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE');
  }

  async close(): Promise<void> {
    for (const name of this.created) await this.client.send(new DeleteStreamCommand({ StreamName: name })).catch(() => undefined);
    this.client.destroy();
  }
}
