import { basename, extname, resolve } from 'node:path';
import type { Compile } from './args.ts';
import { parseMsvcArgs } from './msvc-options.ts';
import { expandMsvcResponseFiles, splitWindowsCommandLine } from './msvc-response.ts';
import type { Arg } from './options.ts';

/**
 * The MSVC driver's compile, classified into the model the cache uses for gcc's (`Compile`), so one wrapper
 * serves both. What differs is said in the extra fields: headers are learnt from `/showIncludes`
 * (msvc-show-includes.ts), not from a depfile, and the driver reads environment variables gcc's does not.
 */
export interface MsvcCompile extends Omit<Compile, PathFields | 'driver'> {
  driver: 'msvc';
  flavor: MsvcFlavor;
  /**
   * The user asked for `/showIncludes`: the header lines are part of the output stored and replayed (Ninja's
   * `deps = msvc` reads them). Otherwise a miss adds the option and strips its lines from what it keeps.
   */
  showIncludes: boolean;
  /** Environment variables this compile reads that change its output, for the key (INCLUDE, …). */
  keyEnv: string[];
  /** Old → new pairs that rewrite paths in debug information (`-fdebug-prefix-map`, `-fdebug-compilation-dir`). */
  debugMaps: [string, string][];
  /** Old → new pairs that rewrite `__FILE__` (`-fmacro-prefix-map`, `-ffile-prefix-map`). */
  macroMaps: [string, string][];
  /** The source as the key names it (as written: base directories are not applied to MSVC compiles yet). */
  keySource: string;
  /** Absolute paths the key names relative to the cwd: none, for the same reason. */
  portablePaths: string[];
}

/** Whether a classified compile is the MSVC driver's. */
export function isMsvcCompile(compile: Compile): compile is MsvcCompile {
  return compile.driver === 'msvc';
}

/** Fields the gcc model is changing (base directories); declared here so this type holds across that change. */
type PathFields = 'prefixMaps' | 'debugMaps' | 'macroMaps' | 'keySource' | 'portablePaths';

export type MsvcFlavor = 'cl' | 'clang-cl';

export type MsvcClassification = { kind: 'cacheable'; compile: MsvcCompile } | { kind: 'uncacheable'; reason: string };

/**
 * Which MSVC driver a compiler is, from the name it was called by (`cl`, `cl.exe`, `clang-cl`, `clang-cl-14`)
 * or clang's `--driver-mode=cl`; undefined for a gcc-style driver, which `classify` (args.ts) handles.
 */
export function msvcFlavor(compiler: string, args: readonly string[] = []): MsvcFlavor | undefined {
  const name = basename(compiler.replace(/\\/g, '/'))
    .toLowerCase()
    .replace(/\.exe$/, '');
  if (name === 'cl') return 'cl';
  if (/^clang-cl(-[\d.]+)?$/.test(name)) return 'clang-cl';
  let mode: string | undefined;
  for (const a of args) if (a.startsWith('--driver-mode=')) mode = a.slice('--driver-mode='.length);
  return mode === 'cl' && /^clang(\+\+)?(-[\d.]+)?$/.test(name) ? 'clang-cl' : undefined;
}

