import type { Incident } from '../incidents/incident.ts';
import type { Scope } from '../kernel/verdict.ts';

/** Which incidents a silence holds: each field that is set must equal the incident's; at least one is set. */
export interface SilenceMatcher {
  propertyId: string | null;
  videoTitle: string | null;
  errorType: string | null;
  scope: Scope | null;
}

/** A silence by matcher, active from creation until expiresAtMs (wall clock) or until ended early. */
export interface Silence extends SilenceMatcher {
  id: number;
  comment: string;
  createdAtMs: number;
  expiresAtMs: number;
  /** When the silence stopped holding notifications (expired or ended); null while active. */
  endedAtMs: number | null;
  /** Incidents this silence switched to silenced, which its end switches back on. */
  silencedIncidents: number[];
}

/** True when every field the matcher sets equals the incident's. */
export function silenceMatches(m: SilenceMatcher, incident: Incident): boolean {
  return (m.propertyId === null || m.propertyId === incident.propertyId)
    && (m.videoTitle === null || m.videoTitle === incident.videoTitle)
    && (m.errorType === null || m.errorType === incident.errorType)
    && (m.scope === null || m.scope === incident.scope);
}

/** True when two silences hold the same incidents until the same time with the same comment (the same silence). */
export function sameSilence(a: SilenceMatcher & { expiresAtMs: number; comment: string }, b: SilenceMatcher & { expiresAtMs: number; comment: string }): boolean {
  return a.propertyId === b.propertyId && a.videoTitle === b.videoTitle && a.errorType === b.errorType && a.scope === b.scope
    && a.expiresAtMs === b.expiresAtMs && a.comment === b.comment;
}
