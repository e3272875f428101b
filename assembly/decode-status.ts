// Outcome of decoding one NDJSON line. Values are part of the JS contract
// (src/ingest/reject-reason.ts names them); never renumber, only append.
export const DECODE_OK: i32 = 0;
// The line may be valid but uses a rare form the WASM scanner does not handle
// (a number with fraction/exponent or > 15 digits where an integer is expected,
// nesting deeper than the scanner's stack). JS decides with JSON.parse.
export const DECODE_FALLBACK: i32 = 1;
export const REJECT_NOT_JSON: i32 = 2;        // syntax error, truncated line, NUL or raw control byte
export const REJECT_NOT_OBJECT: i32 = 3;      // valid JSON but the top level is not an object
export const REJECT_MISSING_PROPERTY: i32 = 4; // property field absent or null
export const REJECT_MISSING_TS: i32 = 5;       // ts field absent or null
export const REJECT_BAD_PROPERTY: i32 = 6;     // not a non-empty string or safe integer
export const REJECT_BAD_TITLE: i32 = 7;        // not a string or null
export const REJECT_BAD_ERROR_TYPE: i32 = 8;   // not a string or null
export const REJECT_BAD_TS: i32 = 9;           // not an epoch-ms number / digit string / ISO-8601 string in range
export const REJECT_INVALID_UTF8: i32 = 10;
export const REJECT_TOO_LARGE: i32 = 11;       // line longer than the configured limit
export const REJECT_FIELD_TOO_LONG: i32 = 12;  // a field's unescaped value over its limit
export const REJECT_BAD_VIEW_ID: i32 = 13;     // present, not null, and neither string nor number
export const DECODE_EMPTY: i32 = 14;           // blank line (only whitespace): skipped, counted apart
