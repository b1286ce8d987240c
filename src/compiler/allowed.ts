import { type Arg, subToolArgs } from './options.ts';

/**
 * What a compile farm may run for a stranger: an ALLOWLIST over the parsed arguments. An argument passes only
 * when it is known to neither load code, nor run a program, nor read or write a file other than the ones the
 * model names (inputs checked against the shipped tree, outputs mapped into the job). Anything else: an
 * unknown option, a spelling this list does not know, a new gcc release's option, makes the client compile
 * locally. gcc turns any unknown `--X` into `-fX` and accepts abbreviations of its long options, so long
 * options pass only by exact name.
 */
export function farmVerdict(arg: Arg): true | string {
  switch (arg.kind) {
    case 'source':
      return true;
    case 'input-path':
      if (INPUT_OPTIONS.has(arg.option)) return true;
      // The system's own program directory (Bazel's link flags name the compiler's: `-B/usr/bin`): programs
      // the worker already runs from PATH, in a read-only /usr.
      if (arg.option === '-B' && SYSTEM_PROGRAM_DIRS.has(arg.value ?? '')) return true;
      return CODE_PATHS.has(arg.option) ? REASON_CODE : 'names a path this policy does not check';
    case 'output-path':
      return OUTPUT_OPTIONS.has(arg.option) ? true : 'writes a file this policy does not map';
    case 'value':
      return valueVerdict(arg);
    case 'flag':
      return flagVerdict(arg.option);
  }
}

const REASON_CODE = 'changes where the compiler finds its programs, specs or configuration (can run any program)';
const REASON_UNKNOWN = "is not on the farm's list of known-safe options";

/** Inputs the sandbox can check against the shipped tree and the system prefixes. */
const INPUT_OPTIONS = new Set([
  '-I',
  '-isystem',
  '-iquote',
  '-idirafter',
  '-include',
  '-imacros',
  '-isysroot',
  '--sysroot',
  // Links only: library directories and linker scripts, read from the shipped tree or /usr like any input.
  '-L',
  '-T',
]);
const SYSTEM_PROGRAM_DIRS = new Set(['/usr/bin', '/usr/bin/']);
const OUTPUT_OPTIONS = new Set(['-o', '-MF']);
/** Paths from which the driver takes programs, specs or its whole configuration. */
const CODE_PATHS = new Set(['-B', '-specs', '--config', '-iplugindir']);

function valueVerdict(arg: Arg): true | string {
  const value = arg.value ?? '';
  switch (arg.option) {
    case '-D':
    case '-U':
    case '-MT':
    case '-MQ':
      return true;
    case '-x':
      return /^[a-z+-]+$/.test(value) ? true : `names an unknown language '${value}'`;
    case '--param':
      return /^[a-z0-9-]+=[0-9a-z-]+$/.test(value) ? true : REASON_UNKNOWN;
    case '-l':
      // Link-only: ignored by -c and -S. `-l:libfoo.so.1` names a file in the search path (Bazel's versioned
      // libraries).
      return /^:?[\w.+-]+$/.test(value) ? true : REASON_UNKNOWN;
    case '-Xpreprocessor':
    case '-Xassembler':
    case '-Xlinker':
      return subToolVerdict(arg);
    case '-Xclang':
    case '-mllvm':
      return "passes options to clang's internals that can load code";
    default:
      return REASON_UNKNOWN;
  }
}

/** Known-safe sub-tool options: defines for the preprocessor, a few assembler switches that touch no file. */
const SAFE_ASSEMBLER =
  /^(--noexecstack|--execstack|--gdwarf-[2-5]|--gdwarf|-g|--gen-debug|--compress-debug-sections(=(none|zlib|zlib-gnu|zlib-gabi|zstd))?|--nocompress-debug-sections|-mrelax-relocations=(yes|no)|-mbranches-within-32B-boundaries|--generate-missing-build-notes=(yes|no)|--fatal-warnings|--warn|--no-warn|-W)$/;

function subToolVerdict(arg: Arg): true | string {
  const sub = subToolArgs(arg);
  if (!sub) return REASON_UNKNOWN;
  if (sub.tool === 'preprocessor') {
    // -Wp,-DX and -Wp,-UX only: -Wp,-MD,FILE writes wherever it names, -Wp,-include... reads any file.
    const ok = sub.args.length === 1 && /^-[DU][A-Za-z_]/.test(sub.args[0] as string);
    return ok ? true : 'passes options to the preprocessor that this policy cannot check';
  }
  if (sub.tool === 'assembler') {
    return sub.args.every((a) => SAFE_ASSEMBLER.test(a))
      ? true
      : 'passes options to the assembler that this policy cannot check';
  }
  return 'passes options to the linker';
}

