// Silences by matcher as a cluster runs them (README "Cluster"): every node runs the command from the
// control topic with the receiving node's arguments, under an id from its place in the topic; the node
// that holds an incident changes it. Unit level, on a real store; cluster-ops.test.ts runs real nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandHandler } from '../src/control/command-handler.ts';
import { registerNotifyCommands } from '../src/notify/notify-commands.ts';
import { silentLogger } from '../src/log/logger.ts';
import { T0, notifyConfig, startNotify, verdict } from './support/notify-harness.ts';

const ANY_TITLE = { propertyId: null, videoTitle: null, errorType: null, scope: 'title' as const };

test('a cluster silence takes the id it is given; run again it is the same silence; a local silence on that id moves', async () => {
  const h = startNotify(notifyConfig({}));
  try {
    const local = h.pipeline.silenceMatching({ ...ANY_TITLE, scope: 'property' }, Date.now() + 3_600_000, 'local');
    assert.equal(local.silence.id, 1);
    const expires = Date.now() + 3_600_000;
    const first = h.pipeline.silenceMatching(ANY_TITLE, expires, 'cluster', 1);
    assert.equal(first.silence.id, 1);
    assert.equal(first.silence.scope, 'title');
    const moved = h.pipeline.silences.list().find((s) => s.comment === 'local');
    assert.ok(moved && moved.id > 1, 'the local silence keeps holding under another id');
    // The command read again (a restart before the topic position was written): nothing new.
    const again = h.pipeline.silenceMatching(ANY_TITLE, expires, 'cluster', 1);
    assert.equal(again.silence.id, 1);
    assert.equal(h.pipeline.silences.list().length, 2);
    // A later incident matching it starts silenced.
    h.manager.applyBatch([verdict('open', T0)]);
    assert.equal(h.manager.openIncidents()[0].notifications, 'silenced');
  } finally {
    await h.close();
  }
});

test('the node that holds an incident silences it and turns it back on; another node only records it', async () => {
  const h = startNotify(notifyConfig({}));
  try {
    h.manager.applyBatch([verdict('open', T0)]);
    const [incident] = h.manager.openIncidents();
    // Its task moved to another node: this one no longer holds it.
    h.manager.release(() => true);
    const s = h.pipeline.silenceMatching(ANY_TITLE, Date.now() + 3_600_000, '', 7);
    assert.deepEqual(s.silenced, [incident.id], 'matched in the view');
    assert.equal(h.manager.get(incident.id)!.notifications, 'on', 'left to its owner');
    assert.deepEqual(h.pipeline.silences.get(7)!.silencedIncidents, [incident.id], 'recorded');
    assert.deepEqual(h.pipeline.endSilence(7)!.unsilenced, []);

    // Held (the task came back, restored from a checkpoint that has it open): adopt silences it, the end turns it on.
    h.pipeline.silenceMatching(ANY_TITLE, Date.now() + 3_600_000, '', 8);
    h.manager.adopt('t', T0, [{ incident: h.manager.get(incident.id)!, tracking: h.store.tracking(incident.id)! }], () => true);
    assert.equal(h.manager.get(incident.id)!.notifications, 'silenced', 'an adopted incident a silence matches is silenced');
    assert.deepEqual(h.pipeline.endSilence(8)!.unsilenced, [incident.id]);
    assert.equal(h.manager.get(incident.id)!.notifications, 'on');
  } finally {
    await h.close();
  }
});

test('silence-matching shared: the receiving node fixes the expiry; a node reading it from the topic runs it under offset + 1, even past its expiry', async () => {
  const h = startNotify(notifyConfig({}));
  try {
    const commands = new CommandHandler(silentLogger());
    const now = 1_800_000_000_000;
    registerNotifyCommands(commands, h.pipeline, () => now);
    const def = commands.definition('silence-matching')!;
    const shared = def.share!({ scope: 'title', duration_ms: 60_000 }, { id: 'x', command: 'silence-matching' });
    assert.deepEqual(shared, { scope: 'title', expires_at: new Date(now + 60_000).toISOString() });
    assert.throws(() => def.share!({ scope: 'title', expires_at: new Date(now - 1).toISOString() }, { id: 'y', command: 'silence-matching' }), /in the past/);
    // Read from the topic at offset 41 by a node whose clock is past the expiry: created as it was (it ends at the next tick).
    const r = await def.run({ ...shared, expires_at: new Date(now - 1000).toISOString() }, { id: 'x', command: 'silence-matching', sequence: 41 }) as { silence_id: number };
    assert.equal(r.silence_id, 42);
  } finally {
    await h.close();
  }
});
