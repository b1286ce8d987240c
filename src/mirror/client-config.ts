import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Document } from 'yaml';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, errnoCode, fsError } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';
import type { Store } from '../store/store.ts';
import type { Upstreams } from './upstreams.ts';
import { mirrorUrlFor } from './url-map.ts';
import { URL_NS, type UrlMeta } from './url-ref.ts';

/*
 * What `accel mirror config <tool>` prints: the files and shell lines that make a tool download through the
 * mirror with no hand edits. Every upstream comes from `Upstreams` (the user's own configuration or
 * --upstream); nothing here names a registry.
 */

export const CLIENT_TOOLS = ['bazel', 'pip', 'npm', 'conda', 'curl'] as const;
export type ClientTool = (typeof CLIENT_TOOLS)[number];

export interface ClientFile {
  name: string;
  content: string;
  /** Where the file goes and why, for the reader of the printed output. */
  purpose: string;
}

export interface ClientConfig {
  files: ClientFile[];
  /** Shell exports or rc lines, with `#` comments. */
  lines: string[];
}

export interface ClientConfigOptions {
  /** The mirror's address, e.g. http://127.0.0.1:8000. */
  base: string;
  upstreams: Upstreams;
  /** Absolute path the .bazelrc line points at; defaults to accel-downloader.cfg in the current directory. */
  downloaderConfigPath?: string;
  /** Whether accel already wrote that file (writeHomeDownloaderConfig), or the user must save it there. */
  downloaderConfigWritten?: boolean;
  /** Hosts Bazel must reach over plain http (see plainHttpHosts). */
  httpHosts?: readonly string[];
}

export const DOWNLOADER_CONFIG_NAME = 'accel-downloader.cfg';

export function clientConfig(tool: ClientTool, options: ClientConfigOptions): ClientConfig {
  const base = normalizeBase(options.base);
  switch (tool) {
    case 'bazel':
      return bazelConfig(
        base,
        resolve(options.downloaderConfigPath ?? DOWNLOADER_CONFIG_NAME),
        options.downloaderConfigWritten === true,
        options.httpHosts ?? [],
      );
    case 'pip':
      return pipConfig(base, options.upstreams);
    case 'npm':
      return npmConfig(base, options.upstreams);
    case 'conda':
      return condaConfig(base, options.upstreams);
    case 'curl':
      return curlConfig(base);
  }
}

/** The text `accel mirror config` prints: each file between marker comments, then the lines. */
export function formatClientConfig(config: ClientConfig): string {
  const parts = config.files.map((f) => {
    const content = f.content.endsWith('\n') ? f.content : `${f.content}\n`;
    return `# ---- ${f.name}: ${f.purpose}\n${content}# ---- end of ${f.name}\n`;
  });
  if (config.lines.length > 0) parts.push(`${config.lines.join('\n')}\n`);
  return parts.join('\n');
}

/**
 * Zero-hand-edit mode for Bazel: writes `<workspace>/accel-downloader.cfg` (temp file + rename, so Bazel never
 * reads half of it) and appends the .bazelrc line unless it is already there, so running it twice is harmless.
 */
export function writeBazelConfig(
  workspace: string,
  base: string,
  httpHosts: readonly string[] = [],
): { downloaderConfig: string; bazelrc: string } {
  const root = resolve(workspace);
  const downloaderConfig = join(root, DOWNLOADER_CONFIG_NAME);
  const bazelrc = join(root, '.bazelrc');
  const normalized = normalizeBase(base);
  writeFileReplacing(downloaderConfig, downloaderConfigText(normalized, httpHosts));
  appendLineOnce(bazelrc, bazelrcLine(downloaderConfig), `# accel mirror at ${normalized}`);
  return { downloaderConfig, bazelrc };
}

/**
 * Writes the downloader config for `base` into accel's home (`$ACCEL_HOME/bazel/<host>_<port>.cfg`), so the
 * .bazelrc line `accel mirror config bazel` prints works as pasted; undefined when the home cannot be written
 * (then the printed text says where to save it).
 */
