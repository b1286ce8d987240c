import { basename, isAbsolute, join, resolve, sep } from 'node:path';
import { farmVerdict } from '../compiler/allowed.ts';
import { type LinkerWord, linkerWords, linkVerdict } from '../compiler/link.ts';
import { type MsvcFlavor, msvcFlavor } from '../compiler/msvc.ts';
import { msvcFarmVerdict } from '../compiler/msvc-allowed.ts';
import { parseMsvcArgs } from '../compiler/msvc-options.ts';
import { type Arg, parseArgs, splitParams, subToolArgs } from '../compiler/options.ts';
import { type Binutil, binutilArgs, binutilOf } from '../compiler/tools.ts';

/**
 * What a worker agrees to run: an allowed compiler, and arguments that neither load code nor read or write
 * outside the job. The syncer applies it when a job is submitted, the worker again before running it.
 */
export class Refusal extends Error {
  readonly code: string;
  /** The argument refused, when one was: what `accel cc --stats` counts local compiles by. */
  readonly argument: string | undefined;
  constructor(code: string, message: string, argument?: string) {
    super(message);
    this.name = 'Refusal';
    this.code = code;
    this.argument = argument;
  }
}

/** System headers are not shipped: absolute paths under these stay as they are on the worker. */
export const SYSTEM_PREFIXES = ['/usr/'];

/**
 * The only environment a compile gets from the client: its locale (diagnostics must read as they would
 * locally) and reproducibility settings. Never PATH, LD_PRELOAD, GCC_EXEC_PREFIX, COMPILER_PATH, ....
 */
const JOB_ENV_KEYS = ['LANG', 'LC_ALL', 'LC_MESSAGES', 'LC_CTYPE', 'GCC_COLORS', 'SOURCE_DATE_EPOCH'];

/** The client's variables a job may carry, from any environment-like record. */
export function jobEnv(env: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of JOB_ENV_KEYS) if (typeof env[k] === 'string') out[k] = env[k] as string;
  return out;
}

export function within(path: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => path === d || path.startsWith(d.endsWith(sep) ? d : `${d}${sep}`));
}

/**
 * A compiler name the farm takes: one of `allowed`, or a GNU cross compiler of one (`aarch64-linux-gnu-gcc` when
 * gcc is allowed). Which worker runs it is decided by its toolchain identity (name, version, target machine,
 * system headers), so a cross compile only reaches a worker that has the same cross compiler.
 */
export function checkCompiler(compiler: string, allowed: readonly string[]): void {
  const cross = /^[a-z0-9_]+(?:-[a-z0-9_]+){2,3}-(.+)$/.exec(compiler);
  const ok = allowed.includes(compiler) || (cross !== null && allowed.includes(cross[1] as string));
  if (compiler !== basename(compiler) || !ok) {
    throw new Refusal(
      'ACCEL_FARM_COMPILER_REFUSED',
      `compiler '${compiler}' is not on the farm's allowlist (${allowed.join(', ')})`,
    );
  }
}

/** What runs an action: an allowed compiler (compiles and links) or one of the binutils a C/C++ build uses. */
export type Tool = 'compiler' | Binutil;

/** Where a program named by absolute path may be: the worker runs its own copy from its PATH either way. */
const SYSTEM_BIN = /^\/(?:usr\/(?:local\/)?)?bin\/[^/]+$/;

/**
 * The program of an action (`gcc`, `/usr/bin/ar`, `x86_64-linux-gnu-strip`): which tool it is and the name the
 * worker runs it by. Compilers as `checkCompiler` takes them; `ar`, `strip` and `objcopy` (and GNU cross ones)
 * always, being part of every C/C++ toolchain. A program named by path must be in the system's bin directories.
 */
export function checkTool(program: string, allowed: readonly string[]): { tool: Tool; name: string } {
  const name = SYSTEM_BIN.test(program) ? basename(program) : program;
  const binutil = binutilOf(name);
  if (binutil) return { tool: binutil, name };
  checkCompiler(name, allowed);
  return { tool: 'compiler', name };
}

export interface MappedArgs {
  /** What the arguments do: a compile (-c, -S, -E, -M), a link (the compiler without those), or a binutil. */
  kind: 'compile' | 'link' | Binutil;
  args: string[];
  /** Client paths of the files the job writes (-o, -MF, -MD's default, a linker map, an archive). */
  outputs: string[];
  /** Those of them that are dependency files (text naming sandbox paths, mapped back before returning). */
  depFiles: string[];
}

