// The thread of one chain merge (chain-merge.ts mergeInWorker): merges, answers once, exits.
import { parentPort, workerData } from 'node:worker_threads';
import { mergeCheckpoint } from './chain-merge.ts';

const { dir, groups } = workerData as { dir: string; groups: number };
try {
  parentPort!.postMessage({ ok: true, result: mergeCheckpoint(dir, groups) });
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).message });
}
