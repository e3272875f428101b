// The engine's event-time clock on its own, with a fake wall clock: per-partition marks, the cap by
// partitions still catching up, records from the future, jumps of time that are believed, idle and
// paused partitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CLOCK_OPTIONS, EventClock, type EventClockOptions } from '../src/engine/event-clock.ts';

const T0 = 1_795_000_000_000;
const MIN = 60_000;

function clock(opts: Partial<EventClockOptions> = {}): { c: EventClock; now: { t: number } } {
  const now = { t: T0 + 365 * 24 * 60 * MIN };
  return { c: new EventClock({ ...DEFAULT_CLOCK_OPTIONS, now: () => now.t, ...opts }), now };
}

/** Plans records [ts, property] of one chunk; returns targets, event times and marks. */
function plan(c: EventClock, records: Array<[number, number]>, stream?: string, live = false) {
  const { plan: p, endTarget } = c.plan(Float64Array.from(records, (r) => r[0]), Uint32Array.from(records, (r) => r[1]), stream ? { stream, live } : undefined);
  const n = records.length;
  return { targets: [...p.subarray(0, n)], times: [...p.subarray(n, 2 * n)], marks: [...p.subarray(2 * n)], endTarget };
}

test('one ordered stream: every target is the prefix maximum, every record counted at its own time', () => {
  const { c } = clock();
  const ts = [0, 1000, 800, 3000, 2500, 3100].map((d) => T0 + d);
  const r = plan(c, ts.map((t, i) => [t, i % 3]));
  let max = -Infinity;
  assert.deepEqual(r.targets, ts.map((t) => (max = Math.max(max, t))));
  assert.deepEqual(r.times, ts);
  assert.deepEqual(r.marks, r.targets);
  assert.equal(c.stats.future, 0);
});

test('a view stamped a day ahead moves nobody\'s time: it is counted at the stream\'s time (clamp) or dropped', () => {
  for (const futurePolicy of ['clamp', 'drop'] as const) {
    const { c } = clock({ futurePolicy });
    const r = plan(c, [[T0, 1], [T0 + 1000, 2], [T0 + 24 * 60 * MIN, 3], [T0 + 2000, 1], [T0 + 3000, 2]]);
    assert.deepEqual(r.targets, [T0, T0 + 1000, T0 + 1000, T0 + 2000, T0 + 3000]);
    if (futurePolicy === 'clamp') assert.equal(r.times[2], T0 + 1000);
    else assert.ok(Number.isNaN(r.times[2]));
    assert.equal(c.stats.future, 1);
    assert.equal(c.stats.futureDropped, futurePolicy === 'drop' ? 1 : 0);
  }
});

test('a producer 3 minutes ahead on one property, among honest ones: its views are clamped, time follows the others', () => {
  const { c } = clock();
  const recs: Array<[number, number]> = [];
  for (let s = 0; s < 600; s++) {
    recs.push([T0 + s * 1000, 1], [T0 + s * 1000 + 10, 2]);
    if (s % 3 === 0) recs.push([T0 + s * 1000 + 3 * MIN, 9]);
  }
  const r = plan(c, recs);
  assert.equal(r.endTarget, T0 + 599 * 1000 + 10);
  assert.equal(c.stats.future, 200);
  recs.forEach(([t, p], i) => { if (p === 9) assert.ok(r.times[i] < t, `record ${i} clamped`); });
});

test('time jumps that are real: two properties agree, or a lone property after a gap', () => {
  const a = clock().c;
  plan(a, [[T0, 1], [T0 + 1000, 2]]);
  const r = plan(a, [[T0 + 20 * MIN, 1], [T0 + 20 * MIN + 500, 2], [T0 + 20 * MIN + 900, 1]]);
  assert.equal(r.times[0], T0 + 1000, 'the first one alone is doubtful');
  assert.deepEqual(r.times.slice(1), [T0 + 20 * MIN + 500, T0 + 20 * MIN + 900]);
  assert.equal(r.endTarget, T0 + 20 * MIN + 900);

  const b = clock().c;
  plan(b, [[T0, 1], [T0 + 1000, 1]]);
  assert.equal(plan(b, [[T0 + 40 * MIN, 1]]).endTarget, T0 + 40 * MIN, 'one property alone: its time passed');
  // After a gap of over an hour, alone: three records in a row beyond the mark.
  const g = plan(b, [[T0 + 160 * MIN, 1], [T0 + 160 * MIN + 300, 1], [T0 + 160 * MIN + 600, 1], [T0 + 160 * MIN + 900, 1]]);
  assert.deepEqual(g.times, [T0 + 40 * MIN, T0 + 40 * MIN, T0 + 160 * MIN + 600, T0 + 160 * MIN + 900]);
  assert.equal(g.endTarget, T0 + 160 * MIN + 900);
});