export interface MapArgsOptions {
  /** Default 'compiler'. */
  tool?: Tool;
  args: string[];
  cwd: string;
  roots: readonly string[];
  root: string;
  /**
   * The text of a params file (`@file`) at this client path, when it is among the job's inputs; without it an
   * `@file` is refused. Params files must lie under the roots; they are expanded inline and checked like the
   * rest (Bazel 4-7 write `bazel-out/...-2.params` for links and archives, and for long compiles).
   */
  readParams?: (path: string) => string | undefined;
  /**
   * The compiler's name as the job names it: an MSVC driver's (`clang-cl-14`, clang with `--driver-mode=cl`)
   * arguments are read with cl's rules, as the compiler will read them.
   */
  compiler?: string;
}

/** The client paths of the params files `args` name (to fetch before mapArgs, which reads them synchronously). */
export function paramsFiles(args: readonly string[], cwd: string): string[] {
  return args.filter((a) => a.startsWith('@') && a.length > 1).map((a) => resolve(cwd, a.slice(1)));
}

/** Driver options that make gcc or clang stop before linking. */
const NO_LINK = new Set(['-c', '-S', '-E', '-M', '-MM', '-fsyntax-only']);

/**
 * Checks `args` against the allowlist (allowed.ts, link.ts, tools.ts) and rewrites their paths into the
 * sandbox `root` (a client path P becomes root + P, so relative paths keep working from the mapped cwd and the
 * tool sees the same relative names as locally). Inputs must lie under the include roots (shipped) or the
 * system prefixes (not shipped); outputs always land inside the sandbox. For the compiler,
 * `-ffile-prefix-map=root=` makes debug info and __FILE__ name client paths.
 */
export function mapArgs(options: MapArgsOptions): MappedArgs {
  const { cwd, roots, root } = options;
  if (!isAbsolute(cwd)) throw new Refusal('ACCEL_FARM_BAD_JOB', `the job's directory must be absolute: ${cwd}`);
  const args = expandParams(options);
  const paths = pathMapper(cwd, roots, root);
  const tool = options.tool ?? 'compiler';
  if (tool !== 'compiler') {
    const parsed = binutilArgs(tool, args);
    if ('reason' in parsed) throw refused(parsed.word, `it ${parsed.reason}`);
    return { kind: tool, args: parsed.args.flatMap((a) => mapArg(a, paths)), outputs: paths.outputs(), depFiles: [] };
  }
  const flavor = options.compiler === undefined ? undefined : msvcFlavor(options.compiler, args);
  if (flavor) return mapMsvcArgs(args, flavor, paths, root);
  const parsed = parseArgs(args);
  const link = !parsed.some((a) => a.kind === 'flag' && NO_LINK.has(a.option));
  const linker = link ? linkerMapping(parsed, paths) : undefined;
  const out: string[] = [`-ffile-prefix-map=${root}=`];
  let output: string | undefined;
  let depsWanted = false;
  let depFile: string | undefined;
  for (const [i, arg] of parsed.entries()) {
    const words = linker?.get(i);
    if (words) {
      out.push(...words);
      continue;
    }
    const verdict = link ? linkVerdict(arg) : farmVerdict(arg);
    if (verdict !== true) throw refused(arg.raw.join(' '), `it ${verdict}`);
    if (arg.option === '-o' && arg.value) output = resolve(cwd, arg.value);
    if (arg.option === '-MF' && arg.value) depFile = resolve(cwd, arg.value);
    if (arg.option === '-MD' || arg.option === '-MMD') depsWanted = true;
    const map = /^(-f(?:debug|file|macro)-prefix-map=)(\/[^=]*)=(.*)$/.exec(arg.option);
    // The user's own maps name client paths; they must match the sandbox names now. Later maps win in gcc.
    if (map) out.push(`${map[1]}${join(root, map[2] as string)}=${map[3]}`);
    else out.push(...mapArg(arg, paths));
  }
  const outputs = paths.outputs();
  const depFiles = link ? [] : depFile ? [depFile] : [];
  if (!link && depsWanted && !depFile && output) {
    // gcc's -MD without -MF writes the dependency file next to the object.
    depFiles.push(output.replace(/\.[^./]*$/, '.d'));
    if (!outputs.includes(depFiles[0] as string)) outputs.push(depFiles[0] as string);
  }
  return { kind: link ? 'link' : 'compile', args: out, outputs, depFiles };
}

