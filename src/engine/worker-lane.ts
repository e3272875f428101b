import { Piscina } from 'piscina';
import type { LaneMessage, WorkerTask } from '../kernel/worker-messages.ts';

interface Queued {
  msg: LaneMessage;
  transferList?: ArrayBuffer[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * One kernel worker: a single-thread Piscina pool plus a strict FIFO of tasks.
 * A worker's state must see its tasks in submission order. The lane posts at most
 * `depth` tasks at a time, never more than the pool's capacity (concurrentTasksPerWorker),
 * so Piscina hands each one to the thread at once, in order, and never through its own
 * queue; the thread runs them one after the other (its handler is synchronous). With a
 * depth of 2 the thread already holds its next task while the main thread is busy (e.g.
 * decoding a Kafka fetch), instead of idling until the main thread posts it. Each task
 * carries a lane sequence number that the worker checks, so a reordering would fail loudly.
 */
export class WorkerLane {
  private readonly pool: Piscina;
  private readonly queue: Queued[] = [];
  private inFlight = 0;
  private seq = 0;
  private idle: Array<() => void> = [];

  constructor(filename: string, private readonly depth = 2) {
    this.pool = new Piscina({ filename, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, concurrentTasksPerWorker: depth });
  }

  /** Tasks submitted and not yet finished (queued here or running in the thread). */
  get backlog(): number {
    return this.queue.length + this.inFlight;
  }

  /** Runs a task after every task submitted before it. */
  run<R>(task: WorkerTask, transferList?: ArrayBuffer[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ msg: { seq: this.seq++, task }, transferList, resolve: resolve as (v: unknown) => void, reject });
      this.post();
    });
  }

  private post(): void {
    while (this.inFlight < this.depth && this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.inFlight++;
      (this.pool.run(q.msg, { transferList: q.transferList }) as Promise<unknown>).then(q.resolve, q.reject).finally(() => {
        this.inFlight--;
        this.post();
        if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.idle.splice(0)) w();
      });
    }
  }

  /** Stops the thread after the queued tasks. */
  async destroy(): Promise<void> {
    if (this.inFlight > 0 || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
    await this.pool.destroy();
  }
}