test('a partition holding one property (keyed by property): views a day or hours ahead among its views move nothing', () => {
  for (const ahead of [24 * 60 * MIN, 5 * 60 * MIN]) {
    const { c } = clock();
    const views: Array<[number, number]> = [];
    for (let i = 0; i < 20; i++) views.push([T0 + i * 1000, 7]);
    views.splice(10, 0, [T0 + ahead, 7]);
    views.splice(15, 0, [T0 + ahead + 5, 7], [T0 + ahead + 9, 7]);
    const r = plan(c, views, 'p0');
    assert.equal(c.stats.future, 3, 'the views ahead (one, then two in a row) are from the future');
    assert.equal(r.endTarget, T0 + 19_000, 'the partition\'s time is its honest views\'');
    assert.deepEqual(r.times.filter((t) => t > T0 + 19_000), []);
  }
});

test('partitions: a declared partition that has delivered nothing holds time back entirely; a caught-up one holds nothing', () => {
  const { c } = clock();
  c.declare(['p0', 'p1']);
  const r0 = plan(c, [[T0, 1], [T0 + 5000, 1]], 'p0');
  assert.deepEqual(r0.targets, [-Infinity, -Infinity]);
  assert.deepEqual(r0.marks, [T0, T0 + 5000], 'its own mark moves all the same');
  assert.equal(c.advanceTarget(), null);
  c.caughtUp('p1');
  assert.equal(c.advanceTarget(), T0 + 5000);
});

test('a partition paused ahead is not taken for idle: when the others pass it, it holds time back again', () => {
  const { c, now } = clock({ streamIdleMs: 10_000, maxAheadMs: 5 * MIN });
  c.declare(['fast', 'slow']);
  plan(c, [[T0 + 20 * MIN, 1]], 'fast');
  plan(c, [[T0, 2]], 'slow');
  assert.equal(c.ahead('fast'), true);
  // The fast partition is paused for a minute of wall time while the slow one catches up.
  for (let s = 1; s <= 60; s++) {
    now.t += 1000;
    assert.equal(c.ahead('fast'), true);
    plan(c, [[T0 + s * 10_000, 2]], 'slow');
  }
  plan(c, [[T0 + 19 * MIN, 2]], 'slow');
  assert.equal(c.ahead('fast'), false);
  // Not idle: the slow partition cannot take time past what the fast one has delivered.
  const r = plan(c, [[T0 + 25 * MIN, 2]], 'slow');
  assert.equal(r.endTarget, T0 + 20 * MIN);
});

test('in a live daemon, a record after the wall clock by more than the tolerance is from the future', () => {
  const { c, now } = clock({ wallClockFuture: true });
  now.t = T0 + MIN;
  const r = plan(c, [[T0, 1], [T0 + MIN + 31_000, 1], [T0 + 1000, 1]]);
  assert.deepEqual(r.times, [T0, T0, T0 + 1000]);
  assert.equal(c.stats.future, 1);
});

test('a partition its source reports behind (a backlog not delivered yet) is never taken for idle', () => {
  const { c, now } = clock({ streamIdleMs: 10_000 });
  c.declare(['slow', 'fast']);
  plan(c, [[T0, 1]], 'slow');
  plan(c, [[T0 + MIN, 2]], 'fast');
  for (let s = 0; s < 30; s++) {
    now.t += 1000;
    c.behind('slow');
  }
  assert.equal(plan(c, [[T0 + 2 * MIN, 2]], 'fast').endTarget, T0, 'the slow partition still holds time at its mark');
  now.t += 11_000;
  assert.equal(plan(c, [[T0 + 3 * MIN, 2]], 'fast').endTarget, T0 + 3 * MIN, 'once not reported for streamIdleMs, it is idle');
});

test('progress of an upstream partition (a repartition stage): it raises the mark, never lowers it, and says caught up or behind', () => {
  const { c } = clock();
  c.declare(['in:0', 'in:1']);
  // in:1 has said nothing: it holds time back entirely.
  assert.equal(plan(c, [[T0 + 5000, 1]], 'in:0').endTarget, -Infinity);
  // Behind at T0 + 2000 (its views here are fewer than it has): time goes that far, no further.
  c.progress('in:1', T0 + 2000, false);
  assert.equal(c.advanceTarget(), T0 + 2000);
  c.advanced(T0 + 2000);
  // A mark below the one it has changes nothing; its own views' times move it as usual.
  c.progress('in:1', T0 + 1000, false);
  assert.equal(plan(c, [[T0 + 3000, 2]], 'in:1').endTarget, T0 + 3000);
  assert.equal(c.advanceTarget(), null);
  // Caught up: it holds nothing, whatever its mark.
  c.progress('in:1', null, true);
  assert.equal(c.advanceTarget(), T0 + 5000);
  // A partition the clock was not told of is ignored.
  c.progress('in:9', T0 + 60 * MIN, true);
  assert.equal(c.finalTarget(), T0 + 5000);
});

