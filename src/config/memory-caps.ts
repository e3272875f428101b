import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

// Default key and cell caps per worker, sized from the memory the process may use rather than a fixed
// count: a node with more memory tracks more titles. The caps bound the kernels' memory when they
// bite (keys beyond them are counted as dropped: vigil_keys_dropped_total and a log line).

/**
 * Bytes a tracked key costs at most in a kernel with a title of up to 60 bytes (record 52, its ring at
 * its widest a block of 128 beside it, hash slot <= 11, name <= 64; assembly/store.ts, rings.ts,
 * names.ts). Most keys take far less (a u2 ring is inside the record): the caps bound the worst case
 * (test/kernel-rings.test.ts imports keys with every ring at its widest and checks it).
 */
export const BYTES_PER_KEY = 260;
/** Bytes a cell costs at most (record 36, ring at its widest 128 beside it, incident record 64, property-cell extension 40, error name with its hash 24-48). */
export const BYTES_PER_CELL = 316;
/** Share of the memory that the kernels' keys and cells may take together (the rest: Node, I/O buffers, the incident store). */
export const MEMORY_SHARE = 0.5;
/** What one kernel's keys and cells may take: its linear memory is 32-bit (4 GiB) and holds its I/O buffers too. */
export const KERNEL_STATE_LIMIT = 3.5 * 2 ** 30;
/** Cells per key the default caps allow for (properties have a cell per error type, most titles none or one). */
export const CELLS_PER_KEY = 2;
const MIN_KEYS = 10_000;

/**
 * Memory this process may use: the cgroup's limit when there is one (a container), else the machine's.
 * `read` is injectable for tests.
 */
export function memoryLimitBytes(read: (path: string) => string | null = readText, machine = totalmem()): number {
  // cgroup v2, then v1; "max" or an absurd v1 value means no limit.
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    const text = read(path)?.trim();
    if (!text || !/^\d+$/.test(text)) continue;
    const n = Number(text);
    if (n > 0 && n < machine) return n;
  }
  return machine;
}

/** Default caps per worker for `workers` kernels sharing `memoryBytes`. */
export function defaultCaps(workers: number, memoryBytes: number): { maxKeys: number; maxCells: number } {
  const perWorker = Math.min((memoryBytes * MEMORY_SHARE) / workers, KERNEL_STATE_LIMIT);
  const maxKeys = Math.max(MIN_KEYS, Math.floor(perWorker / (BYTES_PER_KEY + CELLS_PER_KEY * BYTES_PER_CELL)));
  return { maxKeys, maxCells: maxKeys * CELLS_PER_KEY };
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
