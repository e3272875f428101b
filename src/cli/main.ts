import { parseArgs } from 'node:util';
import { statSync } from 'node:fs';
import { Writable } from 'node:stream';
import { loadConfig, ConfigError, CHUNK_BYTES_MIN, CHUNK_BYTES_MAX, type VigilConfig } from '../config/config.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { ReplaySummary } from '../replay/replay.ts';
import { VERSION } from '../version.ts';
import { ProgressLine } from './progress-line.ts';
import { COMMAND_HELP, USAGE } from './help.ts';
import { probe } from './healthcheck.ts';

type CommandName = keyof typeof COMMAND_HELP;

/** Runs the CLI with the given arguments; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': return await runCommand(rest);
      case 'replay': return await replayCommand(rest);
      case 'generate': return await generateCommand(rest);
      case 'healthcheck': return await healthcheckCommand(rest);
      case '--version': case '-V': case 'version':
        process.stdout.write(`vigil ${VERSION} (Node ${process.version}, ${process.platform}-${process.arch})\n`);
        return 0;
      case 'help': {
        const topic = rest[0];
        if (topic === undefined) { process.stdout.write(USAGE); return 0; }
        if (isCommand(topic)) { process.stdout.write(COMMAND_HELP[topic]); return 0; }
        throw new UsageError(`no help for ${JSON.stringify(topic)}: commands are ${Object.keys(COMMAND_HELP).join(', ')}`);
      }
      case '--help': case '-h':
        process.stdout.write(USAGE);
        return 0;
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      default:
        process.stderr.write(`vigil: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vigil: ${err.message}\n`);
      return 2;
    }
    const code = (err as { code?: string }).code;
    if (err instanceof UsageError || code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
      || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const help = isCommand(command) ? `run "vigil ${command} --help" for its options` : 'run "vigil --help" for the commands';
      process.stderr.write(`vigil: ${(err as Error).message}\n${help}\n`);
      return 2;
    }
    if (isOperationalError(err)) {
      // A failure we know (port taken, broker unreachable, ...): one line with its code, no stack trace.
      process.stderr.write(`vigil: ${describe(err)}\n`);
      return 1;
    }
    throw err;
  }
}

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMAND_HELP, name);
}

class UsageError extends Error {}

/**
 * `--help` / `-h` anywhere among a command's arguments answers with its help before anything else is
 * looked at: no configuration is read, nothing starts.
 */
function wantsHelp(command: CommandName, args: string[]): boolean {
  if (!args.includes('--help') && !args.includes('-h')) return false;
  process.stdout.write(COMMAND_HELP[command]);
  return true;
}

/** Vigil's own errors carry a stable code and a retriable flag; anything else is a bug and keeps its stack trace. */
function isOperationalError(err: unknown): err is Error & { code: string; retriable: boolean } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { retriable?: unknown }).retriable === 'boolean';
}

function describe(err: Error & { code: string }): string {
  const c = err.cause as (Error & { code?: unknown }) | undefined;
  const told = c instanceof Error && (err.message.includes(c.message) || (typeof c.code === 'string' && err.message.includes(c.code)));
  const cause = c instanceof Error && !told ? ` (cause: ${c.message})` : '';
  return `${err.message}${cause} [${err.code}]`;
}

