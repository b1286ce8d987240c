import { farmVerdict } from './allowed.ts';
import { type Arg, parseArgs } from './options.ts';

/**
 * What a compile farm may run for a stranger through an MSVC driver: the same ALLOWLIST stance as gcc's
 * (allowed.ts) over the arguments `parseMsvcArgs` made. An argument passes only when it is known to neither
 * load code, nor run a program, nor read or write a file other than the ones the model names: sources, the
 * include paths and forced includes (checked against the shipped tree), the object and the PDB name (mapped
 * into the job). Anything else — an unknown option, a pass replaced (`/B1`, `/B2`, `/Bx`), the compiler's
 * internals (`/d1`, `/d2`, `-Xclang`, `-mllvm`), an analysis plugin — makes the client compile locally.
 * clang-cl's GNU-style options are judged by the gcc policy, one argument at a time.
 */
export function msvcFarmVerdict(arg: Arg): true | string {
  switch (arg.kind) {
    case 'source':
      return true;
    case 'input-path':
      if (INPUT_OPTIONS.has(arg.option)) return true;
      if (arg.option === '/B' || arg.option === '/analyze:plugin') return REASON_CODE;
      return 'names a path this policy does not check';
    case 'output-path':
      return OUTPUT_OPTIONS.has(arg.option) ? true : 'writes a file this policy does not map';
    case 'value':
      return valueVerdict(arg);
    case 'flag':
      return flagVerdict(arg);
  }
}

const REASON_CODE = 'replaces a compiler pass or loads a plugin (runs its code)';
const REASON_UNKNOWN = "is not on the farm's list of known-safe options";
const REASON_INTERNALS = "passes options to the compiler's internals that can load code";

const INPUT_OPTIONS = new Set(['/I', '/FI', '/external:I', '/imsvc']);
/** The object, and the PDB's name: cl.exe writes a PDB only with /Zi, which the classifier keeps local. */
const OUTPUT_OPTIONS = new Set(['/Fo', '/Fd', '/o']);

/** Value shapes, each naming no file; anything else in the value is refused. */
const VALUES: Record<string, RegExp> = {
  '/std:': /^(c\+\+(14|17|20|23|latest)|c(11|17|latest))$/,
  '/EH': /^(s|a|c|r|sc|sc-|s-c|a-|r-|-)+$/,
  '/O': /^[12bdgistxy0-3-]+$/,
  '/arch:': /^[A-Za-z0-9_.]+$/,
  '/Zc:': /^[A-Za-z0-9_]+-?(:[A-Za-z0-9_]+)?$/,
  '/Zp': /^(1|2|4|8|16)$/,
  '/Zm': /^\d+$/,
  '/Gs': /^\d+$/,
  '/wd': /^\d+$/,
  '/we': /^\d+$/,
  '/wo': /^\d+$/,
  '/w1': /^\d+$/,
  '/w2': /^\d+$/,
  '/w3': /^\d+$/,
  '/w4': /^\d+$/,
  '/fp:': /^(precise|strict|fast|except-?|contract)$/,
  '/guard:': /^(cf|cf-|cf,nochecks|ehcont|ehcont-)$/,
  '/favor:': /^(blend|AMD64|INTEL64|ATOM)$/,
  '/vd': /^[0-2]$/,
  '/volatile:': /^(iso|ms)$/,
  '/constexpr:': /^(depth|backtrace|steps)\d+$/,
  '/diagnostics:': /^(caret|classic|column|emacs)$/,
  '/errorReport:': /^(none|prompt|queue|send)$/,
  '/source-charset:': /^[\w.-]+$/,
  '/execution-charset:': /^[\w.-]+$/,
  '/external:W': /^[0-4]$/,
  '/tune:': /^[\w.-]+$/,
  '/cgthreads': /^\d+$/,
  '/Qspectre': /^(-load|-load-cf|-jmp)?$/,
  '/ZH:': /^(MD5|SHA1|SHA_256)$/,
};

