// JSON.parse-based decoder of one NDJSON line. It defines the semantics that
// assembly/decode.ts implements (test/decode.test.ts compares them) and is the
// production path for lines the wasm hands back with DECODE_FALLBACK.

import {
  DECODE_OK,
  DECODE_EMPTY,
  REJECT_NOT_JSON,
  REJECT_NOT_OBJECT,
  REJECT_MISSING_PROPERTY,
  REJECT_MISSING_TS,
  REJECT_BAD_PROPERTY,
  REJECT_BAD_TITLE,
  REJECT_BAD_ERROR_TYPE,
  REJECT_BAD_TS,
  REJECT_INVALID_UTF8,
  REJECT_TOO_LARGE,
  REJECT_FIELD_TOO_LONG,
  REJECT_BAD_VIEW_ID,
} from './reject-reason.ts';
import { DEFAULT_FIELD_NAMES } from './field-names.ts';
import type { FieldNames } from './field-names.ts';

export interface DecodeResult {
  status: number;
  /** UTF-8 of the property id (string value, or String(n) of a safe integer). Set on DECODE_OK. */
  propertyId?: Uint8Array;
  /** UTF-8 of the title; null when absent, null or "". Set on DECODE_OK. */
  videoTitle?: Uint8Array | null;
  /** UTF-8 of the error type; null when absent, null or "" (the view played fine). Set on DECODE_OK. */
  errorType?: Uint8Array | null;
  /** Event time, epoch ms. Set on DECODE_OK. */
  ts?: number;
  /**
   * UTF-8 of the view id when it is a non-empty string of at most VIEW_ID_MAX_BYTES: the identity
   * duplicates are suppressed by; null otherwise (absent, null, a number, "", longer). Set on DECODE_OK.
   */
  viewId?: Uint8Array | null;
}

export const DEFAULT_MAX_LINE_BYTES = 65536;
export const PROPERTY_ID_MAX_BYTES = 256;
export const VIDEO_TITLE_MAX_BYTES = 1024;
export const ERROR_TYPE_MAX_BYTES = 128;
export const VIEW_ID_MAX_BYTES = 256;
/** 9999-12-31T23:59:59.999Z. */
export const TS_MAX_MS = 253402300799999;

// ignoreBOM keeps a leading U+FEFF in the text, so JSON.parse rejects it as it
// rejects any other stray character: a BOM line is not_json, as in the wasm.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

const DIGITS = /^[0-9]+$/;
const ISO =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;

const rejected = (status: number): DecodeResult => ({ status });

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Epoch ms of an ISO-8601 string in the accepted form, or undefined when it is not one or names an impossible date/time. */
export function parseIsoTimestamp(s: string): number | undefined {
  const m = ISO.exec(s);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  let offsetMin = 0;
  if (m[8] !== undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Date.UTC reads years 0-99 as 1900-1999; such dates are out of range anyway.
  if (year < 100) return -1;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60000;
}

function timestampOf(v: unknown): number | undefined {
  let t: number | undefined;
  if (typeof v === 'number') t = Math.floor(v);
  else if (typeof v === 'string') t = DIGITS.test(v) ? Number(v) : parseIsoTimestamp(v);
  if (t === undefined || !(t >= 0 && t <= TS_MAX_MS)) return undefined;
  // + 0 turns -0 (from "-0" or "-0.0") into 0.
  return t + 0;
}

/**
 * Decodes one NDJSON line (without '\n') into the five fields or a reject status, with the same
 * contract as decodeLine in assembly/decode.ts; never returns DECODE_FALLBACK.
 */
export function referenceDecode(
  line: Uint8Array,
  maxLineBytes: number = DEFAULT_MAX_LINE_BYTES,
  names: Readonly<FieldNames> = DEFAULT_FIELD_NAMES,
): DecodeResult {
  if (line.length > maxLineBytes) return rejected(REJECT_TOO_LARGE);
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return rejected(REJECT_INVALID_UTF8);
  }
  if (isBlank(text)) return rejected(DECODE_EMPTY);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return rejected(REJECT_NOT_JSON);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return rejected(REJECT_NOT_OBJECT);
  const obj = doc as Record<string, unknown>;
  // Own properties only: an absent "toString" must not find Object.prototype's.
  const get = (key: string): unknown => (Object.hasOwn(obj, key) ? obj[key] : undefined);

  const prop = get(names.propertyId);
  let propertyId: Uint8Array;
  if (prop === undefined || prop === null) return rejected(REJECT_MISSING_PROPERTY);
  if (typeof prop === 'string') {
    if (prop === '') return rejected(REJECT_BAD_PROPERTY);
    propertyId = encoder.encode(prop);
    if (propertyId.length > PROPERTY_ID_MAX_BYTES) return rejected(REJECT_FIELD_TOO_LONG);
  } else if (typeof prop === 'number' && Number.isSafeInteger(prop)) {
    propertyId = encoder.encode(String(prop));
  } else {
    return rejected(REJECT_BAD_PROPERTY);
  }

  const rawTs = get(names.ts);
  if (rawTs === undefined || rawTs === null) return rejected(REJECT_MISSING_TS);
  const ts = timestampOf(rawTs);
  if (ts === undefined) return rejected(REJECT_BAD_TS);

  const title = get(names.videoTitle);
  let videoTitle: Uint8Array | null = null;
  if (typeof title === 'string') {
    if (title !== '') {
      videoTitle = encoder.encode(title);
      if (videoTitle.length > VIDEO_TITLE_MAX_BYTES) return rejected(REJECT_FIELD_TOO_LONG);
    }
  } else if (title !== undefined && title !== null) {
    return rejected(REJECT_BAD_TITLE);
  }

  const err = get(names.errorType);
  let errorType: Uint8Array | null = null;
  if (typeof err === 'string') {
    if (err !== '') {
      errorType = encoder.encode(err);
      if (errorType.length > ERROR_TYPE_MAX_BYTES) return rejected(REJECT_FIELD_TOO_LONG);
    }
  } else if (err !== undefined && err !== null) {
    return rejected(REJECT_BAD_ERROR_TYPE);
  }

  const view = get(names.viewId);
  if (view !== undefined && view !== null && typeof view !== 'string' && typeof view !== 'number') {
    return rejected(REJECT_BAD_VIEW_ID);
  }
  let viewId: Uint8Array | null = null;
  if (typeof view === 'string' && view !== '') {
    viewId = encoder.encode(view);
    if (viewId.length > VIEW_ID_MAX_BYTES) viewId = null;
  }

  return { status: DECODE_OK, propertyId, videoTitle, errorType, ts, viewId };
}