function positiveInt(name: string, raw: string | undefined, def: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(min === 1 && max === Number.MAX_SAFE_INTEGER
      ? `--${name} expects a positive integer, got ${JSON.stringify(raw)}`
      : `--${name} expects an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

async function runCommand(args: string[]): Promise<number> {
  if (wantsHelp('run', args)) return 0;
  // No options: a stray argument is a mistake worth stopping for, not something to start a daemon over.
  parseArgs({ args, options: {}, allowPositionals: false, strict: true });
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  warnUnknownVariables(config, log);
  // Handlers go in before start, so a SIGTERM during start-up still shuts down cleanly.
  const stopRequested = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // A daemon runs until told to stop, even when its source has nothing left to read.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const { Daemon } = await import('../daemon/daemon.ts');
  const daemon = new Daemon(config, log);
  let gaveUp: string | null = null;
  try {
    await daemon.start();
    const ended = await Promise.race([stopRequested.then((signal) => ({ signal })), daemon.fatal.then((reason) => ({ reason }))]);
    if ('signal' in ended) {
      log.info({ signal: ended.signal }, 'shutting down');
    } else {
      gaveUp = ended.reason;
      log.fatal({ reason: gaveUp }, 'shutting down: a degraded state lasted too long');
    }
  } finally {
    clearInterval(keepAlive);
    await daemon.stop();
  }
  // An orchestrator restarts a daemon that exits non-zero; it must, when something was not done.
  if (gaveUp !== null) process.stderr.write(`vigil: giving up: ${gaveUp}\n`);
  for (const f of daemon.stopFailures) process.stderr.write(`vigil: ${f}\n`);
  return gaveUp !== null || daemon.stopFailures.length > 0 ? 1 : 0;
}

/** Unknown VIGIL_* variables are warnings (a newer deployment's variable must not stop an older Vigil). */
function warnUnknownVariables(config: VigilConfig, log: Logger): void {
  for (const u of config.unknownVariables) {
    log.warn({ variable: u.name, suggestion: u.suggestion },
      `unknown variable ${u.name} is ignored${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}`);
  }
}

const MB = 1_000_000;

async function replayCommand(args: string[]): Promise<number> {
  if (wantsHelp('replay', args)) return 0;
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: { workers: { type: 'string' }, out: { type: 'string' }, 'chunk-bytes': { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length > 1) throw new UsageError('replay takes at most one input file');
  const config = loadConfig();
  const input = positionals[0] ?? '-';
  const workers = positiveInt('workers', values.workers, config.workers);
  const chunkBytes = positiveInt('chunk-bytes', values['chunk-bytes'], config.chunkBytes, CHUNK_BYTES_MIN, CHUNK_BYTES_MAX);
  if (config.maxLineBytes > chunkBytes) throw new UsageError(`--chunk-bytes (${chunkBytes}) must be at least VIGIL_MAX_LINE_BYTES (${config.maxLineBytes})`);
  let total = 0;
  if (input !== '-') {
    try {
      total = statSync(input).size;
    } catch (err) {
      throw new UsageError(`cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const { replay, openOutput } = await import('../replay/replay.ts');
  const terminal = process.stderr.isTTY === true;
  // On a terminal stderr carries a progress line, and the JSON log lines (and transitions, when stdout
  // is the same terminal) are written above it rather than glued onto it.
  const progress = terminal ? new ProgressLine(process.stderr) : null;
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, progress ? { write: (line: string) => progress.writeAbove(line) } : undefined);
  warnUnknownVariables(config, log);
  let output = openOutput(values.out);
  if (progress && output === process.stdout && process.stdout.isTTY) output = linesAbove(progress);
  const started = Date.now();
  let summary: ReplaySummary;
  try {
    summary = await replay({
      input: input === '-' ? process.stdin : input,
      output, workers, groups: Math.max(config.keyGroups, workers), chunkBytes, params: config.params,
      maxKeysPerWorker: config.maxKeysPerWorker, maxCellsPerWorker: config.maxCellsPerWorker,
      fieldNames: config.fieldNames, maxLineBytes: config.maxLineBytes, logger: log,
      onProgress: progress ? ({ bytes, events }) => {
        const read = total ? `${((100 * bytes) / total).toFixed(1)}% of ${(total / MB).toFixed(1)} MB` : `${(bytes / MB).toFixed(1)} MB`;
        const rate = events / Math.max(0.001, (Date.now() - started) / 1000);
        progress.update(`replay: ${read} · ${events.toLocaleString('en')} events · ${(rate / MB).toFixed(2)} M events/s`);
      } : undefined,
    });
  } finally {
    progress?.clear();
  }
  if (output !== process.stdout) await new Promise<void>((r) => output.end(r));
  process.stderr.write(terminal && !values.json ? humanReplaySummary(summary, workers) : JSON.stringify(replaySummaryJson(summary, workers)) + '\n');
  return 0;
}

// Transitions to a terminal that also shows the progress line: each write goes above the line.
function linesAbove(progress: ProgressLine): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      progress.writeAbove(chunk.toString('utf8'));
      done();
    },
  });
}

function replaySummaryJson(s: ReplaySummary, workers: number) {
  const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
  return {
    summary: 'replay', events: s.events, rejected, rejected_by_reason: s.rejected, late_events: s.late, duplicate_events: s.duplicates, future_events: s.future,
    incidents: s.incidents, transitions: s.transitions, seconds: Number(s.seconds.toFixed(3)),
    events_per_second: Math.round(s.eventsPerSecond), workers,
  };
}

