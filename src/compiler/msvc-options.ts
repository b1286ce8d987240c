import type { Arg, OptionKind } from './options.ts';

/**
 * The MSVC driver's command line (cl.exe, and clang-cl, which accepts cl's options plus a set of GNU-style
 * ones), parsed into the same `Arg` model as gcc's (options.ts), so the cache key (msvc.ts) and the farm's
 * allowlist (msvc-allowed.ts) read one meaning of each argument.
 *
 * cl's rules, from Microsoft's option reference and clang's cl-compatible option table: an option starts with
 * `/` or `-` (the same option either way) and its name is case-sensitive (`/c` compiles, `/C` keeps comments);
 * a value is joined (`/Fofile`, `/std:c++17`, `/wd4996`) or, for some options, joined or the next argument
 * (`/I dir` and `/Idir`, `/D X` and `/DX`); `/link` hands every later argument to the linker; `--` ends the
 * options. An argument starting with `/` that names no option is a path where absolute paths start with `/`
 * (clang-cl on Linux) and an unknown option on Windows (cl.exe warns and ignores it): `slashPaths` says which.
 * Canonical names use `/`: `-c` and `/c` are the same key.
 */

type Form =
  /** No value; matches only exactly. */
  | 'flag'
  /** The value is the rest of the argument (may be empty: `/Zp`, `/Gs`). */
  | 'joined'
  /** The rest of the argument, or the next argument when nothing follows the name. */
  | 'joined-or-separate'
  /** The next argument only (clang-cl's GNU-style `-Xclang x`, `-mllvm x`). */
  | 'separate';

interface Spec {
  kind: OptionKind | 'source';
  form: Form;
}

const spec = (kind: OptionKind | 'source', form: Form): Spec => ({ kind, form });

