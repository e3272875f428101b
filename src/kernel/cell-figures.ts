import type { Scope } from './verdict.ts';

/**
 * The current figures of one cell (a property or title x error type) as the detector sees them:
 * its window, recent window, baseline and thresholds at the latest evaluated tick, with the
 * views counted since. Field names are snake_case because this is also the dump's record schema.
 */
export interface CellFigures {
  scope: Scope;
  property_id: string;
  video_title: string | null;
  error_type: string;
  /** The evaluation tick the figures refer to (event time, ms). */
  at_ms: number;
  /** An incident is open for this cell in the detector. */
  open: boolean;
  window_views: number;
  window_failures: number;
  error_ratio: number;
  window_span_ms: number;
  recent_views: number;
  recent_failures: number;
  recent_error_ratio: number;
  /** The reference the threshold is built on: a property's baseline upper bound, lifted by its fast level; a title's baseline shrunk toward its property's. */
  baseline_ratio: number;
  /** The threshold the window must clear to open (baseline or property span rate, plus minimum effect). */
  threshold_ratio: number;
  /** The threshold of the recent window (the fast path to open). */
  recent_threshold_ratio: number;
  /** The threshold the open incident crossed, which resolves it; null when not open. */
  open_threshold_ratio: number | null;
  open_baseline_ratio: number | null;
  opened_at_ms: number | null;
  impacted_views: number;
  /** The property has folded enough views to alert. */
  warm: boolean;
  /** The baseline is frozen (suspect or open). */
  hot: boolean;
  last_event_ts: number;
}

/** f64 fields per record written by the kernel's dumpCells (assembly/dump.ts). */
export const DUMP_RECORD_FIELDS = 20;

/** One page of a worker's cells: the figures and where the next page starts (-1: done). */
export interface CellFiguresPage {
  figures: CellFigures[];
  nextCursor: number;
}
