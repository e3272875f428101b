import { pino, type Logger } from 'pino';

export type { Logger };

/** The process's root JSON logger, writing to stderr so stdout stays free for replay output. */
export function createLogger(level: string = 'info'): Logger {
  return pino({ level, base: { app: 'vigil' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}

/** A logger that discards everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