export function writeHomeDownloaderConfig(
  home: string,
  base: string,
  httpHosts: readonly string[] = [],
): string | undefined {
  const normalized = normalizeBase(base);
  const name = new URL(normalized).host.replace(/[^A-Za-z0-9.-]/g, '_');
  const file = join(homeLayout(home).bazel.dir, `${name}.cfg`);
  try {
    makeDirs(dirname(file));
    writeFileReplacing(file, downloaderConfigText(normalized, httpHosts));
    return file;
  } catch {
    return undefined;
  }
}

function bazelConfig(base: string, configPath: string, written: boolean, httpHosts: readonly string[]): ClientConfig {
  return {
    files: [
      {
        name: DOWNLOADER_CONFIG_NAME,
        content: downloaderConfigText(base, httpHosts),
        purpose: written
          ? `written to ${configPath} (the .bazelrc line below points there)`
          : `save as ${configPath} (the .bazelrc line below points there)`,
      },
    ],
    lines: [
      '# .bazelrc line (Bazel 4 knows only this flag name; newer Bazel also accepts --downloader_config=):',
      bazelrcLine(configPath),
    ],
  };
}

/**
 * Bazel's downloader config for the mirror. Its regex sees each URL without the scheme, so the catch-all
 * sends everything to `/https/…`; hosts a workspace names with plain `http://` get a rule of their own first
 * (Bazel tries every matching rewrite in order), so they are fetched over http and found where
 * `mirror prefetch`/`import` stored them.
 */
function downloaderConfigText(base: string, httpHosts: readonly string[]): string {
  const hosts = [...new Set(httpHosts)].sort();
  return [
    `# Bazel downloads through the accel mirror at ${base}.`,
    '# The regex sees each URL without its scheme, and a replacement that starts with http(s):// sets the',
    '# scheme: the last rule sends every URL to its origin over https; the rules before it send the hosts',
    '# the workspace names with plain http:// (accel mirror config bazel --workspace FILE) over http.',
    ...hosts.map((h) => `rewrite (${h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.*) ${base}/http/$1`),
    `rewrite (.*) ${base}/https/$1`,
    '',
  ].join('\n');
}

/** The URLs the store holds content for that was checked against a digest (prefetch or import of a workspace). */
export function pinnedUrls(store: Store): string[] {
  const urls: string[] = [];
  for (const ref of store.refs.list(URL_NS)) if ((ref.meta as UrlMeta | undefined)?.pinned) urls.push(ref.key);
  return urls;
}

/** The hosts of the plain-http URLs among `urls` (with their port, as Bazel's rewriter sees them). */
export function plainHttpHosts(urls: Iterable<string>): string[] {
  const hosts = new Set<string>();
  for (const url of urls) {
    if (!url.startsWith('http://')) continue;
    try {
      hosts.add(new URL(url).host);
    } catch {}
  }
  return [...hosts].sort();
}

function bazelrcLine(configPath: string): string {
  return `common --experimental_downloader_config=${shellQuote(configPath)}`;
}

function pipConfig(base: string, upstreams: Upstreams): ClientConfig {
  if (!upstreams.pipIndex) {
    throw noUpstream(
      'no pip index is configured',
      'set PIP_INDEX_URL (or index-url in pip.conf) to your index, or pass --upstream URL',
    );
  }
  const index = throughMirror(upstreams.pipIndex, base);
  // pip refuses a plain-http index unless its host is trusted; an https mirror needs no exception.
  const trustedHost = base.startsWith('http://') ? new URL(base).host : undefined;
  const content = [
    `# pip through the accel mirror at ${base}; upstream index ${upstreams.pipIndex}`,
    '[global]',
    `index-url = ${index}`,
    ...(trustedHost ? [`trusted-host = ${trustedHost}`] : []),
    '',
  ].join('\n');
  return {
    files: [{ name: 'pip.conf', content, purpose: 'save as ~/.config/pip/pip.conf (replacing its index-url)' }],
    lines: [
      '# or for one shell (the environment overrides pip.conf):',
      `export PIP_INDEX_URL=${shellQuote(index)}`,
      ...(trustedHost ? [`export PIP_TRUSTED_HOST=${shellQuote(trustedHost)}`] : []),
    ],
  };
}

