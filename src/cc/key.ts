import { createHash } from 'node:crypto';
import type { Compile } from '../compiler/args.ts';
import type { CompilerIdentity } from '../compiler/compiler-identity.ts';
import type { Digest } from '../store/digest.ts';

/** Environment variables that change what the compiler produces (search paths, reproducible-build time, message language). */
const KEY_ENV = [
  'CPATH',
  'C_INCLUDE_PATH',
  'CPLUS_INCLUDE_PATH',
  'OBJC_INCLUDE_PATH',
  'SOURCE_DATE_EPOCH',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
];

/** Bumped when the key's ingredients change, so old entries simply stop matching. */
const KEY_VERSION = 'accel-cc-1';

export interface KeyInput {
  compile: Compile;
  identity: CompilerIdentity;
  compilerVersion: { version: string; machine: string };
  source: Digest;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The direct-mode key: everything known before compiling that decides the output. The working directory is
 * in it only when debug info embeds it (-g), after the user's prefix maps have rewritten it.
 */
export function directKey(input: KeyInput): Digest {
  const { compile } = input;
  const parts = [
    KEY_VERSION,
    `compiler ${input.identity.path} ${input.identity.size} ${input.identity.mtimeMs}`,
    `version ${input.compilerVersion.version} ${input.compilerVersion.machine}`,
    `mode ${compile.mode} ${compile.language}`,
    `source ${compile.source} ${input.source}`,
    `args ${JSON.stringify(compile.keyArgs)}`,
    `deps ${compile.deps ? `${compile.deps.system ? 'MD' : 'MMD'}` : 'none'}`,
    `cwd ${compile.debug ? mapPrefix(input.cwd, compile.prefixMaps) : ''}`,
    ...KEY_ENV.map((name) => `env ${name}=${input.env[name] ?? ''}`),
  ];
  return createHash('sha256').update(parts.join('\n')).digest('hex') as Digest;
}

/** What gcc's -fdebug-prefix-map would make of a path: the last matching map wins, as in gcc. */
export function mapPrefix(path: string, maps: [string, string][]): string {
  for (let i = maps.length - 1; i >= 0; i--) {
    const [from, to] = maps[i] as [string, string];
    if (from && (path === from || path.startsWith(from.endsWith('/') ? from : `${from}/`)))
      return to + path.slice(from.length);
  }
  return path;
}
