import { farmVerdict } from './allowed.ts';
import type { Arg, OptionKind } from './options.ts';

/**
 * Links in the same compiler model: the driver's arguments are the compile model's (options.ts), and what the
 * driver hands to the linker (`-Wl,a,b`, `-Xlinker a`) is read here as GNU ld, gold and lld read their own
 * command line. Like allowed.ts this is an ALLOWLIST: a linker option passes only when it is known to load no
 * code and to read or write only the paths it names (inputs checked against the shipped tree, outputs mapped
 * into the job). The options are those of Bazel's auto-configured Linux toolchain (Bazel 4 to 7:
 * unix_cc_configure.bzl's link_flags, link_libs and opt_link_flags; unix_cc_toolchain_config.bzl's
 * libraries_to_link, runtime_library_search_directories, strip_debug_symbols, shared_flag and fission
 * features) and the usual hardening and layout switches of distribution builds.
 */

/** One word the linker gets, as the linker reads it. */
export interface LinkerWord {
  word: string;
  /** 'source' for a file named on its own (an object, an archive, a linker script). */
  kind: OptionKind | 'source';
  /** For a path: the path as written (a suffix of `word`, or all of it). */
  value?: string;
  /** For a path: the option that names it (`-T` for `-T,x.ld`, `-Tx.ld` and `--script=x.ld`: its own word). */
  option?: string;
}

/** A driver argument in a link: the compile allowlist, plus the driver options only a link gives meaning to. */
export function linkVerdict(arg: Arg): true | string {
  // gcc's docs: at link time --coverage only adds libgcov.
  if (arg.kind === 'flag' && arg.option === '--coverage') return true;
  if (arg.option === '-Xlinker' || /^-Wl,/.test(arg.option)) return true; // read word by word by linkerWords
  return farmVerdict(arg);
}

/** Long options without a value, by name without dashes (ld takes `-name` and `--name` alike). */
const FLAGS = new Set([
  'S',
  's',
  'strip-debug',
  'strip-all',
  'gc-sections',
  'no-gc-sections',
  'print-gc-sections',
  'as-needed',
  'no-as-needed',
  'whole-archive',
  'no-whole-archive',
  'start-lib',
  'end-lib',
  'start-group',
  'end-group',
  '(',
  ')',
  'push-state',
  'pop-state',
  'Bstatic',
  'Bdynamic',
  'dy',
  'dn',
  'static',
  'call_shared',
  'non_shared',
  'Bsymbolic',
  'Bsymbolic-functions',
  'export-dynamic',
  'no-export-dynamic',
  'E',
  'no-undefined',
  'allow-shlib-undefined',
  'no-allow-shlib-undefined',
  'no-undefined-version',
  'undefined-version',
  'copy-dt-needed-entries',
  'no-copy-dt-needed-entries',
  'gdb-index',
  'build-id',
  'eh-frame-hdr',
  'no-eh-frame-hdr',
  'enable-new-dtags',
  'disable-new-dtags',
  'O0',
  'O1',
  'O2',
  'relax',
  'no-relax',
  'fatal-warnings',
  'no-fatal-warnings',
  'warn-common',
  'warn-once',
  'warn-execstack',
  'no-warn-execstack',
  'warn-shared-textrel',
  'no-warn-mismatch',
  'sort-common',
  'color-diagnostics',
  'no-color-diagnostics',
  'demangle',
  'no-demangle',
  'pie',
  'pic-executable',
  'no-pie',
  'shared',
  'Bshareable',
  'detect-odr-violations',
  'no-keep-memory',
  'reduce-memory-overheads',
  'discard-all',
  'x',
  'discard-locals',
  'X',
  'threads',
  'no-threads',
  'icf=none',
  'icf=safe',
  'icf=all',
  'nostdlib',
  'v',
  'verbose',
  'stats',
  'print-memory-usage',
]);

/** Options with a value that names no file: the value's shape is checked. */
const VALUES: Record<string, RegExp> = {
  // A runtime search path written into the output (Bazel: `$ORIGIN/...`, `$EXEC_ORIGIN/...`), never read now.
  rpath: /^[^\0]*$/,
  soname: /^[\w.+-]+$/,
  h: /^[\w.+-]+$/,
  'exclude-libs': /^[\w.+,:-]+$/,
  'hash-style': /^(gnu|sysv|both)$/,
  'build-id': /^(md5|sha1|uuid|fast|none|0x[0-9a-fA-F]+)$/,
  icf: /^(none|safe|all)$/,
  'compress-debug-sections': /^(none|zlib|zlib-gnu|zlib-gabi|zstd)$/,
  threads: /^\d*$/,
  'thread-count': /^\d+$/,
  e: /^[\w.$@]+$/,
  entry: /^[\w.$@]+$/,
  u: /^[\w.$@]+$/,
  undefined: /^[\w.$@]+$/,
  // Symbol wrapping only renames references (`__wrap_X`); the code comes from the link's own inputs.
  wrap: /^[\w.$@]+$/,
  defsym: /^[\w.$@]+=[\w.$@+-]+$/,
  m: /^[\w]+$/,
  // The interpreter recorded in the output (PT_INTERP): a string for the machine that runs the program,
  // never run or read by the link.
  'dynamic-linker': /^\/[\w./+-]+$/,
  'unresolved-symbols': /^(ignore-all|report-all|ignore-in-object-files|ignore-in-shared-libs)$/,
  'sort-section': /^(name|alignment)$/,
  'max-page-size': /^(0x[0-9a-fA-F]+|\d+)$/,
  'common-page-size': /^(0x[0-9a-fA-F]+|\d+)$/,
  z: /^(relro|norelro|now|lazy|noexecstack|execstack|defs|undefs|nodefs|nodelete|nodlopen|origin|text|notext|textoff|separate-code|noseparate-code|combreloc|nocombreloc|nocopyreloc|muldefs|ibt|shstk|ibtplt|initfirst|interpose|global|nodefaultlib|noextern-protected-data|pack-relative-relocs|nopack-relative-relocs|dynamic-undefined-weak|nodynamic-undefined-weak|(max-page-size|common-page-size|stack-size)=(0x[0-9a-fA-F]+|\d+)|cet-report=(none|warning|error))$/,
  l: /^:?[\w.+-]+$/,
};

