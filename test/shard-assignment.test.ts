import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardNode, type ShardLineage } from '../src/ingest/shard-assignment.ts';

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
