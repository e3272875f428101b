import type { ObjectPutter } from './s3-object-store.ts';

/** Dump schema version, in every manifest: readers check it before reading parts. */
export const DUMP_SCHEMA_VERSION = 1;

// A part is uploaded from memory, so its size is what a dump costs in memory.
const MAX_PART_BYTES = 32 << 20;

/** What a finished dump wrote: its manifest (written last) and its parts. */
export interface DumpResult {
  manifest_key: string;
  part_keys: string[];
  records: number;
  bytes: number;
}

/** The key prefix of a dump: `<prefix><kind>/<time>-<command id>/`. */
export function dumpBase(prefix: string, kind: 'error-rates' | 'incidents', createdAtMs: number, commandId: string): string {
  const stamp = new Date(createdAtMs).toISOString().replace(/[:.]/g, '-');
  return `${prefix}${kind}/${stamp}-${commandId.replace(/[^\w.-]/g, '_')}/`;
}

/**
 * Writes one dump as NDJSON parts of at most partRecords records, then a manifest that lists them:
 * a reader that starts from the manifest never sees half a dump, and memory is bounded by one part.
 */
export class DumpWriter {
  private lines: string[] = [];
  private partBytes = 0;
  private readonly parts: Array<{ key: string; records: number; bytes: number }> = [];
  private records = 0;
  private bytes = 0;
  readonly base: string;

  constructor(
    private readonly store: ObjectPutter,
    prefix: string,
    readonly kind: 'error-rates' | 'incidents',
    private readonly meta: Record<string, unknown>,
    private readonly partRecords: number,
    createdAtMs: number,
    commandId: string,
    /** Where the parts and manifest go instead (a cluster task's share of a dump); else dumpBase(). */
    base?: string,
  ) {
    this.base = base ?? dumpBase(prefix, kind, createdAtMs, commandId);
  }

  /** Adds records; uploads a part (and waits for it) whenever one is full. */
  async add(records: readonly unknown[]): Promise<void> {
    for (const r of records) {
      const line = JSON.stringify(r);
      this.lines.push(line);
      this.partBytes += Buffer.byteLength(line) + 1;
      if (this.lines.length >= this.partRecords || this.partBytes >= MAX_PART_BYTES) await this.flushPart();
    }
  }

  private async flushPart(): Promise<void> {
    if (this.lines.length === 0) return;
    const key = `${this.base}part-${String(this.parts.length).padStart(5, '0')}.ndjson`;
    const body = Buffer.from(this.lines.join('\n') + '\n');
    const n = this.lines.length;
    this.lines = [];
    this.partBytes = 0;
    await this.store.put(key, body, 'application/x-ndjson');
    this.parts.push({ key, records: n, bytes: body.byteLength });
    this.records += n;
    this.bytes += body.byteLength;
  }

  /** Uploads the last part, then the manifest; the dump exists for readers only from here. */
  async finish(): Promise<DumpResult> {
    await this.flushPart();
    const manifestKey = `${this.base}manifest.json`;
    const manifest = {
      schema: `vigil.dump.${this.kind}`, schema_version: DUMP_SCHEMA_VERSION, ...this.meta,
      records: this.records, parts: this.parts, complete: true,
    };
    await this.store.put(manifestKey, Buffer.from(JSON.stringify(manifest, null, 1) + '\n'), 'application/json');
    return { manifest_key: manifestKey, part_keys: this.parts.map((p) => p.key), records: this.records, bytes: this.bytes };
  }
}
