import type { ErrorEffect, InjectedView } from './incident-plan.ts';
import type { IncidentLabel } from './incident-label.ts';

/** Everything a profile injects into a run: error effects, extra views, fixed-title streams and labels. */
export interface IncidentSchedule {
  effects: ErrorEffect[];
  /** Sorted by atMs. */
  injected: InjectedView[];
  /** Background streams of a single title at a fixed rate that neither the daily cycle nor scale touches. */
  fixedTitleStreams: { propertyIndex: number; titleIndex: number; viewsPerHour: number }[];
  /** Sorted by start. */
  labels: IncidentLabel[];
  /** Producers whose clock is wrong: a share of a property's views carry ts + offsetMs while active. */
  clockSkews?: ClockSkew[];
}

/** A producer whose clock runs ahead: `share` of a property's background views in [fromMs, toMs) carry ts + offsetMs. */
export interface ClockSkew {
  propertyIndex: number;
  share: number;
  offsetMs: number;
  fromMs: number;
  toMs: number;
}
