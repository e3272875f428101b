// The straightforward framing of broker records (join the values with newlines, skipping those that
// would not be one line) that ChunkFramer must agree with: the reference of test/chunk-framer.test.ts.
import type { SkipCounts, SkipReason } from '../../src/ingest/skip-counts.ts';

const NL = 0x0a;

/**
 * Joins record values into NDJSON bytes (one line per record, each ending in '\n'). A record with no
 * value, over `maxRecordBytes`, or containing a newline (it would split into two lines and misalign
 * every record after it) is skipped and counted; `onSkip` sees each.
 */
export function frameRecords(
  values: ReadonlyArray<Uint8Array | null | undefined>, maxRecordBytes: number, counts: SkipCounts,
  onSkip?: (reason: SkipReason, value: Uint8Array | null | undefined) => void,
): Uint8Array {
  let total = 0;
  const keep: Uint8Array[] = [];
  for (const v of values) {
    let reason: SkipReason | null = null;
    if (!v || v.length === 0) reason = 'empty';
    // The limit is on the line: a value's own trailing newline does not count (as for file input).
    else if (v.length - (v[v.length - 1] === NL ? 1 : 0) > maxRecordBytes) reason = 'too_large';
    else if (v.indexOf(NL) >= 0) reason = v.indexOf(NL) === v.length - 1 ? null : 'newline';
    if (reason) {
      counts[reason]++;
      onSkip?.(reason, v);
      continue;
    }
    keep.push(v!);
    total += v!.length + (v![v!.length - 1] === NL ? 0 : 1);
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const v of keep) {
    out.set(v, off);
    off += v.length;
    if (v[v.length - 1] !== NL) out[off++] = NL;
  }
  return out;
}
