import type { Arg, OptionKind } from './options.ts';

/**
 * The binutils a C/C++ build runs besides the compiler, in the same model as its arguments (options.ts's
 * `Arg`): `ar` as Bazel's archiver_flags feature calls it (`ar rcsD OUT.a @params`), `strip` as its
 * `.stripped` binaries do (`strip -S -p -o OUT -R SECTION... IN`), `objcopy` for debug links and sections.
 * An ALLOWLIST like allowed.ts: an option passes only when it names no file or names one the policy maps
 * (inputs checked against the shipped tree, outputs mapped into the job); anything else is refused, naming
 * the word. binutils take their long options by abbreviation too, so they pass only by exact name.
 */
export type Binutil = 'ar' | 'strip' | 'objcopy';

/** `ar`, `strip`, `objcopy`, or a GNU cross one of them (`aarch64-linux-gnu-strip`). */
export function binutilOf(name: string): Binutil | undefined {
  const m = /^(?:[a-z0-9_]+(?:-[a-z0-9_]+){2,3}-)?(ar|strip|objcopy)$/.exec(name);
  return m ? (m[1] as Binutil) : undefined;
}

/** The arguments parsed, or the first word refused and why. */
export type ToolArgs = { args: Arg[] } | { word: string; reason: string };

export function binutilArgs(tool: Binutil, args: readonly string[]): ToolArgs {
  return tool === 'ar' ? arArgs(args) : getoptArgs(tool, args);
}

/**
 * `ar` with one operation that writes a new archive from files: `r` (insert or replace) or `q` (append), with
 * modifiers that change only how (c create, D/U deterministic or not, s/S index, u newer only, v verbose).
 * Extracting (`x`), printing (`p`), thin archives (`T`), positional and counted modifiers, `--plugin`,
 * `--output` and `--target` are refused.
 */
function arArgs(args: readonly string[]): ToolArgs {
  const [op, archive, ...members] = args;
  if (op === undefined) return { word: '', reason: 'is an ar call without an operation' };
  if (!/^-?[rq][cDUsSuv]*$/.test(op)) return { word: op, reason: AR_REASON };
  if (archive === undefined || archive.startsWith('-') || archive === '')
    return { word: archive ?? op, reason: 'is not an archive name (ar OPERATION ARCHIVE FILE...)' };
  const out: Arg[] = [{ option: op, kind: 'flag', raw: [op] }];
  out.push({ option: '', kind: 'output-path', value: archive, raw: [archive] });
  for (const m of members) {
    if (m.startsWith('-') || m === '') return { word: m, reason: 'is not a member file (options come first)' };
    out.push({ option: '', kind: 'source', value: m, raw: [m] });
  }
  return { args: out };
}

const AR_REASON =
  "is not an ar operation this policy accepts (r or q with modifiers from 'cDUsSuv'; never x, p, T or --plugin)";

/** Section and symbol names, with the wildcards `-w` allows. */
const NAME = /^[\w.$@*?![\]^-]+$/;
const BFD = /^[\w.-]+$/;

interface Options {
  /** Options without a value, short (one letter) or long. */
  flags: Set<string>;
  /** Options with a value, and the value's kind: a name (checked), an input or an output file. */
  values: Map<string, OptionKind>;
}

const STRIP_FLAGS = [
  'S',
  'g',
  'd',
  'strip-debug',
  's',
  'strip-all',
  'strip-unneeded',
  'p',
  'preserve-dates',
  'D',
  'enable-deterministic-archives',
  'U',
  'disable-deterministic-archives',
  'x',
  'discard-all',
  'X',
  'discard-locals',
  'only-keep-debug',
  'strip-dwo',
  'keep-file-symbols',
  'keep-section-symbols',
  'w',
  'wildcard',
  'v',
  'verbose',
  'M',
  'merge-notes',
  'no-merge-notes',
];
const STRIP_VALUES: [string, OptionKind][] = [
  ['o', 'output-path'],
  ['R', 'value'],
  ['remove-section', 'value'],
  ['keep-section', 'value'],
  ['remove-relocations', 'value'],
  ['K', 'value'],
  ['keep-symbol', 'value'],
  ['N', 'value'],
  ['strip-symbol', 'value'],
  ['F', 'value'],
  ['target', 'value'],
  ['I', 'value'],
  ['input-target', 'value'],
  ['O', 'value'],
  ['output-target', 'value'],
];

