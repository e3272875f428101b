import { errorIndex, type ErrorType } from './error-types.ts';
import { effectProbability, type ErrorEffect } from './incident-plan.ts';
import type { IncidentLabel } from './incident-label.ts';
import { propertyById, type PropertyState } from './property-state.ts';
import { Prng } from './prng.ts';

const WARM_UP_MS = 120_000;
const PERIOD_MS = 300_000;
const HOUR_MS = 3_600_000;
// Streams 1000+k keep each incident's draws independent of how far the schedule was extended.
const INCIDENT_STREAM_BASE = 1000;

// Only the two busiest demo properties get property-wide incidents: at 8-17 views/s they reach a
// 1000-view window within about two minutes, so the incident is visible while it lasts.
const PROPERTY_INCIDENTS: { propertyId: string; errorType: ErrorType; targetRatio: number }[] = [
  { propertyId: '177', errorType: 'networkError', targetRatio: 0.3 },
  { propertyId: 'pbs', errorType: 'manifestError', targetRatio: 0.4 },
  { propertyId: '177', errorType: 'timeoutError', targetRatio: 0.25 },
  { propertyId: 'pbs', errorType: 'networkError', targetRatio: 0.35 },
];
// Top-3 titles of these catalogs get 0.5-3 views/s in the demo.
const TITLE_INCIDENTS: { propertyId: string; errorType: ErrorType; targetRatio: number }[] = [
  { propertyId: '177', errorType: 'decodeError', targetRatio: 0.9 },
  { propertyId: 'pbs', errorType: 'drmError', targetRatio: 0.85 },
  { propertyId: 'wistia', errorType: 'decodeError', targetRatio: 0.9 },
  { propertyId: '177', errorType: 'networkError', targetRatio: 0.8 },
];

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The demo's endless incident plan: after a 2 min warm-up, one incident every 5 min lasting 2-4 min,
 * alternating property-wide and title failures, plus one steady-baseline label per hour for wistia.
 * The plan is a function of the seed and the schedule's start alone; a run that starts later (a
 * restarted demo) takes it up at its own start, with whatever incident is in progress then.
 * Extended lazily so labels accumulate as the run reaches them.
 */
export class DemoSchedule {
  private nextIncident = 0;
  private nextHour = 0;

  /** Prepares the plan that started at `scheduleStartMs` for a run over [startMs, endMs); endMs may be Infinity. */
  constructor(
    private readonly properties: readonly PropertyState[],
    private readonly seed: number,
    private readonly scheduleStartMs: number,
    startMs: number,
    private readonly endMs: number,
  ) {
    // Incidents and hours that ended before the run starts are skipped.
    this.nextIncident = Math.max(0, Math.floor((startMs - scheduleStartMs - WARM_UP_MS) / PERIOD_MS));
    if (this.nextIncident > 0 && this.incidentAt(this.nextIncident) + this.incidentStream(this.nextIncident).durationMs <= startMs) this.nextIncident++;
    this.nextHour = Math.max(0, Math.floor((startMs - scheduleStartMs) / HOUR_MS));
  }

  private incidentAt(k: number): number {
    return this.scheduleStartMs + WARM_UP_MS + k * PERIOD_MS;
  }

  // Incident k's own random stream: its duration first, then the rest of its draws.
  private incidentStream(k: number): { durationMs: number; prng: Prng } {
    const prng = new Prng(this.seed, INCIDENT_STREAM_BASE + k);
    return { durationMs: 120_000 + 10_000 * prng.int(13), prng };
  }

  /** Appends, in start order, every effect and label that starts before `horizonMs` and was not appended yet. */
  extendTo(horizonMs: number, effects: ErrorEffect[], labels: IncidentLabel[]): void {
    const limit = Math.min(horizonMs, this.endMs);
    for (;;) {
      const incidentAt = this.incidentAt(this.nextIncident);
      const hourAt = this.scheduleStartMs + this.nextHour * HOUR_MS;
      if (Math.min(incidentAt, hourAt) >= limit) return;
      if (hourAt <= incidentAt) {
        labels.push(this.baselineLabel(hourAt));
        this.nextHour++;
      } else {
        this.addIncident(this.nextIncident, incidentAt, effects, labels);
        this.nextIncident++;
      }
    }
  }

  private baselineLabel(hourAt: number): IncidentLabel {
    return {
      kind: 'steady-baseline',
      expect: 'none',
      scope: 'property',
      property_id: 'wistia',
      video_title: null,
      error_type: 'networkError',
      start: iso(hourAt),
      end: iso(Math.min(hourAt + HOUR_MS, this.endMs)),
      note: 'wistia fails with networkError at a steady 12% all the time',
    };
  }

  private addIncident(k: number, startAt: number, effects: ErrorEffect[], labels: IncidentLabel[]): void {
    const { durationMs, prng } = this.incidentStream(k);
    const endAt = Math.min(startAt + durationMs, this.endMs);
    const propertyWide = k % 2 === 0;
    const spec = propertyWide ? PROPERTY_INCIDENTS[(k / 2) % PROPERTY_INCIDENTS.length] : TITLE_INCIDENTS[((k - 1) / 2) % TITLE_INCIDENTS.length];
    const property = propertyById(this.properties, spec.propertyId);
    const titleIndex = propertyWide ? -1 : prng.int(3);
    const err = errorIndex(spec.errorType);
    effects.push({
      propertyIndex: property.index,
      titleIndex,
      errorIndex: err,
      probability: effectProbability(spec.targetRatio, property.profile.baselineRatios[err]),
      startMs: startAt,
      endMs: endAt,
    });
    labels.push({
      kind: propertyWide ? 'property-outage' : 'bad-title',
      expect: 'alert',
      scope: propertyWide ? 'property' : 'title',
      property_id: property.profile.id,
      video_title: propertyWide ? null : property.titles[titleIndex],
      error_type: spec.errorType,
      start: iso(startAt),
      end: iso(endAt),
      note: `demo incident ${k + 1}: ${spec.errorType} ≈${Math.round(spec.targetRatio * 100)}% for ${Math.round((endAt - startAt) / 1000)} s`,
    });
  }
}
