import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
/**
 * gcc's and clang's command line, parsed once: what each argument is (a source, an option reading or writing
 * a path, a value, a flag) in every spelling the drivers accept. The cache key (args.ts) and the farm's
 * policy (farm/policy.ts) both read this model, so they cannot disagree about what an argument means.
 */

/** What an option does with its value. */
export type OptionKind =
  /** Reads the file or directory named by its value (-I, -include, --sysroot, ...). */
  | 'input-path'
  /** Writes the file named by its value (-o, -MF). */
  | 'output-path'
  /** A value that names no file (-D, -x, -MT, --param, -std=). */
  | 'value'
  /** No value (-c, -O2, -MD, -Wall). */
  | 'flag';

export interface Arg {
  /** The canonical option (`-I` for `-Ifoo`, `-I foo`), or '' for a positional input. */
  option: string;
  kind: OptionKind | 'source';
  /** The option's value, or the positional input itself. */
  value?: string;
  /** The argument(s) as written (one, or two for a separate value). */
  raw: string[];
}

/** Options whose value follows, joined (`-Ifoo`) or as the next argument (`-I foo`); longest names first. */
const WITH_VALUE: [string, OptionKind][] = (
  [
    ['-o', 'output-path'],
    ['-x', 'value'],
    ['-I', 'input-path'],
    ['-isystem', 'input-path'],
    ['-iquote', 'input-path'],
    ['-idirafter', 'input-path'],
    ['-include', 'input-path'],
    ['-imacros', 'input-path'],
    ['-iprefix', 'input-path'],
    ['-iwithprefix', 'input-path'],
    ['-iwithprefixbefore', 'input-path'],
    ['-isysroot', 'input-path'],
    ['-imultilib', 'input-path'],
    ['-D', 'value'],
    ['-U', 'value'],
    ['-MF', 'output-path'],
    ['-MT', 'value'],
    ['-MQ', 'value'],
    ['-L', 'input-path'],
    ['-l', 'value'],
    ['-B', 'input-path'],
    // A linker script (links only; a compile ignores it).
    ['-T', 'input-path'],
    ['-Xpreprocessor', 'value'],
    ['-Xassembler', 'value'],
    ['-Xlinker', 'value'],
    ['-Xclang', 'value'],
    ['-mllvm', 'value'],
    ['-aux-info', 'output-path'],
    ['-arch', 'value'],
    ['-target', 'value'],
    ['-specs', 'input-path'],
    ['--param', 'value'],
    ['--sysroot', 'input-path'],
    ['--config', 'input-path'],
  ] as [string, OptionKind][]
).sort((a, b) => b[0].length - a[0].length);

const KIND = new Map(WITH_VALUE);

/** Options that take a separate value only; joined they are other options (`-arch`, not `-a rch`). */
const SEPARATE_ONLY = new Set(['-Xpreprocessor', '-Xassembler', '-Xlinker', '-Xclang', '-mllvm', '-aux-info', '-arch']);

/**
 * Splits arguments (after @file expansion) into options with their values. Unknown options are kept as flags
 * with their raw text: deciding what they mean is the reader's job (the farm refuses what it does not know).
 */
export function parseArgs(args: readonly string[]): Arg[] {
  const out: Arg[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    // `@file`: more arguments, read from a file by the driver; an option of its own here, never a source.
    if (arg.startsWith('@') && arg.length > 1) {
      out.push({ option: arg, kind: 'flag', raw: [arg] });
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.push({ option: '', kind: 'source', value: arg, raw: [arg] });
      continue;
    }
    // `--sysroot=x`, `--param=x`, `--config=x`: the `=` form of a long option.
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0 && KIND.has(arg.slice(0, eq))) {
      const option = arg.slice(0, eq);
      out.push({ option, kind: KIND.get(option) as OptionKind, value: arg.slice(eq + 1), raw: [arg] });
      continue;
    }
    if (KIND.has(arg)) {
      const value = args[i + 1];
      const raw = value === undefined ? [arg] : [arg, value];
      if (value !== undefined) i++;
      out.push({ option: arg, kind: KIND.get(arg) as OptionKind, value, raw });
      continue;
    }
    const joined = WITH_VALUE.find(([o]) => !o.startsWith('--') && !SEPARATE_ONLY.has(o) && arg.startsWith(o));
    if (joined) {
      out.push({ option: joined[0], kind: joined[1], value: arg.slice(joined[0].length), raw: [arg] });
      continue;
    }
    out.push({ option: arg, kind: 'flag', raw: [arg] });
  }
  return out;
}

/** The arguments a `-Wp,a,b` / `-Wa,a,b` / `-Wl,a,b` hands to a sub-tool, and which sub-tool. */
export function subToolArgs(arg: Arg): { tool: 'preprocessor' | 'assembler' | 'linker'; args: string[] } | undefined {
  const m = /^-W([pal]),(.*)$/s.exec(arg.option);
  if (m) {
    const tool = m[1] === 'p' ? 'preprocessor' : m[1] === 'a' ? 'assembler' : 'linker';
    return { tool, args: (m[2] as string).split(',') };
  }
  if (arg.option === '-Xpreprocessor') return { tool: 'preprocessor', args: [arg.value ?? ''] };
  if (arg.option === '-Xassembler') return { tool: 'assembler', args: [arg.value ?? ''] };
  if (arg.option === '-Xlinker') return { tool: 'linker', args: [arg.value ?? ''] };
  return undefined;
}

/**
 * The words of a params (`@file`) file as gcc, binutils and Bazel's GCC_QUOTED params files spell them
 * (libiberty's buildargv): whitespace separates words, single and double quotes group, a backslash escapes
 * the next character anywhere.
 */
export function splitParams(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * `@file` arguments replaced by the words of the file (relative names against the working directory), as a
 * driver does; `words` reads a file as that driver does (gcc's splitParams, cl's Windows rules). Throws on an
 * unreadable file or nesting deeper than 8 (the caller says "uncacheable").
 */
export function expandResponseFiles(
  args: readonly string[],
  cwd: string,
  words: (file: Buffer) => string[],
  depth = 0,
): string[] {
  if (depth > 8) throw new Error('@file nesting too deep');
  const out: string[] = [];
  for (const arg of args) {
    if (!arg.startsWith('@') || arg.length === 1) {
      out.push(arg);
      continue;
    }
    const path = arg.slice(1);
    const file = readFileSync(isAbsolute(path) ? path : resolve(cwd, path));
    out.push(...expandResponseFiles(words(file), cwd, words, depth + 1));
  }
  return out;
}
