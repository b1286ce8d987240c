import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { devNull } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AccelError, errnoCode, fsError } from '../core/errors.ts';

/**
 * The upstreams a user's tools are configured with, discovered from the machine's own configuration: accel
 * never names a registry itself, it only sends what the user already uses through the mirror.
 */
export interface Upstreams {
  /** pip's index URL (the simple API root). */
  pipIndex?: string;
  /** npm's registry URL. */
  npmRegistry?: string;
  /** conda channels in the user's order: full URLs, or bare names resolved under condaChannelAlias. */
  condaChannels?: string[];
  condaChannelAlias?: string;
}

export interface DiscoverOptions {
  /** Directory of system-wide configuration (`/etc`); tests point it at a temp dir. */
  etc?: string;
  /**
   * Asks the installed npm for its registry when no file or variable names one (npm's built-in default lives
   * in npm itself, not in any file). Off unless given: tests must not depend on the machine's npm.
   */
  askNpm?: () => string | undefined;
  /**
   * Read only this tool's configuration (`mirror config pip` has no business reading ~/.npmrc, which may not
   * even be readable); all of them when absent.
   */
  only?: string;
}

/** `npm config get registry` from the npm on PATH, or undefined when there is none. */
export function npmRegistryFromNpm(env: NodeJS.ProcessEnv): string | undefined {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { env, encoding: 'utf8', timeout: 10_000 });
  const value = r.status === 0 ? r.stdout.trim() : '';
  return /^https?:\/\//.test(value) ? value : undefined;
}

/** Reads the upstreams from `env` and the config files under `home` (both passed in, never read globally). */
export function discoverUpstreams(env: NodeJS.ProcessEnv, home: string, options: DiscoverOptions = {}): Upstreams {
  const wants = (tool: string) => options.only === undefined || options.only === tool;
  const pipIndex = wants('pip') ? discoverPipIndex(env, home, options.etc ?? '/etc') : undefined;
  const npmRegistry = wants('npm') ? (discoverNpmRegistry(env, home) ?? options.askNpm?.()) : undefined;
  return {
    ...(pipIndex === undefined ? {} : { pipIndex }),
    ...(npmRegistry === undefined ? {} : { npmRegistry }),
    ...(wants('conda') ? discoverConda(env, home) : {}),
  };
}

function discoverPipIndex(env: NodeJS.ProcessEnv, home: string, etc: string): string | undefined {
  const fromEnv = env.PIP_INDEX_URL?.trim();
  if (fromEnv) return fromEnv;
  // pip layers its files and a later one overrides an earlier one key by key, so the index comes from the
  // highest-precedence file that sets it, not merely the first file that exists.
  for (const file of pipConfigFiles(env, home, etc)) {
    const text = readOptional(file);
    if (text === undefined) continue;
    const ini = parseIni(text, { delimiters: '=:', inlineComments: false });
    // [install] is pip's per-command section; it counts when [global] has no index.
    const value = ini.get('global')?.get('index-url') ?? ini.get('install')?.get('index-url');
    const index = value?.trim().split(/\s+/)[0];
    if (index) return index;
  }
  return undefined;
}

/** pip's configuration files, highest precedence first. */
function pipConfigFiles(env: NodeJS.ProcessEnv, home: string, etc: string): string[] {
  // pip's documented switch for "load no configuration files at all".
  if (env.PIP_CONFIG_FILE === devNull) return [];
  const xdgConfig = env.XDG_CONFIG_HOME || join(home, '.config');
  return [
    ...(env.PIP_CONFIG_FILE ? [env.PIP_CONFIG_FILE] : []),
    ...(env.VIRTUAL_ENV ? [join(env.VIRTUAL_ENV, 'pip.conf')] : []),
    join(xdgConfig, 'pip', 'pip.conf'),
    join(home, '.pip', 'pip.conf'),
    join(etc, 'pip.conf'),
    join(etc, 'xdg', 'pip', 'pip.conf'),
  ];
}

function discoverNpmRegistry(env: NodeJS.ProcessEnv, home: string): string | undefined {
  const fromEnv = npmEnv(env, 'registry');
  if (fromEnv) return fromEnv;
  const userconfig = npmEnv(env, 'userconfig')?.replace(/^~(?=\/|$)/, home) ?? join(home, '.npmrc');
  const text = readOptional(userconfig);
  if (text === undefined) return undefined;
  // Only top-level keys: `@scope:registry=` lines configure one scope, not the registry.
  const value = parseIni(text, { delimiters: '=', inlineComments: true }).get('')?.get('registry');
  return value ? expandNpmVariables(value, env) : undefined;
}