/** Options that read a file or directory: checked against the shipped tree and /usr. */
const INPUTS = new Set([
  'L',
  'library-path',
  'rpath-link',
  'T',
  'script',
  'version-script',
  'dynamic-list',
  'retain-symbols-file',
]);
/** Options that write a file: mapped into the job and listed among its outputs. */
const OUTPUTS = new Set(['Map', 'print-symbol-counts', 'dependency-file']);

/** Options refused by name, each with its reason (everything else unknown is refused too). */
const REFUSED: [RegExp, string][] = [
  [/^plugin/, 'loads a linker plugin (runs its code)'],
  [/^(load-pass-plugin|mllvm|lto-|thinlto-)/, 'loads code or writes files through the linker LTO machinery'],
  [/^(o|output)$/, 'names the link output past the driver (-o is the only output a link may name)'],
  [
    /^(sysroot|Y|P|depaudit|audit|f|filter|F|auxiliary)$/,
    'names a path or a library at run time this policy does not check',
  ],
];

/** A linker word's meaning: its kind and the value a path option carries, or the reason it is refused. */
export function linkerWords(words: readonly string[]): LinkerWord[] | { word: string; reason: string } {
  const out: LinkerWord[] = [];
  let pending: OptionKind | undefined;
  let pendingCheck: RegExp | undefined;
  let pendingOption = '';
  for (const word of words) {
    if (pending) {
      if (pendingCheck && !pendingCheck.test(word)) return { word, reason: REASON_VALUE };
      out.push(
        pending === 'value' ? { word, kind: 'value' } : { word, kind: pending, value: word, option: pendingOption },
      );
      pending = undefined;
      pendingCheck = undefined;
      continue;
    }
    if (word.startsWith('@')) return { word, reason: 'reads linker arguments from a file this policy does not read' };
    if (!word.startsWith('-') || word === '-') {
      if (word === '' || word === '-') return { word, reason: REASON_VALUE };
      out.push({ word, kind: 'source', value: word });
      continue;
    }
    const body = word.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const refused = REFUSED.find(([re]) => re.test(name));
    if (refused) return { word, reason: refused[1] };
    if (FLAGS.has(body)) {
      out.push({ word, kind: 'flag' });
      continue;
    }
    // getopt's `=` belongs to long names; a one-letter option's value is the rest of the word (`-Lfoo`, `-lm`,
    // `-znow`), tried only when the word is no long option: never a long option's abbreviation.
    const long = name.length > 1 ? classify(name) : undefined;
    const short = long ? undefined : word.startsWith('--') ? undefined : classify(body.slice(0, 1));
    const kind = long ?? short;
    if (!kind) return { word, reason: REASON_UNKNOWN };
    const v = long ? value : body.length > 1 ? body.slice(1) : undefined;
    if (v === undefined) {
      // The value is the next word (`-rpath DIR`, `-z now`, `--version-script FILE`).
      pending = kind;
      pendingOption = word;
      pendingCheck = kind === 'value' ? VALUES[long ? name : body] : undefined;
      out.push({ word, kind: 'flag' });
      continue;
    }
    if (kind === 'value') {
      if (!VALUES[long ? name : body.slice(0, 1)]?.test(v)) return { word, reason: REASON_VALUE };
      out.push({ word, kind });
      continue;
    }
    // `-L=dir` means the sysroot's dir to ld: refused rather than checked as another path.
    if (v === '' || v.startsWith('=')) return { word, reason: REASON_VALUE };
    out.push({
      word,
      kind,
      value: v,
      option: long ? `${word.slice(0, word.length - v.length - 1)}` : word.slice(0, 2),
    });
  }
  if (pending) return { word: words.at(-1) ?? '', reason: 'is missing its value' };
  return out;
}

const REASON_UNKNOWN = "is not on the farm's list of known-safe linker options";
const REASON_VALUE = 'has a value this policy does not accept';

function classify(name: string): OptionKind | undefined {
  if (INPUTS.has(name)) return 'input-path';
  if (OUTPUTS.has(name)) return 'output-path';
  if (name in VALUES) return 'value';
  return undefined;
}
