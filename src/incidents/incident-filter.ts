import type { Scope } from '../kernel/verdict.ts';
import type { Incident, IncidentStatus } from './incident.ts';
import { IncidentError } from './incident-error.ts';

/** Filters for listing incidents; every field is optional and they combine with AND. */
export interface IncidentFilter {
  status?: IncidentStatus;
  propertyId?: string;
  scope?: Scope;
  errorType?: string;
  /** Inclusive lower bound of openedAtMs. */
  openedFromMs?: number;
  /** Exclusive upper bound of openedAtMs. */
  openedBeforeMs?: number;
  /** Text contained in the property id, video title or error type (ASCII letters case-insensitively). */
  search?: string;
  /** Return only incidents with an id below this one: the nextCursor of the previous page. */
  cursor?: number;
  /** Page size, 1..MAX_PAGE_LIMIT; DEFAULT_PAGE_LIMIT when absent. */
  limit?: number;
}

/** One page of incidents, newest (highest id) first; nextCursor is null on the last page. */
export interface IncidentPage {
  incidents: Incident[];
  nextCursor: number | null;
}

/** Page size when a filter names none. */
export const DEFAULT_PAGE_LIMIT = 50;
/** Largest page a caller may ask for. */
export const MAX_PAGE_LIMIT = 500;

/** Each filter field with its SQL condition, in the fixed order that names the prepared list query of a field combination. */
export const FILTER_CLAUSES = [
  ['status', 'status = @status'],
  ['propertyId', 'property_id = @propertyId'],
  ['scope', 'scope = @scope'],
  ['errorType', 'error_type = @errorType'],
  ['openedFromMs', 'opened_at_ms >= @openedFromMs'],
  ['openedBeforeMs', 'opened_at_ms < @openedBeforeMs'],
  // SQLite's lower() folds ASCII letters only; the dashboard filters its live rows the same way.
  ['search', "(instr(lower(property_id), lower(@search)) > 0 OR instr(lower(coalesce(video_title, '')), lower(@search)) > 0 OR instr(lower(error_type), lower(@search)) > 0)"],
  ['cursor', 'id < @cursor'],
] as const;

function invalidFilter(message: string): IncidentError {
  return new IncidentError('INCIDENT_FILTER_INVALID', message);
}

/** Returns the filter's page limit, or throws INCIDENT_FILTER_INVALID naming the field and value that cannot be run. */
export function checkIncidentFilter(filter: IncidentFilter): number {
  const limit = filter.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw invalidFilter(`limit must be an integer from 1 to ${MAX_PAGE_LIMIT}, got ${String(limit)}`);
  }
  if (filter.cursor !== undefined && !(Number.isInteger(filter.cursor) && filter.cursor > 0)) {
    throw invalidFilter(`cursor must be a positive integer incident id, got ${String(filter.cursor)}`);
  }
  for (const field of ['openedFromMs', 'openedBeforeMs'] as const) {
    const value = filter[field];
    if (value !== undefined && !Number.isFinite(value)) throw invalidFilter(`${field} must be a finite epoch ms, got ${String(value)}`);
  }
  return limit;
}
