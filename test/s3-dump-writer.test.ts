import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DumpWriter } from '../src/dump/dump-writer.ts';
import { S3ObjectStore, DumpError } from '../src/dump/s3-object-store.ts';
import { silentLogger } from '../src/log/logger.ts';

/** A fake S3 client that fails the first `failures` sends with the given HTTP status. */
function flakyClient(failures: number, status = 503) {
  const puts: Array<{ key: string; body: string }> = [];
  let calls = 0;
  return {
    puts,
    client: {
      send: async (cmd: { input: { Key: string; Body: Uint8Array } }) => {
        calls++;
        if (calls <= failures) throw Object.assign(new Error('slow down'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: status } });
        puts.push({ key: cmd.input.Key, body: Buffer.from(cmd.input.Body).toString() });
        return {};
      },
    },
  };
}

test('a dump is parts of bounded size, then a manifest written last', async () => {
  const fake = flakyClient(0);
  const store = new S3ObjectStore(fake.client as never, { bucket: 'b', maxAttempts: 3 }, silentLogger(), 1);
  const w = new DumpWriter(store, 'p/', 'error-rates', { command_id: 'c1' }, 3, Date.UTC(2026, 0, 1), 'c/1');
  await w.add([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  assert.equal(fake.puts.length, 1, 'a full part is uploaded before more records are taken');
  const r = await w.finish();
  assert.deepEqual(fake.puts.map((p) => p.key), [
    'p/error-rates/2026-01-01T00-00-00-000Z-c_1/part-00000.ndjson',
    'p/error-rates/2026-01-01T00-00-00-000Z-c_1/part-00001.ndjson',
    'p/error-rates/2026-01-01T00-00-00-000Z-c_1/manifest.json',
  ]);
  assert.equal(fake.puts[0].body, '{"n":1}\n{"n":2}\n{"n":3}\n');
  const manifest = JSON.parse(fake.puts[2].body);
  assert.equal(manifest.schema_version, 1);
  assert.deepEqual(manifest.parts.map((p: { records: number }) => p.records), [3, 1]);
  assert.equal(r.records, 4);
});

test('S3 errors are retried with backoff; a put that keeps failing is a DumpError and counted', async () => {
  const ok = flakyClient(2);
  const store = new S3ObjectStore(ok.client as never, { bucket: 'b', maxAttempts: 3 }, silentLogger(), 1);
  await store.put('k', Buffer.from('x'), 'text/plain');
  assert.deepEqual(store.stats, { puts: 1, retries: 2, failures: 0, bytes: 1 });

  const bad = flakyClient(10);
  const failing = new S3ObjectStore(bad.client as never, { bucket: 'b', maxAttempts: 3 }, silentLogger(), 1);
  await assert.rejects(failing.put('k', Buffer.from('x'), 'text/plain'), (e: DumpError) => e.code === 'DUMP_FAILED' && e.retriable && /after 3 attempt/.test(e.message));
  assert.equal(failing.stats.failures, 1);

  const denied = new S3ObjectStore(flakyClient(10, 403).client as never, { bucket: 'b', maxAttempts: 3 }, silentLogger(), 1);
  await assert.rejects(denied.put('k', Buffer.from('x'), 'text/plain'), /after 1 attempt/);
});
