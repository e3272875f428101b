import type { Counter, Histogram, MetricsRegistry, Sample } from './metrics-registry.ts';
import type { EngineStats } from '../engine/engine-stats.ts';
import type { KernelCounters } from '../kernel/wasm-kernel.ts';
import type { EventClockStats } from '../engine/event-clock.ts';
import type { IncidentManager } from '../incidents/incident-manager.ts';
import type { CommandHandler } from '../control/command-handler.ts';
import { COMPONENTS, type Health } from '../daemon/health.ts';
import type { StoreWriter } from '../daemon/store-writer.ts';

/** What the daemon's metrics read at scrape time; getters because the engine may be replaced at start. */
export interface DaemonMetricSources {
  engineStats: () => EngineStats | undefined;
  kernelCounters: () => KernelCounters | undefined;
  clockStats: () => EventClockStats | undefined;
  /** Highest event time seen, for the event-time lag. */
  maxEventTs: () => number | null;
  manager: () => IncidentManager | undefined;
  commands: () => CommandHandler | undefined;
  now: () => number;
  /** Degraded states (see src/daemon/health.ts). */
  health: () => Health;
  /** Writes waiting for the incident store. */
  storeWriter: () => StoreWriter | undefined;
  /** Transitions waiting to be written to the audit file. */
  auditPendingLines: () => number;
}

const KERNEL_COUNTERS: Array<[keyof KernelCounters, string, 'counter' | 'gauge', string]> = [
  ['late', 'vigil_late_events_total', 'counter', 'Events older than the last evaluated tick (counted at the current tick unless the late policy drops them).'],
  ['lateDropped', 'vigil_late_events_dropped_total', 'counter', 'Late events dropped by the late policy.'],
  ['keysDropped', 'vigil_keys_dropped_total', 'counter', 'Events whose key was not tracked because the key cap was reached.'],
  ['cellsDropped', 'vigil_cells_dropped_total', 'counter', 'Events whose error cell was not tracked because the cell cap was reached.'],
  ['evicted', 'vigil_keys_evicted_total', 'counter', 'Idle keys evicted by the sweep.'],
  ['duplicates', 'vigil_duplicate_events_total', 'counter', 'Views dropped as duplicates (same property and view id within the dedup horizon).'],
  ['dedupFull', 'vigil_dedup_full_total', 'counter', 'Views the duplicate filter could not remember because it was full (their copies are counted).'],
  ['keys', 'vigil_keys', 'gauge', 'Tracked keys (properties and titles) over all workers.'],
  ['cells', 'vigil_cells', 'gauge', 'Tracked key x error-type cells over all workers.'],
];