/** The replay summary for a person at a terminal (the same figures as the JSON line). */
export function humanReplaySummary(s: ReplaySummary, workers: number): string {
  const n = (x: number) => x.toLocaleString('en');
  const reasons = Object.entries(s.rejected).filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1]);
  const rejected = reasons.reduce((a, [, c]) => a + c, 0);
  const lines = [
    `replay: ${n(s.events)} events in ${s.seconds.toFixed(2)} s (${(s.eventsPerSecond / MB).toFixed(2)} M events/s, ${workers} worker${workers === 1 ? '' : 's'})`,
    `  incidents:      ${n(s.incidents)} opened, ${n(s.transitions)} transitions`,
    `  rejected lines: ${n(rejected)}${reasons.length ? ` (${reasons.map(([r, c]) => `${r} ${n(c)}`).join(', ')})` : ''}`,
    `  late events:    ${n(s.late)}`,
    `  duplicates:     ${n(s.duplicates)} (dropped)`,
    `  future events:  ${n(s.future)}`,
  ];
  return lines.join('\n') + '\n';
}

async function generateCommand(args: string[]): Promise<number> {
  if (wantsHelp('generate', args)) return 0;
  const { values } = parseArgs({
    args, allowPositionals: false, strict: true,
    options: {
      seed: { type: 'string' }, hours: { type: 'string' }, out: { type: 'string' }, labels: { type: 'string' },
      scale: { type: 'string' }, profile: { type: 'string' }, start: { type: 'string' }, json: { type: 'boolean' },
      properties: { type: 'string' }, duplicates: { type: 'string' }, 'bad-clocks': { type: 'boolean' },
    },
  });
  const num = (name: string, raw: string | undefined, def: number) => {
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got ${JSON.stringify(raw)}`);
    return n;
  };
  let startMs: number | undefined;
  if (values.start !== undefined) {
    startMs = Date.parse(values.start);
    if (Number.isNaN(startMs)) throw new UsageError(`--start expects an ISO-8601 time, got ${JSON.stringify(values.start)}`);
  }
  if (values.profile !== undefined && values.profile !== 'realistic' && values.profile !== 'demo' && values.profile !== 'field') {
    throw new UsageError(`--profile expects realistic, demo or field, got ${JSON.stringify(values.profile)}`);
  }
  const profile = values.profile as 'realistic' | 'demo' | 'field' | undefined;
  if (profile === 'demo' && values.hours === undefined) throw new UsageError('--profile demo is endless: give --hours to write a file');
  const { writeGeneratedFiles } = await import('../generate/index.ts');
  const result = await writeGeneratedFiles({
    seed: num('seed', values.seed, 1), hours: num('hours', values.hours, 8), scale: num('scale', values.scale, 1),
    profile, startMs, out: values.out ?? process.stdout, labelsOut: values.labels,
    ...(values.properties !== undefined ? { properties: num('properties', values.properties, 300) } : {}),
    duplicates: num('duplicates', values.duplicates, 0), badClocks: values['bad-clocks'] ?? false,
  });
  process.stderr.write(process.stderr.isTTY && !values.json
    ? `generate: ${result.lines.toLocaleString('en')} lines, ${result.labels.toLocaleString('en')} labelled incidents\n`
    : JSON.stringify({ summary: 'generate', lines: result.lines, labels: result.labels }) + '\n');
  return 0;
}

async function healthcheckCommand(args: string[]): Promise<number> {
  if (wantsHelp('healthcheck', args)) return 0;
  const { values } = parseArgs({ args, allowPositionals: false, strict: true, options: { live: { type: 'boolean' }, timeout: { type: 'string' } } });
  const timeoutMs = positiveInt('timeout', values.timeout, 3000);
  const config = loadConfig();
  if (!config.http.enabled) {
    process.stderr.write('vigil healthcheck: VIGIL_HTTP=false, the daemon serves no probes\n');
    return 1;
  }
  const result = await probe(config.http, values.live ? '/healthz' : '/readyz', timeoutMs);
  (result.ok ? process.stdout : process.stderr).write(`${result.detail}\n`);
  return result.ok ? 0 : 1;
}
