import { ERROR_TYPES, errorIndex, type ErrorType } from './error-types.ts';
import { NIGHT_SHIFT_FACTOR, STEADY_HIGH_RATIO, type FieldRoles } from './field-profile.ts';
import { effectProbability, type ErrorEffect, type InjectedView } from './incident-plan.ts';
import type { IncidentLabel, IncidentKind } from './incident-label.ts';
import type { ClockSkew, IncidentSchedule } from './incident-schedule.ts';
import type { PropertyState } from './property-state.ts';
import { Prng } from './prng.ts';

// The labelled situations of a field run: the ways real player data goes wrong, several of each, on
// properties of fitting sizes, at seeded times after a 2 h warm-up. Every property carries at most one
// injected situation, so a label explains everything that happens to its property.

const SCHEDULE_STREAM = 4;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const WARM_UP_MS = 2 * HOUR_MS;
// Incidents end this long before the run does, so a detector has time to resolve them.
const TAIL_MS = HOUR_MS;
/** The minimum effect a property alert stands for (the detector's default): a ramp becomes worth a page past baseline + this. */
export const RAMP_ALERT_EFFECT = 0.03;
const RAMP_TARGET = 0.25;
const RAMP_MS = 60 * MINUTE_MS;
const RAMP_HOLD_MS = 15 * MINUTE_MS;
const NEW_ERROR_RATIO = 0.15;
const LONG_OUTAGE_MS = 3 * HOUR_MS;

