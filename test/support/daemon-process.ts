import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** bin/vigil.js of this checkout (the tests run after `npm run build`). */
export const VIGIL = join(import.meta.dirname, '..', '..', 'bin', 'vigil.js');

const children: ChildProcess[] = [];

/** Spawns `vigil run` with only PATH plus `env` (HTTP on a free port unless told otherwise), collecting its stderr. */
export function startDaemon(env: Record<string, string>): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  let err = '';
  const child = spawn(process.execPath, [VIGIL, 'run'], { env: { PATH: process.env.PATH, VIGIL_HTTP_PORT: '0', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  child.stderr!.on('data', (d) => { err += d; });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stderr: () => err, exit };
}

/** Kills, by PID, every daemon this file started that is still running: a failed assertion must not leave one behind. */
export function killLeftoverDaemons(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** The HTTP port a `vigil run` started with VIGIL_HTTP_PORT=0 logged ("http listening"), or null before it did. */
export function loggedHttpPort(stderr: string): number | null {
  const m = /"port":(\d+),"url":"http:\/\/[^"]*","tokens":\w+,"msg":"http listening/.exec(stderr);
  return m ? Number(m[1]) : null;
}
