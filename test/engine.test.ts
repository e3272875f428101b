import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { Engine } from '../src/engine/engine.ts';
import { silentLogger } from '../src/log/logger.ts';

const enc = new TextEncoder();
const init = { maxKeys: 1000, maxCells: 1000, chunkBytes: 1 << 16, groupLo: 0, groupHi: 128, params: DEFAULT_DETECTION_PARAMS };

test('key groups: hash of the property id mod G, owners hold contiguous ranges; all of a property in one part', () => {
  const k = WasmKernel.create(init);
  const groups = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const g = k.groupOfProperty(`prop-${i}`, 128);
    assert.ok(g >= 0 && g < 128);
    groups.add(g);
  }
  assert.ok(groups.size > 120, `only ${groups.size} groups used`);
  // The decoder routes by the same groups: lines of one property all land in one owner's part,
  // and the owner of a group is floor(group * owners / groups).
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) lines.push(JSON.stringify({ property_id: `prop-${i % 40}`, video_title: `t${i % 7}`, ts: 1795000000000 + i }));
  const d = k.decodeChunk(enc.encode(lines.join('\n') + '\n'), 4, 128);
  assert.equal(d.records, 400);
  const ownerOf = (p: string) => Math.floor((k.groupOfProperty(p, 128) * 4) / 128);
  const expected = [0, 0, 0, 0];
  for (const l of lines) expected[ownerOf(JSON.parse(l).property_id)] += 1;
  const got = d.parts.map((p) => {
    let n = 0;
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    for (let off = 0; off < p.length; n++) off += 48 + ((dv.getUint16(off + 40, true) + dv.getUint16(off + 42, true) + dv.getUint16(off + 44, true) + 7) & ~7);
    return n;
  });
  assert.deepEqual(got, expected);
});

test('the key cap bites with a counter and a log line, never a crash; tracked keys keep counting', async () => {
  let logged = '';
  const logger = pino({ level: 'warn' }, new Writable({ write(c, _e, cb) { logged += c; cb(); } }));
  const engine = new Engine({
    workers: 1, groups: 8, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 16, maxCellsPerWorker: 16,
    logger, onVerdicts: () => {},
  });
  await engine.start();
  const lines: string[] = [];
  for (let i = 0; i < 5000; i++) lines.push(JSON.stringify({ property_id: `p${i % 100}`, error_type: i % 3 ? null : `e${i % 7}`, ts: 1795000000000 + i * 10 }));
  await engine.push(enc.encode(lines.join('\n') + '\n'));
  await engine.finish();
  const c = engine.kernelCounters();
  await engine.stop();
  assert.equal(c.keys, 16);
  assert.ok(c.keysDropped > 0 && c.cellsDropped > 0, JSON.stringify(c));
  assert.equal(c.events, 5000);
  assert.match(logged, /key cap reached/);
});

test('options are validated with precise messages', () => {
  const base = { workers: 2, groups: 128, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 10, maxCellsPerWorker: 10, logger: silentLogger(), onVerdicts: () => {} };
  assert.throws(() => new Engine({ ...base, workers: 0 }), /workers must be an integer in 1\.\.64, got 0/);
  assert.throws(() => new Engine({ ...base, groups: 1 }), /groups must be an integer in workers\.\.65536, got 1/);
  assert.throws(() => new Engine({ ...base, chunkBytes: 100 }), /chunkBytes must be an integer >= 65536, got 100/);
  const e = new Engine(base);
  return assert.rejects(e.push(new Uint8Array(2 << 20)), /exceeds chunkBytes/);
});
