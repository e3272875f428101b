import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandHandler, CommandFailure } from '../src/control/command-handler.ts';
import { silentLogger } from '../src/log/logger.ts';

function handler() {
  const h = new CommandHandler(silentLogger(), 3);
  let runs = 0;
  h.register('echo', {
    validate: (a) => (typeof a.text === 'string' ? [] : ['args.text must be a string']),
    run: (a) => { runs++; return { text: a.text, runs }; },
  });
  h.register('boom', { validate: () => [], run: () => { throw new CommandFailure('NOT_AVAILABLE', 'not here'); } });
  return { h, runs: () => runs };
}

test('a command runs and replies; a repeated id runs once and gets the first reply', async () => {
  const { h, runs } = handler();
  const a = await h.handle({ id: 'c1', command: 'echo', args: { text: 'hi' } });
  const b = await h.handle({ id: 'c1', command: 'echo', args: { text: 'hi' } });
  assert.deepEqual(a, { id: 'c1', command: 'echo', ok: true, result: { text: 'hi', runs: 1 } });
  assert.deepEqual(b, a);
  assert.equal(runs(), 1);
  assert.equal(h.stats.duplicates, 1);
});

test('invalid envelopes, unknown commands and bad args are replies with codes, never throws', async () => {
  const { h } = handler();
  for (const [msg, code] of [
    ['nope', 'INVALID_MESSAGE'], [null, 'INVALID_MESSAGE'], [{ command: 'echo' }, 'INVALID_MESSAGE'],
    [{ id: 'x y', command: 'echo' }, 'INVALID_MESSAGE'], [{ id: 'a', command: 'echo', args: [] }, 'INVALID_MESSAGE'],
    [{ id: 'b', command: 'launch' }, 'UNKNOWN_COMMAND'], [{ id: 'c', command: 'echo', args: { text: 3 } }, 'INVALID_ARGS'],
    [{ id: 'd', command: 'boom' }, 'NOT_AVAILABLE'],
  ] as const) {
    const r = await h.handle(msg);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, code, JSON.stringify(msg));
  }
});

test('a failed command may run again on redelivery; remembered ids are bounded', async () => {
  const { h, runs } = handler();
  let fail = true;
  h.register('flaky', { validate: () => [], run: () => { if (fail) throw new Error('S3 down'); return 'ok'; } });
  const first = await h.handle({ id: 'f1', command: 'flaky' });
  assert.equal(first.ok, false);
  if (!first.ok) assert.equal(first.error.retriable, true);
  fail = false;
  assert.equal((await h.handle({ id: 'f1', command: 'flaky' })).ok, true);
  for (const id of ['e1', 'e2', 'e3', 'e4']) await h.handle({ id, command: 'echo', args: { text: id } });
  await h.handle({ id: 'e1', command: 'echo', args: { text: 'e1' } });
  assert.equal(runs(), 5, 'e1 was forgotten after 3 newer ids and ran again');
});