/** npm reads `npm_config_<key>` case-insensitively; the lower-case spelling wins, as it is npm's own. */
function npmEnv(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const name = `npm_config_${key}`;
  const exact = env[name]?.trim();
  if (exact) return exact;
  const other = Object.keys(env).find((k) => k.toLowerCase() === name);
  return other === undefined ? undefined : env[other]?.trim() || undefined;
}

/** npm substitutes `${VAR}` in .npmrc values (`${VAR?}` is empty when unset). */
function expandNpmVariables(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([^}?]+)(\?)?\}/g, (whole, name: string, optional?: string) => {
    const found = env[name];
    return found ?? (optional ? '' : whole);
  });
}

function discoverConda(env: NodeJS.ProcessEnv, home: string): Pick<Upstreams, 'condaChannels' | 'condaChannelAlias'> {
  const file = env.CONDARC || join(home, '.condarc');
  const text = readOptional(file);
  if (text === undefined) return {};
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw badClientFile(file, `is not valid YAML (${(err as Error).message.split('\n')[0]})`, err);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw badClientFile(file, 'is not a YAML mapping');
  const rc = doc as Record<string, unknown>;
  const channels = stringList(rc.channels, 'channels', file);
  const defaults = stringList(rc.default_channels, 'default_channels', file);
  const alias = rc.channel_alias;
  if (alias !== undefined && alias !== null && typeof alias !== 'string') {
    throw badClientFile(file, 'has a channel_alias that is not a string');
  }
  // `defaults` names conda's built-in channel list; it can be mirrored only when the file spells that list out.
  const expanded = channels?.flatMap((c) => (c === 'defaults' && defaults?.length ? defaults : [c]));
  return {
    ...(expanded?.length ? { condaChannels: expanded } : {}),
    ...(alias ? { condaChannelAlias: alias } : {}),
  };
}

function stringList(value: unknown, key: string, file: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw badClientFile(file, `has a ${key} entry that is not a list of strings`);
  }
  return value.map((v: string) => v.trim()).filter((v) => v !== '');
}

function badClientFile(file: string, what: string, cause?: unknown): AccelError {
  return new AccelError('ACCEL_MIRROR_BAD_CLIENT_FILE', `${file} ${what}`, {
    hint: `fix ${file}, or pass --upstream URL`,
    cause,
    exitCode: 2,
  });
}

/** A config file's text, or undefined when it does not exist (the usual case for most candidates). */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fsError(err, 'reading', path);
  }
}

interface IniSyntax {
  /** Characters that separate a key from its value: pip's configparser takes `=` and `:`, npm's ini only `=`. */
  delimiters: '=:' | '=';
  /** npm's ini strips `;` and `#` comments after an unquoted value; configparser does not. */
  inlineComments: boolean;
}

/** Sections of an INI file as maps of lower-cased keys (`_` read as `-`, as pip does); top-level keys in ''. */
function parseIni(text: string, syntax: IniSyntax): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current = new Map<string, string>();
  sections.set('', current);
  let lastKey: string | undefined;
  const keyValue = syntax.delimiters === '=' ? /^([^=]+?)\s*=\s*(.*)$/ : /^([^=:]+?)\s*[=:]\s*(.*)$/;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*([#;]|$)/.test(line)) continue;
    // configparser continues a value on indented lines.
    if (/^\s/.test(line) && lastKey !== undefined && !syntax.inlineComments) {
      current.set(lastKey, `${current.get(lastKey) ?? ''}\n${line.trim()}`);
      continue;
    }
    const header = /^\s*\[([^\]]+)\]/.exec(line);
    if (header) {
      const name = (header[1] ?? '').trim();
      current = sections.get(name) ?? new Map<string, string>();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    const pair = keyValue.exec(line.trim());
    if (!pair) continue;
    lastKey = (pair[1] ?? '').toLowerCase().replace(/_/g, '-');
    const raw = pair[2] ?? '';
    current.set(lastKey, syntax.inlineComments ? npmValue(raw) : raw);
  }
  return sections;
}

/** A value as npm's ini reads it: quotes removed, or a trailing `;`/`#` comment cut off. */
function npmValue(raw: string): string {
  const quoted = /^(["'])(.*)\1$/.exec(raw);
  if (quoted) return quoted[2] ?? '';
  return raw.replace(/\s*[;#].*$/, '').trim();
}