function npmConfig(base: string, upstreams: Upstreams): ClientConfig {
  if (!upstreams.npmRegistry) {
    throw noUpstream(
      'no npm registry is configured',
      'set npm_config_registry (or registry= in ~/.npmrc) to your registry, or pass --upstream URL',
    );
  }
  // npm joins package names onto the registry URL, which only works with a trailing slash.
  const registry = throughMirror(upstreams.npmRegistry, base).replace(/\/?$/, '/');
  const content = [
    `; npm through the accel mirror at ${base}; upstream registry ${upstreams.npmRegistry}`,
    `registry=${registry}`,
    '',
  ].join('\n');
  return {
    files: [{ name: '.npmrc', content, purpose: 'save in ~/.npmrc or the project (replacing its registry= line)' }],
    lines: [
      '# or for one shell (the environment overrides .npmrc):',
      `export npm_config_registry=${shellQuote(registry)}`,
    ],
  };
}

function condaConfig(base: string, upstreams: Upstreams): ClientConfig {
  const channels = upstreams.condaChannels ?? [];
  if (channels.length === 0) {
    throw noUpstream(
      'no conda channels are configured',
      'list your channels in ~/.condarc (or $CONDARC), or pass --upstream URL',
    );
  }
  if (channels.includes('defaults')) {
    throw noUpstream(
      'the conda channel "defaults" has no configured URLs',
      'list the URLs of your default channels as default_channels in .condarc, or replace "defaults" with full channel URLs',
    );
  }
  const isUrl = (c: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(c);
  const bareNames = channels.filter((c) => !isUrl(c));
  const alias = upstreams.condaChannelAlias;
  if (bareNames.length > 0 && !alias) {
    throw noUpstream(
      `no channel_alias is configured for the conda channel names ${bareNames.join(', ')}`,
      'set channel_alias in .condarc to the URL those names live under, or list channels as full URLs (or pass --upstream URL)',
    );
  }
  // conda joins names onto the alias and compares channel URLs without trailing slashes.
  const mirrored = (url: string) => throughMirror(url, base).replace(/\/+$/, '');
  // Local channels (file://) have nothing to cache and stay as they are.
  const mapped = channels.map((c) => (!isUrl(c) || c.startsWith('file:') ? c : mirrored(c)));
  const doc = new Document({ ...(alias ? { channel_alias: mirrored(alias) } : {}), channels: mapped });
  doc.commentBefore = ` conda through the accel mirror at ${base}`;
  return {
    files: [
      {
        name: '.condarc',
        content: doc.toString(),
        // conda merges channel lists from every .condarc it reads, so an upstream left in another file is used too.
        purpose: 'save over the .condarc that lists your channels (conda merges channels from all its .condarc files)',
      },
    ],
    lines: [],
  };
}

function curlConfig(base: string): ClientConfig {
  const quotedBase = shellQuote(base);
  return {
    files: [],
    lines: [
      '# accel_url URL: prints the mirror URL for an http(s) URL (POSIX sh; add it to your shell profile)',
      'accel_url() {',
      '  case "$1" in',
      `    https://*) printf '%s/https/%s\\n' ${quotedBase} "\${1#https://}" ;;`,
      `    http://*) printf '%s/http/%s\\n' ${quotedBase} "\${1#http://}" ;;`,
      `    *) printf 'accel_url: not an http(s) URL: %s\\n' "$1" >&2; return 1 ;;`,
      '  esac',
      '}',
      '# example:',
      '# curl -fL "$(accel_url https://example.invalid/file.tar.gz)" -o file.tar.gz',
    ],
  };
}

/**
 * The mirror's address without trailing slashes. Only scheme, host, port and a plain path are accepted: the
 * base lands in regex replacements, shell lines and YAML, where anything else would need quoting rules of its own.
 */
/** Where clients reach a mirror listening on `bind:port` (a wildcard bind is reached on loopback). */
export function mirrorBaseUrl(bind: string, port: number): string {
  return `http://${bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind}:${port}`;
}

function normalizeBase(base: string): string {
  const url = URL.canParse(base) ? new URL(base) : undefined;
  const plain =
    url !== undefined &&
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.username === '' &&
    url.password === '' &&
    url.search === '' &&
    url.hash === '' &&
    !base.includes('?') &&
    !base.includes('#') &&
    /^[A-Za-z0-9._~/%-]*$/.test(url.pathname);
  if (!url || !plain) {
    throw new AccelError('ACCEL_MIRROR_BAD_BASE_URL', `not a usable mirror address: ${base}`, {
      hint: 'pass --url http://HOST:PORT, the address `accel mirror serve` listens on',
      exitCode: 2,
    });
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/**
 * `upstream` as served by the mirror at `base`. A URL already inside this mirror stays as it is: running
 * `accel mirror config` again after applying its output rediscovers mirror URLs, which must not nest.
 */
function throughMirror(upstream: string, base: string): string {
  const trimmed = upstream.trim();
  if (!URL.canParse(trimmed)) {
    throw new AccelError('ACCEL_MIRROR_BAD_UPSTREAM', `not a URL: ${trimmed}`, {
      hint: 'configure the upstream as a full http(s) URL, or pass --upstream URL',
      exitCode: 2,
    });
  }
  const url = new URL(trimmed);
  if (url.username !== '' || url.password !== '') {
    url.password = url.password && '***';
    // The mirror's URL layout has no place for credentials; dropping them silently would turn into 401s later.
    throw new AccelError('ACCEL_MIRROR_UPSTREAM_CREDENTIALS', `the upstream ${url.href} carries credentials`, {
      hint: 'the mirror fetches without credentials: mirror a public upstream, or keep using this one directly',
      exitCode: 2,
    });
  }
  if (url.href.startsWith(`${base}/`)) return url.href;
  return mirrorUrlFor(url.href, base);
}

function noUpstream(message: string, hint: string): AccelError {
  return new AccelError('ACCEL_MIRROR_NO_UPSTREAM', message, { hint, exitCode: 2 });
}

/** `value` as one POSIX shell word (also how Bazel's rc parser splits words). */
function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A config file: synced, and never a moment without it (a build may be reading it). */
function writeFileReplacing(target: string, content: string): void {
  replaceFileSync(target, content, { mode: 0o644, umask: true, durable: true, unlinkFirst: false });
}

/** Appends `comment` and `line` to `path` unless a line equal to `line` is already there. */
export function appendLineOnce(path: string, line: string, comment: string): void {
  let existing = '';
  try {
    existing = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, 'reading', path);
  }
  if (existing.split(/\r?\n/).some((l) => l.trim() === line)) return;
  const separator = existing === '' || existing.endsWith('\n') ? '' : '\n';
  try {
    appendFileSync(path, `${separator}${comment}\n${line}\n`);
  } catch (err) {
    throw fsError(err, 'writing', path);
  }
}

/**
 * The shared build cache (/cache/, Bazel's HTTP cache layout) for its three clients: accel cc, ccache and
 * Bazel, each with the write token (reads need none).
 */
export function buildCacheConfig(base: string, token: string): ClientConfig {
  const cache = `${normalizeBase(base)}/cache`;
  return {
    files: [],
    lines: [
      '# accel cc on other machines (reads and writes the shared cache):',
      `export ACCEL_CC_REMOTE=${cache}`,
      `export ACCEL_CC_REMOTE_TOKEN=${token}`,
      '# ccache (ccache.conf):',
      `remote_storage = ${cache}|layout=bazel|bearer-token=${token}`,
      '# Bazel (.bazelrc):',
      `build --remote_cache=${cache} --remote_header=Authorization="Bearer ${token}"`,
      '# Without the token, clients still read the cache; their writes are refused (401).',
    ],
  };
}