/**
 * An MSVC driver's compile (msvc-allowed.ts decides each argument) mapped into the sandbox: the object (`/Fo`)
 * lands inside it, include paths and sources must be shipped. Only clang-cl: it takes `/clang:-ffile-prefix-map`,
 * which keeps the sandbox's paths out of `__FILE__`; cl.exe has no such map and no Linux worker runs it. Debug
 * information stays local: CodeView records the object's absolute path and the compiler's command line, and
 * no prefix map reaches either. Sources go last after `--`: a mapped absolute path must never read as an option.
 */
function mapMsvcArgs(args: string[], flavor: MsvcFlavor, paths: PathMapper, root: string): MappedArgs {
  if (flavor !== 'clang-cl') {
    throw new Refusal('ACCEL_FARM_COMPILER_REFUSED', 'cl.exe compiles stay local: the farm runs clang-cl only');
  }
  const out: string[] = [`/clang:-ffile-prefix-map=${root}=`];
  const sources: string[] = [];
  for (const arg of parseMsvcArgs(args, { slashPaths: true })) {
    const verdict = msvcFarmVerdict(arg);
    if (verdict !== true) throw refused(arg.raw.join(' '), `it ${verdict}`);
    const gnu = arg.option === '/clang:' ? (arg.value ?? '') : arg.option;
    if (/^\/Z[7iI]$/.test(arg.option) || (/^-g/.test(gnu) && gnu !== '-g0')) {
      throw refused(arg.raw.join(' '), 'it asks for debug information, which would name the sandbox');
    }
    if (/^--driver-mode=(?!cl$)/.test(gnu)) throw refused(arg.raw.join(' '), 'it changes how the arguments are read');
    if (arg.option === '--') continue;
    if (arg.kind === 'source' && arg.option === '') sources.push(paths.input('source', arg.value as string));
    else if (arg.kind === 'source')
      out.push(...withValue(arg.raw, arg.value as string, paths.input(arg.option, arg.value as string)));
    else out.push(...mapArg(arg, paths));
  }
  return { kind: 'compile', args: [...out, '--', ...sources], outputs: paths.outputs(), depFiles: [] };
}

function refused(argument: string, reason: string): Refusal {
  return new Refusal('ACCEL_FARM_ARG_REFUSED', `argument ${argument} is refused on the farm: ${reason}`, argument);
}

/** `@file` arguments replaced by the words of their files, read through `readParams` from under the roots. */
function expandParams(options: MapArgsOptions): string[] {
  const { args, cwd, roots, readParams } = options;
  if (!args.some((a) => a.startsWith('@') && a.length > 1)) return args;
  const out: string[] = [];
  for (const arg of args) {
    if (!arg.startsWith('@') || arg.length === 1) {
      out.push(arg);
      continue;
    }
    if (!readParams) throw refused(arg, 'it reads arguments from a file that is not part of the job');
    const path = resolve(cwd, arg.slice(1));
    if (!within(path, roots)) {
      throw new Refusal('ACCEL_FARM_OUTSIDE_TREE', `params file ${arg} is outside the job's input root`, arg);
    }
    const text = readParams(path);
    if (text === undefined) {
      throw new Refusal('ACCEL_FARM_BAD_JOB', `params file ${arg.slice(1)} is not among the job's inputs`, arg);
    }
    const words = splitParams(text);
    const nested = words.find((w) => w.startsWith('@') && w.length > 1);
    if (nested) throw refused(nested, `it names a params file inside params file ${arg.slice(1)}`);
    out.push(...words);
  }
  return out;
}

interface PathMapper {
  input(option: string, value: string): string;
  output(value: string): string;
  outputs(): string[];
}

