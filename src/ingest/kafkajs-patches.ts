// kafkajs 2.2.4 is unmaintained; this module carries the one fix Vigil depends on.
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';

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
  const proto = (RequestQueue as unknown as { prototype: PatchableQueue }).prototype;
  if (proto.__vigilPatched) return;
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: PatchableQueue) {
    if (this.pending.length === 0) return;
    original.call(this);
  };
  proto.__vigilPatched = true;
}
