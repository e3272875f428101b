// A leaner decoder of Kafka record batches (message format v2) for kafkajs 2.2.4, installed in place
// of its own (see installRecordBatchDecoder). kafkajs decodes each record with a Decoder object, two
// or three Buffer slices, a headers object built by a reduce, and its offset and timestamp through
// BigInt-backed Longs and strings: with the garbage that makes, about three quarters of the main
// thread's time while raw kafkajs drains a backlog (bench/kafka.js, CPU profile). This one reads each record in place: one object, the value's (and key's)
// slice, the offset as a string made from a number; the timestamp and headers are decoded only when
// read. It returns what kafkajs's decoder returns, field for field (test/kafkajs-record-batch.test.ts
// holds the two to it over encoded batches, and every Kafka test reads through it).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  slice(size: number): KafkajsDecoder;
  forward(size: number): void;
  readAll(): Buffer;
}
type Codec = { decompress(buf: Buffer): Promise<Buffer> } | null;

const BATCH_DECODER = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';
/** The only module that requires BATCH_DECODER (fetch v4 and later share it); it binds the decoder when it loads. */
const DECODE_MESSAGES = 'kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js';

const { KafkaJSPartialMessageError } = require('kafkajs/src/errors.js') as { KafkaJSPartialMessageError: new (msg: string) => Error };
const { lookupCodecByAttributes } = require('kafkajs/src/protocol/message/compression/index.js') as { lookupCodecByAttributes(a: number): Codec };
const TimestampTypes = require('kafkajs/src/protocol/timestampTypes.js') as { LOG_APPEND_TIME: number; CREATE_TIME: number };

const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
const TRANSACTIONAL_FLAG_MASK = 0x10;
const CONTROL_FLAG_MASK = 0x20;
/** Offsets below this are added as numbers (exact); a batch starting above it (never seen in practice) adds BigInts. */
const EXACT_OFFSET_BASE = 2 ** 53 - 2 ** 32;

interface BatchContext {
  firstOffset: string;
  firstTimestamp: string;
  partitionLeaderEpoch: number;
  inTransaction: boolean;
  isControlBatch: boolean;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  maxTimestamp: string;
  timestampType: number;
  magicByte: number;
}

/** Where the last varint read ended (the readers below return the value and leave the position here). */
let at = 0;

/** A zigzag varint (int32) at `p`. */
function readVarInt(buf: Buffer, p: number): number {
  let b = buf[p++];
  let r = b & 0x7f;
  let shift = 7;
  while (b & 0x80) {
    if (shift > 28) throw new Error('corrupt Kafka record: varint longer than 5 bytes');
    b = buf[p++];
    r |= (b & 0x7f) << shift;
    shift += 7;
  }
  at = p;
  return (r >>> 1) ^ -(r & 1);
}

/** Skips a varlong at `p`. */
function skipVarLong(buf: Buffer, p: number): number {
  for (let n = 0; n < 10; n++) if ((buf[p++] & 0x80) === 0) return p;
  throw new Error('corrupt Kafka record: varlong longer than 10 bytes');
}

/** A zigzag varlong at `p`, exactly. */
function readVarLongBig(buf: Buffer, p: number): bigint {
  let r = 0n;
  let shift = 0n;
  let b: number;
  do {
    b = buf[p++];
    r |= BigInt(b & 0x7f) << shift;
    shift += 7n;
  } while (b & 0x80);
  at = p;
  return (r >> 1n) ^ -(r & 1n);
}

/** One record, as kafkajs's decoder gives it; `timestamp` and `headers` are decoded when read. */
class LeanRecord {
  magicByte: number;
  attributes: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord: boolean;
  batchContext: BatchContext;
  readonly #buf: Buffer;
  readonly #timestampAt: number;
  readonly #headersAt: number;

  constructor(ctx: BatchContext, attributes: number, offset: string, key: Buffer | null, value: Buffer | null, buf: Buffer, timestampAt: number, headersAt: number) {
    this.magicByte = ctx.magicByte;
    this.attributes = attributes;
    this.offset = offset;
    this.key = key;
    this.value = value;
    this.isControlRecord = ctx.isControlBatch;
    this.batchContext = ctx;
    this.#buf = buf;
    this.#timestampAt = timestampAt;
    this.#headersAt = headersAt;
  }

