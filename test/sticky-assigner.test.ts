// The sticky partition assigner (src/ingest/sticky-assigner.ts): balanced, and otherwise every
// partition stays with the member that owns it, so a rebalance moves (and restores from a
// checkpoint) only what a fair share needs. The plan alone, and through kafkajs's group protocol
// encoding as the group leader runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssignerProtocol } from 'kafkajs';
import { planSticky, stickyAssigner, STICKY_ASSIGNER_NAME, type OwnedPartitions } from '../src/ingest/sticky-assigner.ts';

const parts = (n: number, topic = 't') => Array.from({ length: n }, (_, i) => `${topic}:${i}`);
const owned = (partitions: string[], generation: number | null = 5): OwnedPartitions => ({ partitions, generation });

function assertBalancedCover(plan: Map<string, string[]>, all: string[]): void {
  const got = [...plan.values()].flat().sort();
  assert.deepEqual(got, [...all].sort(), 'every partition assigned exactly once');
  const sizes = [...plan.values()].map((p) => p.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced: ${sizes.join(', ')}`);
}

const moved = (before: Map<string, string[]>, after: Map<string, string[]>) =>
  [...after].reduce((n, [id, ps]) => n + ps.filter((p) => !(before.get(id) ?? []).includes(p)).length, 0);

test('a fresh group: balanced and deterministic', () => {
  const members = ['c', 'a', 'b'].map((id) => ({ id, owned: owned([], null) }));
  const plan = planSticky(members, parts(8));
  assertBalancedCover(plan, parts(8));
  assert.deepEqual(plan, planSticky([...members].reverse(), [...parts(8)].reverse()));
});

test('a member joins: it takes its share only, the others keep the rest', () => {
  const before = planSticky([{ id: 'a', owned: owned([]) }, { id: 'b', owned: owned([]) }], parts(6));
  const members = [...before].map(([id, ps]) => ({ id, owned: owned(ps) }));
  const after = planSticky([...members, { id: 'c', owned: owned([]) }], parts(6));
  assertBalancedCover(after, parts(6));
  assert.equal(moved(before, after), 2, 'two partitions move, to the new member');
  for (const [id, ps] of before) assert.ok(after.get(id)!.every((p) => ps.includes(p)), `${id} only gave partitions up`);
});

test('a member leaves: only its partitions move', () => {
  const three = planSticky(['a', 'b', 'c'].map((id) => ({ id, owned: owned([]) })), parts(7));
  const left = three.get('b')!;
  const after = planSticky(['a', 'c'].map((id) => ({ id, owned: owned(three.get(id)!) })), parts(7));
  assertBalancedCover(after, parts(7));
  for (const id of ['a', 'c']) assert.ok(three.get(id)!.every((p) => after.get(id)!.includes(p)), `${id} kept its partitions`);
  assert.deepEqual([...after.values()].flat().filter((p) => left.includes(p)).sort(), [...left].sort());
});

test('two members claim a partition: the newer generation keeps it; partitions gone from the topic are dropped', () => {
  const plan = planSticky([
    { id: 'a', owned: owned(['t:0', 't:1', 't:9'], 3) },
    { id: 'b', owned: owned(['t:1', 't:2'], 4) },
  ], parts(4));
  assertBalancedCover(plan, parts(4));
  assert.ok(plan.get('b')!.includes('t:1'), 'the claim of generation 4 wins');
  assert.ok(plan.get('a')!.includes('t:0'));
});

test('through the group protocol: what each member owns goes in its subscription, the leader\'s plan in the assignments', async () => {
  const cluster = { findTopicPartitionMetadata: (topic: string) => (topic === 'views' ? parts(6).map((_, i) => ({ partitionId: i })) : []) };
  const owners: Record<string, OwnedPartitions> = { m1: owned(['views:0', 'views:1', 'views:2'], 7), m2: owned(['views:3', 'views:4', 'views:5'], 7), m3: owned([], null) };
  const members = Object.entries(owners).map(([memberId, o]) => {
    const assigner = stickyAssigner(() => o)({ cluster, groupId: 'g', logger: undefined } as never);
    const p = assigner.protocol({ topics: ['views'] });
    assert.equal(p.name, STICKY_ASSIGNER_NAME);
    return { memberId, memberMetadata: p.metadata };
  });
  const leader = stickyAssigner(() => owned([], null))({ cluster, groupId: 'g', logger: undefined } as never);
  const result = await leader.assign({ members, topics: ['views'] });
  const plan = new Map(result.map(({ memberId, memberAssignment }) => [memberId, (AssignerProtocol.MemberAssignment.decode(memberAssignment)!.assignment.views ?? []).map((p) => `views:${p}`)]));
  assertBalancedCover(plan, parts(6, 'views'));
  assert.equal(plan.get('m3')!.length, 2);
  assert.ok(plan.get('m1')!.every((p) => owners.m1.partitions.includes(p)));
  assert.ok(plan.get('m2')!.every((p) => owners.m2.partitions.includes(p)));
});
