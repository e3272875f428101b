// The records of the repartition stage's internal topic `<name>.repartition` (ARCHITECTURE.md
// "Cluster: input not keyed by property"): the forwarder writes them, a task's Kafka source reads them.
// One module for both sides, so the header names and the progress format cannot drift apart.

import type { IHeaders } from 'kafkajs';

/** Header of a forwarded view: the input partition it was read from (decimal). */
export const UPSTREAM_HEADER = 'vigil-upstream';
/** Header of a progress record (its value is a ProgressRecord's JSON). */
export const PROGRESS_HEADER = 'vigil-progress';

/** What a forwarder says of one input partition it reads, in every internal partition, after the views it forwarded. */
export interface ProgressRecord {
  /** The input partition. */
  p: number;
  /** Its event-time mark (the robust high-water mark of every record read from it; null before any). */
  m: number | null;
  /** Read to its end (nothing more to forward now). */
  c: boolean;
}

/** The input stream id of an upstream partition, as the engine's clock knows it (`topic:partition`). */
export function upstreamStream(inputTopic: string, partition: number): string {
  return `${inputTopic}:${partition}`;
}

export function encodeProgress(p: ProgressRecord): Buffer {
  return Buffer.from(JSON.stringify(p));
}

/** A progress record's content, or null when the value is not one (a record of another writer). */
export function decodeProgress(value: Buffer | null): ProgressRecord | null {
  if (!value) return null;
  try {
    const o = JSON.parse(value.toString('utf8')) as Partial<ProgressRecord>;
    if (!Number.isInteger(o.p) || (o.m !== null && typeof o.m !== 'number') || typeof o.c !== 'boolean') return null;
    return { p: o.p!, m: o.m ?? null, c: o.c };
  } catch {
    return null;
  }
}

/** What a record of the internal topic is: a forwarded view of an input partition, a progress record, or neither (no headers). */
export type RepartitionedRecord =
  | { kind: 'view'; upstream: number }
  | { kind: 'progress'; progress: ProgressRecord }
  | { kind: 'other' };

function headerText(v: IHeaders[string] | undefined): string | null {
  if (v === undefined) return null;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? null : one.toString();
}

export function classify(headers: IHeaders | undefined, value: Buffer | null): RepartitionedRecord {
  if (!headers) return { kind: 'other' };
  if (headerText(headers[PROGRESS_HEADER]) !== null) {
    const progress = decodeProgress(value);
    return progress ? { kind: 'progress', progress } : { kind: 'other' };
  }
  const up = headerText(headers[UPSTREAM_HEADER]);
  if (up === null || !/^[0-9]{1,9}$/.test(up)) return { kind: 'other' };
  return { kind: 'view', upstream: Number(up) };
}
