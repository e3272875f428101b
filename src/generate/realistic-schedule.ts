import { errorIndex, type ErrorType } from './error-types.ts';
import { effectProbability, type ErrorEffect, type InjectedView } from './incident-plan.ts';
import type { IncidentLabel, IncidentKind } from './incident-label.ts';
import type { IncidentSchedule } from './incident-schedule.ts';
import { addSpecialTitle, propertyById, type PropertyState } from './property-state.ts';
import { Prng } from './prng.ts';

const MINUTE_MS = 60_000;
const WARM_UP_MIN = 60;
// Offsets below are laid out for an 8 h run: 420 min after the warm-up. Longer runs stretch the
// offsets (not the durations) over their length; shorter runs keep the offsets and drop what does not fit.
const LAYOUT_SPAN_MIN = 420;
// An incident must end this long before the run does, so a detector has time to resolve it.
const TAIL_MARGIN_MIN = 10;
const SCHEDULE_STREAM = 2;
const RARE_TITLE_VIEWS_PER_HOUR = 20;

const RARE_TITLES = [
  'Retro Corner: "Ōkami" — 10 años después',
  'Speedrun Archive: Pixel Knights \\ Any% glitchless 🏃',
  "銀河の旅 Director's Commentary (Full, Uncut)",
];
const THREE_OF_FOUR_TITLES = [
  'Entrevista: "Mañana" \\ toma 3 (raw)',
  'Unlisted: Nature B-roll — Île de Ré 🎥',
  '試写 screener: Frontline "Draft" cut',
];

interface Outage {
  kind: IncidentKind;
  propertyId: string;
  /** Which title: 'rare' (the fixed-rate ign title), a catalog rank picked by seed, or the whole property. */
  title: 'property' | 'rare' | 'popular';
  errorType: ErrorType;
  targetRatio: number;
  startMin: number;
  durationMin: number;
}

const OUTAGES: Outage[] = [
  { kind: 'rare-title', propertyId: 'ign', title: 'rare', errorType: 'manifestError', targetRatio: 0.7, startMin: 75, durationMin: 360 },
  { kind: 'small-property-outage', propertyId: 'tiny-blog', title: 'property', errorType: 'networkError', targetRatio: 0.6, startMin: 90, durationMin: 40 },
  { kind: 'bad-title', propertyId: '177', title: 'popular', errorType: 'decodeError', targetRatio: 0.85, startMin: 180, durationMin: 30 },
  { kind: 'property-outage', propertyId: 'pbs', title: 'property', errorType: 'networkError', targetRatio: 0.25, startMin: 300, durationMin: 20 },
];

interface Burst {
  propertyId: string;
  /** -1 spreads the failures over the property's titles by popularity; otherwise the lowest catalog rank to pick from. */
  titleRankFrom: number;
  errorType: ErrorType;
  failures: number;
  spreadMs: number;
  startMin: number;
}

const BURSTS: Burst[] = [
  { propertyId: 'pbs', titleRankFrom: -1, errorType: 'decodeError', failures: 5, spreadMs: 3000, startMin: 150 },
  { propertyId: '177', titleRankFrom: 10, errorType: 'timeoutError', failures: 4, spreadMs: 2000, startMin: 230 },
  { propertyId: 'tiny-blog', titleRankFrom: -1, errorType: 'networkError', failures: 6, spreadMs: 4000, startMin: 345 },
  { propertyId: 'ign', titleRankFrom: 2, errorType: 'drmError', failures: 3, spreadMs: 2000, startMin: 380 },
  { propertyId: '177', titleRankFrom: -1, errorType: 'drmError', failures: 5, spreadMs: 3000, startMin: 420 },
];

const THREE_OF_FOUR = {
  propertyId: 'pbs',
  errorType: 'networkError' as ErrorType,
  startMin: 250,
  // Offsets of the four views; the third one plays fine.
  viewOffsetsMs: [0, 95_000, 230_000, 410_000],
  failing: [true, true, false, true],
};

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Plans the labelled incidents of a realistic run of `hours` from `startMs`: after a 1 h warm-up,
 * spread over the run; incidents that do not fit a run shorter than 8 h are left out and named in the
 * steady-baseline label's note. Appends the special titles it needs to `properties`.
 */