/** How many of each situation a run of `count` properties gets (about one per 30-40 properties each). */
function quota(count: number, per300: number): number {
  return Math.max(1, Math.round((per300 * count) / 300));
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Plans the field run's incidents and must-not-alert situations (see FIELD_KINDS in the README):
 * tiny properties failing completely or showing 3 failures in 4 views, ramps, brand-new error types,
 * long outages of small properties, ordinary property outages and bad titles, bursts, and (with
 * `badClocks`) a view 24 h ahead and a producer 3 min ahead on one property. The night-shift and
 * steady-high properties of the profile get must-not-alert labels over the whole run.
 */
export function planFieldSchedule(properties: PropertyState[], roles: FieldRoles, seed: number, startMs: number, hours: number, badClocks: boolean): IncidentSchedule {
  const prng = new Prng(seed, SCHEDULE_STREAM);
  const endMs = startMs + hours * HOUR_MS;
  const effects: ErrorEffect[] = [];
  const injected: InjectedView[] = [];
  const labels: IncidentLabel[] = [];
  const clockSkews: ClockSkew[] = [];
  const used = new Set<number>([...roles.nightShift, ...roles.steadyHigh]);
  const count = properties.length;
  const size = (p: PropertyState): number => p.profile.viewsPerHour;

  /** Takes up to n unused properties whose size is within [lo, hi] (and that pass `ok`), in seeded order. */
  const take = (n: number, lo: number, hi: number, ok: (p: PropertyState) => boolean = () => true): PropertyState[] => {
    const pool = properties.filter((p) => !used.has(p.index) && size(p) >= lo && size(p) <= hi && ok(p));
    const out: PropertyState[] = [];
    while (out.length < n && pool.length > 0) {
      const p = pool.splice(prng.int(pool.length), 1)[0];
      used.add(p.index);
      out.push(p);
    }
    return out;
  };
  /** A seeded start such that [start, start + durationMs) lies between the warm-up and the tail. */
  const startFor = (durationMs: number): number | null => {
    const lo = startMs + WARM_UP_MS;
    const hi = endMs - TAIL_MS - durationMs;
    if (hi < lo) return null;
    return lo + Math.floor(prng.next() * ((hi - lo) / MINUTE_MS)) * MINUTE_MS;
  };
  const label = (kind: IncidentKind, expect: 'alert' | 'none', p: PropertyState, titleIndex: number, errorType: ErrorType, from: number, to: number, note: string, alertFrom?: number): void => {
    labels.push({
      kind, expect, scope: titleIndex < 0 ? 'property' : 'title', property_id: p.profile.id,
      video_title: titleIndex < 0 ? null : p.titles[titleIndex], error_type: errorType, start: iso(from), end: iso(to),
      ...(alertFrom !== undefined ? { alert_from: iso(alertFrom) } : {}), note,
    });
  };
  const outage = (kind: IncidentKind, p: PropertyState, titleIndex: number, errorType: ErrorType, target: number, durationMs: number, note: string): void => {
    const from = startFor(durationMs);
    if (from === null) return;
    const err = errorIndex(errorType);
    effects.push({ propertyIndex: p.index, titleIndex, errorIndex: err, probability: effectProbability(target, p.profile.baselineRatios[err]), startMs: from, endMs: from + durationMs });
    label(kind, 'alert', p, titleIndex, errorType, from, from + durationMs, note);
  };

  // Devices with wrong clocks first, so a run with them has them whatever else its size allows.
  if (badClocks) {
    // One view stamped 24 h ahead (a device with a wrong date), on a property that is otherwise quiet.
    const [far] = take(1, 1_000, Infinity);
    if (far !== undefined) {
      const at = startMs + Math.round(hours * HOUR_MS * 0.25);
      injected.push({ atMs: at, propertyIndex: far.index, titleIndex: 0, errorIndex: -1, tsOffsetMs: 24 * HOUR_MS });
      label('bad-clock', 'none', far, -1, 'networkError', at, at + 1, 'one view whose ts is 24 h ahead of the stream');
    }
    // A producer whose clock runs 3 min ahead: 30% of one property's views from 3 h to 15 h into the run.
    const [skewed] = take(1, 3_000, Infinity);
    if (skewed !== undefined) {
      const from = startMs + 3 * HOUR_MS;
      const to = Math.min(endMs, startMs + 15 * HOUR_MS);
      clockSkews.push({ propertyIndex: skewed.index, share: 0.3, offsetMs: 3 * MINUTE_MS, fromMs: from, toMs: to });
      label('bad-clock', 'none', skewed, -1, 'networkError', from, to, "30% of this property's views come from a producer whose clock is 3 min ahead");
    }
  }
  // Bad titles: 85% decodeError on a popular title (rank 2-6) of a large property for 30 min.
  for (const p of take(quota(count, 8), 5_000, Infinity)) {
    const titleIndex = 1 + prng.int(5);
    outage('bad-title', p, titleIndex, 'decodeError', 0.85, 30 * MINUTE_MS, `popularity rank ${titleIndex + 1} (${(p.sampler.shares[titleIndex] * 100).toFixed(1)}% of ~${size(p)} views/h): decodeError 85% for 30 min`);
  }
  // Tiny properties (20-60 views/h): every view fails for 3 h; must open within the hour.
  for (const p of take(quota(count, 8), 20, 60)) {
    outage('tiny-property-outage', p, -1, 'networkError', 1, 3 * HOUR_MS, `~${size(p)} views/h, every view fails with networkError for 3 h`);
  }
  // Tiny properties: 3 failures in 4 views of one title within 7 minutes; must never page.
  for (const p of take(quota(count, 6), 20, 60)) {
    const from = startFor(10 * MINUTE_MS);
    if (from === null) continue;
    const titleIndex = prng.int(Math.min(3, p.titles.length));
    [0, 100_000, 250_000, 420_000].forEach((offset, i) => {
      injected.push({ atMs: from + offset, propertyIndex: p.index, titleIndex, errorIndex: i === 2 ? -1 : errorIndex('networkError') });
    });
    label('tiny-three-of-four', 'none', p, -1, 'networkError', from, from + 420_001, `~${size(p)} views/h; 4 extra views of one title within 7 min, 3 failing with networkError`);
  }
  // Ramps on mid-size and large properties: manifestError from its baseline to 25% over an hour, held 15 min.
  for (const p of take(quota(count, 8), 3_000, Infinity)) {
    const from = startFor(RAMP_MS + RAMP_HOLD_MS);
    if (from === null) continue;
    const err = errorIndex('manifestError');
    const base = p.profile.baselineRatios[err];
    const top = effectProbability(RAMP_TARGET, base);
    effects.push({ propertyIndex: p.index, titleIndex: -1, errorIndex: err, probability: 0, endProbability: top, startMs: from, endMs: from + RAMP_MS });
    effects.push({ propertyIndex: p.index, titleIndex: -1, errorIndex: err, probability: top, startMs: from + RAMP_MS, endMs: from + RAMP_MS + RAMP_HOLD_MS });
    // The rate is linear in time: base + (target - base) * t / RAMP_MS.
    const alertFrom = from + Math.round((RAMP_MS * RAMP_ALERT_EFFECT) / (RAMP_TARGET - base));
    label('ramp', 'alert', p, -1, 'manifestError', from, from + RAMP_MS + RAMP_HOLD_MS,
      `~${size(p)} views/h: manifestError ramps from ${(base * 100).toFixed(2)}% to 25% over 60 min, then 25% for 15 min; alert_from: past baseline + 3 points`, alertFrom);
  }
  // A brand-new error type (drmError where the property never had one) on 15% of views of a ~1.2k views/h property.
  for (const p of take(quota(count, 8), 600, 3_000, (q) => q.profile.baselineRatios[errorIndex('drmError')] === 0)) {
    outage('new-error-type', p, -1, 'drmError', NEW_ERROR_RATIO, 40 * MINUTE_MS, `~${size(p)} views/h, never had drmError: 15% of views for 40 min`);
  }
  // Long outages of small properties (100-400 views/h): 60% networkError for 3 h; one property incident,
  // no title storm after it (their titles have a few views an hour, so title windows span hours).
  for (const p of take(quota(count, 5), 100, 400)) {
    outage('long-outage', p, -1, 'networkError', 0.6, LONG_OUTAGE_MS, `~${size(p)} views/h, networkError 60% for 3 h: one property incident and no title incident`);
  }
  // Ordinary property outages: 25-60% of one error type for 15-40 min, on properties from 1k views/h.
  for (const p of take(quota(count, 12), 1_000, Infinity)) {
    const errorType: ErrorType = prng.next() < 0.6 ? 'networkError' : prng.next() < 0.5 ? 'timeoutError' : 'manifestError';
    const target = 0.25 + 0.35 * prng.next();
    const minutes = 15 + prng.int(26);
    outage('property-outage', p, -1, errorType, target, minutes * MINUTE_MS, `~${size(p)} views/h, ${errorType} ${Math.round(target * 100)}% for ${minutes} min`);
  }
  // Bursts: 5-6 extra failures within 3 s; never an incident.
  for (const p of take(quota(count, 10), 100, Infinity)) {
    const from = startFor(MINUTE_MS);
    if (from === null) continue;
    const errorType = ERROR_TYPES[prng.int(ERROR_TYPES.length)];
    const failures = 5 + prng.int(2);
    for (let i = 0; i < failures; i++) {
      injected.push({ atMs: from + Math.round((i * 3000) / (failures - 1)), propertyIndex: p.index, titleIndex: p.sampler.sample(prng.next()), errorIndex: errorIndex(errorType) });
    }
    label('burst', 'none', p, -1, errorType, from, from + 3001, `${failures} extra ${errorType} failures within 3 s`);
  }
  for (const i of roles.nightShift) {
    const p = properties[i];
    const base = p.profile.baselineRatios[errorIndex('networkError')];
    label('nightly-shift', 'none', p, -1, 'networkError', startMs, endMs,
      `~${size(p)} views/h, UTC${signed(p.profile.utcOffsetHours ?? 0)}: networkError ${(base * 100).toFixed(1)}% by day, x${NIGHT_SHIFT_FACTOR} at night (rising 21-23 h, falling 6-8 h local)`);
  }
  for (const i of roles.steadyHigh) {
    const p = properties[i];
    label('steady-baseline', 'none', p, -1, 'networkError', startMs, endMs, `~${size(p)} views/h, networkError at a steady ${STEADY_HIGH_RATIO * 100}%`);
  }

  injected.sort((a, b) => a.atMs - b.atMs);
  labels.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return { effects, injected, fixedTitleStreams: [], labels, clockSkews };
}

function signed(h: number): string {
  return h >= 0 ? `+${h}` : String(h);
}
