import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { waitUntil } from './services-env.ts';

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

/**
 * A `vigil run` that a test starts, kills and starts again under one name: its data directory and
 * audit file stay across runs, each run's stderr is kept (and written to `<dir>/<name>-run-<n>.log`
 * as it comes, for whoever reads a failure or a hang).
 */
export class DaemonRuns {
  readonly data: string;
  readonly audit: string;
  readonly env: Record<string, string>;
  /** Every start's stderr, in order. */
  readonly runs: Array<() => string> = [];
  /** When the daemon was signalled to stop, and how. */
  readonly stops: Array<{ atMs: number; signal: 'SIGKILL' | 'SIGTERM' }> = [];
  private current: ReturnType<typeof startDaemon> | null = null;

  /** `env(data, audit)`: the daemon's environment, given its data directory and audit file. */
  constructor(readonly name: string, private readonly dir: string, env: (data: string, audit: string) => Record<string, string>) {
    this.data = join(dir, `${name}-data`);
    this.audit = join(dir, `${name}-audit.ndjson`);
    this.env = env(this.data, this.audit);
  }

  /** Starts the daemon and waits until it logs that it runs (fails if it exits first). */
  async start(): Promise<void> {
    const d = startDaemon(this.env);
    this.current = d;
    this.runs.push(d.stderr);
    const log = join(this.dir, `${this.name}-run-${this.runs.length}.log`);
    d.child.stderr!.on('data', (chunk: Buffer) => appendFileSync(log, chunk));
    await waitUntil(`${this.name} to run`, () => /vigil running/.test(d.stderr()) || d.child.exitCode !== null, 120_000);
    assert.equal(d.child.exitCode, null, `${this.name} exited at start: ${d.stderr().slice(-3000)}`);
  }

  /** Signals the daemon and waits for its exit (SIGTERM must end with status 0 within 120 s). */
  async stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const d = this.current!;
    this.current = null;
    this.stops.push({ atMs: Date.now(), signal });
    d.child.kill(signal);
    const code = await Promise.race([d.exit, delay(120_000, 'hung' as const, { ref: false })]);
    if (code === 'hung') {
      d.child.kill('SIGKILL');
      assert.fail(`${this.name} did not exit within 120 s of ${signal}: ${d.stderr().slice(-3000)}`);
    }
    if (signal === 'SIGTERM') assert.equal(code, 0, `${this.name} did not stop cleanly: ${d.stderr().slice(-3000)}`);
  }

  get running(): boolean {
    return this.current !== null;
  }

  /** The stderr of every run so far. */
  stderr(): string {
    return this.runs.map((r) => r()).join('');
  }

  /** The JSON log lines of every run with this message. */
  logs(msg: string): Array<Record<string, unknown> & { atMs: number }> {
    return this.stderr().split('\n').filter((l) => l.includes(`"msg":"${msg}"`))
      .map((l) => { const o = JSON.parse(l) as Record<string, unknown>; return { ...o, atMs: Date.parse(String(o.time)) }; });
  }
}
