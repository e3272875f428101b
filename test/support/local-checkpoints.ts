import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointManifest } from '../../src/engine/checkpoint-store.ts';

/** The manifest of the newest checkpoint in a data directory (null before the first, or while one is written or pruned). */
export function newestLocalCheckpoint(data: string): CheckpointManifest | null {
  const cps = join(data, 'checkpoints');
  if (!existsSync(cps)) return null;
  const newest = readdirSync(cps).filter((d) => d.startsWith('cp-')).sort().pop();
  if (!newest) return null;
  try {
    return JSON.parse(readFileSync(join(cps, newest, 'manifest.json'), 'utf8')) as CheckpointManifest;
  } catch {
    return null; // being written or pruned: the next look finds it
  }
}
