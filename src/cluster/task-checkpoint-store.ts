import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.ts';
import type { S3DumpConfig } from '../config/control-env.ts';
import { S3ObjectStore } from '../dump/s3-object-store.ts';
import { CheckpointError, buildManifest, sha256, verifyCheckpoint, type CheckpointManifest, type CheckpointMeta } from '../engine/checkpoint-store.ts';
import type { OpenIncidentState } from '../incidents/incident-manager.ts';

const MANIFEST = 'manifest.json';
/** Checkpoints kept per task (by generation, then sequence number). */
const KEEP = 2;
/** `cp-g<generation>-s<seq>-<node>`: ordered by name as by (generation, seq), which is how readers take the newest. */
const NAME = /^cp-g(\d{10})-s(\d{10})-([A-Za-z0-9._-]+)$/;

/** What a task's checkpoint carries besides the engine's state: where its incidents stand. */
export interface TaskIncidents {
  /** The open incidents of the task's properties at the barrier (the next owner continues them). */
  open: OpenIncidentState[];
  /** Every property the task's verdicts named so far (carried from checkpoint to checkpoint): which incidents are the task's. */
  properties: string[];
}

/** A task checkpoint's manifest: the local format's, plus the task, the writer and its incidents. */
export interface TaskCheckpointManifest extends CheckpointManifest {
  task: string;
  /** The consumer group's generation the writer owned the task in (newer generations win, whatever the sequence). */
  generation: number;
  nodeId: string;
  incidents: TaskIncidents;
}

/** A task checkpoint read back and checked. */
export interface LoadedTaskCheckpoint {
  manifest: TaskCheckpointManifest;
  parts: Uint8Array[];
  name: string;
}

/**
 * Task checkpoints in S3, under `<VIGIL_S3_PREFIX>cluster/<name>/tasks/<topic>/<partition>/`: one
 * directory per checkpoint, `cp-g<generation>-s<seq>-<node>/`, with a part per writing worker and
 * the manifest of the local format (sizes and SHA-256 of every part, its own SHA-256), written last:
 * a directory without it is incomplete and never read. Readers take the newest that checks out by
 * (generation, seq); a node that lost a task can only write at the generation it owned it in, older
 * than its new owner's, so a late write of it is never taken over the new owner's. The newest two
 * are kept.
 */
export class TaskCheckpointStore {
  private readonly puts: S3ObjectStore;
  /** Next sequence number per task (above any this store listed or wrote). */
  private readonly seqs = new Map<string, number>();

  constructor(
    private readonly client: Pick<S3Client, 'send'>,
    private readonly s3: Pick<S3DumpConfig, 'bucket' | 'prefix' | 'maxAttempts'>,
    private readonly cluster: string,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.puts = new S3ObjectStore(client, s3, log);
  }

  /** The key prefix of a task's checkpoints (`topic:partition`). */
  prefixOf(task: string): string {
    const i = task.lastIndexOf(':');
    return `${this.s3.prefix}cluster/${this.cluster}/tasks/${task.slice(0, i)}/${task.slice(i + 1)}/`;
  }

  /**
   * Writes a checkpoint of a task; resolves once every object is stored. `stillOwned` is asked before
   * the manifest (the object that makes it a checkpoint) is put: a task revoked meanwhile is not
   * checkpointed. Throws CheckpointError.
   */
  async save(task: string, generation: number, parts: Array<{ bytes: Uint8Array; groupLo: number; groupHi: number }>, meta: CheckpointMeta & { incidents: TaskIncidents },
    groups: number, nowMs: number, stillOwned: () => boolean): Promise<{ name: string; seq: number; bytes: number } | null> {
    const seq = this.seqs.get(task) ?? 1;
    this.seqs.set(task, seq + 1);
    const name = `cp-g${String(Math.max(0, generation)).padStart(10, '0')}-s${String(seq).padStart(10, '0')}-${this.nodeId}`;
    const dir = `${this.prefixOf(task)}${name}/`;
    try {
      const files: CheckpointManifest['parts'] = [];
      let bytes = 0;
      for (let i = 0; i < parts.length; i++) {
        const file = `part-${i}.bin`;
        const { bytes: data, groupLo, groupHi } = parts[i];
        await this.puts.put(`${dir}${file}`, data, 'application/octet-stream');
        files.push({ file, groupLo, groupHi, bytes: data.length, sha256: await sha256(data) });
        bytes += data.length;
      }
      const { incidents, ...rest } = meta;
      const manifest = buildManifest(files, rest, seq, groups, nowMs, { task, generation, nodeId: this.nodeId, incidents });
      if (!stillOwned()) return null;
      await this.puts.put(`${dir}${MANIFEST}`, Buffer.from(JSON.stringify(manifest)), 'application/json');
      await this.prune(task).catch((err) => this.log.warn({ err: (err as Error).message, task }, 'old task checkpoints not removed'));
      return { name, seq, bytes };
    } catch (err) {
      throw new CheckpointError(`cannot write the checkpoint of task ${task} to s3://${this.s3.bucket}/${dir} (${(err as Error).message}); the previous one is kept`, { cause: err });
    }
  }

