// Vigil's record batch decoder against kafkajs's own, over batches kafkajs's encoder writes: every
// field of the batch and of each record (timestamp and headers included) must be the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { leanRecordBatchDecoder, stockRecordBatchDecoder } from '../src/ingest/kafkajs-record-batch.ts';
import { patchKafkajs, recordBatchDecoder } from '../src/ingest/kafkajs-patches.ts';

const require = createRequire(import.meta.url);
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js');
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const Decoder = require('kafkajs/src/protocol/decoder.js');
const Long = require('kafkajs/src/utils/long.js');
const { Types: Compression } = require('kafkajs/src/protocol/message/compression/index.js');

type Rec = { offsetDelta: number; timestampDelta: number; key: Buffer | null; value: Buffer | null; headers?: Record<string, Buffer | Buffer[] | undefined> };

interface BatchSpec {
  firstOffset: string;
  firstTimestamp: number;
  maxTimestamp?: number;
  compression?: number;
  transactional?: boolean;
  records: Rec[];
  /** Bits ORed into the attributes after encoding (the control and log-append-time flags, which the encoder does not write). */
  extraAttributes?: number;
}

async function encode(spec: BatchSpec): Promise<Buffer> {
  const enc = await RecordBatch({
    compression: spec.compression ?? Compression.None,
    firstOffset: Long.fromValue(spec.firstOffset),
    firstTimestamp: spec.firstTimestamp,
    maxTimestamp: spec.maxTimestamp ?? spec.firstTimestamp + 1000,
    lastOffsetDelta: spec.records.length - 1,
    transactional: spec.transactional ?? false,
    producerId: Long.fromValue(spec.transactional ? 4242 : -1),
    records: spec.records.map((r) => Record(r)),
  });
  const buf = Buffer.from(enc.buffer);
  // firstOffset int64, length int32, leader epoch int32, magic int8, crc int32, then the attributes int16.
  if (spec.extraAttributes) buf.writeInt16BE(buf.readInt16BE(21) | spec.extraAttributes, 21);
  return buf;
}

/** Everything a consumer can read of a decoded batch, the records' getters included. */
function plain(batch: { records: Array<Record<string, unknown>> } & Record<string, unknown>): unknown {
  const { records, ...context } = batch;
  return {
    context,
    records: records.map((r) => ({
      magicByte: r.magicByte, attributes: r.attributes, timestamp: r.timestamp, offset: r.offset,
      key: r.key, value: r.value, headers: { ...(r.headers as object) }, isControlRecord: r.isControlRecord, batchContext: r.batchContext,
    })),
  };
}

async function both(buf: Buffer): Promise<{ lean: unknown; stock: unknown; leanAt: number; stockAt: number }> {
  const d1 = new Decoder(buf);
  const d2 = new Decoder(buf);
  const lean = plain((await leanRecordBatchDecoder(d1)) as never);
  const stock = plain((await stockRecordBatchDecoder()(d2)) as never);
  return { lean, stock, leanAt: d1.offset, stockAt: d2.offset };
}

function records(n: number, make: (i: number) => Partial<Rec>): Rec[] {
  return Array.from({ length: n }, (_, i) => ({ offsetDelta: i, timestampDelta: i * 7, key: null, value: Buffer.from(`{"i":${i}}`), ...make(i) }));
}

