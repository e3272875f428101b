import type { KernelCounters, KernelInit } from './wasm-kernel.ts';
import type { Verdict } from './verdict.ts';
import type { DetectionParams } from './detection-params.ts';

/** Every task the main thread sends to a kernel worker (one single-thread pool per worker). */
export type WorkerTask =
  | { op: 'init'; init: KernelInit; debug?: boolean }
  | { op: 'restore-groups'; init: KernelInit; parts: Uint8Array[]; debug?: boolean }
  | { op: 'decode'; bytes: Uint8Array; owners: number; groups: number }
  | { op: 'ingest'; part: Uint8Array; plan: Float64Array; endTarget: number }
  | { op: 'advance'; target: number }
  | { op: 'finish'; target: number }
  | { op: 'set-params'; params: DetectionParams }
  | { op: 'counters' }
  /**
   * `delta`: only what changed since this kernel's previous export (WasmKernel.exportPart).
   * `background`: an incremental export goes on in the background (WasmKernel.beginExport): the reply
   * has no bytes yet, and export-slice tasks complete it between the chunks that follow.
   */
  | { op: 'export-state'; delta?: boolean; background?: boolean }
  /** Goes on with a background export for about `budgetMs`; the reply has the part once it is complete. */
  | { op: 'export-slice'; budgetMs: number }
  | { op: 'dump'; cursor: number; maxRecords: number; propertyId?: string };

/** What a WorkerLane posts: a task and its sequence number on the lane (the worker checks the order). */
export interface LaneMessage {
  seq: number;
  task: WorkerTask;
}

/** Result of a decode task: packed parts per owner and what the chunk held. */
export interface DecodeReply {
  parts: Uint8Array[];
  times: Float64Array;
  props: Uint32Array;
  records: number;
  statusCounts: number[];
  samples: Array<{ status: number; line: string }>;
}

/** Result of ingest, advance and finish tasks. */
export interface VerdictReply {
  verdicts: Verdict[];
  counters: KernelCounters;
}

/**
 * Reply of export-state and export-slice: the part once the export is complete (null while it goes
 * on in the background). Its pause is the longest time the worker stopped ingesting for it (the
 * export itself, or its start and each slice of a background export), with that stop's time on a CPU
 * and waiting in a run queue for one (null where the system does not tell); exportMs the sum of all
 * its stops; cowKeys the keys the kernel wrote before their first change (not in a slice).
 */
export interface ExportReply {
  bytes: Uint8Array | null;
  /** The part's kind (once it is complete). */
  kind: 'full' | 'delta';
  groupLo: number;
  groupHi: number;
  pauseMs: number;
  pauseCpuMs: number | null;
  pauseWaitMs: number | null;
  exportMs: number;
  slices: number;
  cowKeys: number;
}
