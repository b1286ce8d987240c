import { basename, extname } from 'node:path';
import { relativeToCwd } from './base-dirs.ts';
import { expandResponseFiles, parseArgs, splitParams } from './options.ts';

/** A compile the cache can handle: one source in, one object (or assembly) out. */
export interface Compile {
  /** Set for the MSVC driver's compiles (msvc.ts `MsvcCompile`); a gcc-style compile leaves it unset. */
  driver?: 'msvc';
  compiler: string;
  /** The arguments after @file expansion, as the compiler will get them. */
  args: string[];
  source: string;
  language: string;
  output: string;
  /** -c (object) or -S (assembly). */
  mode: '-c' | '-S';
  /** Dependency output the user asked for: where it goes and which target it names. */
  deps?: { file: string; target: string; system: boolean };
  debug: boolean;
  /** Old → new pairs that rewrite paths in debug info (-fdebug-prefix-map, -ffile-prefix-map), in order. */
  debugMaps: [string, string][];
  /** Old → new pairs that rewrite `__FILE__` (-fmacro-prefix-map, -ffile-prefix-map), in order. */
  macroMaps: [string, string][];
  /** Include search dirs in search order, for spotting a new header that shadows an old one. */
  includeDirs: string[];
  /**
   * The arguments that decide the output: everything but the output and dependency-file paths, with paths
   * under a base directory (and prefix maps' old sides under one or the cwd) relative to the cwd.
   */
  keyArgs: string[];
  /** The source as the key names it: relative to the cwd when under a base directory. */
  keySource: string;
  /**
   * Absolute paths (the source, input-path options) the key names relative to the cwd. The output can still
   * hold them (debug info, `__FILE__`): where it can, their mapped forms must decide the key too.
   */
  portablePaths: string[];
}

export interface ClassifyOptions {
  /** Base directories (`cc.baseDirs`): absolute paths under them enter the key relative to the cwd. */
  baseDirs?: readonly string[];
}

export type Classification = { kind: 'cacheable'; compile: Compile } | { kind: 'uncacheable'; reason: string };

const LANGUAGES: Record<string, string> = {
  '.c': 'c',
  '.i': 'cpp-output',
  '.cc': 'c++',
  '.cp': 'c++',
  '.cpp': 'c++',
  '.cxx': 'c++',
  '.c++': 'c++',
  '.C': 'c++',
  '.CPP': 'c++',
  '.ii': 'c++-cpp-output',
  '.m': 'objective-c',
  '.mm': 'objective-c++',
  '.M': 'objective-c++',
  '.S': 'assembler-with-cpp',
  '.sx': 'assembler-with-cpp',
};

/** Flags after which the output cannot be cached, with the reason ccache users know them by. */
const UNCACHEABLE: [RegExp, string][] = [
  [/^-E$/, 'preprocessing only (-E)'],
  [/^-save-temps/, '-save-temps'],
  [/^-fprofile-(generate|use|arcs|instr-generate|instr-use|sample-use)/, 'profiling (-fprofile-*)'],
  [/^(--coverage|-ftest-coverage)$/, 'coverage (writes .gcno)'],
  // -Wp,-DX and -Wp,-UX are defines (in the key like -D); any other -Wp, may write files (-Wp,-MD,FILE).
  [/^-Wp,(?!-[DU][^,]*$)/, '-Wp, options'],
  [/^-fdump-/, 'compiler dumps'],
  [/^-frecord-gcc-switches$/, 'output records the command line'],
  [/^--?version$|^-dump/, 'not a compile'],
];

