import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { AccelError, errnoCode } from './errors.ts';
import { parseSize } from './size.ts';

/*
 * One schema for config.json; strict objects everywhere so a misspelt key is an error naming its path rather
 * than a setting silently ignored. zod gives us the path of every problem, which is what the message needs;
 * zod/mini is its tree-shakable form (full zod was 440 KB of a 590 KB bundle, parsed at every start).
 */
const sizeString = z.string().check(
  z.refine(
    (s) => {
      try {
        parseSize(s);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected a size such as 500M or 10G' },
  ),
);

const MirrorSchema = z.strictObject({
  port: z._default(z.number().check(z.int(), z.gte(0), z.lte(65535)), 8000),
  bind: z._default(z.string(), '127.0.0.1'),
  /** Bearer token every request must carry; off when empty. */
  token: z._default(z.string(), ''),
  /** Seconds before volatile content is revalidated with the upstream. */
  ttl: z._default(z.number().check(z.gte(0)), 3600),
  /** Seconds without a byte from an upstream before the download is aborted (and resumed if possible). */
  stallTimeout: z._default(z.number().check(z.gt(0)), 30),
  /** Named upstream lists for `/r/<name>/<path>`, tried in order. */
  remaps: z._default(z.record(z.string().check(z.regex(/^[A-Za-z0-9._-]+$/)), z.array(z.string())), {}),
  /** Regular expressions over the upstream URL marking content that never changes. */
  immutable: z._default(z.array(z.string()), []),
  /** Upstream `host` or `host:port` entries allowed although they resolve to private addresses. */
  allow: z._default(z.array(z.string()), []),
  /** Hosts served in forward-proxy mode (`Acquire::http::Proxy`) besides the remaps' upstreams. */
  proxyHosts: z._default(z.array(z.string()), []),
  /** Local conda channel directories served read-only at `/conda/<name>/`: name → directory. */
  condaChannels: z._default(z.record(z.string().check(z.regex(/^[A-Za-z0-9._-]+$/)), z.string()), {}),
});

const CcSchema = z.strictObject({
  /** A shared build cache in Bazel's HTTP layout, e.g. http://build-cache:8000/cache (accel mirror serve). */
  remote: z._default(z.string(), ''),
  /** Bearer token for the remote cache. */
  remoteToken: z._default(z.string(), ''),
  /** Seconds without a request before the cc daemon exits (it is started again on demand). */
  daemonIdleTimeout: z._default(z.number().check(z.gt(0)), 600),
});

const FarmSchema = z.strictObject({
  /** The syncer's URL (https://HOST:5000); when set, `accel cc` sends cache misses to the farm. */
  syncer: z._default(z.string(), ''),
  /** Where `accel syncer` listens. */
  port: z._default(z.number().check(z.int(), z.gte(0), z.lte(65535)), 5000),
  bind: z._default(z.string(), '127.0.0.1'),
  /** Include roots the syncer snapshots and ships to workers (absolute paths, as the clients see them). */
  dirs: z._default(z.array(z.string()), []),
  /** Jobs a worker runs at once; 0: one per CPU. */
  cores: z._default(z.number().check(z.int(), z.gte(0)), 0),
  /** Where a worker serves /status. */
  statusPort: z._default(z.number().check(z.int(), z.gte(0), z.lte(65535)), 8443),
  /** Seconds a job may wait for a worker before the client compiles it locally. */
  startTimeout: z._default(z.number().check(z.gt(0)), 10),
  /** Seconds a compile may run on a worker before it is killed. */
  jobTimeout: z._default(z.number().check(z.gt(0)), 300),
  /** Seconds a worker's lease on a job lasts without a heartbeat before the job is queued again. */
  lease: z._default(z.number().check(z.gt(0)), 15),
  /** Compiler names a worker runs (found on its PATH). */
  compilers: z._default(z.array(z.string()), ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++']),
});

const CondaSchema = z.strictObject({
  /**
   * Source archives used instead of a recipe's source URL: feedstock name (or the URL's file name) → file.
   * For a dead URL or a distribution's repack of the same release; every use is warned about and recorded.
   */
  sources: z._default(z.record(z.string(), z.string()), {}),
});

const ConfigSchema = z.strictObject({
  cc: z.prefault(CcSchema, {}),
  conda: z.prefault(CondaSchema, {}),
  farm: z.prefault(FarmSchema, {}),
  mirror: z.prefault(MirrorSchema, {}),
  store: z.prefault(
    z.strictObject({
      /** Budget that `accel store gc` shrinks the store to when no --max-size is given. */
      maxSize: z._default(sizeString, '10G'),
      /** A store shared by a group (directories 2770, index 0660); otherwise private to its user (0700/0600). */
      shared: z._default(z.boolean(), false),
      /**
       * When a server re-hashes a blob it serves whole: 'always' (every full response is hashed as it
       * streams), or 'changed' (only when the file's size, inode or times changed since this process
       * hashed it; for filesystems that checksum data themselves, such as ZFS and btrfs).
       */
      verifyHits: z._default(z.enum(['always', 'changed']), 'always'),
    }),
    {},
  ),
});

export type Config = z.output<typeof ConfigSchema>;

/** `ACCEL_*` variables that override config.json keys, by key path. */
const ENV_KEYS: Record<string, readonly string[]> = {
  ACCEL_STORE_MAX_SIZE: ['store', 'maxSize'],
  ACCEL_STORE_SHARED: ['store', 'shared'],
  ACCEL_STORE_VERIFY_HITS: ['store', 'verifyHits'],
  ACCEL_MIRROR_PORT: ['mirror', 'port'],
  ACCEL_MIRROR_BIND: ['mirror', 'bind'],
  ACCEL_MIRROR_TOKEN: ['mirror', 'token'],
  ACCEL_MIRROR_TTL: ['mirror', 'ttl'],
  ACCEL_CC_REMOTE: ['cc', 'remote'],
  ACCEL_CC_REMOTE_TOKEN: ['cc', 'remoteToken'],
  ACCEL_CC_DAEMON_IDLE_TIMEOUT: ['cc', 'daemonIdleTimeout'],
  ACCEL_FARM_SYNCER: ['farm', 'syncer'],
  ACCEL_FARM_PORT: ['farm', 'port'],
  ACCEL_FARM_BIND: ['farm', 'bind'],
  ACCEL_FARM_CORES: ['farm', 'cores'],
  ACCEL_FARM_STATUS_PORT: ['farm', 'statusPort'],
  ACCEL_FARM_START_TIMEOUT: ['farm', 'startTimeout'],
  ACCEL_FARM_JOB_TIMEOUT: ['farm', 'jobTimeout'],
  ACCEL_FARM_LEASE: ['farm', 'lease'],
};

/** Keys whose environment variable holds a number. */
/** Variables whose value is a boolean: 1/true and 0/false. */
const BOOLEAN_ENV = new Set(['ACCEL_STORE_SHARED']);
const NUMERIC_ENV = new Set([
  'ACCEL_MIRROR_PORT',
  'ACCEL_MIRROR_TTL',
  'ACCEL_CC_DAEMON_IDLE_TIMEOUT',
  'ACCEL_FARM_PORT',
  'ACCEL_FARM_CORES',
  'ACCEL_FARM_STATUS_PORT',
  'ACCEL_FARM_START_TIMEOUT',
  'ACCEL_FARM_JOB_TIMEOUT',
  'ACCEL_FARM_LEASE',
]);

/** Variables the CLI reads itself; everything else under ACCEL_ that is not a config key is a likely typo. */
const OTHER_ENV = new Set([
  'ACCEL_HOME',
  'ACCEL_LOG',
  'ACCEL_APT_ETC',
  // Read by the native cc client (native/accel-cc.c), which passes its environment to the daemon.
  'ACCEL_CC_CONNECT_TIMEOUT_MS',
  'ACCEL_CC_SILENCE_MS',
  'ACCEL_CC_START_TIMEOUT_MS',
  // Set by accel conda build on its build scripts: the compiles of one feedstock, counted apart.
  'ACCEL_CC_TALLY',
]);

export interface LoadedConfig {
  config: Config;
  /** Where the config file was looked for (it need not exist). */
  file: string;
  /** ACCEL_* variables that are neither known settings nor config keys. */
  unknownEnv: string[];
}

/** Loads `$home/config.json` (optional), overlays `ACCEL_*` variables, and validates the result. */
export function loadConfig(home: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const file = join(home, 'config.json');
  const raw = readConfigFile(file);
  const unknownEnv: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('ACCEL_') || value === undefined) continue;
    const path = ENV_KEYS[name];
    if (path) {
      const typed = NUMERIC_ENV.has(name) && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      setPath(raw, path, BOOLEAN_ENV.has(name) && /^(1|true|0|false)$/.test(value) ? /^(1|true)$/.test(value) : typed);
    } else if (!OTHER_ENV.has(name)) unknownEnv.push(name);
  }
  const parsed = z.safeParse(ConfigSchema, raw);
  if (!parsed.success) throw configError(parsed.error, file);
  return { config: parsed.data, file, unknownEnv };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return {};
    throw new AccelError('ACCEL_CONFIG_UNREADABLE', `cannot read ${file}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AccelError('ACCEL_CONFIG_INVALID_JSON', `${file} is not valid JSON: ${(err as Error).message}`, {
      hint: 'fix the file or remove it to use the defaults',
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AccelError('ACCEL_CONFIG_INVALID', `${file} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function configError(error: z.core.$ZodError, file: string): AccelError {
  const issue = error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => [...issue.path, k].join('.'));
    return new AccelError('ACCEL_CONFIG_UNKNOWN_KEY', `unknown config key ${keys.join(', ')} in ${file}`, {
      hint: `known keys: ${knownKeys().join(', ')}`,
    });
  }
  const where = issue?.path.join('.') || '(root)';
  return new AccelError('ACCEL_CONFIG_INVALID', `config key ${where}: ${issue?.message ?? 'invalid'} (${file})`, {
    hint: 'settings come from flags, then ACCEL_* variables, then config.json',
  });
}

function knownKeys(): string[] {
  return Object.values(ENV_KEYS).map((p) => p.join('.'));
}
