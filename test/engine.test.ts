import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WasmKernel } from '../src/kernel/wasm-kernel.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';
import { ownerOfGroup } from '../src/kernel/key-groups.ts';
import { Engine, type EngineState } from '../src/engine/engine.ts';
import { decodeKernelState } from '../src/kernel/kernel-state.ts';
import { generateLines } from './support/detection-streams.ts';
import { partRecords } from './support/incremental.ts';
import { DEFAULT_CLOCK_OPTIONS, EventClock } from '../src/engine/event-clock.ts';
import { silentLogger } from '../src/log/logger.ts';
import { waitUntil } from './support/services-env.ts';

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
  const ownerOf = (p: string) => ownerOfGroup(k.groupOfProperty(p, 128), 4, 128);
  const expected = [0, 0, 0, 0];
  for (const l of lines) expected[ownerOf(JSON.parse(l).property_id)] += 1;
  const got = d.parts.map((p) => {
    let n = 0;
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    for (let off = 0; off < p.length; n++) off += k.recordSizeAt(dv, off);
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

test('partitions read one after the other (a backlog): with chunk origins event time follows the slowest, no record is late, the outage is found', async () => {
  // Two partitions of the same stream, each in event-time order; 40 minutes of views, with an outage of
  // property "a" from minute 25. Chunks are cut every 5 minutes of event time and delivered partition
  // after partition, as a consumer catching up does: partition 0's first 5 minutes, then partition 1's.
  const start = 1795000000000;
  const parts: string[][] = [[], []];
  for (let i = 0; i < 40 * 60 * 20; i++) {
    const ts = start + i * 50;
    const minute = (ts - start) / 60000;
    const failing = minute >= 25 && i % 5 === 0;
    parts[i % 2].push(JSON.stringify({ property_id: i % 3 === 0 ? 'a' : 'b', error_type: failing && i % 3 === 0 ? 'networkError' : i % 97 === 0 ? 'decodeError' : null, ts }));
  }
  const run = async (withOrigins: boolean) => {
    const verdicts: string[] = [];
    const engine = new Engine({
      workers: 2, groups: 16, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 100, maxCellsPerWorker: 100,
      logger: silentLogger(), onVerdicts: (v) => { for (const x of v) verdicts.push(`${x.kind} ${x.propertyId} ${x.errorType}`); },
    });
    await engine.start();
    if (withOrigins) engine.declareStreams(['p0', 'p1']);
    const per = 5 * 60 * 10; // 5 minutes of one partition
    for (let off = 0; off < parts[0].length; off += per) {
      for (const p of [0, 1]) {
        const last = off + per >= parts[p].length;
        await engine.push(enc.encode(parts[p].slice(off, off + per).join('\n') + '\n'), withOrigins ? { stream: `p${p}`, live: last } : undefined);
      }
    }
    await engine.finish();
    const c = engine.kernelCounters();
    await engine.stop();
    return { late: c.late, events: c.events, verdicts };
  };
  const plain = await run(false);
  assert.ok(plain.late > 10_000, `without origins the second partition's chunks are late (${plain.late})`);
  const aligned = await run(true);
  assert.equal(aligned.events, 40 * 60 * 20);
  assert.equal(aligned.late, 0);
  assert.ok(aligned.verdicts.includes('open a networkError'), aligned.verdicts.join('; '));
  assert.ok(!aligned.verdicts.some((v) => v.includes(' b ')), 'b never failed');
});

test('a declared partition that delivers nothing holds event time back only until it is idle', async () => {
  const engine = new Engine({
    workers: 1, groups: 8, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 100, maxCellsPerWorker: 100,
    logger: silentLogger(), onVerdicts: () => {}, clock: { streamIdleMs: 300 },
  });
  await engine.start();
  engine.declareStreams(['p0', 'p1']);
  const line = (ts: number) => enc.encode(JSON.stringify({ property_id: 'a', ts }) + '\n');
  const t0 = 1795000000000;
  await engine.push(line(t0 + 60_000), { stream: 'p0', live: false });
  await engine.drain();
  // p1 has delivered nothing: event time may not move at all yet; p0's records wait.
  assert.equal(engine.maxEventTs(), null);
  assert.equal(engine.kernelCounters().heldNow, 1);
  await new Promise((r) => setTimeout(r, 400));
  // p1 is idle now: p0 alone moves event time, and a record older than its ticks is late.
  await engine.push(line(t0 + 10 * 60_000), { stream: 'p0', live: false });
  await engine.push(line(t0), { stream: 'p0', live: false });
  await engine.drain();
  assert.equal(engine.kernelCounters().late, 1);
  await engine.stop();
});

test('a caught-up partition with a mark holds event time for caughtUpWaitMs after its latest chunk: records it gets after another partition\'s newer ones are not late', async () => {
  const line = (ts: number) => enc.encode(JSON.stringify({ property_id: 'a', ts }) + '\n');
  const t0 = 1795000000000;
  const run = async (caughtUpWaitMs: number) => {
    const engine = new Engine({
      workers: 1, groups: 8, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 100, maxCellsPerWorker: 100,
      logger: silentLogger(), onVerdicts: () => {}, clock: { caughtUpWaitMs },
    });
    await engine.start();
    engine.declareStreams(['p0', 'p1']);
    // Both caught up after their chunks (a live topic); p0's next records come first and are newer.
    await engine.push(line(t0), { stream: 'p1', live: true });
    await engine.push(line(t0 + 60_000), { stream: 'p0', live: true });
    await engine.push(line(t0 + 30_000), { stream: 'p1', live: true });
    await engine.drain();
    const late = engine.kernelCounters().late;
    const reached = engine.maxEventTs();
    return { engine, late, reached };
  };
  const eager = await run(0);
  assert.equal(eager.late, 1, 'without the wait, p0 moved event time past the record p1 got later');
  await eager.engine.stop();
  const waiting = await run(800);
  assert.equal(waiting.late, 0, 'p1 held event time at its mark: p0\'s record waited instead');
  assert.equal(waiting.reached, t0 + 30_000);
  // Once p1 has been quiet for the wait, it holds nothing back: event time moves on to p0's record,
  // although its source keeps saying it is caught up (as Kafka's watch does every 2 s).
  await waitUntil('event time to move on', () => {
    waiting.engine.streamCaughtUp('p1');
    return waiting.engine.maxEventTs() === t0 + 60_000;
  }, 5000, 50);
  await waiting.engine.stop();
});

test('a partition said caught up stops holding event time only after its chunks pushed before that are planned', async () => {
  const engine = new Engine({
    workers: 1, groups: 8, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 100, maxCellsPerWorker: 100,
    logger: silentLogger(), onVerdicts: () => {},
  });
  await engine.start();
  engine.declareStreams(['p0', 'p1']);
  const lines = (from: number, to: number) => {
    const out: string[] = [];
    for (let ts = from; ts <= to; ts += 1_000) out.push(JSON.stringify({ property_id: 'a', ts }));
    return enc.encode(out.join('\n') + '\n');
  };
  const t0 = 1795000000000;
  await engine.push(lines(t0, t0 + 10_000), { stream: 'p1', live: false });
  await engine.drain();
  // p0 runs far ahead; p1's last records are pushed after it, and its source (Kafka's watch) says p1
  // is caught up before either chunk is planned. p0's chunk must still be planned with p1 holding.
  await engine.push(lines(t0 + 10_000, t0 + 300_000), { stream: 'p0', live: false });
  await engine.push(lines(t0 + 11_000, t0 + 60_000), { stream: 'p1', live: false });
  engine.streamCaughtUp('p1');
  await engine.drain();
  await waitUntil('event time to move on to p0', () => engine.maxEventTs() === t0 + 300_000, 5000, 20);
  assert.equal(engine.kernelCounters().late, 0, 'p1\'s last records were counted late');
  await engine.stop();
});

test('a restored clock does not advance before its source says which partitions it reads: not to the highest restored mark', () => {
  const t0 = 1795000000000;
  const clock = new EventClock({ ...DEFAULT_CLOCK_OPTIONS, now: () => 0 });
  // Checkpointed while p1 was behind p0 (its records up to t0 + 60 s waited for p1).
  clock.restore({ reached: t0, streams: [
    { id: 'p0', high: t0 + 60_000, a: null, b: null, run: null },
    { id: 'p1', high: t0, a: null, b: null, run: null },
  ] });
  // A Kafka source joins its group seconds later (the session of a killed member times out first).
  assert.equal(clock.advanceTarget(), null, 'nothing moves event time before the source declares its partitions');
  clock.declare(['p0', 'p1']);
  assert.equal(clock.advanceTarget(), null, 'p1, catching up again from the checkpoint, holds event time at its mark');
  clock.caughtUp('p1');
  assert.equal(clock.advanceTarget(), t0 + 60_000, 'once p1 has nothing more to deliver, event time follows p0');
});

test('a background checkpoint export, with chunks ingested while it goes on, holds what an export at its barrier holds', async () => {
  const lines = generateLines({ seed: 23, events: 60_000, properties: 6, titlesPerProperty: 400, ratePerSec: 40, startMs: Date.UTC(2026, 6, 3, 20) });
  const run = async (backgroundExports: boolean) => {
    // Chunks of their own each run: a pushed chunk's buffer goes to a worker.
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < lines.length; i += 1500) chunks.push(enc.encode(lines.slice(i, i + 1500).join('\n') + '\n'));
    const verdicts: string[] = [];
    const engine = new Engine({
      // Caps whose export region (24 bytes a key of the cap) holds every incremental export here: each goes on in the background.
      workers: 2, groups: 16, chunkBytes: 1 << 20, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 100_000, maxCellsPerWorker: 100_000,
      logger: silentLogger(), onVerdicts: (v) => { for (const x of v) verdicts.push(`${x.kind} ${x.propertyId} ${x.videoTitle} ${x.errorType} ${x.atMs}`); }, backgroundExports,
    });
    await engine.start();
    const taken: Array<Promise<EngineState>> = [];
    for (const [i, c] of chunks.entries()) {
      // A full checkpoint, then incremental ones, each followed at once by more chunks (the next
      // barrier, as the daemon's, once the checkpoint before it is complete).
      if (i > 0 && i % 8 === 0) {
        await taken.at(-1);
        taken.push(engine.checkpoint(() => null, [i > 8, i > 8]));
      }
      await engine.push(c);
    }
    await engine.finish();
    const states = await Promise.all(taken);
    await engine.stop();
    return { verdicts, states };
  };
  const [at, background] = [await run(false), await run(true)];
  assert.deepEqual(background.verdicts, at.verdicts);
  assert.ok(at.states.length >= 4);
  let slices = 0;
  at.states.forEach((s, i) => {
    const b = background.states[i];
    assert.deepEqual(b.positions, s.positions);
    for (let w = 0; w < 2; w++) {
      const [x, y] = [decodeKernelState(b.parts[w].bytes), decodeKernelState(s.parts[w].bytes)];
      assert.equal(x.header.kind, i === 0 ? 'full' : 'delta');
      assert.deepEqual({ ...x.header, exportId: null, since: null }, { ...y.header, exportId: null, since: null }, `checkpoint ${i}, worker ${w}`);
      for (const section of ['held', 'dedup', 'removed'] as const) assert.ok(Buffer.from(x[section]).equals(Buffer.from(y[section])), `${section} of checkpoint ${i}, worker ${w}`);
      assert.deepEqual(partRecords(x), partRecords(y), `records of checkpoint ${i}, worker ${w}`);
      slices += b.parts[w].slices;
      assert.equal(s.parts[w].slices, 0);
    }
  });
  assert.ok(slices > 0, 'the incremental exports went on in the background');
});