const TOOLS: Record<'strip' | 'objcopy', Options> = {
  strip: { flags: new Set(STRIP_FLAGS), values: new Map(STRIP_VALUES) },
  objcopy: {
    flags: new Set([
      ...STRIP_FLAGS.filter((f) => f !== 'd'),
      'decompress-debug-sections',
      'compress-debug-sections',
      'localize-hidden',
      'weaken',
      'extract-dwo',
      'extract-symbol',
    ]),
    values: new Map<string, OptionKind>([
      ...STRIP_VALUES.filter(([o]) => o !== 'o'),
      ['j', 'value'],
      ['only-section', 'value'],
      ['L', 'value'],
      ['localize-symbol', 'value'],
      ['G', 'value'],
      ['keep-global-symbol', 'value'],
      ['W', 'value'],
      ['weaken-symbol', 'value'],
      ['globalize-symbol', 'value'],
      ['rename-section', 'value'],
      ['set-section-flags', 'value'],
      ['set-section-alignment', 'value'],
      ['redefine-sym', 'value'],
      ['prefix-symbols', 'value'],
      ['prefix-alloc-sections', 'value'],
      ['B', 'value'],
      ['binary-architecture', 'value'],
      ['compress-debug-sections', 'value'],
      // SECTION=FILE: the file is read into the output.
      ['add-section', 'input-path'],
      ['update-section', 'input-path'],
      ['add-gnu-debuglink', 'input-path'],
    ]),
  },
};

/** A value that names no file: section, symbol and target names, flag lists, `old=new` renames. */
function valueOk(option: string, value: string): boolean {
  if (/^(F|target|I|input-target|O|output-target|B|binary-architecture)$/.test(option)) return BFD.test(value);
  if (option === 'compress-debug-sections') return /^(none|zlib|zlib-gnu|zlib-gabi|zstd)$/.test(value);
  if (/^(rename-section|set-section-flags|set-section-alignment|redefine-sym)$/.test(option))
    return /^[\w.$@-]+=[\w.$@,-]+$/.test(value);
  return NAME.test(value);
}

/**
 * strip's and objcopy's command line as getopt_long reads it: `--name=value`, `--name value`, clustered short
 * flags (`-Sp`), a short option's value joined or next (`-R.x`, `-o OUT`). Files come last: strip's inputs
 * with exactly one `-o`, objcopy's IN and OUT; neither may rewrite its input in place.
 */
function getoptArgs(tool: 'strip' | 'objcopy', args: readonly string[]): ToolArgs {
  const { flags, values } = TOOLS[tool];
  const out: Arg[] = [];
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as string;
    if (!word.startsWith('-') || word === '-') {
      if (word === '' || word === '-') return { word, reason: 'is not a file name' };
      files.push(word);
      continue;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = word.slice(2, eq < 0 ? undefined : eq);
      if (eq < 0 && flags.has(name)) {
        out.push({ option: word, kind: 'flag', raw: [word] });
        continue;
      }
      const kind = values.get(name);
      if (!kind) return { word, reason: `is not on the farm's list of known-safe ${tool} options` };
      const value = eq < 0 ? args[++i] : word.slice(eq + 1);
      const raw = eq < 0 ? [word, value ?? ''] : [word];
      const arg = valueArg(`--${name}`, kind, value, raw);
      if (typeof arg === 'string') return { word: raw.join(' '), reason: arg };
      out.push(arg);
      continue;
    }
    // A cluster of short options: flags, then at most one option whose value is the rest or the next word.
    for (let j = 1; j < word.length; j++) {
      const c = word[j] as string;
      if (flags.has(c)) {
        out.push({ option: `-${c}`, kind: 'flag', raw: j === 1 && word.length === 2 ? [word] : [`-${c}`] });
        continue;
      }
      const kind = values.get(c);
      if (!kind) return { word, reason: `is not on the farm's list of known-safe ${tool} options` };
      const rest = word.slice(j + 1);
      const value = rest === '' ? args[++i] : rest;
      const raw = rest === '' ? [`-${c}`, value ?? ''] : [`-${c}${rest}`];
      const arg = valueArg(`-${c}`, kind, value, raw);
      if (typeof arg === 'string') return { word: raw.join(' '), reason: arg };
      out.push(arg);
      break;
    }
  }
  const outputs = out.filter((a) => a.kind === 'output-path').length;
  if (tool === 'strip') {
    if (outputs !== 1 || files.length !== 1) {
      return { word: files.join(' '), reason: 'is not one input with one -o (strip would rewrite its input in place)' };
    }
    out.push({ option: '', kind: 'source', value: files[0], raw: [files[0] as string] });
    return { args: out };
  }
  if (files.length !== 2) {
    return { word: files.join(' '), reason: 'is not IN and OUT (objcopy would rewrite its input in place)' };
  }
  out.push({ option: '', kind: 'source', value: files[0], raw: [files[0] as string] });
  out.push({ option: '', kind: 'output-path', value: files[1], raw: [files[1] as string] });
  return { args: out };
}

function valueArg(option: string, kind: OptionKind, value: string | undefined, raw: string[]): Arg | string {
  if (value === undefined || value === '') return 'is missing its value';
  const name = option.replace(/^--?/, '');
  if (kind === 'value')
    return valueOk(name, value) ? { option, kind, value, raw } : 'has a value this policy does not accept';
  if (name === 'add-section' || name === 'update-section') {
    // SECTION=FILE: the file is the path; `raw` ends with it, so mapping rewrites only the file.
    const m = /^([\w.$@-]+)=(.+)$/s.exec(value);
    if (!m) return 'is not SECTION=FILE';
    return { option, kind, value: m[2] as string, raw };
  }
  return { option, kind, value, raw };
}