  get timestamp(): string {
    const ctx = this.batchContext;
    if (ctx.timestampType === TimestampTypes.LOG_APPEND_TIME && ctx.maxTimestamp) return ctx.maxTimestamp;
    return (BigInt(ctx.firstTimestamp) + readVarLongBig(this.#buf, this.#timestampAt)).toString();
  }

  get headers(): Record<string, Buffer | null | Array<Buffer | null>> {
    const buf = this.#buf;
    const out: Record<string, Buffer | null | Array<Buffer | null>> = {};
    const n = readVarInt(buf, this.#headersAt);
    let p = at;
    for (let i = 0; i < n; i++) {
      const klen = readVarInt(buf, p);
      p = at;
      const key = klen === -1 ? 'null' : buf.toString('utf8', p, p + klen);
      if (klen > 0) p += klen;
      const vlen = readVarInt(buf, p);
      p = at;
      const value = vlen === -1 ? null : buf.subarray(p, p + vlen);
      if (vlen > 0) p += vlen;
      // kafkajs reads `obj[key]`, so a header named like an Object.prototype member (toString) started
      // an array with that function; only own keys count here.
      const had = Object.hasOwn(out, key) ? out[key] : undefined;
      const v = had === undefined ? value : Array.isArray(had) ? had.concat([value]) : [had, value];
      // An own property even for a key named __proto__, as kafkajs's spread makes it.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/** Decodes `count` records from `buf[p, end)`. */
function decodeRecords(ctx: BatchContext, buf: Buffer, p: number, end: number, count: number): LeanRecord[] {
  const records = new Array<LeanRecord>(count);
  const first = Number(ctx.firstOffset);
  const exact = first >= 0 && first < EXACT_OFFSET_BASE;
  for (let i = 0; i < count; i++) {
    const len = readVarInt(buf, p);
    const start = at;
    const recEnd = start + len;
    if (len < 1 || recEnd > end) throw new Error(`corrupt Kafka record batch: record ${i} of ${count} ends at ${recEnd}, past ${end}`);
    const attributes = buf.readInt8(start);
    const timestampAt = start + 1;
    const delta = readVarInt(buf, skipVarLong(buf, timestampAt));
    const offset = exact ? String(first + delta) : (BigInt(ctx.firstOffset) + BigInt(delta)).toString();
    const klen = readVarInt(buf, at);
    let q = at;
    let key: Buffer | null = null;
    if (klen >= 0) {
      key = buf.subarray(q, q + klen);
      q += klen;
    }
    const vlen = readVarInt(buf, q);
    q = at;
    let value: Buffer | null = null;
    if (vlen >= 0) {
      value = buf.subarray(q, q + vlen);
      q += vlen;
    }
    if (q >= recEnd) throw new Error(`corrupt Kafka record batch: record ${i} of ${count} overruns its length`);
    records[i] = new LeanRecord(ctx, attributes, offset, key, value, buf, timestampAt, q);
    p = recEnd;
  }
  return records;
}

/** Decodes one record batch from a fetch response's records (the contract of kafkajs's recordBatch/v0/decoder). */
async function decodeRecordBatch(fetchDecoder: KafkajsDecoder): Promise<Omit<BatchContext, 'magicByte'> & { records: LeanRecord[] }> {
  const firstOffset = fetchDecoder.readInt64().toString();
  const length = fetchDecoder.readInt32();
  const decoder = fetchDecoder.slice(length);
  fetchDecoder.forward(length);
  const remainingBytes = decoder.buffer.length;
  if (remainingBytes < length) {
    throw new KafkaJSPartialMessageError(`Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`);
  }
  const partitionLeaderEpoch = decoder.readInt32();
  const magicByte = decoder.readInt8();
  decoder.readInt32(); // the CRC, which kafkajs does not check either
  const attributes = decoder.readInt16();
  const lastOffsetDelta = decoder.readInt32();
  const firstTimestamp = decoder.readInt64().toString();
  const maxTimestamp = decoder.readInt64().toString();
  const producerId = decoder.readInt64().toString();
  const producerEpoch = decoder.readInt16();
  const firstSequence = decoder.readInt32();
  const context = {
    firstOffset,
    firstTimestamp,
    partitionLeaderEpoch,
    inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
    isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
    lastOffsetDelta,
    producerId,
    producerEpoch,
    firstSequence,
    maxTimestamp,
    timestampType: (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? TimestampTypes.LOG_APPEND_TIME : TimestampTypes.CREATE_TIME,
  };
  const ctx: BatchContext = { ...context, magicByte };
  const codec = lookupCodecByAttributes(attributes);
  const count = decoder.readInt32();
  let records: LeanRecord[];
  if (!codec) {
    records = count === -1 ? [] : decodeRecords(ctx, decoder.buffer, decoder.offset, decoder.buffer.length, count);
  } else if (count <= 0) {
    records = [];
  } else {
    const buf = await codec.decompress(decoder.readAll());
    records = decodeRecords(ctx, buf, 0, buf.length, count);
  }
  return { ...context, records };
}

/** kafkajs's own decoder, kept when installRecordBatchDecoder replaces it. */
let stock: ((d: KafkajsDecoder) => Promise<unknown>) | null = null;

/** kafkajs's own record batch decoder, as it was before installRecordBatchDecoder (for the differential test). */
export function stockRecordBatchDecoder(): (d: KafkajsDecoder) => Promise<unknown> {
  return stock ?? (require(BATCH_DECODER) as (d: KafkajsDecoder) => Promise<unknown>);
}

export { decodeRecordBatch as leanRecordBatchDecoder };

/**
 * Makes kafkajs decode fetched record batches with decodeRecordBatch: replaces the exports of its
 * decoder module in the CommonJS cache before the one module that requires it (fetch's
 * decodeMessages, loaded at the first fetch) binds it. Returns false, and changes nothing, when a
 * fetch in this process already bound kafkajs's own decoder.
 */
export function installRecordBatchDecoder(): boolean {
  const path = require.resolve(BATCH_DECODER);
  if (require.cache[path]?.exports === decodeRecordBatch) return true;
  if (require.cache[require.resolve(DECODE_MESSAGES)]) return false;
  stock = require(path) as (d: KafkajsDecoder) => Promise<unknown>;
  require.cache[path]!.exports = decodeRecordBatch;
  return true;
}
