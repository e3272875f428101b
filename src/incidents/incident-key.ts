import type { Verdict } from '../kernel/verdict.ts';

/** The fields that identify what an incident is about; a verdict and an incident both carry them. */
export type IncidentKeyFields = Pick<Verdict, 'scope' | 'propertyId' | 'videoTitle' | 'errorType'>;

// Ids and titles are free text and may contain '|': escaping keeps the key injective, so
// ("a|b", "c") and ("a", "b|c") never share an incident.
const escapePart = (part: string): string => part.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');

/** The lookup key `scope|property|title|error` (parts escaped, empty title for property scope) that groups occurrences. */
export function incidentKey(fields: IncidentKeyFields): string {
  return [fields.scope, fields.propertyId, fields.videoTitle ?? '', fields.errorType].map(escapePart).join('|');
}
