import type { ErrorType } from './error-types.ts';

/** What kind of situation a label marks in the generated data. */
export type IncidentKind =
  | 'property-outage'
  | 'bad-title'
  | 'rare-title'
  | 'small-property-outage'
  | 'burst'
  | 'three-of-four'
  | 'steady-baseline';

/**
 * Ground truth for one injected situation: whether a detector should alert on it, for which key, and
 * the event-time window [start, end) the situation covers (ISO-8601, end exclusive).
 */
export interface IncidentLabel {
  kind: IncidentKind;
  expect: 'alert' | 'none';
  scope: 'property' | 'title';
  /** Always a string, also for properties whose lines carry a numeric id. */
  property_id: string;
  video_title: string | null;
  error_type: ErrorType;
  start: string;
  end: string;
  /** Human-readable description (strength, counts, or which incidents a short run left out). */
  note?: string;
}