/** Options with a value, by name without the leading `/` or `-`. Longest match wins. */
const WITH_VALUE = new Map<string, Spec>([
  // Include paths and forced includes: read files the compile depends on.
  ['I', spec('input-path', 'joined-or-separate')],
  ['FI', spec('input-path', 'joined-or-separate')],
  ['external:I', spec('input-path', 'joined-or-separate')],
  ['imsvc', spec('input-path', 'joined-or-separate')],
  ['AI', spec('input-path', 'joined-or-separate')],
  ['FU', spec('input-path', 'joined-or-separate')],
  ['winsysroot', spec('input-path', 'joined-or-separate')],
  ['vctoolsdir', spec('input-path', 'joined-or-separate')],
  ['winsdkdir', spec('input-path', 'joined-or-separate')],
  ['diasdkdir', spec('input-path', 'joined-or-separate')],
  ['headerUnit', spec('input-path', 'joined-or-separate')],
  ['reference', spec('input-path', 'joined-or-separate')],
  // Compiler pass replacement: `/B1 c1.dll` loads another front end (code), `/Bx` another preprocessor.
  ['B', spec('input-path', 'joined')],
  ['analyze:plugin', spec('input-path', 'joined')],
  // Sources with a language: `/Tc file` is C, `/Tp file` C++, whatever the extension.
  ['Tc', spec('source', 'joined-or-separate')],
  ['Tp', spec('source', 'joined-or-separate')],
  // Outputs. cl joins the path (`/Fofile`); its newer `/Fo:` form takes it joined or separate.
  ['Fo', spec('output-path', 'joined')],
  ['Fe', spec('output-path', 'joined')],
  ['Fd', spec('output-path', 'joined')],
  ['Fa', spec('output-path', 'joined')],
  ['Fi', spec('output-path', 'joined')],
  ['Fm', spec('output-path', 'joined')],
  ['Fp', spec('output-path', 'joined')],
  ['FR', spec('output-path', 'joined')],
  ['Fr', spec('output-path', 'joined')],
  ['Fx', spec('output-path', 'joined')],
  ['Fo:', spec('output-path', 'joined-or-separate')],
  ['Fe:', spec('output-path', 'joined-or-separate')],
  ['Fd:', spec('output-path', 'joined-or-separate')],
  ['Fa:', spec('output-path', 'joined-or-separate')],
  ['Fi:', spec('output-path', 'joined-or-separate')],
  ['Fm:', spec('output-path', 'joined-or-separate')],
  ['Fp:', spec('output-path', 'joined-or-separate')],
  ['o', spec('output-path', 'joined-or-separate')],
  ['sourceDependencies', spec('output-path', 'joined-or-separate')],
  ['ifcOutput', spec('output-path', 'joined-or-separate')],
  // Values that name no file.
  ['D', spec('value', 'joined-or-separate')],
  ['U', spec('value', 'joined-or-separate')],
  ['Yc', spec('value', 'joined')],
  ['Yu', spec('value', 'joined')],
  ['std:', spec('value', 'joined')],
  ['EH', spec('value', 'joined')],
  ['O', spec('value', 'joined')],
  ['arch:', spec('value', 'joined')],
  ['Zc:', spec('value', 'joined')],
  ['Zp', spec('value', 'joined')],
  ['Zm', spec('value', 'joined')],
  ['Gs', spec('value', 'joined')],
  ['wd', spec('value', 'joined')],
  ['we', spec('value', 'joined')],
  ['wo', spec('value', 'joined')],
  ['w1', spec('value', 'joined')],
  ['w2', spec('value', 'joined')],
  ['w3', spec('value', 'joined')],
  ['w4', spec('value', 'joined')],
  ['fp:', spec('value', 'joined')],
  ['guard:', spec('value', 'joined')],
  ['favor:', spec('value', 'joined')],
  ['vd', spec('value', 'joined')],
  ['volatile:', spec('value', 'joined')],
  ['constexpr:', spec('value', 'joined')],
  ['diagnostics:', spec('value', 'joined')],
  ['errorReport:', spec('value', 'joined')],
  ['source-charset:', spec('value', 'joined')],
  ['execution-charset:', spec('value', 'joined')],
  ['external:W', spec('value', 'joined')],
  ['external:env:', spec('value', 'joined')],
  ['tune:', spec('value', 'joined')],
  ['cgthreads', spec('value', 'joined')],
  ['vctoolsversion', spec('value', 'joined-or-separate')],
  ['winsdkversion', spec('value', 'joined-or-separate')],
  ['clang:', spec('value', 'joined')],
  ['d1', spec('value', 'joined')],
  ['d2', spec('value', 'joined')],
  ['analyze:', spec('value', 'joined')],
  ['experimental:', spec('value', 'joined')],
  ['Qspectre', spec('value', 'joined')],
  ['ZH:', spec('value', 'joined')],
  // Accepted and ignored by clang-cl, warned about and ignored or harmless in cl: known, so never a path.
  ['MP', spec('value', 'joined')],
  ['V', spec('value', 'joined')],
  ['Qvec-report:', spec('value', 'joined')],
  ['Qpar-report:', spec('value', 'joined')],
]);

/** clang-cl's GNU-style options that take the next argument (its other `-` options are flags here). */
const GNU_SEPARATE = new Map<string, Spec>([
  ['-Xclang', spec('value', 'separate')],
  ['-mllvm', spec('value', 'separate')],
  ['-target', spec('value', 'separate')],
]);

/**
 * Flags matched exactly, so that they win over a value option with the same start (`/Brepro` is not
 * `/B rep ro`, `/Gs` alone is a flag, `/W4` is a warning level). Names without the leading `/` or `-`.
 */
