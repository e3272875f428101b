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
  /** `delta`: only what changed since this kernel's previous export (WasmKernel.exportPart). */
  | { op: 'export-state'; delta?: boolean }
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
