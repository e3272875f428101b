// Task checkpoints in S3 (s3rver): the newest is taken by (generation, seq), so a node that lost a
// task and writes late, at its older generation, is never taken over the new owner; a checkpoint
// whose parts do not check out is refused for the one before; a task revoked during a save gets no
// manifest (no checkpoint); the newest two are kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { S3Client, CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { testS3Client } from './support/services-env.ts';
import { TaskCheckpointStore } from '../src/cluster/task-checkpoint-store.ts';
import { Engine, type EngineState } from '../src/engine/engine.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';

const BUCKET = `vigil-task-cp-${process.pid}-${Date.now()}`;
const GROUPS = 128;
const TASK = 'views:3';
const logger = pino({ level: 'silent' });
let s3: S3Client;
let state: EngineState;

before(async () => {
  s3 = testS3Client();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // Real kernel parts (the store checks them as the local checkpoints are checked).
  const engine = new Engine({ workers: 2, groups: GROUPS, chunkBytes: 65536, params: DEFAULT_DETECTION_PARAMS, maxKeysPerWorker: 1000, maxCellsPerWorker: 2000,
    logger, onVerdicts: () => undefined });
  await engine.start();
  const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ view_id: `v${i}`, property_id: `p${i % 3}`, video_title: 't', error_type: null, ts: 1_700_000_000_000 + i * 1000 }));
  await engine.push(Buffer.from(lines.join('\n') + '\n'), { stream: TASK, live: false }, { stream: TASK, next: '50' });
  state = await engine.checkpoint(() => null);
  await engine.stop();
});

after(() => s3?.destroy());

function store(node: string, cluster: string): TaskCheckpointStore {
  return new TaskCheckpointStore(s3, { bucket: BUCKET, prefix: 'vigil/', maxAttempts: 2 }, cluster, node, logger);
}

function meta(offset: string) {
  return { eventTime: state.eventTime, positions: { [TASK]: offset }, source: 'kafka:views', latestVerdictMs: null, incidents: { open: [], properties: ['p0'] } };
}

test('the newest by generation wins over a later write of an older generation (a node that lost the task)', async () => {
  const oldOwner = store('node-a', 'c1');
  const newOwner = store('node-b', 'c1');
  assert.ok(await oldOwner.save(TASK, 4, state.parts, meta('100'), GROUPS, 1, () => true));
  assert.ok(await oldOwner.save(TASK, 4, state.parts, meta('120'), GROUPS, 2, () => true));
  // The new owner (generation 5) restores the old owner's newest, then checkpoints.
  const gained = await newOwner.load(TASK, GROUPS);
  assert.equal(gained.checkpoint?.manifest.positions[TASK], '120');
  assert.ok(await newOwner.save(TASK, 5, state.parts, meta('130'), GROUPS, 3, () => true));
  // The old owner's save in flight lands afterwards, with a higher sequence number of its own.
  for (let i = 0; i < 3; i++) await oldOwner.save(TASK, 4, state.parts, meta(String(140 + i)), GROUPS, 4, () => true);
  const next = await store('node-c', 'c1').load(TASK, GROUPS);
  assert.equal(next.checkpoint?.manifest.positions[TASK], '130', 'the new owner\'s checkpoint, not the stale writer\'s');
  assert.equal(next.checkpoint?.manifest.generation, 5);
  assert.equal(next.checkpoint?.manifest.nodeId, 'node-b');
});

test('a task revoked during the save gets no checkpoint; a damaged newest is refused for the one before; two are kept', async () => {
  const s = store('node-a', 'c2');
  assert.ok(await s.save(TASK, 1, state.parts, meta('10'), GROUPS, 1, () => true));
  assert.ok(await s.save(TASK, 1, state.parts, meta('20'), GROUPS, 2, () => true));
  assert.equal(await s.save(TASK, 1, state.parts, meta('30'), GROUPS, 3, () => false), null);
  assert.equal((await s.load(TASK, GROUPS)).checkpoint?.manifest.positions[TASK], '20');
  assert.ok(await s.save(TASK, 2, state.parts, meta('40'), GROUPS, 4, () => true));
  const prefix = s.prefixOf(TASK);
  const keys = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
  const manifests = (await keys()).filter((k) => k.endsWith('manifest.json')).sort();
  assert.equal(manifests.length, 2, `kept: ${manifests.join(', ')}`);
  // The newest's first part replaced by other bytes: refused, with the reason, for the one before.
  const newest = manifests.at(-1)!.replace('manifest.json', 'part-0.bin');
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: newest, Body: Buffer.from(state.parts[1].bytes) }));
  const { checkpoint, refused } = await s.load(TASK, GROUPS);
  assert.equal(checkpoint?.manifest.positions[TASK], '20');
  assert.equal(refused.length, 1);
  assert.match(refused[0], /part-0\.bin (is \d+ bytes|checksum)/);
});
