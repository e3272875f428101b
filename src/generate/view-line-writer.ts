import { ErrorForm, TitleForm, errorForm, hasIsoTs, isReordered, titleForm } from './line-form.ts';
import { ERROR_FRAGMENTS, NULL_ERROR_FRAGMENT, NULL_TITLE_FRAGMENT, type PropertyFragments } from './view-line.ts';

const bytes = (text: string): Uint8Array => Buffer.from(text);
const OPEN_VIEW_ID = bytes('{"view_id":"');
const OPEN_TS = bytes('{"ts":');
const TS_KEY = bytes(',"ts":');
const VIEW_ID_KEY = bytes(',"view_id":"');
const ERROR_BYTES = ERROR_FRAGMENTS.map(bytes);
const NULL_ERROR_BYTES = bytes(NULL_ERROR_FRAGMENT);
const NULL_TITLE_BYTES = bytes(NULL_TITLE_FRAGMENT);
const QUOTE = 0x22;
const CLOSE = 0x7d;
const NEWLINE = 0x0a;
// Longest line the view formatter can produce, with room to spare: ids, keys, an ISO ts and the
// longest title fragment are all far below this.
const LINE_HEADROOM = 256;

/**
 * Writes newline-terminated view lines as UTF-8 straight into a growing buffer, byte-identical to
 * formatViewLine plus '\n'; it skips the string building, joining and re-encoding of the string path,
 * which is most of the cost of writing a file.
 */
export class ViewLineWriter {
  private buf: Buffer;
  private pos = 0;
  /** Lines written so far. */
  lines = 0;

  /** Starts an empty chunk with room for about `expectedBytes`. */
  constructor(expectedBytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64 * 1024, expectedBytes));
  }

  /** Appends one view line; the arguments mean what they mean for formatViewLine. */
  writeView(
    fragments: PropertyFragments,
    titleIndex: number,
    errorIndex: number,
    eventMs: number,
    viewIdPrefix: Uint8Array,
    viewNumber: number,
    forms: number,
    keepTitle: boolean,
  ): void {
    const tf = titleForm(forms, keepTitle);
    const title =
      tf === TitleForm.Plain
        ? fragments.titleBytes[titleIndex]
        : tf === TitleForm.AsciiEscaped
          ? fragments.asciiTitleBytes[titleIndex]
          : tf === TitleForm.Null
            ? NULL_TITLE_BYTES
            : null;
    const ef = errorForm(forms, errorIndex);
    const error = ef === ErrorForm.Failure ? ERROR_BYTES[errorIndex] : ef === ErrorForm.Null ? NULL_ERROR_BYTES : null;
    this.reserve(LINE_HEADROOM + (title === null ? 0 : title.length));
    const buf = this.buf;
    let pos = this.pos;
    if (isReordered(forms)) {
      pos = copy(buf, pos, OPEN_TS);
      pos = this.writeTs(pos, eventMs, forms);
      if (error !== null) pos = copy(buf, pos, error);
      if (title !== null) pos = copy(buf, pos, title);
      pos = copy(buf, pos, fragments.idBytes);
      pos = copy(buf, pos, VIEW_ID_KEY);
      pos = copy(buf, pos, viewIdPrefix);
      pos = writeBase36(buf, pos, viewNumber);
      buf[pos++] = QUOTE;
      buf[pos++] = CLOSE;
    } else {
      pos = copy(buf, pos, OPEN_VIEW_ID);
      pos = copy(buf, pos, viewIdPrefix);
      pos = writeBase36(buf, pos, viewNumber);
      buf[pos++] = QUOTE;
      pos = copy(buf, pos, fragments.idBytes);
      if (title !== null) pos = copy(buf, pos, title);
      if (error !== null) pos = copy(buf, pos, error);
      pos = copy(buf, pos, TS_KEY);
      pos = this.writeTs(pos, eventMs, forms);
      buf[pos++] = CLOSE;
    }
    buf[pos++] = NEWLINE;
    this.pos = pos;
    this.lines++;
  }

  /** Appends an already formatted line (held back or malformed) and a newline. */
  writeLine(line: string): void {
    this.reserve(3 * line.length + 1);
    this.pos += this.buf.write(line, this.pos, 'utf8');
    this.buf[this.pos++] = NEWLINE;
    this.lines++;
  }

  /** The bytes written so far (a view of the chunk's buffer; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private writeTs(pos: number, eventMs: number, forms: number): number {
    if (!hasIsoTs(forms)) return writeDecimal(this.buf, pos, eventMs);
    this.buf[pos++] = QUOTE;
    pos += this.buf.write(new Date(eventMs).toISOString(), pos, 'latin1');
    this.buf[pos++] = QUOTE;
    return pos;
  }

  private reserve(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

// A byte loop beats TypedArray.prototype.set for the short fragments that make up most of a line.
function copy(dst: Buffer, pos: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 48) {
    dst.set(src, pos);
    return pos + n;
  }
  for (let i = 0; i < n; i++) dst[pos + i] = src[i];
  return pos + n;
}

function writeDecimal(dst: Buffer, pos: number, value: number): number {
  // Split so each half fits 31-bit integer arithmetic.
  if (value >= 1_000_000) {
    const high = Math.floor(value / 1_000_000);
    pos = writeDecimal(dst, pos, high);
    let low = value - high * 1_000_000;
    for (let p = pos + 5; p >= pos; p--) {
      const q = (low / 10) | 0;
      dst[p] = 48 + low - q * 10;
      low = q;
    }
    return pos + 6;
  }
  let end = pos;
  for (let t = value; ; ) {
    end++;
    t = (t / 10) | 0;
    if (t === 0) break;
  }
  for (let p = end - 1, t = value; p >= pos; p--) {
    const q = (t / 10) | 0;
    dst[p] = 48 + t - q * 10;
    t = q;
  }
  return end;
}

function writeBase36(dst: Buffer, pos: number, value: number): number {
  let end = pos;
  for (let t = value; ; ) {
    end++;
    t = Math.floor(t / 36);
    if (t === 0) break;
  }
  for (let p = end - 1, t = value; p >= pos; p--) {
    const q = Math.floor(t / 36);
    const digit = t - q * 36;
    dst[p] = digit < 10 ? 48 + digit : 87 + digit;
    t = q;
  }
  return end;
}
