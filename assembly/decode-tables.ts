// Static tables and configuration for decode.ts. Everything here is data
// segment, so a fresh instance has the defaults without running any code, and
// a memory snapshot carries the configured names and limits along.

// Per-byte class bits. One load answers "can the string scanner skip this
// byte", "is it JSON whitespace", "is it a digit", so the hot loops avoid
// chains of comparisons.
export const F_STOP: u8 = 1;  // ends a fast string run: '"', '\\', < 0x20, >= 0x80
export const F_WS: u8 = 2;    // JSON whitespace: space, \t, \n, \r
export const F_DIGIT: u8 = 4; // '0'..'9'
export const F_HEX: u8 = 8;   // hex digit, either case
export const F_ESC: u8 = 16;  // a one-character escape after '\\' (not 'u')

export const CLASS: usize = memory.data<u8>([
  1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 1, 1, 3, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  2, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16,
  12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 0, 0, 0, 0, 0, 0,
  0, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0,
  0, 8, 24, 8, 8, 8, 24, 0, 0, 0, 0, 0, 0, 0, 16, 0,
  0, 0, 16, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
], 16);

export const NAME_CAP: i32 = 64;
export const FIELD_COUNT: i32 = 5;

// Field names, one 64-byte slot each, in field order: view_id, property_id,
// video_title, error_type, ts.
export const NAMES: usize = memory.data<u8>([
  118, 105, 101, 119, 95, 105, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  112, 114, 111, 112, 101, 114, 116, 121, 95, 105, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  118, 105, 100, 101, 111, 95, 116, 105, 116, 108, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  101, 114, 114, 111, 114, 95, 116, 121, 112, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  116, 115, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
], 16);

// [0] max line bytes, [1..5] name lengths. Kept in linear memory (not in
// globals) because the kernel's state is exactly its memory.
export const CONFIG: usize = memory.data<i32>([65536, 7, 11, 11, 10, 2], 16);

// Per field, the mask of the fields whose name equals its name (fields may share one, and each then
// takes the value), or 0 when its name holds a byte that a key's text would have to escape ('"',
// '\\', < 0x20): such a name never takes decode.ts's key fast path. decode.ts's setFieldName
// keeps it in step with NAMES; these are the defaults'.
export const SAME_NAME: usize = memory.data<i32>([1, 2, 4, 8, 16], 16);

// Per key position in a line (the first eight), the field + 1 that the previous line had there
// (0: none or not a field): the field decode.ts tries first at that position.
export const PREDICTED_KEYS: i32 = 8;
export const PREDICTED: usize = memory.data(PREDICTED_KEYS * 4, 16);
