import { S3Client } from '@aws-sdk/client-s3';

/** The VIGIL_TEST_* variable that `npm run services:up` / `services.sh env` provides; a missing one fails the test loudly. */
export function serviceEnv(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: this integration test needs the real services. Run \`npm run services:up\` and ` +
      '`eval "$(bash scripts/services.sh env)"` first (npm test does both).');
  }
  return v;
}

/**
 * Polls `cond` until it holds, at most `timeoutMs` (never a fixed sleep in place of a condition),
 * including a `cond` that never settles (a client call hanging on a broker that went away).
 */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000, stepMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed out'>((r) => { timer = setTimeout(() => r('timed out'), Math.max(0, end - Date.now()) + stepMs); });
    const held = await Promise.race([Promise.resolve(cond()), timedOut]).finally(() => clearTimeout(timer));
    if (held === true) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${held === 'timed out' ? ' (the last check never answered)' : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * A client of the test S3 (s3rver): path-style addressing, and checksums only where an operation
 * requires them (s3rver corrupts streamed uploads with the SDK's default checksums).
 */
export function testS3Client(endpoint = serviceEnv('VIGIL_TEST_S3_ENDPOINT')): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}