/** Options after which the output cannot be cached, by canonical name, with the reason users know them by. */
const UNCACHEABLE = new Map<string, string>([
  ['/E', 'preprocessing only (/E, /EP, /P)'],
  ['/EP', 'preprocessing only (/E, /EP, /P)'],
  ['/P', 'preprocessing only (/E, /EP, /P)'],
  ['/Zs', 'syntax check only (/Zs)'],
  ['/Fa', 'assembly listing (/FA, /Fa)'],
  ['/Fa:', 'assembly listing (/FA, /Fa)'],
  ['/Yc', 'precompiled headers (/Yc, /Yu, /Fp)'],
  ['/Yu', 'precompiled headers (/Yc, /Yu, /Fp)'],
  ['/Fp', 'precompiled headers (/Yc, /Yu, /Fp)'],
  ['/Fp:', 'precompiled headers (/Yc, /Yu, /Fp)'],
  ['/FR', 'browse information (/FR, /Fr)'],
  ['/Fr', 'browse information (/FR, /Fr)'],
  ['/Fm', 'map file (/Fm)'],
  ['/Fm:', 'map file (/Fm)'],
  ['/Fi', 'preprocessed output file (/Fi)'],
  ['/Fi:', 'preprocessed output file (/Fi)'],
  ['/Fx', 'merged injected code (/Fx)'],
  ['/analyze', 'code analysis (/analyze)'],
  ['/analyze:', 'code analysis (/analyze)'],
  ['/analyze:plugin', 'code analysis (/analyze)'],
  ['/Gm', 'minimal rebuild (/Gm)'],
  ['/ZI', 'edit-and-continue debug information in a PDB (/ZI)'],
  ['/sourceDependencies', 'writes its own dependency file (/sourceDependencies)'],
  ['/scanDependencies', 'writes its own dependency file (/scanDependencies)'],
  ['/doc', 'XML documentation (/doc)'],
  ['/link', 'linking (/link)'],
  ['/ifcOutput', 'C++ modules'],
  ['/interface', 'C++ modules'],
  ['/internalPartition', 'C++ modules'],
  ['/exportHeader', 'C++ modules'],
  ['/headerUnit', 'C++ modules'],
  ['/reference', 'C++ modules'],
  ['/translateInclude', 'C++ modules'],
  ['/showIncludes:user', '/showIncludes:user (the cache must learn every header, system ones too)'],
  ['/help', 'not a compile'],
  ['/?', 'not a compile'],
  ['/Bv', 'not a compile'],
]);

