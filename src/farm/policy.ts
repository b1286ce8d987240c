import { basename, isAbsolute, join, resolve, sep } from 'node:path';
import { farmVerdict } from '../compiler/allowed.ts';
import { parseArgs } from '../compiler/options.ts';

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
 * locally) and reproducibility settings. Never PATH, LD_PRELOAD, GCC_EXEC_PREFIX, COMPILER_PATH, ….
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

export interface MappedArgs {
  args: string[];
  /** Client paths of the files the compile writes (-o, -MF, and -MD's default). */
  outputs: string[];
  /** Those of them that are dependency files (text naming sandbox paths, mapped back before returning). */
  depFiles: string[];
}

/**
 * Checks `args` against the allowlist (allowed.ts) and rewrites their paths into the sandbox `root` (a client
 * path P becomes root + P, so relative paths keep working from the mapped cwd and the compiler sees the same
 * relative names as locally). Inputs must lie under the include roots (shipped) or the system prefixes (not
 * shipped); outputs always land inside the sandbox. `-ffile-prefix-map=root=` makes debug info and __FILE__
 * name client paths.
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
  for (const arg of parseArgs(args)) {
    const verdict = farmVerdict(arg);
    if (verdict !== true) {
      throw new Refusal(
        'ACCEL_FARM_ARG_REFUSED',
        `argument ${arg.raw.join(' ')} is refused on the farm: it ${verdict}`,
      );
    }
    if (arg.kind === 'source') {
      out.push(input('source', arg.value as string));
      continue;
    }
    if (arg.kind === 'input-path' || arg.kind === 'output-path') {
      const value = arg.value;
      if (value === undefined || value === '') throw new Refusal('ACCEL_FARM_BAD_JOB', `${arg.option} without a value`);
      const mapped = arg.kind === 'output-path' ? outputPath(value) : input(arg.option, value);
      if (arg.option === '-o') output = resolve(cwd, value);
      if (arg.option === '-MF') depFile = resolve(cwd, value);
      if (arg.raw.length === 2) out.push(arg.option, mapped);
      else out.push(`${arg.option}${arg.option.startsWith('--') ? '=' : ''}${mapped}`);
      continue;
    }
    const map = /^(-f(?:debug|file|macro)-prefix-map=)(\/[^=]*)=(.*)$/.exec(arg.option);
    if (map) {
      // The user's own maps name client paths; they must match the sandbox names now. Later maps win in gcc.
      out.push(`${map[1]}${join(root, map[2] as string)}=${map[3]}`);
      continue;
    }
    if (arg.option === '-MD' || arg.option === '-MMD') depsWanted = true;
    out.push(...arg.raw);
  }
  const depFiles = depFile ? [depFile] : [];
  if (depsWanted && !depFile && output) {
    // gcc's -MD without -MF writes the dependency file next to the object.
    depFiles.push(output.replace(/\.[^./]*$/, '.d'));
    outputs.push(depFiles[0] as string);
  }
  return { args: out, outputs: [...new Set(outputs)], depFiles };
}
