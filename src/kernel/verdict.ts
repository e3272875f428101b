/** Scope of a detection key: a whole customer property, or one video title within it. */
export type Scope = 'property' | 'title';

/** What the detector decided for one (scope, property, title, error type) key at one evaluation tick. */
export type VerdictKind = 'open' | 'update' | 'resolve' | 'expire';

/**
 * One decision of the detection kernel, already joined with the key's names.
 * The engine emits verdicts in a deterministic order: by `atMs`, then kind, scope, property, title, error type.
 */
export interface Verdict {
  kind: VerdictKind;
  scope: Scope;
  propertyId: string;
  /** Null for property scope. */
  videoTitle: string | null;
  errorType: string;
  /** Event time of the evaluation tick that produced this verdict (epoch ms). */
  atMs: number;
  /** Failures / views over the evaluated window (0..1). */
  errorRatio: number;
  /** The rate the window had to clear to open (0..1). */
  thresholdRatio: number;
  /** The key's baseline rate for this error type (0..1), frozen while an incident is open. */
  baselineRatio: number;
  windowViews: number;
  windowFailures: number;
  windowSpanMs: number;
  /** The configured minimum window for the scope ("Minimum Window 1000 views"). */
  minWindowViews: number;
  /** Views per hour of the key over the window. */
  viewsPerHour: number;
  /** Failed views of this error type since the incident opened, including the opening window. */
  impactedViews: number;
  /** Event time at which the incident opened (equals atMs for 'open'). */
  openedAtMs: number;
}