const T0 = Date.UTC(2026, 11, 8, 3);
const cases: Array<[string, BatchSpec]> = [
  ['plain values, no keys', { firstOffset: '0', firstTimestamp: T0, records: records(50, () => ({})) }],
  ['keys, null and empty values, long values', { firstOffset: '1234567', firstTimestamp: T0, records: records(40, (i) => ({
    key: i % 3 === 0 ? null : Buffer.from(`k${i}`), value: i % 5 === 0 ? null : i % 7 === 0 ? Buffer.alloc(0) : Buffer.alloc(300 + i * 50, 97 + (i % 26)),
  })) }],
  ['headers, one repeated', { firstOffset: '99', firstTimestamp: T0, records: records(10, (i) => ({
    headers: i % 2 ? { 'vigil-kind': Buffer.from('progress'), h: [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')] } : {},
  })) }],
  ['gaps in offsets (a compacted log)', { firstOffset: '500', firstTimestamp: T0, records: records(20, (i) => ({ offsetDelta: i * 3 })) }],
  ['negative and wide timestamp deltas', { firstOffset: '7', firstTimestamp: T0, records: records(8, (i) => ({ timestampDelta: (i - 4) * 86_400_000 * 400 })) }],
  ['no timestamps (-1)', { firstOffset: '3', firstTimestamp: -1, maxTimestamp: -1, records: records(3, () => ({ timestampDelta: 0 })) }],
  ['log-append time', { firstOffset: '3', firstTimestamp: T0, maxTimestamp: T0 + 5, extraAttributes: 0x08, records: records(5, () => ({})) }],
  ['transactional', { firstOffset: '10', firstTimestamp: T0, transactional: true, records: records(5, () => ({})) }],
  ['a control batch', { firstOffset: '15', firstTimestamp: T0, transactional: true, extraAttributes: 0x20,
    records: [{ offsetDelta: 0, timestampDelta: 0, key: Buffer.from([0, 0, 0, 0]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }] }],
  ['offsets near 2^53', { firstOffset: String(2 ** 53 - 10), firstTimestamp: T0, records: records(20, () => ({})) }],
  ['offsets past 2^53', { firstOffset: '9007199254740993', firstTimestamp: T0, records: records(5, () => ({})) }],
  ['gzip', { firstOffset: '4096', firstTimestamp: T0, compression: Compression.GZIP, records: records(300, (i) => ({
    key: i % 2 ? Buffer.from(`title-${i}`) : null, headers: i % 10 === 0 ? { a: Buffer.from('x') } : {},
  })) }],
  ['an empty batch', { firstOffset: '8', firstTimestamp: T0, records: [] }],
];

for (const [name, spec] of cases) {
  test(`record batch decoder: ${name}`, async () => {
    const buf = await encode(spec);
    const { lean, stock, leanAt, stockAt } = await both(buf);
    assert.deepEqual(lean, stock);
    assert.equal(leanAt, stockAt);
    assert.equal((lean as { records: unknown[] }).records.length, spec.records.length);
  });
}

test('record batch decoder: two batches back to back, and a partial one at the end, as a fetch response has them', async () => {
  const a = await encode(cases[0][1]);
  const b = await encode(cases[2][1]);
  const buf = Buffer.concat([a, b, b.subarray(0, b.length - 9)]);
  for (const decode of [leanRecordBatchDecoder, stockRecordBatchDecoder()]) {
    const d = new Decoder(buf);
    const got: unknown[] = [];
    got.push(await decode(d), await decode(d));
    await assert.rejects(decode(d), (e: Error) => e.name === 'KafkaJSPartialMessageError');
    assert.equal(got.length, 2);
  }
  const d1 = new Decoder(buf);
  const d2 = new Decoder(buf);
  for (let i = 0; i < 2; i++) assert.deepEqual(plain((await leanRecordBatchDecoder(d1)) as never), plain((await stockRecordBatchDecoder()(d2)) as never));
});

test('record batch decoder: a record whose length runs past its batch is refused, not read into the next', async () => {
  const buf = await encode(cases[0][1]);
  // The first record's length varint follows the 61-byte batch header: make it claim 8,191 bytes, far more than the batch has.
  const bad = Buffer.from(buf);
  bad[61] = 0xfe;
  bad[62] = 0x7f;
  await assert.rejects(leanRecordBatchDecoder(new Decoder(bad)), /corrupt Kafka record batch: record 0 of 50 ends at \d+, past \d+/);
});

test('patchKafkajs installs the decoder before the first fetch', () => {
  patchKafkajs();
  assert.equal(recordBatchDecoder(), 'vigil');
  assert.equal(require('kafkajs/src/protocol/recordBatch/v0/decoder.js'), leanRecordBatchDecoder);
});
