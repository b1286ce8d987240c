import type { Command } from 'commander';
import { type Config, loadConfig } from '../core/config.ts';
import { AccelError } from '../core/errors.ts';
import { createLog, type Log, type LogLevel } from '../core/log.ts';
import { resolveHome } from '../core/paths.ts';
import { parseSize } from '../core/size.ts';
import type { SizeLimitOptions } from '../store/limit.ts';
import { Store } from '../store/store.ts';

/** Everything a command needs from the global flags and the environment, resolved once. */
export interface Globals {
  home: string;
  json: boolean;
  log: Log;
  config: Config;
  env: NodeJS.ProcessEnv;
}

interface GlobalFlags {
  home?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

export function resolveGlobals(cmd: Command, env: NodeJS.ProcessEnv = process.env): Globals {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const log = createLog(logLevel(flags, env));
  const home = resolveHome(flags.home, env);
  const { config, unknownEnv } = loadConfig(home, env);
  for (const name of unknownEnv) log.warn(`ignoring unknown environment variable ${name}`);
  return { home, json: flags.json === true, log, config, env };
}

function logLevel(flags: GlobalFlags, env: NodeJS.ProcessEnv): LogLevel {
  if (flags.quiet && flags.verbose) {
    throw new AccelError('ACCEL_USAGE_CONFLICT', '--quiet and --verbose cannot be used together');
  }
  if (flags.quiet) return 'quiet';
  if (flags.verbose) return 'verbose';
  const fromEnv = env.ACCEL_LOG;
  if (fromEnv === undefined || fromEnv === '') return 'normal';
  if (fromEnv === 'quiet' || fromEnv === 'normal' || fromEnv === 'verbose') return fromEnv;
  throw new AccelError('ACCEL_CONFIG_INVALID', `ACCEL_LOG must be quiet, normal or verbose, not '${fromEnv}'`);
}

/** Opens the store for the duration of `fn` and always closes it. */
export async function withStore<T>(globals: Globals, fn: (store: Store) => Promise<T> | T): Promise<T> {
  const { shared, verifyHits } = globals.config.store;
  const store = Store.open({ home: globals.home, log: globals.log, shared, verifyHits });
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** The size limit a server keeps (store.maxSize between its water marks), checked. */
export function sizeLimitOf(config: Config): SizeLimitOptions {
  const { maxSize, highWater, lowWater } = config.store;
  if (lowWater > highWater) {
    throw new AccelError(
      'ACCEL_CONFIG_INVALID',
      `store.lowWater (${lowWater}) is above store.highWater (${highWater})`,
      {
        hint: 'gc evicts from the high-water mark down to the low-water mark: set lowWater below highWater',
      },
    );
  }
  return { maxBytes: parseSize(maxSize), highWater: highWater / 100, lowWater: lowWater / 100 };
}

/**
 * Opens the store for a server (mirror, syncer, worker) for the duration of `fn`: like withStore, and kept under
 * store.maxSize while it runs (store/limit.ts). The limit stops before the store closes.
 */
export async function withServingStore<T>(globals: Globals, fn: (store: Store) => Promise<T> | T): Promise<T> {
  const options = sizeLimitOf(globals.config);
  return withStore(globals, async (store) => {
    const limit = store.limitSize(options);
    try {
      return await fn(store);
    } finally {
      await limit.close();
    }
  });
}
