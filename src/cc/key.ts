import { createHash } from 'node:crypto';
import type { Compile } from '../compiler/args.ts';
import type { CompilerIdentity } from '../compiler/compiler-identity.ts';
import { isMsvcCompile } from '../compiler/msvc.ts';
import type { Digest } from '../store/digest.ts';

/** Environment variables that change what the compiler produces (search paths, reproducible-build time, message language). */
export const KEY_ENV = [
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
const KEY_VERSION = 'accel-cc-2';

export interface KeyInput {
  compile: Compile;
  identity: CompilerIdentity;
  compilerVersion: { version: string; machine: string };
  source: Digest;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** One thing the key is made of: what it is (`compiler`, `argument`, `env LANG`, …) and its value. */
export type Ingredient = [what: string, value: string];

/**
 * Everything known before compiling that decides the output, in order. The working directory is in it only
 * when debug info embeds it (-g), after the debug prefix maps; so are the paths the key names relative to the
 * cwd (base directories), which debug info holds as written.
 */
export function keyIngredients(input: KeyInput): Ingredient[] {
  const { compile } = input;
  const debugPaths: Ingredient[] = compile.debug
    ? [
        ['cwd', mapPrefix(input.cwd, compile.debugMaps)],
        ...compile.portablePaths.map((p): Ingredient => ['debug path', mapPrefix(p, compile.debugMaps)]),
      ]
    : [['cwd', '']];
  return [
    ['compiler', `${input.identity.path} ${input.identity.size} ${input.identity.mtimeMs}`],
    ['compiler version', `${input.compilerVersion.version} ${input.compilerVersion.machine}`],
    // clang and clang-cl are one binary (one compiler identity): the driver they are called as is in the mode.
    ['mode', `${compile.mode} ${compile.language}${isMsvcCompile(compile) ? ` ${compile.flavor}` : ''}`],
    ['source', compile.keySource],
    ['source content', input.source],
    // One ingredient for all: splitting them per option (for explain.ts) is the miss path's work.
    ['arguments', JSON.stringify(compile.keyArgs)],
    ['dependency output', compile.deps ? `${compile.deps.system ? 'MD' : 'MMD'}` : 'none'],
    ...debugPaths,
    ...KEY_ENV.map((name): Ingredient => [`env ${name}`, input.env[name] ?? '']),
    // The MSVC driver's search paths from the environment (INCLUDE, EXTERNAL_INCLUDE, /external:env:).
    ...(isMsvcCompile(compile) ? compile.keyEnv : []).map((name): Ingredient => [`env ${name}`, input.env[name] ?? '']),
  ];
}

/** The direct-mode key: the digest of its ingredients. */
export function directKey(input: KeyInput): Digest {
  return keyOf(keyIngredients(input));
}

export function keyOf(ingredients: readonly Ingredient[]): Digest {
  // NUL never occurs in an argument, a path or a variable: `what NUL value` lines cannot run into each other.
  let text = KEY_VERSION;
  for (const [what, value] of ingredients) text += `\n${what}\0${value}`;
  return createHash('sha256').update(text).digest('hex') as Digest;
}

/**
 * What gcc and clang make of a path under their prefix maps: the last map whose old side is a prefix of the
 * path (a plain string prefix, as both compilers compare) replaces it.
 */
export function mapPrefix(path: string, maps: readonly [string, string][]): string {
  for (let i = maps.length - 1; i >= 0; i--) {
    const [from, to] = maps[i] as [string, string];
    if (from && path.startsWith(from)) return to + path.slice(from.length);
  }
  return path;
}

/**
 * The paths `__FILE__` would hold for this compile where the key has them relative to the cwd (base
 * directories), after the macro maps. An entry made by a compile whose object holds one of them keeps them
 * (`macroPaths`), and matches only a compile with the same ones.
 */
export function macroPathStrings(compile: Compile): string[] {
  return compile.portablePaths.map((p) => mapPrefix(p, compile.macroMaps));
}

export function macroPaths(compile: Compile): string {
  return JSON.stringify(macroPathStrings(compile));
}
