import type { ReceiverMatch } from '../config/notify-config.ts';
import type { Incident } from '../incidents/incident.ts';

/** True when the receiver's route takes this incident: every list it sets contains the incident's value. */
export function routeMatches(m: ReceiverMatch, i: Incident): boolean {
  return (m.propertyIds === null || m.propertyIds.includes(i.propertyId))
    && (m.videoTitles === null || (i.videoTitle !== null && m.videoTitles.includes(i.videoTitle)))
    && (m.errorTypes === null || m.errorTypes.includes(i.errorType))
    && (m.scopes === null || m.scopes.includes(i.scope));
}
