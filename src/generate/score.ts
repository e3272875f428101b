import type { IncidentKind, IncidentLabel } from './incident-label.ts';

// Scores incident transitions (`vigil replay` records, or any detector's openings in that shape)
// against the labels of a generated run: which labelled incidents were found and how late, and
// which openings no label explains. Shared by the detection benchmark and the scenario tests, so both
// count the same way.

/** The part of a replay record the scoring reads. */
export interface ScoredOpening {
  type: string;
  incident_id: number;
  scope: string;
  property_id: string;
  video_title?: string;
  error_type: string;
  at: string;
}

/** How one alert label fared. */
export interface LabelOutcome {
  label: IncidentLabel;
  /** The first opening on the label's key within [start, end], or null. */
  openedAt: number | null;
  /** openedAt minus the moment the label becomes worth a page (alert_from, else start); null when missed. */
  delayMs: number | null;
  incidentId: number | null;
}

/** The score of one detector on one run. */
export interface Score {
  outcomes: LabelOutcome[];
  /** Openings that no alert label explains (wrong key, or outside its label's span and slack). */
  falseOpenings: ScoredOpening[];
  /** Openings in all. */
  openings: number;
  recall: number;
  precision: number;
  medianDelayMs: number | null;
  worstDelayMs: number | null;
}

/** Time after a label's end within which a reopening of its key still counts as that incident (a flap, not a false one). */
export const EXPLAIN_SLACK_MS = 60 * 60_000;

/** Whether a label and an opening are about the same key. */
export function sameKey(l: IncidentLabel, r: ScoredOpening): boolean {
  return l.scope === r.scope && l.property_id === r.property_id && l.error_type === r.error_type
    && (l.scope === 'property' || l.video_title === (r.video_title ?? null));
}

/** The moment a label's situation becomes worth a page. */
export function alertFromMs(l: IncidentLabel): number {
  return Date.parse(l.alert_from ?? l.start);
}

/** Scores the openings in `records` (other record types are ignored) against `labels`. */
export function scoreRun(labels: IncidentLabel[], records: ScoredOpening[], kinds?: IncidentKind[]): Score {
  const opened = records.filter((r) => r.type === 'opened');
  const alerts = labels.filter((l) => l.expect === 'alert' && (kinds === undefined || kinds.includes(l.kind)));
  const explained = new Set<number>();
  const outcomes: LabelOutcome[] = alerts.map((label) => {
    const start = Date.parse(label.start);
    const end = Date.parse(label.end);
    let first: ScoredOpening | null = null;
    for (const r of opened) {
      const at = Date.parse(r.at);
      const inSpan = at >= start && at <= end + EXPLAIN_SLACK_MS;
      // A broken title also raises its property's rate of that error (a title with 5% of the views
      // failing at 85% adds 4 points): a property incident then is a consequence, not a false one.
      if (inSpan && label.scope === 'title' && r.scope === 'property' && r.property_id === label.property_id && r.error_type === label.error_type) {
        explained.add(r.incident_id);
      }
      if (!sameKey(label, r)) continue;
      if (inSpan) explained.add(r.incident_id);
      if (at >= start && at <= end && (first === null || at < Date.parse(first.at))) first = r;
    }
    const openedAt = first === null ? null : Date.parse(first.at);
    return { label, openedAt, delayMs: openedAt === null ? null : openedAt - alertFromMs(label), incidentId: first?.incident_id ?? null };
  });
  const falseOpenings = opened.filter((r) => !explained.has(r.incident_id));
  const delays = outcomes.filter((o) => o.delayMs !== null).map((o) => Math.max(0, o.delayMs!)).sort((a, b) => a - b);
  const found = outcomes.filter((o) => o.openedAt !== null).length;
  return {
    outcomes,
    falseOpenings,
    openings: opened.length,
    recall: alerts.length === 0 ? 1 : found / alerts.length,
    precision: opened.length === 0 ? 1 : (opened.length - falseOpenings.length) / opened.length,
    medianDelayMs: delays.length === 0 ? null : delays[Math.floor((delays.length - 1) / 2)],
    worstDelayMs: delays.length === 0 ? null : delays[delays.length - 1],
  };
}
