import { createHash } from 'node:crypto';
import type { Incident, TimelineSample, TransitionType } from '../incidents/incident.ts';
import { incidentKey, type IncidentKeyFields } from '../incidents/incident-key.ts';

/** Version of the record format on the transitions topic; a reader refuses (skips and counts) others. */
export const TRANSITION_RECORD_VERSION = 1;

/**
 * One transition as published on `<cluster>.transitions` (the record's value, JSON). The record key is
 * the incident's identity, so compaction keeps each incident's latest state.
 */
export interface TransitionRecord {
  v: typeof TRANSITION_RECORD_VERSION;
  /** The node whose IncidentManager derived (or, for a silence, changed) it. */
  node: string;
  /** The incident's identity: its key and its opening event time (see incidentIdentity). */
  identity: string;
  type: TransitionType;
  /** Event time of the transition. */
  atMs: number;
  /** The incident after the transition; its id is derived from the identity. */
  incident: Incident;
  /** The timeline sample the deriving node stored with this transition, if it stored one. */
  sample: TimelineSample | null;
}

/**
 * An incident's identity in the cluster: scope, property, title and error type (the incident key,
 * escaped) and the event time of its opening. The detector derives the same opening from the same
 * records on whichever node evaluates them (the stream equals the replay), so a node that takes a
 * task over and re-derives an opening finds the same identity.
 */
export function incidentIdentity(fields: IncidentKeyFields & { openedAtMs: number }): string {
  return `${incidentKey(fields)}|${fields.openedAtMs}`;
}

/** Bits of an id below the opening second: 2^21 ids per second of opening time. */
const ID_LOW_BITS = 21;
const ID_LOW = 2 ** ID_LOW_BITS;
/** 2^53 / 2^21 = 2^32 seconds: openings until the year 2106 fit in a safe integer. */
const MAX_SECONDS = 2 ** (53 - ID_LOW_BITS);

/**
 * The cluster-wide id of an incident, from its identity alone: the opening's second (epoch) times 2^21,
 * plus 21 bits of the identity's SHA-256. Every node computes the same id without asking anyone (a
 * node joining later, a task moved, a compacted topic), ids still grow with opening time (the API
 * lists newest first by id), and they stay within 16 decimal digits (the API's id syntax). Two
 * incidents opening in the same second collide with probability 1 in 2^21 per pair; the store then
 * takes the next free id, and two nodes that each derived one of the pair may number them differently
 * (counted and logged; see ARCHITECTURE.md "Cluster").
 */
export function clusterIncidentId(fields: IncidentKeyFields & { openedAtMs: number }): number {
  const seconds = Math.floor(fields.openedAtMs / 1000);
  if (!(seconds >= 0 && seconds < MAX_SECONDS)) throw new RangeError(`opening time ${fields.openedAtMs} is outside the cluster id range (1970 to 2106)`);
  const digest = createHash('sha256').update(incidentIdentity(fields)).digest();
  const low = digest.readUIntBE(0, 3) % ID_LOW;
  // 0 is never an id (the API's ids start at 1): the first second's first id is moved up by one.
  return seconds * ID_LOW + low || 1;
}

/** Encodes a record (the value of a Kafka message). */
export function encodeTransitionRecord(r: TransitionRecord): string {
  return JSON.stringify(r);
}

const TYPES: ReadonlySet<string> = new Set(['opened', 'updated', 'resolved', 'expired']);

/** Decodes a record, or returns why it cannot be used (another version, not JSON, fields missing). */
export function decodeTransitionRecord(value: Buffer | string | null): TransitionRecord | string {
  if (value === null) return 'empty value';
  let r: Partial<TransitionRecord>;
  try {
    r = JSON.parse(value.toString()) as Partial<TransitionRecord>;
  } catch {
    return 'not JSON';
  }
  if (r?.v !== TRANSITION_RECORD_VERSION) return `record version ${String(r?.v)}, this Vigil reads ${TRANSITION_RECORD_VERSION}`;
  const i = r.incident;
  if (typeof r.node !== 'string' || typeof r.identity !== 'string' || !TYPES.has(String(r.type)) || typeof r.atMs !== 'number'
    || typeof i !== 'object' || i === null || !Number.isSafeInteger(i.id) || typeof i.propertyId !== 'string' || typeof i.openedAtMs !== 'number') {
    return 'fields missing or of the wrong type';
  }
  if (incidentIdentity(i) !== r.identity) return 'identity does not match the incident';
  return r as TransitionRecord;
}
