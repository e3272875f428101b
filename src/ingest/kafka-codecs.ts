// Decompression of Kafka record batches in snappy, lz4 and zstd for kafkajs, which reads only gzip
// itself (its other codecs are left to plug-ins with native builds). Producers often compress with
// one of these three (librdkafka, the Java client's compression.type); without them a topic written
// so could not be read at all (the source stopped with "Snappy compression not implemented").
// Pure JavaScript decoders, so the image needs no native build: snappyjs, lz4js, fzstd. Vigil never
// writes compressed batches, so compress refuses.
import kafkajs from 'kafkajs';
import snappyjs from 'snappyjs';
import lz4js from 'lz4js';
import { decompress as zstdDecompress } from 'fzstd';

const { CompressionTypes, CompressionCodecs } = kafkajs;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The header the Java client's snappy (xerial snappy-java's stream format) starts with: 0x82 "SNAPPY" 0, then two int32 versions. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

/** Snappy as Kafka carries it: one raw snappy block (librdkafka), or xerial framing: blocks of int32 length + raw snappy (the Java client). */
export function snappyDecompress(buf: Buffer): Buffer {
  if (buf.length < XERIAL_HEADER_BYTES || !buf.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) return asBuffer(snappyjs.uncompress(buf));
  const parts: Buffer[] = [];
  let p = XERIAL_HEADER_BYTES;
  while (p < buf.length) {
    if (p + 4 > buf.length) throw new Error(`corrupt snappy (xerial) data: a block length cut at byte ${p} of ${buf.length}`);
    const len = buf.readUInt32BE(p);
    p += 4;
    if (p + len > buf.length) throw new Error(`corrupt snappy (xerial) data: a block of ${len} bytes at byte ${p} of ${buf.length}`);
    parts.push(asBuffer(snappyjs.uncompress(buf.subarray(p, p + len))));
    p += len;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function readOnly(name: string, decompress: (buf: Buffer) => Buffer) {
  return () => ({
    compress: async (): Promise<Buffer> => { throw new Error(`Vigil reads ${name}-compressed Kafka batches but does not write them`); },
    decompress: async (buf: Buffer): Promise<Buffer> => decompress(buf),
  });
}

/** Registers the three decompressors with kafkajs (its codec table is shared by the whole process); calling it again changes nothing. */
export function registerKafkaCodecs(): void {
  const codecs = CompressionCodecs as Record<number, unknown>;
  codecs[CompressionTypes.Snappy] = readOnly('snappy', snappyDecompress);
  codecs[CompressionTypes.LZ4] = readOnly('lz4', (buf) => asBuffer(lz4js.decompress(buf)));
  codecs[CompressionTypes.ZSTD] = readOnly('zstd', (buf) => asBuffer(zstdDecompress(buf)));
}