test('a split\'s children continue their parent: an empty child holds time at the parent\'s mark, for the caught-up wait from when it joined', () => {
  const { c, now } = clock({ caughtUpWaitMs: 5000 });
  const lineage = new Map([['c1', ['p']], ['c2', ['p']]]);
  c.declare(['p', 'other']);
  plan(c, [[T0 + MIN, 1]], 'p', true);
  plan(c, [[T0 + MIN, 2]], 'other', true);
  now.t += 1000;
  // The parent read to its end: it leaves the clock as its children join, both read once and empty.
  c.declare(['other', 'c1', 'c2'], lineage);
  c.caughtUp('c1');
  c.caughtUp('c2');
  assert.equal(c.advanceTarget(), null, 'nothing beyond the parent\'s mark');
  // The other shard's newer records do not take event time past the parent's mark ...
  assert.equal(plan(c, [[T0 + 3 * MIN, 2]], 'other', true).endTarget, T0 + MIN);
  // ... and the children's first records, then, are counted at their own time: not late.
  now.t += 2000;
  const r = plan(c, [[T0 + MIN + 1000, 1], [T0 + 2 * MIN, 1]], 'c1', true);
  assert.deepEqual(r.marks, [T0 + MIN + 1000, T0 + 2 * MIN], 'the child\'s mark goes on from its parent\'s');
  assert.equal(r.endTarget, T0 + MIN, 'the other child, still empty, holds at the parent\'s mark');
  // An empty child waits like any caught-up partition that has delivered: caughtUpWaitMs from when it joined.
  now.t += 2500;
  assert.equal(c.advanceTarget(), null, 'within the wait');
  now.t += 1000;
  assert.equal(c.advanceTarget(), T0 + 2 * MIN, 'the empty child (and the other shard) no longer hold: the first child holds at its own mark');
  now.t += 2000;
  assert.equal(c.advanceTarget(), T0 + 3 * MIN);
});

test('a child takes its parents\' mark only when it has none: not one restored or already delivered, not from a parent without one', () => {
  const { c } = clock();
  c.restore({ reached: T0 + MIN, streams: [
    { id: 'p', high: T0 + MIN, a: null, b: null, run: null }, { id: 'p2', high: T0 + 3 * MIN, a: null, b: null, run: null },
    { id: 'c1', high: T0 + 2 * MIN, a: null, b: null, run: null },
  ] });
  // c2: one parent without a mark; c3: none with one; c4: a merge's child, at the lower of its parents' marks.
  c.declare(['c1', 'c2', 'c3', 'c4'], new Map([['c1', ['p']], ['c2', ['p', 'q']], ['c3', ['q']], ['c4', ['p2', 'p']]]));
  const marks = Object.fromEntries(Object.entries(c.describe()).map(([id, d]) => [id, d.mark]));
  assert.deepEqual(marks, { c1: T0 + 2 * MIN, c2: T0 + MIN, c3: null, c4: T0 + MIN });
  assert.equal(c.state().streams.find((s) => s.id === 'c2')?.high, T0 + MIN, 'a checkpoint carries the inherited mark');
});

test('restored children a split left wait, with their own marks, while their parent is read to its end again', () => {
  const { c } = clock();
  const lineage = new Map([['c1', ['p']], ['c2', ['p']]]);
  // A checkpoint taken after the split: the parent ended at T0 + MIN, its children had gone on to 2 h.
  c.restore({ reached: T0 + 120 * MIN, streams: [
    { id: 'p', high: T0 + MIN, a: null, b: null, run: null },
    { id: 'c1', high: T0 + 120 * MIN, a: { prop: 1, ts: T0 + 120 * MIN }, b: null, run: null },
    { id: 'c2', high: T0 + 121 * MIN, a: null, b: null, run: null },
  ] });
  // The source reads the parent again from its position, alone at first: the children are not forgotten ...
  c.declare(['p']);
  assert.deepEqual(c.state().streams.map((s) => [s.id, s.high]).sort(), [['c1', T0 + 120 * MIN], ['c2', T0 + 121 * MIN], ['p', T0 + MIN]], 'a checkpoint taken now carries them');
  c.caughtUp('p');
  // ... and join with their marks when it has ended: their next records are counted at their own time.
  c.declare(['c1', 'c2'], lineage);
  const r = plan(c, [[T0 + 120 * MIN + 10_000, 2], [T0 + 120 * MIN + 20_000, 1]], 'c1', true);
  assert.deepEqual(r.times, [T0 + 120 * MIN + 10_000, T0 + 120 * MIN + 20_000], 'not from the future at the parent\'s mark (late)');
  assert.equal(c.stats.future, 0);
  assert.deepEqual(Object.keys(c.describe()).sort(), ['c1', 'c2']);
});