const FLAGS = new Set(
  `
  c nologo showIncludes showIncludes:user Zi ZI Z7 FS Zl Zs X J u MD MT MDd MTd LD LDd TC TP P E EP C FA
  FAc FAs FAcs FAu GR GR- Gy Gy- GS GS- Gw Gw- GF GF- Gm Gm- GL GL- GX GX- Gd Gr Gz Gv Gregcall GA GT Gh
  GH Ge Gs W0 W1 W2 W3 W4 Wall WX WX- w Wv permissive permissive- utf-8 validate-charset validate-charset-
  bigobj sdl sdl- Brepro Brepro- Bt Bt+ Bv openmp openmp- openmp:experimental openmp:llvm hotpatch vmb vmg
  vmm vms vmv Qvec Qvec- Qpar Qpar- QIntel-jcc-erratum Qimprecise_fwaits Qsafe_fp_loads Oi Oi- Os Ot Ox Oy
  Oy- Od Og O1 O2 Y- Zp showFilenames showFilenames- analyze analyze- doc kernel kernel- await
  await:strict fsanitize=address external:anglebrackets external:templates- FC H help ? link interface
  internalPartition exportHeader translateInclude scanDependencies JMC JMC- RTC1 RTCc RTCs RTCu RTCsu Zo
  Zo- ZW clr homeparams Zf Zg Ze Za Yd LN QIfist Qfast_transcendentals GZ
  `
    .trim()
    .split(/\s+/),
);

/** Value options, longest names first, so that `/external:I` is not `/e…` and `/Fo:` is not `/Fo` + `:x`. */
const BY_LENGTH = [...WITH_VALUE.entries()].sort((a, b) => b[0].length - a[0].length);

/** The spec an option body (without its `/` or `-`) matches, and the name it matched. */
function match(body: string): { name: string; spec: Spec } | undefined {
  if (FLAGS.has(body)) return { name: body, spec: spec('flag', 'flag') };
  for (const [name, s] of BY_LENGTH) if (body.startsWith(name)) return { name, spec: s };
  return undefined;
}

/**
 * Splits an MSVC command line (after `@file` expansion) into the shared model. Options keep their canonical
 * `/` name; `/Tc`/`/Tp` are sources whose `option` names the language; `/link` and everything after it are one
 * flag (the linker's, ignored with `/c`); GNU-style `-` options clang-cl accepts are flags with their raw text.
 */
export function parseMsvcArgs(args: readonly string[], options: { slashPaths?: boolean } = {}): Arg[] {
  const slashPaths = options.slashPaths ?? process.platform !== 'win32';
  const out: Arg[] = [];
  let optionsEnded = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (optionsEnded || arg === '-' || !(arg.startsWith('/') || arg.startsWith('-'))) {
      out.push({ option: '', kind: 'source', value: arg, raw: [arg] });
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      out.push({ option: '--', kind: 'flag', raw: [arg] });
      continue;
    }
    const gnu = GNU_SEPARATE.get(arg);
    if (gnu) {
      const value = args[i + 1];
      if (value !== undefined) i++;
      out.push({ option: arg, kind: gnu.kind, value, raw: value === undefined ? [arg] : [arg, value] });
      continue;
    }
    const m = match(arg.slice(1));
    if (!m) {
      // `/usr/src/a.c` is a path, as clang-cl reads it; `-fno-rtti`, `--target=…` are clang-cl's GNU extras.
      if (arg.startsWith('/') && slashPaths) out.push({ option: '', kind: 'source', value: arg, raw: [arg] });
      else out.push({ option: arg, kind: 'flag', raw: [arg] });
      continue;
    }
    const option = `/${m.name}`;
    if (m.name === 'link') {
      out.push({ option, kind: 'flag', value: args.slice(i + 1).join(' '), raw: args.slice(i) });
      break;
    }
    if (m.spec.form === 'flag') {
      out.push({ option, kind: 'flag', raw: [arg] });
      continue;
    }
    let value = arg.slice(1 + m.name.length);
    const raw = [arg];
    if (value === '' && m.spec.form === 'joined-or-separate' && i + 1 < args.length) {
      value = args[++i] as string;
      raw.push(value);
    }
    out.push({ option, kind: m.spec.kind, value, raw });
  }
  return out;
}
