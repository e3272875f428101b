// kafkajs 2.2.4 is unmaintained; this module carries the fixes and the one addition Vigil depends on,
// and installs Vigil's record batch decoder (kafkajs-record-batch.ts) and decompressors (kafka-codecs.ts).
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import ConsumerGroup from 'kafkajs/src/consumer/consumerGroup.js';
import { installRecordBatchDecoder } from './kafkajs-record-batch.ts';
import { registerKafkaCodecs } from './kafka-codecs.ts';

interface PatchableQueue {
  pending: unknown[];
  scheduleCheckPendingRequests(): void;
  __vigilPatched?: boolean;
}

/** Applies every patch below, installs Vigil's record batch decoder and its snappy, lz4 and zstd decompressors; calling it again changes nothing. */
export function patchKafkajs(): void {
  registerKafkaCodecs();
  patchGroupJoinGeneration();
  patchEmptyQueueCheck();
  leanDecoder = installRecordBatchDecoder();
}

/**
 * Works around kafkajs issue #1704: every answered request re-arms a ~1 ms timer that checks the
 * pending queue even when it is empty, forever, until the connection is destroyed. A connection
 * that broke during a broker restart is never destroyed, so the loop kept `vigil run` from exiting
 * after SIGTERM (and burns CPU meanwhile). With nothing pending there is nothing to check: push()
 * queues a request before it schedules a check, so skipping an empty check loses nothing.
 */
function patchEmptyQueueCheck(): void {
  const proto = (RequestQueue as unknown as { prototype: PatchableQueue }).prototype;
  if (proto.__vigilPatched) return;
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: PatchableQueue) {
    if (this.pending.length === 0) return;
    original.call(this);
  };
  proto.__vigilPatched = true;
}

let leanDecoder = false;

/** Which decoder reads fetched record batches: Vigil's, unless a fetch in this process ran before patchKafkajs. */
export function recordBatchDecoder(): 'vigil' | 'kafkajs' {
  return leanDecoder ? 'vigil' : 'kafkajs';
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
