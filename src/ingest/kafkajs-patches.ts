// kafkajs 2.2.4 is unmaintained; this module carries the fixes and the one addition Vigil depends on.
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import ConsumerGroup from 'kafkajs/src/consumer/consumerGroup.js';
import Long from 'kafkajs/src/utils/long.js';

interface PatchableQueue {
  pending: unknown[];
  scheduleCheckPendingRequests(): void;
  __vigilPatched?: boolean;
}

/**
 * Works around kafkajs issue #1704: every answered request re-arms a ~1 ms timer that checks the
 * pending queue even when it is empty, forever, until the connection is destroyed. A connection
 * that broke during a broker restart is never destroyed, so the loop kept `vigil run` from exiting
 * after SIGTERM (and burns CPU meanwhile). With nothing pending there is nothing to check: push()
 * queues a request before it schedules a check, so skipping an empty check loses nothing.
 */
export function patchKafkajs(): void {
  patchGroupJoinGeneration();
  patchLongFromString();
  const proto = (RequestQueue as unknown as { prototype: PatchableQueue }).prototype;
  if (proto.__vigilPatched) return;
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: PatchableQueue) {
    if (this.pending.length === 0) return;
    original.call(this);
  };
  proto.__vigilPatched = true;
}

interface PatchableGroup {
  generationId: number | null;
  instrumentationEmitter: { emit(name: string, payload?: unknown): unknown; __vigilGroup?: PatchableGroup };
  joinAndSync(): Promise<void>;
  __vigilPatched?: boolean;
}

/** The event name kafkajs gives GROUP_JOIN (`consumer.events.GROUP_JOIN`). */
const GROUP_JOIN = 'consumer.group_join';

/**
 * Adds the group generation to kafkajs's GROUP_JOIN payload (`generationId`), which it leaves out:
 * the cluster's task checkpoints are ordered and fenced by it (a member that lost a task writes at
 * an older generation than the new owner). The consumer's emitter outlives the ConsumerGroup (kafkajs
 * makes a new one when it restarts the consumer), so the emitter asks the group that joins last.
 */
function patchGroupJoinGeneration(): void {
  const proto = (ConsumerGroup as unknown as { prototype: PatchableGroup }).prototype;
  if (proto.__vigilPatched) return;
  const original = proto.joinAndSync;
  proto.joinAndSync = function (this: PatchableGroup) {
    const emitter = this.instrumentationEmitter;
    if (emitter.__vigilGroup === undefined) {
      const emit = emitter.emit;
      emitter.emit = function (this: unknown, name: string, payload?: unknown) {
        const group = emitter.__vigilGroup;
        if (name === GROUP_JOIN && payload !== null && typeof payload === 'object' && group) payload = { ...payload, generationId: group.generationId };
        return emit.call(this, name, payload);
      };
    }
    emitter.__vigilGroup = this;
    return original.call(this);
  };
  proto.__vigilPatched = true;
}

interface PatchableLong {
  fromString(str: string): unknown;
  __vigilPatched?: boolean;
}

/**
 * kafkajs decodes every record's offset and timestamp as `Long.fromValue(<the batch's first offset or
 * timestamp, a string>).add(delta).toString()`: the same two strings parsed into a BigInt again for
 * every record (about 0.06-0.09 s of main-thread CPU per million records, `bench/kafka.js`). A Long never
 * changes once made (only its constructor sets its value), so the last two parsed are handed out again.
 */
function patchLongFromString(): void {
  const cls = Long as unknown as PatchableLong;
  if (cls.__vigilPatched) return;
  const original = cls.fromString.bind(cls);
  let s0: string | null = null;
  let l0: unknown = null;
  let s1: string | null = null;
  let l1: unknown = null;
  cls.fromString = (str: string) => {
    if (str === s0) return l0;
    if (str === s1) return l1;
    const l = original(str);
    s1 = s0;
    l1 = l0;
    s0 = str;
    l0 = l;
    return l;
  };
  cls.__vigilPatched = true;
}
