import { parseArgs } from 'node:util';
import { statSync } from 'node:fs';
import { loadConfig, ConfigError } from '../config/config.ts';
import { createLogger } from '../log/logger.ts';
import { Daemon } from '../daemon/daemon.ts';
import { replay, openOutput } from '../replay/replay.ts';
import { writeGeneratedFiles } from '../generate/index.ts';

const USAGE = `usage: vigil <command> [options]

commands:
  run                         the daemon (configured by VIGIL_* environment variables; see README)
  replay [FILE|-] [--workers N] [--out FILE] [--chunk-bytes N]
                              NDJSON in, one JSON line per incident transition out
  generate [--seed S] [--hours H] [--out FILE] [--labels FILE] [--scale X] [--profile realistic|demo] [--start ISO]
                              synthetic view outcomes with labelled incidents
`;

/** Runs the CLI with the given arguments; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': return await runCommand();
      case 'replay': return await replayCommand(rest);
      case 'generate': return await generateCommand(rest);
      case '--help': case '-h': case 'help': case undefined:
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`vigil: unknown command ${JSON.stringify(command)}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vigil: ${err.message}\n`);
      return 2;
    }
    if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || err instanceof UsageError) {
      process.stderr.write(`vigil: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined, def: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} expects a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

async function runCommand(): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  // Handlers go in before start, so a SIGTERM during start-up still shuts down cleanly.
  const stopRequested = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // A daemon runs until told to stop, even when its source has nothing left to read.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const daemon = new Daemon(config, log);
  try {
    await daemon.start();
    const signal = await stopRequested;
    log.info({ signal }, 'shutting down');
  } finally {
    clearInterval(keepAlive);
    await daemon.stop();
  }
  return 0;
}

async function replayCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { workers: { type: 'string' }, out: { type: 'string' }, 'chunk-bytes': { type: 'string' } },
  });
  if (positionals.length > 1) throw new UsageError('replay takes at most one input file');
  const config = loadConfig();
  const input = positionals[0] ?? '-';
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const workers = positiveInt('workers', values.workers, config.workers);
  const chunkBytes = positiveInt('chunk-bytes', values['chunk-bytes'], config.chunkBytes);
  let total = 0;
  if (input !== '-') {
    try {
      total = statSync(input).size;
    } catch (err) {
      throw new UsageError(`cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const tty = process.stderr.isTTY;
  const output = openOutput(values.out);
  const summary = await replay({
    input: input === '-' ? process.stdin : input,
    output, workers, groups: Math.max(config.keyGroups, workers), chunkBytes, params: config.params,
    maxKeysPerWorker: config.maxKeysPerWorker, maxCellsPerWorker: config.maxCellsPerWorker,
    fieldNames: config.fieldNames, logger: log,
    onProgress: tty ? ({ bytes, events }) => {
      const pct = total ? ` ${((100 * bytes) / total).toFixed(1)}%` : '';
      process.stderr.write(`\rreplay:${pct} ${events.toLocaleString('en')} events`);
    } : undefined,
  });
  if (tty) process.stderr.write('\n');
  if (output !== process.stdout) await new Promise<void>((r) => output.end(r));
  const rejected = Object.values(summary.rejected).reduce((a, b) => a + b, 0);
  process.stderr.write(JSON.stringify({
    summary: 'replay', events: summary.events, rejected, rejected_by_reason: summary.rejected, late_events: summary.late,
    incidents: summary.incidents, transitions: summary.transitions, seconds: Number(summary.seconds.toFixed(3)),
    events_per_second: Math.round(summary.eventsPerSecond), workers,
  }) + '\n');
  return 0;
}

async function generateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args, allowPositionals: false,
    options: {
      seed: { type: 'string' }, hours: { type: 'string' }, out: { type: 'string' }, labels: { type: 'string' },
      scale: { type: 'string' }, profile: { type: 'string' }, start: { type: 'string' },
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
  const profile = values.profile as 'realistic' | 'demo' | undefined;
  if (profile === 'demo' && values.hours === undefined) throw new UsageError('--profile demo is endless: give --hours to write a file');
  const result = await writeGeneratedFiles({
    seed: num('seed', values.seed, 1), hours: num('hours', values.hours, 8), scale: num('scale', values.scale, 1),
    profile, startMs, out: values.out ?? process.stdout, labelsOut: values.labels,
  });
  process.stderr.write(JSON.stringify({ summary: 'generate', lines: result.lines, labels: result.labels }) + '\n');
  return 0;
}
