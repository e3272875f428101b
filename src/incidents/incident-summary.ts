import type { Incident } from './incident.ts';

/** A ratio (0..1) as the dashboard shows it: a percentage with one decimal and a % sign, e.g. "22.4%". */
export function formatErrorPercent(ratio: number): string {
  // Rounding the tenths as an integer avoids toFixed's binary surprises: (0.2245 * 100).toFixed(1) is "22.4".
  return `${(Math.round(ratio * 1000) / 10).toFixed(1)}%`;
}

/** The one-line plain-text description of an incident, in the reference dashboard's wording, from its opening figures. */
export function formatIncidentSummary(incident: Incident): string {
  const percent = formatErrorPercent(incident.initialErrorRatio);
  const cause = `due to an error of ${incident.errorType}`;
  if (incident.scope === 'title') {
    return `Video Title ${incident.videoTitle ?? ''} is failing at a significant rate (${percent}) ${cause}`;
  }
  return `Overall error-rate is significantly high (${percent}) ${cause}`;
}
