import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineChunker } from '../src/ingest/line-chunker.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function run(chunkBytes: number, pieces: string[]) {
  const ch = new LineChunker(chunkBytes);
  const out: string[] = [];
  for (const p of pieces) ch.push(enc.encode(p), (c) => out.push(dec.decode(c)));
  ch.end((c) => out.push(dec.decode(c)));
  return { out, oversized: ch.takeOversized() };
}

test('chunks hold whole lines, at most chunkBytes, and concatenate back to the input', () => {
  const lines = Array.from({ length: 500 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 37)}"}`);
  const input = lines.join('\n') + '\n';
  const pieces: string[] = [];
  for (let i = 0; i < input.length; i += 97) pieces.push(input.slice(i, i + 97));
  const { out, oversized } = run(1024, pieces);
  assert.equal(oversized.length, 0);
  assert.ok(out.length > 5);
  for (const c of out) {
    assert.ok(enc.encode(c).length <= 1024);
    assert.ok(c.endsWith('\n'));
  }
  assert.equal(out.join(''), input);
});

test('a line longer than a chunk is skipped and reported; its neighbours survive', () => {
  const big = 'y'.repeat(5000);
  const { out, oversized } = run(1024, ['{"a":1}\n{"b":"', big, '"}\n{"c":3}\n']);
  assert.equal(out.join(''), '{"a":1}\n{"c":3}\n');
  assert.equal(oversized.length, 1);
  assert.ok(oversized[0].bytes > 5000);
});

test('the last line without a newline is emitted at end', () => {
  const { out } = run(1024, ['{"a":1}\n{"b":2}']);
  assert.equal(out.join(''), '{"a":1}\n{"b":2}');
});

test('flush emits the complete lines buffered so far and keeps the partial one', () => {
  const ch = new LineChunker(1024);
  const out: string[] = [];
  ch.push(enc.encode('{"a":1}\n{"b":2}\n{"c":'), (c) => out.push(dec.decode(c)));
  assert.equal(out.length, 0);
  ch.flush((c) => out.push(dec.decode(c)));
  assert.deepEqual(out, ['{"a":1}\n{"b":2}\n']);
  ch.push(enc.encode('3}\n'), (c) => out.push(dec.decode(c)));
  ch.end((c) => out.push(dec.decode(c)));
  assert.deepEqual(out, ['{"a":1}\n{"b":2}\n', '{"c":3}\n']);
});

test('a line of exactly chunkBytes is emitted whatever the piece sizes; one byte more is skipped', () => {
  const C = 1024;
  const exact = (tag: string) => `{"t":"${tag}","pad":"${'p'.repeat(C - 18)}"}`;
  assert.equal(exact('a').length, C);
  const lines = ['{"n":1}', exact('a'), exact('b'), '{"n":2}', 'x'.repeat(C - 8), exact('c'), `${exact('d')}!`, '{"n":3}', exact('e')];
  const input = lines.join('\n') + '\n';
  const want = lines.filter((l) => l.length <= C);
  for (const size of [1, 3, 97, C - 1, C, C + 1, input.length]) {
    const pieces: string[] = [];
    for (let i = 0; i < input.length; i += size) pieces.push(input.slice(i, i + size));
    const { out, oversized } = run(C, pieces);
    for (const c of out) assert.ok(enc.encode(c).length <= C);
    // A chunk's last line may lack its newline (the decoder takes it so): split each chunk on its own.
    const got = out.flatMap((c) => c.split('\n').filter((l) => l.length > 0));
    assert.deepEqual(got, want, `pieces of ${size}`);
    assert.deepEqual(oversized.map((o) => o.bytes), [C + 1], `pieces of ${size}`);
  }
});
