/**
 * The one error class for failures a user can hit. Codes are stable (`ACCEL_<AREA>_<WHAT>`): scripts and
 * tests match on them, so a code is never renamed once shipped. Bugs stay plain `Error` and exit 70.
 */
export interface AccelErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Overrides the exit code derived from the code's area. */
  exitCode?: number;
}

/** Areas whose errors mean "the command line or the configuration is wrong" exit 2, like a usage error. */
const USAGE_AREAS = ['ACCEL_USAGE_', 'ACCEL_CONFIG_'];

export class AccelError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: AccelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AccelError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? (USAGE_AREAS.some((p) => code.startsWith(p)) ? 2 : 1);
  }
}

export function isAccelError(err: unknown): err is AccelError {
  return err instanceof AccelError;
}

/** The errno-style code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** Turns the system errors a user can cause (full disk, permissions, missing paths) into AccelErrors. */
export function fsError(err: unknown, what: string, path: string): unknown {
  switch (errnoCode(err)) {
    case 'ENOSPC':
    case 'EFBIG':
    case 'EDQUOT':
      return new AccelError('ACCEL_FS_NO_SPACE', `no space left while ${what} ${path}`, {
        hint: 'free disk space, or shrink the store with `accel store gc --max-size SIZE`',
        cause: err,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new AccelError('ACCEL_FS_PERMISSION', `permission denied while ${what} ${path}`, {
        hint: 'check the permissions of that path, or choose another store with --home DIR',
        cause: err,
      });
    case 'ENOENT':
      return new AccelError('ACCEL_FS_NOT_FOUND', `no such file or directory: ${path}`, { cause: err });
    case 'ENOTDIR':
      return new AccelError('ACCEL_FS_NOT_DIR', `a path component is not a directory while ${what} ${path}`, {
        cause: err,
      });
    case 'EISDIR':
      return new AccelError('ACCEL_FS_IS_DIR', `is a directory: ${path}`, { cause: err });
    default:
      return err;
  }
}
