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
}