/** Registers the engine, kernel, incident and command metrics of the daemon (vigil_* names). */
export function registerDaemonMetrics(r: MetricsRegistry, s: DaemonMetricSources): void {
  r.collect('vigil_events_total', 'Valid view events decoded.', 'counter', () => s.engineStats()?.events ?? 0);
  r.collect('vigil_events_rejected_total', 'Lines rejected, by reason.', 'counter', () =>
    Object.entries(s.engineStats()?.rejected ?? {}).map(([reason, value]): Sample => ({ labels: { reason }, value })), ['reason']);
  r.collect('vigil_chunks_total', 'Chunks (batches of whole lines) pushed to the workers.', 'counter', () => s.engineStats()?.chunks ?? 0);
  r.collect('vigil_bytes_total', 'Bytes of NDJSON pushed to the workers.', 'counter', () => s.engineStats()?.bytes ?? 0);
  r.collect('vigil_verdicts_total', 'Verdicts returned by the kernels.', 'counter', () => s.engineStats()?.verdicts ?? 0);
  for (const [key, name, type, help] of KERNEL_COUNTERS) r.collect(name, help, type, () => s.kernelCounters()?.[key] ?? 0);
  r.collect('vigil_future_events_total', 'Events stamped too far ahead of their partition or of the wall clock (counted at the partition\'s time, or dropped).', 'counter',
    () => s.clockStats()?.future ?? 0);
  r.collect('vigil_future_events_dropped_total', 'Future events dropped (VIGIL_FUTURE_POLICY=drop).', 'counter', () => s.clockStats()?.futureDropped ?? 0);
  r.collect('vigil_capped_chunks_total', 'Chunks whose event time was held back by another partition still catching up.', 'counter', () => s.clockStats()?.cappedChunks ?? 0);
  r.collect('vigil_event_time_lag_seconds', 'Wall clock minus the newest event time seen (how far the pipeline is behind a live source).', 'gauge', () => {
    const ts = s.maxEventTs();
    return ts === null ? 0 : Math.max(0, (s.now() - ts) / 1000);
  });
  r.collect('vigil_incidents_open', 'Open incidents, by scope.', 'gauge', () => {
    const counts = { property: 0, title: 0 };
    for (const i of s.manager()?.openIncidents() ?? []) counts[i.scope]++;
    return Object.entries(counts).map(([scope, value]) => ({ labels: { scope }, value }));
  }, ['scope']);
  r.collect('vigil_incident_transitions_total', 'Incident transitions, by type.', 'counter', () => {
    const st = s.manager()?.stats;
    if (!st) return [];
    return (['opened', 'updated', 'resolved', 'expired', 'staleExpired'] as const).map((type) => ({ labels: { type }, value: st[type] }));
  }, ['type']);
  r.collect('vigil_commands_total', 'Control commands, by outcome (RabbitMQ and HTTP admin).', 'counter', () => {
    const st = s.commands()?.stats;
    if (!st) return [];
    return Object.entries(st).map(([outcome, value]) => ({ labels: { outcome }, value }));
  }, ['outcome']);
  r.collect('vigil_degraded', 'Whether a component is degraded now (1), by component; /readyz answers 503 while any is.', 'gauge', () => {
    const h = s.health();
    return COMPONENTS.map((component) => ({ labels: { component }, value: h.state(component) === null ? 0 : 1 }));
  }, ['component']);
  r.collect('vigil_degraded_seconds', 'How long a component has been degraded (0 when it works), by component.', 'gauge', () => {
    const h = s.health();
    return COMPONENTS.map((component) => ({ labels: { component }, value: Math.max(0, (s.now() - (h.state(component)?.sinceMs ?? s.now())) / 1000) }));
  }, ['component']);
  r.collect('vigil_component_failures_total', 'Failures of a component (each failed attempt: store write, checkpoint, audit write), by component.', 'counter', () => {
    const h = s.health();
    return COMPONENTS.map((component) => ({ labels: { component }, value: h.failures[component] }));
  }, ['component']);
  r.collect('vigil_store_writes_pending', 'Verdict batches and expiries waiting for the incident store (the sources wait while any do).', 'gauge',
    () => s.storeWriter()?.pending() ?? 0);
  r.collect('vigil_store_write_retries_total', 'Retried attempts at writes the incident store had refused.', 'counter', () => s.storeWriter()?.stats.retries ?? 0);
  r.collect('vigil_audit_lines_pending', 'Transitions waiting to be written to VIGIL_TRANSITIONS_FILE.', 'gauge', () => s.auditPendingLines());
}

/** The daemon's histograms (and counters), observed where the work happens. */
export interface DaemonHistograms {
  /** Wall clock at an incident's opening minus the event time it opened at (live sources: the detection delay). */
  eventToIncident: Histogram;
  /** A chunk's time from entering the engine to its verdicts being delivered. */
  chunkProcessing: Histogram;
  /** Writing a kernel checkpoint (drain, snapshots, fsync, rename), by what asked for it. */
  checkpoint: Histogram;
  /** How long a worker stopped ingesting for its part of a checkpoint (its longest stop), by the part's kind. */
  checkpointPause: Histogram;
  /** Background merges of checkpoint chains into a new full base, by how they ended (merged, failed, stopped). */
  merges: Counter;
  /** A merge's time, from its start to its merged parts and manifest written (merges that ended merged). */
  merge: Histogram;
}

/** Registers the daemon's histograms (seconds). */
export function registerDaemonHistograms(r: MetricsRegistry): DaemonHistograms {
  return {
    eventToIncident: r.histogram('vigil_event_to_incident_seconds',
      'Wall clock when an incident opened minus the event time it opened at: for a live source, how long after the views it took to alert.',
      [0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 900, 3600]),
    chunkProcessing: r.histogram('vigil_chunk_processing_seconds', 'From a chunk entering the engine (decode, counting, detection on the workers) to its verdicts being delivered.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
    checkpoint: r.histogram('vigil_checkpoint_duration_seconds', 'Writing a kernel checkpoint (in-flight chunks, every worker\'s snapshot, fsync, rename), by trigger (command, shutdown).',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], ['trigger']),
    checkpointPause: r.histogram('vigil_checkpoint_pause_seconds',
      'How long a worker stopped ingesting for its part of a checkpoint, by kind (full, delta): the whole export at the barrier, or the longest step of an incremental part written in the background.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], ['kind']),
    merges: r.counter('vigil_checkpoint_merges_total',
      'Background merges of a checkpoint chain into a new full base, by outcome: merged, failed (the chain goes on), stopped (ended by the daemon\'s stop).', ['outcome']),
    merge: r.histogram('vigil_checkpoint_merge_seconds', 'A background merge of a checkpoint chain, from its start to its merged parts and manifest written (merges that ended merged).',
      [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]),
  };
}
