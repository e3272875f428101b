import { Piscina } from 'piscina';
import type { WorkerTask } from '../kernel/worker-messages.ts';

/**
 * One kernel worker: a single-thread Piscina pool plus a strict FIFO of tasks.
 * Piscina may start queued tasks out of submission order, and a worker's state
 * must see its chunks in order, so a lane keeps exactly one task in flight.
 */
export class WorkerLane {
  private readonly pool: Piscina;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(filename: string) {
    this.pool = new Piscina({ filename, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, concurrentTasksPerWorker: 1 });
  }

  /** Runs a task after every task submitted before it has finished. */
  run<R>(task: WorkerTask, transferList?: ArrayBuffer[]): Promise<R> {
    const result = this.tail.then(() => this.pool.run(task, { transferList }) as Promise<R>);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Stops the thread after the queued tasks. */
  async destroy(): Promise<void> {
    await this.tail;
    await this.pool.destroy();
  }
}
