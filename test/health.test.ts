// Unit tests of the degraded-state tracker and the store writer (injected clock, injected failures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Health, describeError } from '../src/daemon/health.ts';
import { StoreWriter } from '../src/daemon/store-writer.ts';
import { silentLogger } from '../src/log/logger.ts';

function health(exitAfterMs: number) {
  let now = 1_000_000;
  const gaveUp: string[] = [];
  const h = new Health({ logger: silentLogger(), now: () => now, exitAfterMs, onGiveUp: (r) => gaveUp.push(r) });
  return { h, gaveUp, advance: (ms: number) => { now += ms; } };
}

test('health: a failure degrades, a recovery clears; a degradation lasting exitAfterMs gives up once; 0 never does', () => {
  const { h, gaveUp, advance } = health(5000);
  assert.deepEqual(h.degraded(), []);
  const locked = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
  h.fail('store', locked);
  advance(1000);
  h.fail('store', locked);
  assert.deepEqual(h.degraded(), [{ component: 'store', reason: 'SQLITE_BUSY: database is locked', sinceMs: 1_000_000, failures: 2 }]);
  h.check();
  assert.deepEqual(gaveUp, []);
  h.ok('store');
  assert.equal(h.state('store'), null);
  assert.equal(h.recoveries.store, 1);
  assert.equal(h.failures.store, 2);
  // A new row of failures starts its own clock.
  advance(10_000);
  h.fail('audit', new Error('ENOSPC: no space left on device, write'));
  advance(4999);
  h.check();
  assert.deepEqual(gaveUp, []);
  advance(1);
  h.check();
  h.check();
  assert.equal(gaveUp.length, 1);
  assert.match(gaveUp[0], /^audit degraded for 5 s, longer than VIGIL_DEGRADED_EXIT_MS \(5000 ms\), after 1 failures: ENOSPC: no space left on device, write$/);

  const never = health(0);
  never.h.fail('source', new Error('gone'));
  never.advance(86_400_000);
  never.h.check();
  assert.deepEqual(never.gaveUp, []);
  assert.equal(describeError('plain'), 'plain');
});

test('store writer: writes in order; a failed one and all after it wait and are retried; idle() waits for them; close() lets sources go', async () => {
  const { h } = health(0);
  const writer = new StoreWriter({ health: h, logger: silentLogger(), retry: { baseMs: 5, maxMs: 20 }, random: () => 0.5 });
  const done: number[] = [];
  let failing = false;
  const write = (n: number) => writer.submit(`w${n}`, () => {
    if (failing) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    done.push(n);
  });
  write(1);
  write(2);
  assert.deepEqual(done, [1, 2]);
  await writer.idle();
  failing = true;
  write(3);
  write(4);
  assert.equal(writer.pending(), 2);
  assert.match(h.state('store')!.reason, /SQLITE_FULL/);
  let idle = false;
  const waiting = writer.idle().then(() => { idle = true; });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(idle, false, 'sources wait while writes wait');
  assert.ok(writer.stats.retries >= 2, `retried (${writer.stats.retries})`);
  assert.deepEqual(done, [1, 2], 'nothing overtakes the failed write');
  failing = false;
  await waiting;
  assert.deepEqual(done, [1, 2, 3, 4]);
  assert.equal(h.state('store'), null);

  // Stopping while the store fails: flush gives up after its time, idle() rejects instead of hanging.
  failing = true;
  write(5);
  const held = writer.idle();
  writer.close();
  await assert.rejects(held, /stopping with 1 write\(s\) waiting for the incident store/);
  await assert.rejects(writer.idle(), /waiting for the incident store/);
  assert.equal(await writer.flush(30), false);
  failing = false;
  assert.equal(await writer.flush(30), true);
  assert.deepEqual(done, [1, 2, 3, 4, 5]);
  await writer.idle();
});
