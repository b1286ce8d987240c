import { basename, isAbsolute, join, resolve, sep } from 'node:path';

/**
 * What a worker agrees to run: an allowed compiler, and arguments that neither load code nor read or write
 * outside the job. The syncer applies it when a job is submitted, the worker again before running it.
 */
export class Refusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'Refusal';
    this.code = code;
  }
}

/** Arguments that make the compiler load or run other code, or read arguments from a file we did not ship. */
const CODE_LOADING: [RegExp, string][] = [
  [/^-fplugin/, 'loads a compiler plugin'],
  [/^-fpass-plugin/, 'loads a compiler plugin'],
  [/^--?specs/, 'replaces the driver specs (can run any program)'],
  [/^-B/, 'changes where the driver finds its programs'],
  [/^-wrapper$/, 'runs the compiler under another program'],
  [/^-load$|^-Xclang$/, 'passes options to clang that can load code'],
  [/^-no-canonical-prefixes$/, 'changes where the driver finds its programs'],
  [/^-iprefix|^-iwithprefix/, 'is not supported on the farm'],
  [/^-dumpdir$|^-dumpbase|^-auxbase|^-aux-info/, 'writes files outside the job'],
  [/^@/, 'reads arguments from a file that is not part of the job'],
  // Options that write (or read) a file at a path of the client's choosing, or hand options to the
  // preprocessor, assembler or linker where this policy cannot see them (-Wp,-MD,FILE; -Xpreprocessor -fplugin).
  [/^-W[pal],/, 'passes options to a sub-tool that this policy cannot check'],
  [/^-X(preprocessor|assembler|linker)$/, 'passes options to a sub-tool that this policy cannot check'],
  [/^--output/, 'names an output this policy does not map (use -o)'],
  [/^-fdump-|^-fopt-info|^-fcallgraph-info|^-MJ/, 'writes files outside the job'],
  [/^-f(?!(debug|file|macro)-prefix-map=)[a-z0-9-]+=\//, 'names an absolute path the job cannot contain'],
];

/** Options whose value is an input path (read by the compiler). */
const INPUT_PATH = ['-I', '-isystem', '-iquote', '-idirafter', '-include', '-imacros', '-isysroot', '--sysroot'];
/** Options whose value is an output path. */
const OUTPUT_PATH = ['-o', '-MF'];
const PATH_OPTIONS = [...OUTPUT_PATH, ...INPUT_PATH].sort((a, b) => b.length - a.length);

/** `-Ifoo`, `-I foo`, `--sysroot=foo`, `--sysroot foo`: the option and, when attached, its value. */
function splitPathOption(arg: string): { option: string; joined?: string } | undefined {
  for (const option of PATH_OPTIONS) {
    if (arg === option) return { option };
    if (option === '--sysroot') {
      if (arg.startsWith('--sysroot=')) return { option, joined: arg.slice('--sysroot='.length) };
    } else if (arg.startsWith(option)) return { option, joined: arg.slice(option.length) };
  }
  return undefined;
}

/** Options with a separate value that is not a path. */
const OTHER_VALUE = new Set(['-x', '-D', '-U', '-MT', '-MQ', '-arch', '-target', '--param', '-L', '-l', '-imultilib']);

/** System headers are not shipped: absolute paths under these stay as they are on the worker. */
export const SYSTEM_PREFIXES = ['/usr/'];

/**
 * The only environment a compile gets from the client: its locale (diagnostics must read as they would
 * locally) and reproducibility settings. Never PATH, LD_PRELOAD, GCC_EXEC_PREFIX, COMPILER_PATH, ….
 */
export const JOB_ENV_KEYS = ['LANG', 'LC_ALL', 'LC_MESSAGES', 'LC_CTYPE', 'GCC_COLORS', 'SOURCE_DATE_EPOCH'];

/** The client's variables a job may carry, from any environment-like record. */
export function jobEnv(env: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of JOB_ENV_KEYS) if (typeof env[k] === 'string') out[k] = env[k] as string;
  return out;
}

/** Checks the shape of a submitted job (it comes from the network); throws a Refusal. */
export function checkJobShape(spec: unknown): void {
  const s = spec as Record<string, unknown> | null;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    typeof s.compiler === 'string' &&
    typeof s.toolchain === 'string' &&
    typeof s.cwd === 'string' &&
    Array.isArray(s.args) &&
    s.args.every((a) => typeof a === 'string') &&
    typeof s.env === 'object' &&
    s.env !== null &&
    typeof s.startTimeoutMs === 'number' &&
    s.startTimeoutMs > 0;
  if (!ok)
    throw new Refusal('ACCEL_FARM_BAD_JOB', 'malformed job: compiler, toolchain, cwd, args, env, startTimeoutMs');
}

