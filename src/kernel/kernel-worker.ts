// Piscina worker: owns one WASM kernel. Each worker runs in its own single-thread
// pool, so the key groups it owns are only ever touched by this thread.
import { readFileSync } from 'node:fs';
import { transferring } from './transfer.ts';
import { WasmKernel } from './wasm-kernel.ts';
import { decodeKernelState } from './kernel-state.ts';
import type { WorkerTask, DecodeReply, VerdictReply, LaneMessage, ExportReply } from './worker-messages.ts';

let kernel: WasmKernel | null = null;
let expectedSeq = 0;

function need(): WasmKernel {
  if (!kernel) throw new Error('kernel worker used before init');
  return kernel;
}

/** Runs one task against this thread's kernel, checking that tasks arrive in lane order. */
export default function handle(msg: LaneMessage): unknown {
  if (msg.seq !== expectedSeq) {
    throw new Error(`kernel worker got task ${msg.seq} (${msg.task.op}) while expecting ${expectedSeq}: tasks out of order`);
  }
  expectedSeq++;
  return run(msg.task);
}

function run(task: WorkerTask): unknown {
  switch (task.op) {
    case 'init':
      kernel = WasmKernel.create(task.init, task.debug ?? false);
      return { ok: true };
    case 'restore-groups':
      kernel = WasmKernel.fromStates(task.init, task.parts.map(decodeKernelState), task.init.groups ?? 128, task.debug ?? false);
      return { ok: true };
    case 'decode': {
      const d = need().decodeChunk(task.bytes, task.owners, task.groups);
      const reply: DecodeReply = d;
      return transferring(reply, [...d.parts.map((p) => p.buffer), d.times.buffer, d.props.buffer]);
    }
    default:
      return handleRest(task);
  }
}

function handleRest(task: WorkerTask): unknown {
  const k = need();
  switch (task.op) {
    case 'ingest':
      return verdictReply(k, k.ingest(task.part, task.plan, task.endTarget));
    case 'advance':
      return verdictReply(k, k.advance(task.target));
    case 'finish':
      // End of input: reach the highest mark of any partition, then evaluate as if no more could come.
      return verdictReply(k, [...k.advance(task.target), ...k.finish()]);
    case 'set-params':
      k.setParams(task.params);
      return { ok: true };
    case 'counters':
      return k.counters();
    case 'dump':
      return k.dumpPage(task.cursor, task.maxRecords, task.propertyId);
    case 'export-state': {
      exportStops = { longest: null, totalMs: 0, slices: 0 };
      return exportReply(k, timed(() => (task.background ? k.beginExport(task.delta ?? false) : k.exportPart(undefined, undefined, task.delta ?? false))));
    }
    case 'export-slice': {
      exportStops.slices++;
      return exportReply(k, timed(() => k.exportStep(task.budgetMs)));
    }
    default:
      throw new Error(`unknown task ${(task as { op: string }).op}`);
  }
}

/** The stops of the export in progress: the longest (wall, CPU and run-queue ms) and their sum. */
interface Stop { ms: number; cpuMs: number | null; waitMs: number | null }
let exportStops: { longest: Stop | null; totalMs: number; slices: number } = { longest: null, totalMs: 0, slices: 0 };

/** Runs one stop of an export (the worker ingests nothing meanwhile: its pause) and notes how long it took. */
function timed(run: () => Uint8Array | null): Uint8Array | null {
  const sched = threadSched();
  const started = performance.now();
  const bytes = run();
  const ms = performance.now() - started;
  const after = sched && threadSched();
  const stop: Stop = { ms, cpuMs: sched && after ? (after[0] - sched[0]) / 1e6 : null, waitMs: sched && after ? (after[1] - sched[1]) / 1e6 : null };
  exportStops.totalMs += ms;
  if (exportStops.longest === null || ms > exportStops.longest.ms) exportStops.longest = stop;
  return bytes;
}

function exportReply(k: WasmKernel, bytes: Uint8Array | null): unknown {
  const longest = exportStops.longest!;
  const reply: ExportReply = {
    bytes, kind: k.lastExportKind, groupLo: k.init.groupLo, groupHi: k.init.groupHi,
    pauseMs: longest.ms, pauseCpuMs: longest.cpuMs, pauseWaitMs: longest.waitMs, exportMs: exportStops.totalMs, slices: exportStops.slices,
    cowKeys: k.lastExportCow,
  };
  if (bytes === null) return reply;
  // The next part's buffer is made ready once this reply is on its way: outside the pause.
  setImmediate(() => k.preparePartBuffer());
  return transferring(reply, [bytes.buffer]);
}

/**
 * This thread's time on a CPU and waiting in a run queue for one, in ns (Linux's scheduler statistics
 * of the calling thread), or null where there are none. They tell a pause that is long because the
 * export works from one that is long because the thread waited for a core (other threads running).
 * Both are brought up to date at the scheduler's ticks and switches, so a few milliseconds coarse.
 */
function threadSched(): [number, number] | null {
  if (!schedReadable) return null;
  try {
    const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return [cpu, wait];
  } catch {
    schedReadable = false;
    return null;
  }
}
let schedReadable = true;

function verdictReply(k: WasmKernel, verdicts: VerdictReply['verdicts']): VerdictReply {
  return { verdicts, counters: k.counters() };
}
