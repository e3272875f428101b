import { ERROR_TYPES } from './error-types.ts';
import { ErrorForm, TitleForm, errorForm, hasIsoTs, isReordered, titleForm } from './line-form.ts';

/** Pre-serialized JSON fragments of one property, so formatting a line is concatenation or byte copies only. */
export interface PropertyFragments {
  /** `,"property_id":177` or `,"property_id":"pbs"`. */
  readonly idFragment: string;
  /** `,"video_title":"…"` per title index, as JSON.stringify writes it (UTF-8, minimal escapes). */
  readonly titleFragments: readonly string[];
  /** The same with every non-ASCII character as a \uXXXX escape, as some exporters write it. */
  readonly asciiTitleFragments: readonly string[];
  /** UTF-8 bytes of the fragments above, for the byte formatter. */
  readonly idBytes: Uint8Array;
  readonly titleBytes: readonly Uint8Array[];
  readonly asciiTitleBytes: readonly Uint8Array[];
}

/** `,"error_type":"…"` per error type index. */
export const ERROR_FRAGMENTS = ERROR_TYPES.map((type) => `,"error_type":${JSON.stringify(type)}`);
/** Fragment of a fine view that writes error_type as null. */
export const NULL_ERROR_FRAGMENT = ',"error_type":null';
/** Fragment of a view whose video_title is null. */
export const NULL_TITLE_FRAGMENT = ',"video_title":null';

/** Serializes a property's id and titles into the fragments the formatters copy. */
export function buildPropertyFragments(id: string, idIsInteger: boolean, titles: readonly string[]): PropertyFragments {
  const titleFragments = titles.map((t) => `,"video_title":${JSON.stringify(t)}`);
  const asciiTitleFragments = titleFragments.map(escapeNonAscii);
  const idFragment = `,"property_id":${idIsInteger ? String(Number(id)) : JSON.stringify(id)}`;
  return {
    idFragment,
    titleFragments,
    asciiTitleFragments,
    idBytes: Buffer.from(idFragment),
    titleBytes: titleFragments.map((f) => Buffer.from(f)),
    asciiTitleBytes: asciiTitleFragments.map((f) => Buffer.from(f)),
  };
}

function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Formats one view as a JSON line (no newline); `forms` (32 random bits) picks how the fields are
 * spelled (see line-form.ts). The view id is `viewIdPrefix` followed by `viewNumber` in base 36.
 */
export function formatViewLine(
  fragments: PropertyFragments,
  titleIndex: number,
  errorIndex: number,
  eventMs: number,
  viewIdPrefix: string,
  viewNumber: number,
  forms: number,
  keepTitle: boolean,
): string {
  const tf = titleForm(forms, keepTitle);
  const title =
    tf === TitleForm.Plain
      ? fragments.titleFragments[titleIndex]
      : tf === TitleForm.AsciiEscaped
        ? fragments.asciiTitleFragments[titleIndex]
        : tf === TitleForm.Null
          ? NULL_TITLE_FRAGMENT
          : '';
  const ef = errorForm(forms, errorIndex);
  const error = ef === ErrorForm.Failure ? ERROR_FRAGMENTS[errorIndex] : ef === ErrorForm.Null ? NULL_ERROR_FRAGMENT : '';
  const ts = hasIsoTs(forms) ? `"${new Date(eventMs).toISOString()}"` : String(eventMs);
  const viewId = viewIdPrefix + viewNumber.toString(36);
  const line = isReordered(forms)
    ? '{"ts":' + ts + error + title + fragments.idFragment + ',"view_id":"' + viewId + '"}'
    : '{"view_id":"' + viewId + '"' + fragments.idFragment + title + error + ',"ts":' + ts + '}';
  // Reading a character flattens V8's tree of concatenations into one string now, while its parts
  // are still young: a batch of flat strings is far cheaper to garbage-collect and to join.
  line.charCodeAt(0);
  return line;
}
