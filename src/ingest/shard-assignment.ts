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
 * The id that names a shard's lineage: its root ancestor's, found by following ParentShardId among
 * the listed shards. A parent that has aged out of the stream is still the root (the oldest listed
 * shard's ParentShardId), so the children of one split agree.
 */
export function lineageRoot(shard: ShardLineage, byId: ReadonlyMap<string, ShardLineage>): string {
  let root = shard;
  const seen = new Set<string>();
  while (root.ParentShardId && byId.has(root.ParentShardId) && !seen.has(root.ParentShardId)) {
    seen.add(root.ParentShardId);
    root = byId.get(root.ParentShardId)!;
  }
  return root.ParentShardId ?? root.ShardId ?? '';
}

/**
 * Static assignment of shards to `nodeCount` nodes: a shard belongs to node
 * fnv1a(root ancestor's id) mod nodeCount (lineageRoot). A split's children therefore stay on their
 * parent's node (so the parent-before-child order needs no coordination); two nodes never read the
 * same shard.
 */
export function shardNode(shard: ShardLineage, byId: ReadonlyMap<string, ShardLineage>, nodeCount: number): number {
  return fnv1a(lineageRoot(shard, byId)) % nodeCount;
}

/**
 * The cluster task of a shard among `taskCount` (VIGIL_CLUSTER=true): its lineage root's number mod
 * taskCount. Kinesis numbers shards in creation order (`shardId-000000000007`), so a stream's first
 * shards spread over the tasks one by one instead of by the luck of a hash; children follow their
 * root, like shardNode's. An id without that number falls back to the hash.
 */
export function shardTask(shard: ShardLineage, byId: ReadonlyMap<string, ShardLineage>, taskCount: number): number {
  const root = lineageRoot(shard, byId);
  const n = /^shardId-(\d{1,15})$/.exec(root)?.[1];
  return (n === undefined ? fnv1a(root) : Number(n)) % taskCount;
}
