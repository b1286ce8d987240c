import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import { replaceFileSync } from './atomic-fs.ts';
import { makeDirs } from './dirs.ts';
import { AccelError, errnoCode } from './errors.ts';
import { homeLayout } from './home-layout.ts';
import { ConfigSchema, SETTINGS, type SettingInfo } from './settings.ts';

/* Loading config.json and the ACCEL_* variables; what each setting is lives in settings.ts. */

export type Config = z.output<typeof ConfigSchema>;

const BY_ENV = new Map(SETTINGS.filter((s) => s.env).map((s) => [s.env as string, s]));
const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

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

interface LoadedConfig {
  config: Config;
  /** Where the config file was looked for (it need not exist). */
  file: string;
  /** ACCEL_* variables that are neither known settings nor config keys. */
  unknownEnv: string[];
}

/** Loads `$home/config.json` (optional), overlays `ACCEL_*` variables, and validates the result. */
export function loadConfig(home: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const file = homeLayout(home).config;
  const raw = readConfigFile(file);
  const unknownEnv: string[] = [];
  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('ACCEL_') || value === undefined) continue;
    const setting = BY_ENV.get(name);
    if (setting) {
      setPath(raw, setting.key.split('.'), envValue(setting, value));
      fromEnv.set(setting.key, `${name}=${value}`);
    } else if (!OTHER_ENV.has(name)) unknownEnv.push(name);
  }
  const parsed = z.safeParse(ConfigSchema, raw, { reportInput: true });
  if (!parsed.success) throw configError(parsed.error, file, fromEnv);
  return { config: parsed.data, file, unknownEnv };
}

/** A variable's text as the setting's type; text that is not one stays text, for the schema to refuse. */
function envValue(setting: SettingInfo, value: string): unknown {
  if (setting.kind === 'number' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  if (setting.kind === 'boolean' && /^(1|true|yes|0|false|no)$/i.test(value)) return /^(1|true|yes)$/i.test(value);
  return value;
}

/**
 * Changes `$home/config.json` in place: reads it (or starts from `{}`), lets `change` edit the parsed object,
 * checks the result against the schema, and replaces the file atomically (0600: it may hold tokens). Settings
 * it does not touch are kept as they were. Instead of `accel … > config.json`, which empties the file before
 * accel reads it.
 */
export function updateConfigFile(home: string, change: (raw: Record<string, unknown>) => void): string {
  const file = homeLayout(home).config;
  const raw = readConfigFile(file);
  change(raw);
  const parsed = z.safeParse(ConfigSchema, raw, { reportInput: true });
  if (!parsed.success) throw configError(parsed.error, file, new Map());
  makeDirs(home, { mode: 0o700 });
  replaceFileSync(file, `${JSON.stringify(raw, null, 2)}\n`, 0o600);
  return file;
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

function configError(error: z.core.$ZodError, file: string, fromEnv: Map<string, string>): AccelError {
  const issue = error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => [...issue.path, k].join('.'));
    const section = issue.path[0] === undefined ? undefined : String(issue.path[0]);
    const known = SETTINGS.map((s) => s.key).filter((k) => section === undefined || k.startsWith(`${section}.`));
    return new AccelError('ACCEL_CONFIG_UNKNOWN_KEY', `unknown config key ${keys.join(', ')} in ${file}`, {
      hint: `known keys${section ? ` of ${section}` : ''}: ${known.join(', ')}${section ? '' : ` (sections: ${[...new Set(SETTINGS.map((s) => s.key.split('.')[0]))].join(', ')})`}`,
    });
  }
  const path = issue?.path.map(String) ?? [];
  const key = path.slice(0, 2).join('.');
  const setting = BY_KEY.get(key);
  const source = fromEnv.get(key) ?? file;
  const inner = path.length > 2 ? ` (at ${path.join('.')})` : '';
  const expected = setting ? `expected ${setting.type}` : (issue?.message ?? 'invalid');
  const got = issue && 'input' in issue && issue.input !== undefined ? `, got ${JSON.stringify(issue.input)}` : '';
  // A setting's own check may say what exactly is wrong, and where to read more.
  const own = issue?.code === 'custom' ? (issue.params as { problem?: string; hint?: string } | undefined) : undefined;
  return new AccelError(
    'ACCEL_CONFIG_INVALID',
    `config key ${key || '(root)'}${inner}: ${expected}${got} (from ${source})${own?.problem ? `: ${own.problem}` : ''}`,
    {
      hint: own?.hint
        ? `${own.hint}; fix ${fromEnv.get(key)?.split('=')[0] ?? file}`
        : fromEnv.has(key)
          ? `fix or unset ${fromEnv.get(key)?.split('=')[0]}; the settings are listed in docs/configuration.md`
          : `fix ${file}; the settings are listed in docs/configuration.md`,
    },
  );
}