/** -f options that load code, write files of their own, or read a file the job was not given. */
const UNSAFE_F =
  /^-f(no-)?(plugin|pass-plugin|dump|opt-info|callgraph-info|stack-usage|profile|auto-profile|coverage|sanitize-(black|ignore|coverage-(allow|ignore))list|compare-debug|save-optimization-record|crash-diagnostics|embed-bitcode|modules|module-|prebuilt-module|rewrite-map-file|diagnostics-format=(json|sarif)-file|record-command-line|debug-prefix-map|file-prefix-map|macro-prefix-map|profile-prefix-map|ltrans|wpa|resolution|gen-reproducer|use-ld|ld-path|spec-|include-)/;

/** Flags without a value: known-safe shapes, each refusing paths in any value it carries. */
function flagVerdict(option: string): true | string {
  if (SAFE_FLAGS.has(option)) return true;
  // Prefix maps name client paths; mapArgs rewrites them into the sandbox.
  if (/^-f(debug|file|macro)-prefix-map=[^=]*=.*$/.test(option)) return true;
  if (/=native$/.test(option)) return 'depends on the machine it runs on (the worker is another machine)';
  if (option.startsWith('-W')) {
    if (/^-W[pal],/.test(option)) return subToolVerdict({ option, kind: 'flag', raw: [option] });
    return /^-W(no-)?[a-z0-9][a-z0-9+=,-]*$/.test(option) && !option.includes(',') ? true : REASON_UNKNOWN;
  }
  if (option.startsWith('-f')) {
    // Bazel's random_seed feature: `-frandom-seed=<output path>`, a string hashed into symbol names, no file.
    if (option.startsWith('-frandom-seed=')) return true;
    // A linker by name (found in the worker's /usr/bin), never by path.
    if (option.startsWith('-fuse-ld='))
      return LINKERS.has(option.slice(9)) ? true : 'names a linker by path (runs any program)';
    if (option === '-flto' || /^-flto=(auto|jobserver|\d+)$/.test(option)) return true;
    if (/^-f(pass-)?plugin/.test(option)) return 'loads a compiler plugin (runs its code)';
    if (UNSAFE_F.test(option)) return 'loads code or reads or writes files this policy does not map';
    return /^-f[a-z0-9][a-z0-9+_.,-]*(=[a-z0-9+_.,:-]*)?$/i.test(option) ? true : REASON_UNKNOWN;
  }
  if (/^-m[a-z0-9][a-z0-9+_.,=-]*$/i.test(option) && !/^-m(ulti|plugin|llvm)/.test(option)) return true;
  if (/^-O([0-3sgz]|fast)?$/.test(option)) return true;
  if (
    /^-g(gdb[0-3]?|dwarf(-[2-5])?|[0-3]|z(=[a-z]+)?|column-info|no-column-info|record-gcc-switches|no-record-gcc-switches|pubnames|gnu-pubnames|inline-points|statement-frontiers|strict-dwarf|no-strict-dwarf|btf|ctf|codeview|ddd)?$/.test(
      option,
    )
  )
    return true;
  if (/^-std=[a-z0-9+]+$/.test(option)) return true;
  if (/^-d[DMNIU]$/.test(option)) return true;
  if (option.startsWith('--')) return `${REASON_UNKNOWN} (long options pass only by their exact names)`;
  if (/^-(specs|wrapper|load|plugin|dumpdir|dumpbase|auxbase)/.test(option)) return REASON_CODE;
  if (option.startsWith('@')) return 'reads arguments from a file that is not part of the job';
  return REASON_UNKNOWN;
}

/** Flags that neither run a program nor name a file; link-only ones are ignored by -c and -S. */
const SAFE_FLAGS = new Set([
  '-c',
  '-S',
  '-E',
  '-w',
  '-v',
  '-H',
  '-P',
  '-C',
  '-CC',
  '-pipe',
  '-pthread',
  '-pedantic',
  '-pedantic-errors',
  '-ansi',
  '-undef',
  '-trigraphs',
  '-traditional-cpp',
  '-nostdinc',
  '-nostdinc++',
  '-fsyntax-only',
  '-M',
  '-MM',
  '-MD',
  '-MMD',
  '-MP',
  '-MG',
  '-static',
  '-shared',
  '-rdynamic',
  '-pie',
  '-no-pie',
  '-static-pie',
  '-static-libgcc',
  '-static-libstdc++',
  '-shared-libgcc',
  '-s',
  '-nostdlib',
  '-nodefaultlibs',
  '-nostartfiles',
  '-fPIC',
  '-fpic',
  '-fPIE',
  '-fpie',
  '-g',
  // gcc's docs: the driver returns the highest exit code of the programs it ran.
  '-pass-exit-codes',
  // gcc's docs: the driver does not resolve symlinks or `..` when computing prefixes relative to its own path.
  // It only changes how the driver finds its own installation (under the worker's read-only /usr), names no
  // path of the client's and loads nothing the driver would not.
  '-no-canonical-prefixes',
]);

/** Linkers `-fuse-ld=` may name: the driver runs `ld.<name>` from its program path. */
const LINKERS = new Set(['bfd', 'gold', 'lld', 'mold']);
