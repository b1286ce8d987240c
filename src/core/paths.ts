import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Where the store lives: `--home`, else `$ACCEL_HOME`, else `$XDG_CACHE_HOME/accel`, else `~/.cache/accel`.
 * Takes the environment as a value so that only the CLI reads `process.env`.
 */
export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return resolve(flag);
  if (env.ACCEL_HOME) return resolve(env.ACCEL_HOME);
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, 'accel');
  return join(env.HOME || homedir(), '.cache', 'accel');
}
