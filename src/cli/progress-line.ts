/** Where a progress line is drawn: a terminal stream (stderr). */
export interface LineSink {
  write(s: string): unknown;
}

// Carriage return, then "erase the whole line" (ECMA-48 EL 2): the cursor is at column 0 of an empty line.
const ERASE = '\r\x1b[2K';

/**
 * One status line redrawn in place at the bottom of a terminal, sharing the stream with whole lines
 * written by others (JSON logs): those go above it, never glued onto it. The line is erased, the
 * text written, and the status drawn again, in one write so the terminal never shows them merged.
 */
export class ProgressLine {
  private text = '';

  constructor(private readonly out: LineSink) {}

  /** Shows `text` in place of the previous status. */
  update(text: string): void {
    this.text = text;
    this.out.write(ERASE + text);
  }

  /** Writes `s` (whole lines, each ending in '\n') above the status line. */
  writeAbove(s: string): void {
    this.out.write(this.text ? ERASE + s + this.text : s);
  }

  /** Erases the status line for good (before a summary); later writes start at column 0. */
  clear(): void {
    if (!this.text) return;
    this.text = '';
    this.out.write(ERASE);
  }
}
