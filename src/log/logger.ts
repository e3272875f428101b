import { pino, type Logger } from 'pino';

export type { Logger };

/** Where log lines go: any object with write(), called once per line (a ProgressLine on a terminal). */
export interface LogDestination {
  write(line: string): unknown;
}

/**
 * The process's root JSON logger, writing to stderr so stdout stays free for replay output, or to
 * `destination` (which receives the same JSON lines).
 */
export function createLogger(level: string = 'info', destination?: LogDestination): Logger {
  return pino({ level, base: { app: 'vigil' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination(2));
}

/** A logger that discards everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