export function classify(
  compiler: string,
  rawArgs: string[],
  cwd: string,
  options: ClassifyOptions = {},
): Classification {
  const baseDirs = options.baseDirs ?? [];
  let args: string[];
  try {
    args = expandResponseFiles(rawArgs, cwd, (file) => splitParams(file.toString('utf8')));
  } catch {
    return { kind: 'uncacheable', reason: 'unreadable @file' };
  }
  const inputs: string[] = [];
  let output: string | undefined;
  let language: string | undefined;
  let mode: '-c' | '-S' | undefined;
  let depMode: 'MD' | 'MMD' | undefined;
  let depOnly = false;
  let mf: string | undefined;
  const targets: string[] = [];
  let debug = false;
  const debugMaps: [string, string][] = [];
  const macroMaps: [string, string][] = [];
  const portablePaths: string[] = [];
  const quoteDirs: string[] = [];
  const angleDirs: string[] = [];
  const systemDirs: string[] = [];
  const afterDirs: string[] = [];
  const keyArgs: string[] = [];

  for (const parsed of parseArgs(args)) {
    const arg = parsed.raw[0] as string;
    for (const [re, reason] of UNCACHEABLE) if (re.test(arg)) return { kind: 'uncacheable', reason };
    if (parsed.kind === 'source') {
      if (arg === '-') return { kind: 'uncacheable', reason: 'source on stdin' };
      inputs.push(arg);
      continue;
    }
    const { option: name, value } = parsed;
    if (parsed.kind !== 'flag' && value === undefined) return { kind: 'uncacheable', reason: `${arg} without a value` };
    switch (name) {
      case '-o':
        if (value === '-') return { kind: 'uncacheable', reason: 'output to stdout (-o -)' };
        output = value;
        continue;
      case '-MF':
        mf = value;
        continue;
      case '-MT':
      case '-MQ':
        targets.push(value as string);
        continue;
      case '-x':
        language = value;
        keyArgs.push('-x', value as string);
        continue;
      case '-I':
        angleDirs.push(value as string);
        break;
      case '-iquote':
        quoteDirs.push(value as string);
        break;
      case '-isystem':
        systemDirs.push(value as string);
        break;
      case '-idirafter':
        afterDirs.push(value as string);
        break;
    }
    if (arg === '-c' || arg === '-S') mode = arg;
    else if (arg === '-MD' || arg === '-MMD') depMode = arg === '-MD' ? 'MD' : 'MMD';
    else if (arg === '-M' || arg === '-MM') depOnly = true;
    else if (/^-g/.test(arg) && arg !== '-g0') debug = true;
    else if (arg === '-g0') debug = false;
    const map = /^-f(debug|file|macro)-prefix-map=(.*)$/.exec(arg);
    if (map?.[2]) {
      const eq = map[2].indexOf('=');
      const from = map[2].slice(0, eq < 0 ? undefined : eq);
      const to = eq < 0 ? '' : map[2].slice(eq + 1);
      if (map[1] !== 'macro') debugMaps.push([from, to]);
      if (map[1] !== 'debug') macroMaps.push([from, to]);
      // A map of the build directory (or of a checkout under a base directory) names it; in the key it is
      // relative to "the cwd", so two checkouts share results. What it maps enters the key mapped (key.ts).
      const keyFrom = relativeToCwd(from, cwd, [...baseDirs, cwd]) ?? from;
      keyArgs.push(`-f${map[1]}-prefix-map=${keyFrom}=${to}`);
      continue;
    }
    keyArgs.push(name);
    if (value !== undefined) keyArgs.push(portable(parsed.kind === 'input-path', value));
  }

  if (depOnly && !depMode) return { kind: 'uncacheable', reason: 'dependencies only (-M/-MM)' };
  if (!mode) return { kind: 'uncacheable', reason: inputs.length > 0 ? 'linking' : 'no input file' };
  if (inputs.length === 0) return { kind: 'uncacheable', reason: 'no input file' };
  if (inputs.length > 1) return { kind: 'uncacheable', reason: 'several input files' };
  const source = inputs[0] as string;
  const keySource = portable(true, source);
  const lang = language ?? LANGUAGES[extname(source)];
  if (!lang || lang === 'none') return { kind: 'uncacheable', reason: `unknown language of ${source}` };
  const out = output ?? `${basename(source, extname(source))}${mode === '-c' ? '.o' : '.s'}`;
  const deps = depMode
    ? {
        file: mf ?? `${out.replace(/\.[^./]*$/, '')}.d`,
        target: targets.length > 0 ? targets.join(' ') : out,
        system: depMode === 'MD',
      }
    : undefined;
  return {
    kind: 'cacheable',
    compile: {
      compiler,
      args,
      source,
      language: lang,
      output: out,
      mode,
      deps,
      debug,
      debugMaps,
      macroMaps,
      // GCC's search order, whatever the order on the command line: -iquote, -I, -isystem, then -idirafter.
      // conda's CFLAGS put `-isystem $PREFIX/include` before a project's own -I's; read in command-line order,
      // a header the project installed into the prefix earlier would seem to shadow the project's own.
      includeDirs: [...quoteDirs, ...angleDirs, ...systemDirs, ...afterDirs],
      keyArgs,
      keySource,
      portablePaths,
    },
  };

  /** A path argument in its key form, remembered when it became relative. */
  function portable(isPath: boolean, path: string): string {
    const rel = isPath ? relativeToCwd(path, cwd, baseDirs) : undefined;
    if (rel === undefined) return path;
    portablePaths.push(path);
    return rel;
  }
}
