import type { SkipCounts, SkipReason } from './skip-counts.ts';

const NL = 0x0a;

function positionText(next: string | number | undefined): string | undefined {
  return next === undefined ? undefined : String(next);
}

/** A chunk of whole lines, and the source's position after its last value (when the source gave positions). */
export interface FramedChunk {
  chunk: Uint8Array;
  next?: string;
}

/**
 * Frames broker record values as NDJSON lines straight into chunk-sized buffers that the engine
 * takes as they are (each a view at the start of an ArrayBuffer of its own, transferred to a
 * worker): one copy per value, no joined intermediate buffer, no LineChunker pass. Values are packed
 * across batches and partitions, so chunks are full whatever the batch sizes.
 *
 * Skips and counts what cannot be one line: no value or an empty one (`empty`, also a value that
 * is only a newline), one over `maxRecordBytes` or too long for a chunk (`too_large`), and one with a
 * newline before its last byte (`newline`: it would become two lines and shift every record after
 * it). The newline check is one scan per chunk, not one call per value: every newline of a sealed
 * chunk must be exactly a record's end; only a chunk where one is not is rebuilt without the
 * offending records.
 */
export class ChunkFramer {
  private buf: Buffer;
  private len = 0;
  /** Index of the newline that ends each record of the open chunk. */
  private ends = new Int32Array(4096);
  private n = 0;
  private readonly sealed: FramedChunk[] = [];
  /**
   * The position after the last value added (framed or skipped): where a source resumes after the
   * open chunk. A number (a Kafka offset) becomes a string only when a chunk is handed out, not per record.
   */
  private lastNext: string | number | undefined;
  /** The position of the last chunk handed out. */
  private sealedNext: string | number | undefined;
  private readonly maxValue: number;

  constructor(
    private readonly chunkBytes: number,
    maxRecordBytes: number,
    private readonly counts: SkipCounts,
    private readonly onSkip?: (reason: SkipReason, value: Uint8Array | null | undefined) => void,
  ) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 2) throw new RangeError(`chunkBytes must be an integer >= 2, got ${chunkBytes}`);
    // A value of exactly chunkBytes goes out as a chunk of its own without its newline (see add()).
    this.maxValue = Math.min(maxRecordBytes, chunkBytes);
    this.buf = Buffer.allocUnsafeSlow(chunkBytes);
  }

  /** Bytes in the chunk being filled. */
  get openBytes(): number {
    return this.len;
  }

  /** Frames one value (or skips and counts it); `next` is the source's position after it (ChunkPosition.next, or a number that becomes it). */
  add(v: Uint8Array | null | undefined, next?: string | number): void {
    if (!v || v.length === 0) { this.skip('empty', v, next); return; }
    const ownNl = v[v.length - 1] === NL;
    // The limit applies to the line, as for file input: a value's own trailing newline does not count.
    const vlen = v.length;
    const line = ownNl ? vlen - 1 : vlen;
    if (line > this.maxValue) { this.skip('too_large', v, next); return; }
    if (line === 0) { this.skip('empty', v, next); return; }
    if (line === this.chunkBytes) {
      // The line and its newline do not fit a chunk, but the decoder takes a chunk's last line without
      // one: seal what is open and hand this line over alone, so the limit does not depend on the chunk size.
      const body = v.subarray(0, line);
      if (body.indexOf(NL) >= 0) { this.skip('newline', v, next); return; }
      this.seal();
      this.lastNext = next;
      this.sealed.push({ chunk: new Uint8Array(body), next: positionText(next) });
      this.sealedNext = next;
      return;
    }
    if (this.len + vlen + (ownNl ? 0 : 1) > this.chunkBytes) this.seal();
    this.lastNext = next;
    this.buf.set(v, this.len);
    this.len += vlen;
    if (!ownNl) this.buf[this.len++] = NL;
    if (this.n === this.ends.length) {
      const grown = new Int32Array(this.ends.length * 2);
      grown.set(this.ends);
      this.ends = grown;
    }
    this.ends[this.n++] = this.len - 1;
  }

  /** Returns the chunks completed since the last call, in order, each with the position after its last value. */
  takeSealed(): FramedChunk[] {
    return this.sealed.length === 0 ? [] : this.sealed.splice(0, this.sealed.length);
  }

  /**
   * Completes the chunk being filled and returns every chunk not yet taken, in order (a source
   * calls this when it wants what it has written to be evaluated now, not when a chunk is full).
   */
  takeAll(): FramedChunk[] {
    this.seal();
    // Values skipped after the last chunk (a batch that ends with bad records) still move the
    // position: an empty chunk carries it, or a partition of only bad records would never be committable.
    if (this.lastNext !== this.sealedNext) {
      this.sealed.push({ chunk: new Uint8Array(0), next: positionText(this.lastNext) });
      this.sealedNext = this.lastNext;
    }
    return this.takeSealed();
  }

  private skip(reason: SkipReason, v: Uint8Array | null | undefined, next?: string | number): void {
    if (next !== undefined) this.lastNext = next;
    this.counts[reason]++;
    this.onSkip?.(reason, v);
  }

  private seal(): void {
    if (this.n === 0) return;
    if (!this.newlinesAtEnds()) this.dropSplitRecords();
    if (this.n === 0) return;
    const full = this.len;
    const chunk = this.buf.subarray(0, full);
    if (full >= this.chunkBytes >>> 2) {
      // Hand the buffer itself over (it is transferred to a worker) and start a new one.
      this.sealed.push({ chunk, next: positionText(this.lastNext) });
      this.sealedNext = this.lastNext;
      this.buf = Buffer.allocUnsafeSlow(this.chunkBytes);
    } else {
      // A small tail (a trickle of live records): an exact-size copy, and the buffer is reused.
      this.sealed.push({ chunk: new Uint8Array(chunk), next: positionText(this.lastNext) });
      this.sealedNext = this.lastNext;
    }
    this.len = 0;
    this.n = 0;
  }

  /** True when every newline of the open chunk is a record's end (no value had one inside). */
  private newlinesAtEnds(): boolean {
    const view = this.buf.subarray(0, this.len);
    const ends = this.ends;
    let i = 0;
    for (let p = view.indexOf(NL); p >= 0; p = view.indexOf(NL, p + 1)) {
      if (p !== ends[i]) return false;
      i++;
    }
    return i === this.n;
  }

  /** The slow path: rebuilds the open chunk without the records that contain a newline before their end. */
  private dropSplitRecords(): void {
    const buf = this.buf;
    let write = 0;
    let kept = 0;
    let start = 0;
    for (let i = 0; i < this.n; i++) {
      const end = this.ends[i];
      const inner = buf.indexOf(NL, start);
      if (inner < end) {
        this.skip('newline', buf.subarray(start, end + 1), this.lastNext);
      } else {
        if (write !== start) buf.copyWithin(write, start, end + 1);
        write += end + 1 - start;
        this.ends[kept++] = write - 1;
      }
      start = end + 1;
    }
    this.len = write;
    this.n = kept;
  }
}
