/** Logs go to stderr so stdout carries only data. The level is decided once by the CLI and passed down. */
export type LogLevel = 'quiet' | 'normal' | 'verbose';

export interface Log {
  readonly level: LogLevel;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export function createLog(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Log {
  const emit = (prefix: string, message: string) => write(`accel: ${prefix}${message}\n`);
  const loud = level !== 'quiet';
  return {
    level,
    error: (m) => emit('error: ', m),
    warn: (m) => {
      if (loud) emit('warning: ', m);
    },
    info: (m) => {
      if (loud) emit('', m);
    },
    debug: (m) => {
      if (level === 'verbose') emit('debug: ', m);
    },
  };
}

/** A log that drops everything, for library callers and tests that do not care. */
export const silentLog: Log = createLog('quiet', () => {});
