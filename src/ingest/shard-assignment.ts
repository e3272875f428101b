/** The part of a shard description that assignment looks at. */
export interface ShardLineage {
  ShardId?: string;
  ParentShardId?: string;
  AdjacentParentShardId?: string;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Static assignment of shards to `nodeCount` nodes: a shard belongs to node
 * fnv1a(root ancestor's id) mod nodeCount, where the root is found by following ParentShardId
 * among the listed shards. A split's children therefore stay on their parent's node (so the
 * parent-before-child order needs no coordination); two nodes never read the same shard.
 */
export function shardNode(shard: ShardLineage, byId: ReadonlyMap<string, ShardLineage>, nodeCount: number): number {
  let root = shard;
  const seen = new Set<string>();
  while (root.ParentShardId && byId.has(root.ParentShardId) && !seen.has(root.ParentShardId)) {
    seen.add(root.ParentShardId);
    root = byId.get(root.ParentShardId)!;
  }
  // A parent that has aged out of the stream is still the root: children of one split agree.
  const rootId = root.ParentShardId ?? root.ShardId ?? '';
  return fnv1a(rootId) % nodeCount;
}