  /**
   * The newest checkpoint of a task that checks out (by generation, then sequence number), with the
   * reasons newer ones were refused; null when there is none. Throws when S3 cannot be listed or read
   * (retriable: the caller tries again, the task must not start cold).
   */
  async load(task: string, groups: number): Promise<{ checkpoint: LoadedTaskCheckpoint | null; refused: string[] }> {
    const all = await this.list(task);
    const seqs = all.map((c) => c.seq);
    this.seqs.set(task, Math.max(this.seqs.get(task) ?? 1, ...seqs.map((s) => s + 1)));
    const refused: string[] = [];
    for (const c of all.filter((x) => x.complete).sort(newestFirst)) {
      const dir = `${this.prefixOf(task)}${c.name}/`;
      const text = Buffer.from(await this.get(`${dir}${MANIFEST}`)).toString('utf8');
      let files: string[];
      try {
        files = (JSON.parse(text) as CheckpointManifest).parts.map((p) => p.file);
      } catch (err) {
        refused.push(`${c.name}: manifest unreadable (${(err as Error).message})`);
        continue;
      }
      const bytes = new Map<string, Uint8Array>();
      for (const f of files) bytes.set(f, await this.get(`${dir}${f}`).catch(() => new Uint8Array(0)));
      try {
        const { manifest, parts } = verifyCheckpoint(text, groups, (f) => bytes.get(f) ?? new Uint8Array(0));
        const m = manifest as TaskCheckpointManifest;
        if (m.task !== task) throw new Error(`a checkpoint of task ${m.task}, not ${task}`);
        return { checkpoint: { manifest: m, parts, name: c.name }, refused };
      } catch (err) {
        refused.push(`${c.name}: ${(err as Error).message}`);
      }
    }
    return { checkpoint: null, refused };
  }

  private async list(task: string): Promise<Array<{ name: string; generation: number; seq: number; complete: boolean; keys: string[] }>> {
    const prefix = this.prefixOf(task);
    const byName = new Map<string, { name: string; generation: number; seq: number; complete: boolean; keys: string[] }>();
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.s3.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const rest = (o.Key ?? '').slice(prefix.length);
        const slash = rest.indexOf('/');
        const m = NAME.exec(rest.slice(0, slash));
        if (slash < 0 || !m) continue;
        const e = byName.get(m[0]) ?? { name: m[0], generation: Number(m[1]), seq: Number(m[2]), complete: false, keys: [] };
        e.keys.push(o.Key!);
        if (rest.slice(slash + 1) === MANIFEST) e.complete = true;
        byName.set(m[0], e);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return [...byName.values()];
  }

  /** Keeps the newest KEEP complete checkpoints; removes older ones, and incomplete ones older than those. */
  private async prune(task: string): Promise<void> {
    const all = (await this.list(task)).sort(newestFirst);
    const kept = all.filter((c) => c.complete).slice(0, KEEP);
    if (kept.length < KEEP) return;
    const oldest = kept[kept.length - 1];
    const doomed = all.filter((c) => newestFirst(c, oldest) > 0).flatMap((c) => c.keys);
    // One by one: a few objects per checkpoint, and S3-compatible stores differ on DeleteObjects' checksums.
    for (const Key of doomed) await this.client.send(new DeleteObjectCommand({ Bucket: this.s3.bucket, Key }));
  }

  private async get(key: string): Promise<Uint8Array> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.s3.bucket, Key: key }));
    return out.Body!.transformToByteArray();
  }
}

/** Sorts newest first: by generation, then sequence number, then name. */
function newestFirst(a: { generation: number; seq: number; name: string }, b: { generation: number; seq: number; name: string }): number {
  return b.generation - a.generation || b.seq - a.seq || (b.name < a.name ? -1 : b.name > a.name ? 1 : 0);
}
