// The snappy framings Kafka clients write, decoded by kafka-codecs.ts (the broker tests in
// kafka-source.test.ts read topics kcat compressed with snappy, lz4 and zstd).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import snappyjs from 'snappyjs';
import { snappyDecompress } from '../src/ingest/kafka-codecs.ts';

const text = Buffer.from(Array.from({ length: 400 }, (_, i) => `{"property_id":"p${i % 7}","video_title":"t${i}"}`).join('\n'));

function xerial(blocks: Buffer[]): Buffer {
  const header = Buffer.alloc(16);
  Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]).copy(header);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  const parts = [header];
  for (const b of blocks) {
    const c = Buffer.from(snappyjs.compress(b));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(c.length);
    parts.push(len, c);
  }
  return Buffer.concat(parts);
}

test('snappy: one raw block (librdkafka)', () => {
  assert.deepEqual(snappyDecompress(Buffer.from(snappyjs.compress(text))), text);
});

test('snappy: xerial framing with several blocks (the Java client)', () => {
  const blocks = [text.subarray(0, 5000), text.subarray(5000, 9000), text.subarray(9000)];
  assert.deepEqual(snappyDecompress(xerial(blocks)), text);
  assert.deepEqual(snappyDecompress(xerial([text])), text);
});

test('snappy: a xerial block cut short is refused with what is wrong', () => {
  const whole = xerial([text.subarray(0, 5000), text.subarray(5000)]);
  assert.throws(() => snappyDecompress(whole.subarray(0, whole.length - 10)), /corrupt snappy \(xerial\) data: a block of \d+ bytes/);
  assert.throws(() => snappyDecompress(Buffer.concat([whole, Buffer.from([0, 0])])), /a block length cut/);
});