function valueVerdict(arg: Arg): true | string {
  const value = arg.value ?? '';
  switch (arg.option) {
    case '/D':
    case '/U':
      return true;
    case '-Xclang':
    case '-mllvm':
    case '/d1':
    case '/d2':
      return REASON_INTERNALS;
    case '-target':
      return /^[\w.-]+$/.test(value) ? true : REASON_UNKNOWN;
    case '/clang:':
      return clangVerdict(value);
    case '/external:env:':
      return 'adds include directories from an environment variable the farm does not ship';
    case '/experimental:':
      return 'experimental compiler modes (modules read and write files this policy does not map)';
  }
  const shape = VALUES[arg.option];
  if (!shape) return REASON_UNKNOWN;
  return shape.test(value) ? true : `has a value this policy does not know ('${value}')`;
}

/**
 * `/clang:X` hands X to the clang driver: judged by the gcc policy when X is a flag or value alone. A path
 * inside it would escape the farm's path mapping, so options naming paths stay local.
 */
function clangVerdict(value: string): true | string {
  const parsed = parseArgs([value]);
  const only = parsed[0];
  if (parsed.length !== 1 || !only) return REASON_UNKNOWN;
  if (only.kind === 'input-path' || only.kind === 'output-path' || only.kind === 'source')
    return 'names a path inside /clang:, which the farm does not map';
  if (/^-f(debug|file|macro)-prefix-map=/.test(value))
    return 'names a path inside /clang:, which the farm does not map';
  const verdict = farmVerdict(only);
  return verdict === true ? true : `/clang:${value} ${verdict.replace(/\u2019/g, "'")}`;
}

/** Known-safe cl flags: code generation, language, warnings, runtime library, debug information in the object. */
const SAFE_FLAGS = new Set(
  `
  /c /nologo /showIncludes /Z7 /Zi /FS /Zl /X /J /u /MD /MT /MDd /MTd /LD /LDd /TC /TP /GR /GR- /Gy /Gy- /GS
  /GS- /Gw /Gw- /GF /GF- /Gm- /GL /GL- /GX /GX- /Gd /Gr /Gz /Gv /Gregcall /GA /GT /Gs /W0 /W1 /W2 /W3 /W4
  /Wall /WX /WX- /w /Wv /permissive /permissive- /utf-8 /validate-charset /validate-charset- /bigobj /sdl
  /sdl- /Brepro /Brepro- /openmp /openmp- /fsanitize=address /hotpatch /vmb /vmg /vmm /vms /vmv /Qvec /Qvec- /Qpar- /QIntel-jcc-erratum
  /Qimprecise_fwaits /Qsafe_fp_loads /Oi /Oi- /Os /Ot /Ox /Oy /Oy- /Od /Og /O1 /O2 /Y- /Zp /showFilenames
  /showFilenames- /analyze- /kernel /kernel- /external:anglebrackets /external:templates- /FC /JMC- /RTC1
  /RTCc /RTCs /RTCu /RTCsu /Zo /Zo- /Ze /Za /Zf --
  `
    .trim()
    .split(/\s+/),
);

/** clang-cl's GNU-style link-only option: with /c it is unused, but only a linker name, never a path. */
const FUSE_LD = /^-fuse-ld=(lld|lld-link|link)$/;

function flagVerdict(arg: Arg): true | string {
  const option = arg.option;
  if (SAFE_FLAGS.has(option)) return true;
  if (option.startsWith('/')) return REASON_UNKNOWN;
  if (FUSE_LD.test(option)) return true;
  if (/^--target=[\w.-]+$/.test(option)) return true;
  // The mode this policy reads the arguments in (clang called as clang; mapArgs reads them so only then).
  if (option === '--driver-mode=cl') return true;
  if (/^-f(debug|file)-compilation-dir=/.test(option)) return true;
  // Everything else GNU-style: what the gcc policy says of the same argument (-m64, -fno-rtti, -Wno-x, …).
  const [gnu] = parseArgs([option]);
  if (gnu?.kind !== 'flag') return REASON_UNKNOWN;
  const verdict = farmVerdict(gnu);
  return verdict === true ? true : verdict.replace(/\u2019/g, "'");
}
