import { logLevel, type logCreator } from 'kafkajs';
import type { Logger } from '../log/logger.ts';

/** Routes kafkajs's own log lines into a pino child logger, keeping its namespace; once `closed()` holds, its errors are expected and logged at debug. */
export function kafkaLogCreator(log: Logger, closed: () => boolean = () => false): logCreator {
  return () => ({ namespace, level, log: entry }) => {
    const { message, timestamp: _ts, logger: _l, ...rest } = entry as { message: string; timestamp: string; logger?: string };
    const fields = { kafkaNamespace: namespace, ...rest };
    if (closed()) log.debug(fields, message);
    else if (level === logLevel.ERROR) log.error(fields, message);
    else if (level === logLevel.WARN) log.warn(fields, message);
    else if (level === logLevel.INFO) log.info(fields, message);
    else log.debug(fields, message);
  };
}
