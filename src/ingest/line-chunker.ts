/** A line too long to fit a chunk: skipped and counted as too_large. */
export interface OversizedLine {
  bytes: number;
  head: string;
}

/** Receives a chunk and the input offset after it (bytes since the chunker started: a resumable position). */
export type ChunkSink = (chunk: Uint8Array, end: number) => void;

/** Reads up to `length` bytes of input into `buf` at `offset`; resolves how many (0 at the end of input). */
export type ReadInto = (buf: Uint8Array, offset: number, length: number) => Promise<number>;

/**
 * Cuts a byte stream into chunks of whole NDJSON lines of at most `chunkBytes`, each a view
 * at the start of an ArrayBuffer of its own, so it can be transferred to a worker. A line longer than a chunk is
 * skipped up to its newline and reported, so one 10 MB line never costs the lines around it. Each
 * chunk comes with the input offset after its last line (and any skipped line before it): reading
 * again from there repeats nothing and loses nothing.
 */
export class LineChunker {
  private buf: Uint8Array;
  private len = 0;
  private skipping = false;
  private skippedBytes = 0;
  private skippedHead = '';
  readonly oversized: OversizedLine[] = [];
  /** Input bytes accounted for: those of emitted chunks and of skipped lines, in input order. */
  private consumed = 0;
  /** Where pull() reads what does not go into the open chunk (see there). */
  private aside: Uint8Array | null = null;

  constructor(private readonly chunkBytes: number) {
    this.buf = LineChunker.newBuffer(chunkBytes);
  }

  /**
   * A chunk's buffer: an ArrayBuffer of its own (it is transferred to a worker), not zero-filled,
   * since only the bytes written into it are ever handed out.
   */
  private static newBuffer(bytes: number): Uint8Array {
    return Buffer.allocUnsafeSlow(bytes);
  }

  /**
   * Reads input straight into the open chunk instead of copying it there: the same chunks, positions
   * and skipped lines as push() of the bytes read. Resolves the number of bytes read, 0 at the end of
   * input (then call end()). A full chunk reads only the byte after it (push() decides with that byte
   * whether its last line ends exactly there), and a line being skipped is read aside and dropped.
   */
  async pull(read: ReadInto, emit: ChunkSink): Promise<number> {
    if (this.skipping || this.len === this.chunkBytes) {
      const aside = (this.aside ??= new Uint8Array(this.chunkBytes));
      const n = await read(aside, 0, this.skipping ? aside.length : 1);
      if (n > 0) this.push(aside.subarray(0, n), emit);
      return n;
    }
    const n = await read(this.buf, this.len, this.chunkBytes - this.len);
    this.len += n;
    return n;
  }

  /** Feeds bytes; calls `emit` with every complete chunk. */
  push(data: Uint8Array, emit: ChunkSink): void {
    let off = 0;
    while (off < data.length) {
      if (this.skipping) {
        const nl = data.indexOf(10, off);
        if (nl < 0) { this.skippedBytes += data.length - off; return; }
        this.skippedBytes += nl - off;
        this.consumed += this.skippedBytes + 1;
        this.oversized.push({ bytes: this.skippedBytes, head: this.skippedHead });
        this.skipping = false;
        off = nl + 1;
        continue;
      }
      if (this.len === this.chunkBytes) {
        // A full buffer is cut only once the next byte is known: when it is the newline, the last line
        // ends exactly at the chunk's end and goes out whole (without its newline; the decoder takes a
        // chunk's last line so). A line of exactly chunkBytes is then accepted like any shorter one,
        // instead of depending on where chunk boundaries fall.
        if (data[off] === 10) {
          this.emitAll(emit, 1);
          off++;
        } else {
          this.cut(emit);
        }
        continue;
      }
      const n = Math.min(this.chunkBytes - this.len, data.length - off);
      this.buf.set(data.subarray(off, off + n), this.len);
      this.len += n;
      off += n;
    }
  }

  /** Emits the whole buffer; `newline` is 1 when the newline that ends its last line was consumed too. */
  private emitAll(emit: ChunkSink, newline: number): void {
    const out = this.buf.subarray(0, this.len);
    this.buf = LineChunker.newBuffer(this.chunkBytes);
    this.consumed += this.len + newline;
    this.len = 0;
    emit(out, this.consumed);
  }

  // The buffer is full and the byte after it is not a newline: hand over its whole lines, or start
  // skipping a line longer than a chunk.
  private cut(emit: ChunkSink): void {
    const last = this.buf.lastIndexOf(10, this.len - 1);
    if (last < 0) {
      // One line fills the whole chunk: drop it up to its newline.
      this.skipping = true;
      this.skippedBytes = this.len;
      this.skippedHead = new TextDecoder().decode(this.buf.subarray(0, 120));
      this.len = 0;
      return;
    }
    // Hand over the buffer itself (a view of its whole lines); only the partial last line is copied.
    const out = this.buf.subarray(0, last + 1);
    const next = LineChunker.newBuffer(this.chunkBytes);
    next.set(this.buf.subarray(last + 1, this.len));
    this.len -= last + 1;
    this.buf = next;
    this.consumed += last + 1;
    emit(out, this.consumed);
  }

  /** Emits the complete lines buffered so far without waiting for a full chunk (live sources: latency over batch size). */
  flush(emit: ChunkSink): void {
    if (this.skipping || this.len === 0) return;
    const last = this.buf.lastIndexOf(10, this.len - 1);
    if (last < 0) return;
    const out = this.buf.subarray(0, last + 1);
    const next = LineChunker.newBuffer(this.chunkBytes);
    next.set(this.buf.subarray(last + 1, this.len));
    this.len -= last + 1;
    this.buf = next;
    this.consumed += last + 1;
    emit(out, this.consumed);
  }

  /** Emits whatever is buffered (the last line may lack its newline). */
  end(emit: ChunkSink): void {
    if (this.skipping) {
      this.consumed += this.skippedBytes;
      this.oversized.push({ bytes: this.skippedBytes, head: this.skippedHead });
      this.skipping = false;
    }
    if (this.len > 0) this.emitAll(emit, 0);
  }

  /** Returns and clears the oversized lines seen so far. */
  takeOversized(): OversizedLine[] {
    return this.oversized.splice(0, this.oversized.length);
  }
}
