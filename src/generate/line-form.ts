// Every line draws 32 random bits that pick how its fields are spelled. Both formatters (string and
// bytes) decode them here, so they cannot disagree. Shares are in units of 1/1024 of a 10-bit slice.
const ISO_TS_BELOW = 31; // ~3% of timestamps as ISO-8601 strings
const REORDERED_BELOW = 20; // ~2% of lines with the keys in another order
const TITLE_ABSENT_BELOW = 4; // ~0.4% without video_title
const TITLE_NULL_BELOW = 5; // ~0.1% with video_title null
const TITLE_ASCII_BELOW = 25; // ~2% with \u-escaped titles

/** How a line spells its title: as JSON.stringify does, with \u escapes for non-ASCII, absent, or null. */
export const TitleForm = { Plain: 0, AsciiEscaped: 1, Absent: 2, Null: 3 } as const;
/** One of the TitleForm values. */
export type TitleForm = (typeof TitleForm)[keyof typeof TitleForm];

/** How a line spells its error_type: the failure's type, null, or absent. */
export const ErrorForm = { Failure: 0, Null: 1, Absent: 2 } as const;
/** One of the ErrorForm values. */
export type ErrorForm = (typeof ErrorForm)[keyof typeof ErrorForm];

/** Whether ts is written as an ISO-8601 string instead of epoch milliseconds. */
export function hasIsoTs(forms: number): boolean {
  return (forms & 1023) < ISO_TS_BELOW;
}

/** Whether the keys come in the alternative order ts, error_type, video_title, property_id, view_id. */
export function isReordered(forms: number): boolean {
  return ((forms >>> 10) & 1023) < REORDERED_BELOW;
}

/** The title's spelling; `keepTitle` forbids absent and null, for views a label counts by title. */
export function titleForm(forms: number, keepTitle: boolean): TitleForm {
  const slice = (forms >>> 20) & 1023;
  if (!keepTitle && slice < TITLE_NULL_BELOW) return slice < TITLE_ABSENT_BELOW ? TitleForm.Absent : TitleForm.Null;
  return slice < TITLE_ASCII_BELOW ? TitleForm.AsciiEscaped : TitleForm.Plain;
}

/** The error_type's spelling: the failure's type, or for a fine view null (3/4) or absent (1/4). */
export function errorForm(forms: number, errorIndex: number): ErrorForm {
  if (errorIndex >= 0) return ErrorForm.Failure;
  return forms >>> 30 === 0 ? ErrorForm.Absent : ErrorForm.Null;
}