export function within(path: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => path === d || path.startsWith(d.endsWith(sep) ? d : `${d}${sep}`));
}

export function checkCompiler(compiler: string, allowed: readonly string[]): void {
  if (compiler !== basename(compiler) || !allowed.includes(compiler)) {
    throw new Refusal(
      'ACCEL_FARM_COMPILER_REFUSED',
      `compiler '${compiler}' is not on the farm's allowlist (${allowed.join(', ')})`,
    );
  }
}

export interface MappedArgs {
  args: string[];
  /** Client paths of the files the compile writes (-o, -MF, and -MD's default). */
  outputs: string[];
  /** Those of them that are dependency files (text naming sandbox paths, mapped back before returning). */
  depFiles: string[];
}

/**
 * Checks `args` and rewrites their paths into the sandbox `root` (a client path P becomes root + P, so
 * relative paths keep working from the mapped cwd and the compiler sees the same relative names as locally).
 * Inputs must lie under the include roots (shipped) or the system prefixes (not shipped); outputs always
 * land inside the sandbox. `-ffile-prefix-map=root=` makes debug info and __FILE__ name client paths.
 */
export function mapArgs(options: { args: string[]; cwd: string; roots: readonly string[]; root: string }): MappedArgs {
  const { args, cwd, roots, root } = options;
  if (!isAbsolute(cwd)) throw new Refusal('ACCEL_FARM_BAD_JOB', `the job's directory must be absolute: ${cwd}`);
  const out: string[] = [`-ffile-prefix-map=${root}=`];
  const outputs: string[] = [];
  let output: string | undefined;
  let depsWanted = false;
  let depFile: string | undefined;
  const input = (option: string, value: string): string => {
    const abs = resolve(cwd, value);
    if (within(abs, roots)) return isAbsolute(value) ? join(root, value) : value;
    if (isAbsolute(value) && within(abs, SYSTEM_PREFIXES)) return value;
    throw new Refusal(
      'ACCEL_FARM_OUTSIDE_TREE',
      `${option} ${value} is outside the farm's include dirs (${roots.join(', ') || 'none'})`,
    );
  };
  const outputPath = (value: string): string => {
    const abs = resolve(cwd, value);
    outputs.push(abs);
    // A relative name stays as written (gcc writes -o into the dependency file's target as given), unless its
    // `..` would climb out of the job root, where the client's `/` stops them.
    if (!isAbsolute(value) && join(root, cwd, value).startsWith(`${root}/`)) return value;
    return join(root, abs);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    for (const [re, why] of CODE_LOADING) {
      if (re.test(arg))
        throw new Refusal('ACCEL_FARM_ARG_REFUSED', `argument ${arg} is refused on the farm: it ${why}`);
    }
    const split = splitPathOption(arg);
    if (split) {
      const value = split.joined ?? args[++i];
      if (value === undefined) throw new Refusal('ACCEL_FARM_BAD_JOB', `${arg} without a value`);
      const { option } = split;
      const mapped = OUTPUT_PATH.includes(option) ? outputPath(value) : input(option, value);
      if (option === '-o') output = resolve(cwd, value);
      if (option === '-MF') depFile = resolve(cwd, value);
      if (split.joined === undefined) out.push(option, mapped);
      else out.push(`${option}${option === '--sysroot' ? '=' : ''}${mapped}`);
      continue;
    }
    if (OTHER_VALUE.has(arg)) {
      out.push(arg, args[++i] ?? '');
      continue;
    }
    const map = /^(-f(?:debug|file|macro)-prefix-map=)(\/[^=]*)=(.*)$/.exec(arg);
    if (map) {
      // The user's own maps name client paths; they must match the sandbox names now. Later maps win in gcc.
      out.push(`${map[1]}${join(root, map[2] as string)}=${map[3]}`);
      continue;
    }
    if (arg === '-MD' || arg === '-MMD') depsWanted = true;
    if (!arg.startsWith('-') && arg !== '') {
      out.push(input('source', arg));
      continue;
    }
    out.push(arg);
  }
  const depFiles = depFile ? [depFile] : [];
  if (depsWanted && !depFile && output) {
    // gcc's -MD without -MF writes the dependency file next to the object.
    depFiles.push(output.replace(/\.[^./]*$/, '.d'));
    outputs.push(depFiles[0] as string);
  }
  return { args: out, outputs: [...new Set(outputs)], depFiles };
}
