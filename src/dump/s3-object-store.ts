import { S3Client, PutObjectCommand, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.ts';
import type { S3DumpConfig } from '../config/control-env.ts';

/** Why an S3 write failed after its retries: a stable code, and retriable because the store may come back. */
export class DumpError extends Error {
  readonly code = 'DUMP_FAILED';
  readonly retriable = true;
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

/** The one operation dumps need; tests inject a failing one. */
export interface ObjectPutter {
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
}

/** Builds the S3 client for a (possibly S3-compatible) store. */
export function createS3Client(c: S3DumpConfig): S3Client {
  const opts: S3ClientConfig = {
    region: c.region,
    forcePathStyle: c.forcePathStyle,
    // Our own retry loop (below) does the backoff and the counting.
    maxAttempts: 1,
    // S3-compatible stores such as s3rver corrupt uploads sent with the SDK's default checksum trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (c.endpoint) opts.endpoint = c.endpoint;
  if (c.credentials) opts.credentials = c.credentials;
  return new S3Client(opts);
}

/** Puts objects into the dump bucket, retrying each failed put with exponential backoff and jitter. */
export class S3ObjectStore implements ObjectPutter {
  readonly stats = { puts: 0, retries: 0, failures: 0, bytes: 0 };

  constructor(
    private readonly client: Pick<S3Client, 'send'>,
    private readonly config: Pick<S3DumpConfig, 'bucket' | 'maxAttempts'>,
    private readonly log: Logger,
    private readonly backoffMs = 200,
  ) {}

  /** Writes one object; throws DumpError after maxAttempts failures. */
  async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.config.bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
        this.stats.puts++;
        this.stats.bytes += body.byteLength;
        return;
      } catch (err) {
        if (attempt >= this.config.maxAttempts || !isRetriable(err)) {
          this.stats.failures++;
          throw new DumpError(`S3 put of s3://${this.config.bucket}/${key} failed after ${attempt} attempt(s): ${(err as Error).name}: ${(err as Error).message}`, err);
        }
        this.stats.retries++;
        const delay = Math.min(10_000, this.backoffMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        this.log.warn({ key, attempt, delayMs: Math.round(delay), err: (err as Error).message }, 'S3 put failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

// Missing bucket or access denied will not heal by retrying; everything else (network, 5xx, throttling) may.
function isRetriable(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'NoSuchBucket' || e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId') return false;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}
