import { AssignerProtocol, type GroupMember, type PartitionAssigner } from 'kafkajs';

/** What a member owns when it joins: its partitions (`topic:partition`) and the generation it got them in. */
export interface OwnedPartitions {
  partitions: string[];
  generation: number | null;
}

/** A member as the leader sees it at a rebalance. */
export interface StickyMember {
  id: string;
  owned: OwnedPartitions;
}

export const STICKY_ASSIGNER_NAME = 'VigilStickyAssigner';

/**
 * The sticky plan (Kafka's StickyAssignor, for a single subscription): balanced, every member's count
 * within one of the others', and otherwise each partition stays with the member that owns it. Each
 * member keeps what it owns up to its quota (a partition two members claim goes to the newer
 * generation's claim, then the smaller member id); the members keeping the most get the larger quotas;
 * what is left goes, in order, to the members under their quota. Deterministic: members and partitions
 * are sorted first. A new member therefore takes only its share, and a member's departure moves only
 * its partitions (a round robin over sorted member ids moves most of them).
 */
export function planSticky(members: readonly StickyMember[], partitions: readonly string[]): Map<string, string[]> {
  const all = [...new Set(partitions)].sort(comparePartitions);
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out = new Map<string, string[]>(sorted.map((m) => [m.id, []]));
  if (sorted.length === 0) return out;
  const exists = new Set(all);
  // Claims: the newest generation wins; a tie goes to the first member id.
  const claim = new Map<string, { id: string; generation: number }>();
  for (const m of sorted) {
    const generation = m.owned.generation ?? -1;
    for (const p of m.owned.partitions) {
      if (!exists.has(p)) continue;
      const c = claim.get(p);
      if (!c || generation > c.generation) claim.set(p, { id: m.id, generation });
    }
  }
  const kept = new Map<string, string[]>(sorted.map((m) => [m.id, []]));
  for (const p of all) {
    const c = claim.get(p);
    if (c) kept.get(c.id)!.push(p);
  }
  const base = Math.floor(all.length / sorted.length);
  let larger = all.length % sorted.length;
  // The larger quotas go to the members keeping the most (fewest moves); ties by member id.
  const byKept = [...sorted].sort((a, b) => kept.get(b.id)!.length - kept.get(a.id)!.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const quota = new Map<string, number>();
  for (const m of byKept) quota.set(m.id, base + (larger-- > 0 ? 1 : 0));
  const free: string[] = [];
  for (const m of sorted) {
    const mine = kept.get(m.id)!;
    const q = quota.get(m.id)!;
    out.set(m.id, mine.slice(0, q));
    free.push(...mine.slice(q));
  }
  for (const p of all) if (!claim.has(p)) free.push(p);
  free.sort(comparePartitions);
  for (const m of sorted) {
    const mine = out.get(m.id)!;
    while (mine.length < quota.get(m.id)! && free.length > 0) mine.push(free.shift()!);
    mine.sort(comparePartitions);
  }
  return out;
}

function comparePartitions(a: string, b: string): number {
  const i = a.lastIndexOf(':');
  const j = b.lastIndexOf(':');
  const ta = a.slice(0, i);
  const tb = b.slice(0, j);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return Number(a.slice(i + 1)) - Number(b.slice(j + 1));
}

function decodeOwned(member: GroupMember): OwnedPartitions {
  try {
    const { userData } = AssignerProtocol.MemberMetadata.decode(member.memberMetadata)!;
    const o = JSON.parse(userData.toString('utf8')) as Partial<OwnedPartitions>;
    const partitions = Array.isArray(o.partitions) ? o.partitions.filter((p): p is string => typeof p === 'string') : [];
    return { partitions, generation: typeof o.generation === 'number' ? o.generation : null };
  } catch {
    // A member that says nothing (or something else) owns nothing as far as stickiness goes.
    return { partitions: [], generation: null };
  }
}

/**
 * A kafkajs partition assigner with the sticky plan: each member sends what it owns (`owned()`, read at
 * every join) in its subscription's user data, and the leader plans with planSticky. List it before
 * kafkajs's round robin, so a group whose members all have it uses it and one with an older member
 * still agrees on the round robin.
 */
export function stickyAssigner(owned: () => OwnedPartitions): PartitionAssigner {
  return ({ cluster }) => ({
    name: STICKY_ASSIGNER_NAME,
    version: 0,
    async assign({ members, topics }) {
      const partitions = topics.flatMap((topic) => cluster.findTopicPartitionMetadata(topic).map((m) => `${topic}:${m.partitionId}`));
      const plan = planSticky(members.map((m) => ({ id: m.memberId, owned: decodeOwned(m) })), partitions);
      return [...plan].map(([memberId, parts]) => {
        const assignment: Record<string, number[]> = {};
        for (const p of parts) {
          const i = p.lastIndexOf(':');
          (assignment[p.slice(0, i)] ??= []).push(Number(p.slice(i + 1)));
        }
        return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }) };
      });
    },
    protocol({ topics }) {
      const o = owned();
      return {
        name: STICKY_ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(JSON.stringify(o)) }),
      };
    },
  });
}
