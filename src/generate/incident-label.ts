import type { ErrorType } from './error-types.ts';

/** What kind of situation a label marks in the generated data. */
export type IncidentKind =
  | 'property-outage'
  | 'bad-title'
  | 'rare-title'
  | 'small-property-outage'
  | 'burst'
  | 'three-of-four'
  | 'steady-baseline'
  // Kinds of the field profile (field-schedule.ts): what real player data does every day.
  | 'tiny-property-outage'
  | 'tiny-three-of-four'
  | 'nightly-shift'
  | 'ramp'
  | 'new-error-type'
  | 'long-outage'
  | 'bad-clock';

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
  /**
   * When the situation becomes worth a page, if later than `start` (a ramp: the moment its rate passes
   * the property's baseline plus the minimum effect); detection delays are measured from here.
   */
  alert_from?: string;
  /** Human-readable description (strength, counts, or which incidents a short run left out). */
  note?: string;
}
