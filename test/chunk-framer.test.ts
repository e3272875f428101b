import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkFramer } from '../src/ingest/chunk-framer.ts';
import { emptySkipCounts, type SkipReason } from '../src/ingest/skip-counts.ts';
import { frameRecords } from './support/frame-records.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function frame(chunkBytes: number, maxRecordBytes: number, values: Array<string | null>, flushEvery = Infinity) {
  const counts = emptySkipCounts();
  const skipped: Array<[SkipReason, string]> = [];
  const f = new ChunkFramer(chunkBytes, maxRecordBytes, counts, (r, v) => skipped.push([r, v ? dec.decode(v) : '']));
  const framed: Array<{ chunk: Uint8Array; next?: string }> = [];
  values.forEach((v, i) => {
    // The position after value i is i + 1 (as a Kafka offset would be).
    f.add(v === null ? null : enc.encode(v), String(i + 1));
    framed.push(...f.takeSealed());
    if ((i + 1) % flushEvery === 0) framed.push(...f.takeAll());
  });
  framed.push(...f.takeAll());
  return { chunks: framed.map((x) => x.chunk), framed, counts, skipped };
}

test('chunk framer: each chunk carries the position after its last value; the values between two positions are exactly its lines', () => {
  const values = Array.from({ length: 2000 }, (_, i) => (i % 97 === 5 ? '' : i % 211 === 7 ? `{"n":${i},"bad":"a\nb"}` : `{"n":${i},"pad":"${'y'.repeat(i % 41)}"}`));
  for (const flushEvery of [Infinity, 13, 1]) {
    const { framed } = frame(2048, 2048, values, flushEvery);
    let from = 0;
    for (const { chunk, next } of framed) {
      assert.ok(next !== undefined);
      const to = Number(next);
      const expected = values.slice(from, to).filter((v) => v !== '' && !v.slice(0, -1).includes('\n'));
      assert.deepEqual(dec.decode(chunk).split('\n').slice(0, -1), expected, `values ${from}..${to} (flush every ${flushEvery})`);
      from = to;
    }
    assert.ok(from >= values.length - 1, `the last position ${from} covers the values`);
  }
});

test('chunk framer: whole lines, at most chunkBytes, each chunk at the start of a buffer the engine may transfer', () => {
  const values = Array.from({ length: 3000 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 53)}"}`);
  for (const flushEvery of [Infinity, 7, 1]) {
    const { chunks, counts } = frame(4096, 4096, values, flushEvery);
    assert.deepEqual(counts, { empty: 0, too_large: 0, newline: 0 });
    assert.ok(chunks.length > 10);
    for (const c of chunks) {
      assert.ok(c.length > 0 && c.length <= 4096);
      assert.equal(c[c.length - 1], 10);
      assert.equal(c.byteOffset, 0);
      assert.ok(c.buffer.byteLength === 4096 || c.buffer.byteLength === c.length, `buffer ${c.buffer.byteLength} for ${c.length} bytes`);
    }
    assert.equal(chunks.map((c) => dec.decode(c)).join(''), values.join('\n') + '\n');
    // No two chunks share a buffer (each is transferred on its own).
    assert.equal(new Set(chunks.map((c) => c.buffer)).size, chunks.length);
  }
});

test('chunk framer: skips what frameRecords skips, wherever it falls in a chunk, and keeps everything else in order', () => {
  const values: Array<string | null> = [];
  for (let i = 0; i < 400; i++) {
    values.push(`{"n":${i}}`);
    if (i % 37 === 5) values.push(`{"split":${i},\n"x":1}`);
    if (i % 41 === 9) values.push(null);
    if (i % 43 === 11) values.push('');
    if (i % 47 === 13) values.push(`{"big":"${'y'.repeat(300)}"}`);
    if (i % 53 === 17) values.push(`{"own newline":${i}}\n`);
    if (i % 59 === 19) values.push('\n');
    if (i % 61 === 23) values.push(`{"a":${i}}\n{"injected":${i}}`);
  }
  const { chunks, counts, skipped } = frame(1024, 200, values);
  const reference = emptySkipCounts();
  const expected = dec.decode(frameRecords(values.map((v) => (v === null ? null : enc.encode(v))), 200, reference));
  // A value that is only a newline is an empty record here (frameRecords lets it through as an empty line).
  const onlyNewlines = values.filter((v) => v === '\n').length;
  assert.equal(chunks.map((c) => dec.decode(c)).join(''), expected.replace(/^\n/gm, ''));
  assert.deepEqual(counts, { ...reference, empty: reference.empty + onlyNewlines });
  assert.ok(counts.newline === 18 && counts.too_large === 9 && counts.empty === 27, JSON.stringify(counts));
  assert.ok(skipped.some(([r, v]) => r === 'newline' && v.startsWith('{"a":') && v.includes('injected')));
  for (const c of chunks) assert.ok(c.length <= 1024);
});

test('chunk framer: a line of exactly chunkBytes is a chunk of its own (the decoder takes a last line without newline); longer is too_large', () => {
  const { chunks, counts } = frame(64, 1000, ['x'.repeat(63), 'y'.repeat(64), 'z'.repeat(62) + '\n', 'v'.repeat(65), 'u'.repeat(64) + '\n', 'w'.repeat(10)]);
  assert.deepEqual(counts, { empty: 0, too_large: 1, newline: 0 });
  assert.deepEqual(chunks.map((c) => dec.decode(c)), ['x'.repeat(63) + '\n', 'y'.repeat(64), 'z'.repeat(62) + '\n', 'u'.repeat(64), 'w'.repeat(10) + '\n']);
});

test('chunk framer and frameRecords: the limit is on the line, a value of exactly maxRecordBytes passes with or without its own newline', () => {
  const values = ['a'.repeat(100), 'b'.repeat(100) + '\n', 'c'.repeat(101), 'd'.repeat(101) + '\n'];
  const { chunks, counts } = frame(4096, 100, values);
  assert.deepEqual(counts, { empty: 0, too_large: 2, newline: 0 });
  const reference = emptySkipCounts();
  const joined = dec.decode(frameRecords(values.map((v) => enc.encode(v)), 100, reference));
  assert.deepEqual(reference, counts);
  assert.equal(chunks.map((c) => dec.decode(c)).join(''), joined);
  assert.equal(joined, 'a'.repeat(100) + '\n' + 'b'.repeat(100) + '\n');
});
