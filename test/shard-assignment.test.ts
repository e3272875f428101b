import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineageRoot, shardNode, shardTask, type ShardLineage } from '../src/ingest/shard-assignment.ts';

test('static shard assignment: nodes never share a shard, and split children stay on their parent\'s node', () => {
  const shards: ShardLineage[] = [];
  for (let i = 0; i < 40; i++) shards.push({ ShardId: `shardId-${String(i).padStart(12, '0')}` });
  for (let i = 0; i < 40; i++) {
    shards.push({ ShardId: `shardId-${String(100 + 2 * i).padStart(12, '0')}`, ParentShardId: shards[i].ShardId });
    shards.push({ ShardId: `shardId-${String(101 + 2 * i).padStart(12, '0')}`, ParentShardId: shards[i].ShardId });
  }
  const byId = new Map(shards.map((s) => [s.ShardId!, s]));
  for (const n of [1, 2, 3, 5]) {
    const nodes = shards.map((s) => shardNode(s, byId, n));
    for (const x of nodes) assert.ok(x >= 0 && x < n);
    if (n > 1) assert.equal(new Set(nodes).size, n, 'every node gets shards');
    for (const s of shards) if (s.ParentShardId) assert.equal(shardNode(s, byId, n), shardNode(byId.get(s.ParentShardId)!, byId, n));
  }
  // The parent aged out of the stream: its children still agree with each other.
  const orphans = shards.filter((s) => s.ParentShardId === shards[3].ShardId);
  const without = new Map([...byId].filter(([id]) => id !== shards[3].ShardId));
  assert.equal(shardNode(orphans[0], without, 3), shardNode(orphans[1], without, 3));
  assert.equal(shardNode(orphans[0], without, 3), shardNode(shards[3], byId, 3));
});

test('cluster tasks of shards: a stream\'s first shards spread over the tasks one by one, children follow their root, other ids hash', () => {
  const shards: ShardLineage[] = [];
  for (let i = 0; i < 8; i++) shards.push({ ShardId: `shardId-${String(i).padStart(12, '0')}` });
  // Shard 2 split, then its first child split again; shards 5 and 6 merged.
  shards.push({ ShardId: 'shardId-000000000008', ParentShardId: shards[2].ShardId }, { ShardId: 'shardId-000000000009', ParentShardId: shards[2].ShardId });
  shards.push({ ShardId: 'shardId-000000000010', ParentShardId: 'shardId-000000000008' }, { ShardId: 'shardId-000000000011', ParentShardId: 'shardId-000000000008' });
  shards.push({ ShardId: 'shardId-000000000012', ParentShardId: shards[5].ShardId, AdjacentParentShardId: shards[6].ShardId });
  const byId = new Map(shards.map((s) => [s.ShardId!, s]));
  const task = (id: string, n: number) => shardTask(byId.get(id)!, byId, n);
  assert.deepEqual(shards.slice(0, 8).map((s) => shardTask(s, byId, 4)), [0, 1, 2, 3, 0, 1, 2, 3]);
  assert.deepEqual(shards.slice(0, 8).map((s) => shardTask(s, byId, 8)), [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const id of ['shardId-000000000008', 'shardId-000000000009', 'shardId-000000000010', 'shardId-000000000011']) assert.equal(task(id, 8), 2, id);
  assert.equal(task('shardId-000000000012', 8), 5, 'a merge goes with its parent (ParentShardId)');
  // Ancestors aged out of the stream: the children of one split still agree.
  const without = new Map([...byId].filter(([id]) => id !== shards[2].ShardId));
  assert.equal(shardTask(byId.get('shardId-000000000008')!, without, 8), shardTask(byId.get('shardId-000000000009')!, without, 8));
  assert.equal(lineageRoot(byId.get('shardId-000000000010')!, without), shards[2].ShardId);
  // Ids that are not Kinesis's numbered ones hash, within range.
  for (const n of [1, 3, 7]) {
    const t = shardTask({ ShardId: 'my-shard' }, new Map(), n);
    assert.ok(Number.isInteger(t) && t >= 0 && t < n);
  }
});
