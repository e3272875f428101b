/**
 * Key groups, as Flink assigns them: a property's key group is (hash >> 32) mod G (assembly/chunk.ts
 * groupOf, which hashes), and W workers own contiguous ranges of groups. These two functions are
 * inverse: ownerOfGroup(g) = w exactly when g is in groupRange(w). The WASM decoder routes records
 * with its own ownerOfGroup; test/key-groups.test.ts holds the two to the same answers.
 */

/** The groups [lo, hi) worker `worker` of `workers` owns. */
export function groupRange(worker: number, workers: number, groups: number): { lo: number; hi: number } {
  return { lo: Math.ceil((worker * groups) / workers), hi: Math.ceil(((worker + 1) * groups) / workers) };
}

/** The worker of `workers` that owns group `group`. */
export function ownerOfGroup(group: number, workers: number, groups: number): number {
  return Math.floor((group * workers) / groups);
}