function pathMapper(cwd: string, roots: readonly string[], root: string): PathMapper {
  const outputs: string[] = [];
  return {
    input(option, value) {
      if (value === '') throw new Refusal('ACCEL_FARM_BAD_JOB', `${option} without a value`);
      const abs = resolve(cwd, value);
      if (within(abs, roots)) return isAbsolute(value) ? join(root, value) : value;
      if (isAbsolute(value) && within(abs, SYSTEM_PREFIXES)) return value;
      throw new Refusal(
        'ACCEL_FARM_OUTSIDE_TREE',
        `${option} ${value} is outside the farm's include dirs (${roots.join(', ') || 'none'})`,
      );
    },
    output(value) {
      if (value === '') throw new Refusal('ACCEL_FARM_BAD_JOB', 'an output without a name');
      const abs = resolve(cwd, value);
      if (!outputs.includes(abs)) outputs.push(abs);
      // A relative name stays as written (gcc writes -o into the dependency file's target as given), unless its
      // `..` would climb out of the job root, where the client's `/` stops them.
      if (!isAbsolute(value) && join(root, cwd, value).startsWith(`${root}/`)) return value;
      return join(root, abs);
    },
    outputs: () => outputs,
  };
}

/** One parsed argument with its path (an input, an output, a positional file) mapped into the sandbox. */
function mapArg(arg: Arg, paths: PathMapper): string[] {
  if (arg.kind === 'source') return [paths.input('source', arg.value as string)];
  if (arg.kind !== 'input-path' && arg.kind !== 'output-path') return arg.raw;
  if (arg.value === undefined || arg.value === '') {
    throw new Refusal('ACCEL_FARM_BAD_JOB', `${arg.option || arg.raw[0]} without a value`);
  }
  const mapped = arg.kind === 'output-path' ? paths.output(arg.value) : paths.input(arg.option || 'input', arg.value);
  return withValue(arg.raw, arg.value, mapped);
}

/** `raw` with its value (always the end of its last word: `-Ifoo`, `-I foo`, `--x=foo`) replaced. */
function withValue(raw: readonly string[], value: string, mapped: string): string[] {
  const last = raw.at(-1) as string;
  if (!last.endsWith(value)) throw new Error(`${raw.join(' ')} does not end with its value ${value}`);
  return [...raw.slice(0, -1), `${last.slice(0, last.length - value.length)}${mapped}`];
}

/**
 * What a link hands the linker (`-Wl,a,b`, `-Xlinker a`), read as one command line by link.ts (a value may be
 * in the next `-Xlinker`), checked, and mapped word by word: the new text of each such argument, by index.
 */
interface Owner {
  index: number;
  words: string[];
}

function linkerMapping(parsed: Arg[], paths: PathMapper): Map<number, string[]> {
  const owners: Owner[] = [];
  for (const [index, arg] of parsed.entries()) {
    const sub = arg.option === '-Xlinker' || arg.option.startsWith('-Wl,') ? subToolArgs(arg) : undefined;
    if (sub) owners.push({ index, words: sub.args });
  }
  // A value may only be in the next word when nothing else can reach the linker in between: gcc hands objects
  // and -l to the linker in their places among these words, so `-Wl,-rpath a.o -Wl,-plugin=x` gives `a.o` as
  // the value and `-plugin=x` as an option. Runs of adjacent arguments are read apart.
  const meaning: LinkerWord[] = [];
  for (let start = 0; start < owners.length; ) {
    let end = start + 1;
    while (end < owners.length && (owners[end] as Owner).index === (owners[end - 1] as Owner).index + 1) end++;
    const run = owners.slice(start, end);
    const words = linkerWords(run.flatMap((o) => o.words));
    if ('reason' in words) {
      const owner = run.find((o) => o.words.includes(words.word)) ?? (run.at(-1) as Owner);
      throw refused((parsed[owner.index] as Arg).raw.join(' '), `its linker option ${words.word} ${words.reason}`);
    }
    meaning.push(...words);
    start = end;
  }
  const out = new Map<number, string[]>();
  let next = 0;
  for (const { index, words } of owners) {
    const mapped = words.map(() => {
      const w = meaning[next++] as (typeof meaning)[number];
      if (w.kind === 'source') return paths.input('linker input', w.value as string);
      if (w.kind === 'input-path')
        return withValue([w.word], w.value as string, paths.input(w.option ?? w.word, w.value as string))[0];
      if (w.kind === 'output-path') return withValue([w.word], w.value as string, paths.output(w.value as string))[0];
      return w.word;
    }) as string[];
    const arg = parsed[index] as Arg;
    out.set(index, arg.option === '-Xlinker' ? ['-Xlinker', mapped[0] as string] : [`-Wl,${mapped.join(',')}`]);
  }
  return out;
}
