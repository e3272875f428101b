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

/** The chunks (with their end offsets) and skipped lines of `input` read through pull() in reads of at most `size` bytes. */
async function runPull(chunkBytes: number, input: Uint8Array, size: number) {
  const ch = new LineChunker(chunkBytes);
  const out: Array<[string, number]> = [];
  const emit = (c: Uint8Array, end: number) => out.push([dec.decode(c), end]);
  let at = 0;
  const read = async (buf: Uint8Array, offset: number, length: number) => {
    const n = Math.min(length, size, input.length - at);
    buf.set(input.subarray(at, at + n), offset);
    at += n;
    return n;
  };
  while ((await ch.pull(read, emit)) > 0);
  ch.end(emit);
  return { out, oversized: ch.takeOversized() };
}

test('pull() reads into the chunks and cuts them exactly as push() of the same bytes: chunks, end offsets, skipped lines', async () => {
  const C = 1024;
  const exact = (tag: string) => `{"t":"${tag}","pad":"${'p'.repeat(C - 18)}"}`;
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const r = rnd();
    lines.push(r < 0.05 ? exact(`e${i}`) : r < 0.08 ? 'z'.repeat(C + 1 + Math.floor(rnd() * 3000)) : `{"n":${i},"pad":"${'x'.repeat(Math.floor(rnd() * 300))}"}`);
  }
  for (const tail of ['\n', '']) {
    const input = enc.encode(lines.join('\n') + tail);
    for (const size of [1, 7, 100, C - 1, C, C + 1, 3 * C, input.length]) {
      const ch = new LineChunker(C);
      const want: Array<[string, number]> = [];
      for (let i = 0; i < input.length; i += size) ch.push(input.subarray(i, i + size), (c, end) => want.push([dec.decode(c), end]));
      ch.end((c, end) => want.push([dec.decode(c), end]));
      const got = await runPull(C, input, size);
      assert.deepEqual(got.out, want, `reads of ${size}, input ${tail ? 'ending with' : 'without'} a newline`);
      assert.deepEqual(got.oversized, ch.takeOversized(), `reads of ${size}`);
      assert.ok(got.oversized.length > 5 && got.out.length > 20);
    }
  }
});

test('pull() hands over chunks at the start of buffers of their own, as the engine transfers them', async () => {
  const input = enc.encode(Array.from({ length: 200 }, (_, i) => `{"n":${i}}`).join('\n') + '\n');
  const ch = new LineChunker(256);
  const chunks: Uint8Array[] = [];
  let at = 0;
  const read = async (buf: Uint8Array, offset: number, length: number) => {
    const n = Math.min(length, input.length - at);
    buf.set(input.subarray(at, at + n), offset);
    at += n;
    return n;
  };
  while ((await ch.pull(read, (c) => chunks.push(c))) > 0);
  ch.end((c) => chunks.push(c));
  assert.ok(chunks.length > 5);
  for (const c of chunks) assert.ok(c.byteOffset === 0 && c.buffer.byteLength === 256);
  assert.equal(new Set(chunks.map((c) => c.buffer)).size, chunks.length);
});
