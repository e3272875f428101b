// JS view of assembly/decode-status.ts. The numbers are the wasm contract and
// the names are metric labels and log fields, so neither may change; append only.
// test/decode.test.ts checks this table against the AssemblyScript source.

export const DECODE_OK = 0;
export const DECODE_FALLBACK = 1;
export const REJECT_NOT_JSON = 2;
export const REJECT_NOT_OBJECT = 3;
export const REJECT_MISSING_PROPERTY = 4;
export const REJECT_MISSING_TS = 5;
export const REJECT_BAD_PROPERTY = 6;
export const REJECT_BAD_TITLE = 7;
export const REJECT_BAD_ERROR_TYPE = 8;
export const REJECT_BAD_TS = 9;
export const REJECT_INVALID_UTF8 = 10;
export const REJECT_TOO_LARGE = 11;
export const REJECT_FIELD_TOO_LONG = 12;
export const REJECT_BAD_VIEW_ID = 13;
export const DECODE_EMPTY = 14;

/** Stable snake_case name of every decode status, indexed by its code. */
export const DECODE_STATUS_NAMES = [
  'ok',
  'fallback',
  'not_json',
  'not_object',
  'missing_property',
  'missing_ts',
  'bad_property',
  'bad_title',
  'bad_error_type',
  'bad_ts',
  'invalid_utf8',
  'too_large',
  'field_too_long',
  'bad_view_id',
  'empty',
] as const;

export type DecodeStatusName = (typeof DECODE_STATUS_NAMES)[number];

/** The statuses that mean "line rejected", in code order: every reason a rejected-lines metric can carry. */
export const REJECT_REASONS: readonly DecodeStatusName[] = DECODE_STATUS_NAMES.filter(
  (_, code) => code >= REJECT_NOT_JSON && code <= REJECT_BAD_VIEW_ID,
);

/** Name of a decode status code; throws on a code that decode-status.ts does not define. */
export function decodeStatusName(code: number): DecodeStatusName {
  const name = DECODE_STATUS_NAMES[code];
  if (name === undefined) throw new RangeError(`unknown decode status ${code}`);
  return name;
}

/** Whether a status code means the line was rejected (not OK, fallback or a blank line). */
export function isReject(code: number): boolean {
  return code >= REJECT_NOT_JSON && code <= REJECT_BAD_VIEW_ID;
}