export function planRealisticSchedule(properties: PropertyState[], seed: number, startMs: number, hours: number): IncidentSchedule {
  const prng = new Prng(seed, SCHEDULE_STREAM);
  const runEndMs = startMs + hours * 3_600_000;
  const stretch = Math.max(1, (hours * 60 - WARM_UP_MIN) / LAYOUT_SPAN_MIN);
  const at = (layoutMin: number): number => startMs + Math.round((WARM_UP_MIN + (layoutMin - WARM_UP_MIN) * stretch) * MINUTE_MS);
  const fits = (endMs: number): boolean => endMs <= runEndMs - TAIL_MARGIN_MIN * MINUTE_MS;

  const effects: ErrorEffect[] = [];
  const injected: InjectedView[] = [];
  const labels: IncidentLabel[] = [];
  const omitted: string[] = [];

  const ign = propertyById(properties, 'ign');
  const rareTitle = addSpecialTitle(ign, RARE_TITLES[prng.int(RARE_TITLES.length)]);
  const fixedTitleStreams = [{ propertyIndex: ign.index, titleIndex: rareTitle, viewsPerHour: RARE_TITLE_VIEWS_PER_HOUR }];

  for (const outage of OUTAGES) {
    const property = propertyById(properties, outage.propertyId);
    // Ranks 2-6 of a 3000-title Zipf(1) catalog each draw 1.9-5.8% of the property's views.
    const titleIndex = outage.title === 'property' ? -1 : outage.title === 'rare' ? rareTitle : 1 + prng.int(5);
    const startAt = at(outage.startMin);
    const endAt = startAt + outage.durationMin * MINUTE_MS;
    if (!fits(endAt)) {
      omitted.push(outage.kind);
      continue;
    }
    const err = errorIndex(outage.errorType);
    effects.push({
      propertyIndex: property.index,
      titleIndex,
      errorIndex: err,
      probability: effectProbability(outage.targetRatio, property.profile.baselineRatios[err]),
      startMs: startAt,
      endMs: endAt,
    });
    labels.push({
      kind: outage.kind,
      expect: 'alert',
      scope: titleIndex < 0 ? 'property' : 'title',
      property_id: property.profile.id,
      video_title: titleIndex < 0 ? null : property.titles[titleIndex],
      error_type: outage.errorType,
      start: iso(startAt),
      end: iso(endAt),
      note: outageNote(outage, property, titleIndex),
    });
  }

  for (const burst of BURSTS) {
    const property = propertyById(properties, burst.propertyId);
    const startAt = at(burst.startMin);
    const endAt = startAt + burst.spreadMs + 1;
    const fixedTitle = burst.titleRankFrom < 0 ? -1 : burst.titleRankFrom + prng.int(10);
    if (!fits(endAt)) {
      omitted.push('burst');
      continue;
    }
    for (let i = 0; i < burst.failures; i++) {
      injected.push({
        atMs: startAt + Math.round((i * burst.spreadMs) / (burst.failures - 1)),
        propertyIndex: property.index,
        titleIndex: fixedTitle >= 0 ? fixedTitle : property.sampler.sample(prng.next()),
        errorIndex: errorIndex(burst.errorType),
      });
    }
    labels.push({
      kind: 'burst',
      expect: 'none',
      scope: fixedTitle < 0 ? 'property' : 'title',
      property_id: property.profile.id,
      video_title: fixedTitle < 0 ? null : property.titles[fixedTitle],
      error_type: burst.errorType,
      start: iso(startAt),
      end: iso(endAt),
      note: `${burst.failures} extra ${burst.errorType} failures within ${burst.spreadMs / 1000} s on top of normal traffic`,
    });
  }

  {
    const property = propertyById(properties, THREE_OF_FOUR.propertyId);
    const startAt = at(THREE_OF_FOUR.startMin);
    const lastAt = startAt + THREE_OF_FOUR.viewOffsetsMs[THREE_OF_FOUR.viewOffsetsMs.length - 1];
    if (fits(lastAt + 1)) {
      const titleIndex = addSpecialTitle(property, THREE_OF_FOUR_TITLES[prng.int(THREE_OF_FOUR_TITLES.length)]);
      THREE_OF_FOUR.viewOffsetsMs.forEach((offsetMs, i) => {
        injected.push({
          atMs: startAt + offsetMs,
          propertyIndex: property.index,
          titleIndex,
          errorIndex: THREE_OF_FOUR.failing[i] ? errorIndex(THREE_OF_FOUR.errorType) : -1,
        });
      });
      labels.push({
        kind: 'three-of-four',
        expect: 'none',
        scope: 'title',
        property_id: property.profile.id,
        video_title: property.titles[titleIndex],
        error_type: THREE_OF_FOUR.errorType,
        start: iso(startAt),
        end: iso(lastAt + 1),
        note: `title seen exactly 4 times in the whole run, 3 of them failing with ${THREE_OF_FOUR.errorType}`,
      });
    } else {
      omitted.push('three-of-four');
    }
  }

  const wistia = propertyById(properties, 'wistia');
  const steadyRatio = wistia.profile.baselineRatios[errorIndex('networkError')];
  const shortRun = omitted.length > 0 ? `; a ${hours} h run is shorter than the 8 h that holds every incident, left out: ${omitted.join(', ')}` : '';
  labels.push({
    kind: 'steady-baseline',
    expect: 'none',
    scope: 'property',
    property_id: wistia.profile.id,
    video_title: null,
    error_type: 'networkError',
    start: iso(startMs),
    end: iso(runEndMs),
    note: `wistia fails with networkError at a steady ${(steadyRatio * 100).toFixed(0)}% all the time${shortRun}`,
  });

  injected.sort((a, b) => a.atMs - b.atMs);
  labels.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return { effects, injected, fixedTitleStreams, labels };
}

function outageNote(outage: Outage, property: PropertyState, titleIndex: number): string {
  const strength = `${outage.errorType} ≈${Math.round(outage.targetRatio * 100)}% for ${outage.durationMin >= 120 ? `${outage.durationMin / 60} h` : `${outage.durationMin} min`}`;
  if (outage.title === 'property') return `every title of ${property.profile.id} (~${property.profile.viewsPerHour} views/h before scale): ${strength}`;
  if (outage.title === 'rare') return `title with ~${RARE_TITLE_VIEWS_PER_HOUR} views/h, never scaled: ${strength}`;
  const share = property.sampler.shares[titleIndex] * 100;
  return `popularity rank ${titleIndex + 1} (${share.toFixed(1)}% of ${property.profile.id}'s views): ${strength}`;
}