/** clang-cl's GNU-style options (direct or through `/clang:`) that change what a compile writes. */
const UNCACHEABLE_GNU: [RegExp, string][] = [
  [/^-###$/, 'not a compile'],
  [/^--analyze$/, 'code analysis (--analyze)'],
  [/^-f(cs-)?profile-(instr-)?(generate|use)|^-fprofile-sample-use/, 'profiling (-fprofile-*)'],
  [
    /^-(E|M|MM|MD|MMD|MF|MT|MQ|save-temps|o)(=|$)|^-save-temps/,
    'a /clang: option that changes what the compile writes',
  ],
];

const OUTPUT_OPTIONS = new Set(['/Fo', '/Fo:', '/o']);
/** Outputs that are not the object's: the executable (link only) and the PDB's name (cl.exe with /Zi only). */
const IGNORED_OUTPUTS = new Set(['/Fe', '/Fe:', '/Fd', '/Fd:']);
const LANGUAGE: Record<string, string> = { '.c': 'c', '.cpp': 'c++', '.cxx': 'c++', '.cc': 'c++', '.c++': 'c++' };

/** The state one pass over the arguments builds. */
interface Scan {
  sources: { path: string; language?: string }[];
  output?: string;
  allLanguage?: string;
  compileOnly: boolean;
  debug: boolean;
  showIncludes: boolean;
  ignoreIncludeEnv: boolean;
  debugMaps: [string, string][];
  macroMaps: [string, string][];
  includeDirs: string[];
  externalEnv: string[];
  keyArgs: string[];
}

/**
 * `classify` for an MSVC driver: the same decisions (one C or C++ source compiled with `/c` into one object,
 * nothing else written, the key from everything that decides the object and never its path) over cl's
 * arguments. `env` supplies `CL` and `_CL_`, which cl.exe and clang-cl put before and after the command line.
 */
export function classifyMsvc(
  compiler: string,
  rawArgs: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): MsvcClassification {
  const flavor = msvcFlavor(compiler, rawArgs) ?? 'cl';
  let args: string[];
  try {
    const before = env.CL ? splitWindowsCommandLine(env.CL) : [];
    const after = env._CL_ ? splitWindowsCommandLine(env._CL_) : [];
    args = expandMsvcResponseFiles([...before, ...rawArgs, ...after], cwd);
  } catch {
    return { kind: 'uncacheable', reason: 'unreadable @file' };
  }
  // cl.exe runs on Windows, where `/x` is never a path; clang-cl reads it as one where paths start with `/`.
  const parsed = parseMsvcArgs(args, { slashPaths: flavor === 'clang-cl' && process.platform !== 'win32' });
  const scan = scanArgs(parsed, flavor, cwd);
  if (typeof scan === 'string') return { kind: 'uncacheable', reason: scan };
  if (!scan.compileOnly) return { kind: 'uncacheable', reason: scan.sources.length > 0 ? 'linking' : 'no input file' };
  if (scan.sources.length === 0) return { kind: 'uncacheable', reason: 'no input file' };
  if (scan.sources.length > 1) return { kind: 'uncacheable', reason: 'several input files' };
  const { path: source, language: own } = scan.sources[0] as Scan['sources'][number];
  if (source === '-') return { kind: 'uncacheable', reason: 'source on stdin' };
  const language = own ?? scan.allLanguage ?? LANGUAGE[extname(source).toLowerCase()];
  if (!language) return { kind: 'uncacheable', reason: `unknown language of ${source}` };
  const output = objectPath(source, scan.output, flavor);
  if (scan.debug) {
    // CodeView's build record names the object by its absolute path, whatever the prefix maps say.
    scan.keyArgs.push('$OUTPUT', resolve(cwd, output));
  }
  if (scan.showIncludes && flavor === 'cl') {
    // cl.exe prints absolute header paths, and the printed lines are replayed: they must be this cwd's.
    scan.keyArgs.push('$CWD', cwd);
  }
  const includeEnv = scan.ignoreIncludeEnv ? [] : ['INCLUDE', 'EXTERNAL_INCLUDE'];
  const envDirs = includeEnv.flatMap((name) => (env[name] ?? '').split(';').filter(Boolean));
  return {
    kind: 'cacheable',
    compile: {
      driver: 'msvc',
      flavor,
      compiler,
      args,
      source,
      language,
      output,
      mode: '-c',
      debug: scan.debug,
      debugMaps: scan.debugMaps,
      macroMaps: scan.macroMaps,
      keySource: source,
      portablePaths: [],
      includeDirs: [...scan.includeDirs, ...envDirs],
      keyArgs: scan.keyArgs,
      showIncludes: scan.showIncludes,
      keyEnv: [...includeEnv, ...scan.externalEnv],
    },
  };
}

/**
 * The arguments of a compile sent elsewhere (the farm): as the compiler reads them, `CL`, `_CL_` and `@files`
 * expanded (neither the variables nor the files travel), `/showIncludes` when the cache added it, and the object
 * named by one `/Fo<file>` (a `/Fo<dir>/` or a default name would leave the receiver guessing). `/Fd` goes:
 * clang-cl ignores it, and cl.exe's PDB is not cached.
 */
export function msvcJobArgs(compile: MsvcCompile): string[] {
  const parsed = parseMsvcArgs(compile.args, { slashPaths: compile.flavor === 'clang-cl' });
  const dropped = new Set([...OUTPUT_OPTIONS, '/Fd', '/Fd:']);
  const kept = parsed.filter((a) => !dropped.has(a.option)).flatMap((a) => a.raw);
  return [...(compile.showIncludes ? [] : ['/showIncludes']), `/Fo${compile.output}`, ...kept];
}

/** One pass over the parsed arguments, or the reason the compile cannot be cached. */
function scanArgs(parsed: Arg[], flavor: MsvcFlavor, cwd: string): Scan | string {
  const scan: Scan = {
    sources: [],
    compileOnly: false,
    debug: false,
    showIncludes: false,
    ignoreIncludeEnv: false,
    debugMaps: [],
    macroMaps: [],
    includeDirs: [],
    externalEnv: [],
    keyArgs: [],
  };
  for (const arg of parsed) {
    const { option, value } = arg;
    const why = UNCACHEABLE.get(option) ?? (option.startsWith('/FA') ? 'assembly listing (/FA, /Fa)' : undefined);
    if (why) return why;
    if (arg.kind === 'source') {
      const language = option === '/Tc' ? 'c' : option === '/Tp' ? 'c++' : undefined;
      if (!value) return `${option} without a file`;
      scan.sources.push({ path: value, language });
      continue;
    }
    if (arg.kind !== 'flag' && !value) return `${option} without a value`;
    if (OUTPUT_OPTIONS.has(option)) {
      if (option === '/Fo:' && flavor === 'clang-cl') return '/Fo: (clang-cl takes the colon as part of the file name)';
      scan.output = value;
      continue;
    }
    if (IGNORED_OUTPUTS.has(option)) {
      if (flavor === 'clang-cl' && option.endsWith(':'))
        return `${option} (clang-cl takes the colon as part of the file name)`;
      continue;
    }
    const gnu = option.startsWith('-') ? option : option === '/clang:' ? (value as string) : undefined;
    if (gnu !== undefined) {
      for (const [re, reason] of UNCACHEABLE_GNU) if (re.test(gnu)) return reason;
      if (noteGnu(gnu, scan, { cwd, wrapped: option === '/clang:' })) continue;
    }
    switch (option) {
      case '/c':
        scan.compileOnly = true;
        break;
      case '/Zi':
        // cl.exe writes /Zi's debug information into one PDB that every compile of a target shares (/FS):
        // no single output to cache (ccache and sccache say the same; /Z7 puts it in the object).
        if (flavor === 'cl') return 'debug information in a shared PDB (/Zi; use /Z7)';
        scan.debug = true;
        break;
      case '/Z7':
        scan.debug = true;
        break;
      case '/TC':
        scan.allLanguage = 'c';
        break;
      case '/TP':
        scan.allLanguage = 'c++';
        break;
      case '/showIncludes':
        scan.showIncludes = true;
        break;
      case '/X':
        scan.ignoreIncludeEnv = true;
        break;
      case '/I':
      case '/external:I':
      case '/imsvc':
        scan.includeDirs.push(value as string);
        break;
      case '/external:env:':
        scan.externalEnv.push(value as string);
        break;
    }
    scan.keyArgs.push(option);
    if (value !== undefined) scan.keyArgs.push(value);
  }
  return scan;
}

/**
 * clang-cl's GNU-style debug and path-mapping options, given directly or through `/clang:`. Returns true when
 * the argument's key form was pushed here. A prefix map given directly is not one: clang-cl 14 warns
 * "unknown argument ignored" and the object keeps its paths, so it stays an ordinary argument of the key.
 */
function noteGnu(gnu: string, scan: Scan, where: { cwd: string; wrapped: boolean }): boolean {
  const { cwd } = where;
  if (/^-g/.test(gnu)) scan.debug = gnu !== '-g0';
  const dir = /^-f(debug|file)-compilation-dir=(.*)$/.exec(gnu);
  if (dir) {
    // The directory the debug information names instead of the cwd: a map of the cwd, new side only.
    scan.debugMaps.push([cwd, dir[2] as string]);
    return false;
  }
  const map = /^-f(debug|file|macro)-prefix-map=([^=]*)=?(.*)$/.exec(gnu);
  if (!map || !where.wrapped) return false;
  const from = map[2] as string;
  const to = map[3] as string;
  if (map[1] !== 'macro') scan.debugMaps.push([from, to]);
  if (map[1] !== 'debug') scan.macroMaps.push([from, to]);
  const keyFrom = from === cwd || from.startsWith(`${cwd}/`) ? `$CWD${from.slice(cwd.length)}` : from;
  scan.keyArgs.push(`-f${map[1]}-prefix-map=${keyFrom}=${to}`);
  return true;
}

/**
 * Where the object goes: `/Fo` names a file (cl adds `.obj` when the name has no extension) or, ending in a
 * separator, a directory; without it, the source's base name with `.obj` in the working directory. cl.exe
 * takes `\` and `/` as separators; clang-cl on Linux only `/`.
 */
function objectPath(source: string, fo: string | undefined, flavor: MsvcFlavor): string {
  const sep = flavor === 'cl' || process.platform === 'win32' ? /[\\/]/ : /\//;
  const stem = (p: string) => {
    const parts = p.split(sep);
    const name = parts[parts.length - 1] as string;
    const dot = name.lastIndexOf('.');
    return dot > 0 ? name.slice(0, dot) : name;
  };
  if (fo === undefined) return `${stem(source)}.obj`;
  if (sep.test(fo.slice(-1))) return `${fo}${stem(source)}.obj`;
  const name = fo.split(sep).pop() as string;
  return name.includes('.') ? fo : `${fo}.obj`;
}
