import { Callable, type Dict, pyStr } from './jinja-values.ts';
import type { Platform } from './platform.ts';
import { recipeError } from './recipe-error.ts';

/** What pin_subpackage needs to know about an output of the same recipe. */
export interface OutputPin {
  version: string;
  build: string;
}

export interface FunctionContext {
  file: string;
  target: Platform;
  variant: Record<string, string>;
  /** The recipe's outputs; undefined during the first pass, which only learns their names and versions. */
  outputs: Map<string, OutputPin> | undefined;
  /** Set when a pin_subpackage call needed `outputs`, so the caller knows a second pass matters. */
  usedPins: { value: boolean };
}

const DEFAULT_COMPILERS: Record<Platform['os'], Record<string, string>> = {
  linux: { c: 'gcc', cxx: 'gxx', fortran: 'gfortran', cuda: 'cuda-nvcc', rust: 'rust', go: 'go' },
  osx: { c: 'clang', cxx: 'clangxx', fortran: 'gfortran', rust: 'rust', go: 'go' },
  win: { c: 'vs2019', cxx: 'vs2019', fortran: 'flang', cuda: 'cuda-nvcc', rust: 'rust', go: 'go' },
};

const DEFAULT_STDLIB: Record<Platform['os'], string> = { linux: 'sysroot', osx: 'macosx_deployment_target', win: 'vs' };

/**
 * A pin expression like conda-build's: `>=1.2.13,<1.3.0a0` for version 1.2.13 and max_pin 'x.x'. The upper
 * bound increments the last pinned component and adds `.0a0`, so pre-releases of the next version stay out.
 */
export function pinRange(version: string, minPin: string | null, maxPin: string | null): string {
  const parts = version.split(/[._]/);
  const count = (pin: string) => Math.min(pin.split('.').length, parts.length);
  const bounds: string[] = [];
  if (minPin) bounds.push(`>=${parts.slice(0, count(minPin)).join('.')}`);
  if (maxPin) {
    const upper = parts.slice(0, count(maxPin));
    const last = upper.length - 1;
    const m = /^(\d+)/.exec(upper[last] ?? '');
    upper[last] = m ? String(Number(m[1]) + 1) : `${upper[last]}a`;
    bounds.push(`<${upper.join('.')}.0a0`);
  }
  return bounds.join(',');
}

function pinSpec(name: string, version: string, kw: Dict, defaults: { min: string; max: string }): string {
  const lower = kw.lower_bound;
  const upper = kw.upper_bound;
  const minPin = kw.min_pin === undefined ? defaults.min : kw.min_pin === null ? null : pyStr(kw.min_pin);
  const maxPin = kw.max_pin === undefined ? defaults.max : kw.max_pin === null ? null : pyStr(kw.max_pin);
  if (lower !== undefined && lower !== null && upper !== undefined && upper !== null) {
    return `${name} >=${pyStr(lower)},<${pyStr(upper)}`;
  }
  const range = pinRange(version, minPin, maxPin);
  return range ? `${name} ${range}` : name;
}

/** Reads a function's first argument, positional or by keyword, as a string; missing, an error names the function. */
export function firstArgument(
  file: string,
): (args: unknown[], kw: Dict, key: string, fn: string, line: number) => string {
  return (args, kw, key, fn, line) => {
    const v = args[0] ?? kw[key];
    if (v === undefined || v === null) {
      throw recipeError('JINJA_TYPE', { file, line }, `${fn}() needs its '${key}' argument`);
    }
    return pyStr(v);
  };
}

/** The version a variant pins a package to (`1.3 *` → `1.3`, `3.12.*` → `3.12`); undefined when it pins none. */
export function variantVersion(variant: Record<string, string>, name: string): string | undefined {
  return variant[name]?.split(/\s+/)[0]?.replace(/\.\*$/, '');
}

/**
 * pin_subpackage(name, …), the same in both recipe formats but for the bounds: the bare name during the first
 * pass, which only learns the outputs (and notes that a second pass matters), then `pin` of the named output.
 */
export function pinSubpackage(
  ctx: FunctionContext,
  key: string,
  pin: (name: string, out: OutputPin, call: { args: unknown[]; kw: Dict; line: number }) => string,
): Callable {
  const arg = firstArgument(ctx.file);
  return new Callable('pin_subpackage', (args, kw, line) => {
    const name = arg(args, kw, key, 'pin_subpackage', line);
    ctx.usedPins.value = true;
    if (!ctx.outputs) return name;
    const out = ctx.outputs.get(name);
    if (!out) {
      throw recipeError(
        'PIN',
        { file: ctx.file, line },
        `pin_subpackage('${name}'): this recipe has no output named '${name}'`,
        `outputs: ${[...ctx.outputs.keys()].join(', ')}`,
      );
    }
    return pin(name, out, { args, kw, line });
  });
}

/** The conda-build functions recipes call: compiler(), stdlib(), cdt(), pin_subpackage(), pin_compatible(). */
export function condaFunctions(ctx: FunctionContext): Dict {
  const { target, variant } = ctx;
  const unsupported = (name: string) =>
    new Callable(name, (_a, _k, line) => {
      throw recipeError(
        'UNSUPPORTED',
        { file: ctx.file, line },
        `${name}() is not supported`,
        'it reads project files at render time; write the values into the recipe instead',
      );
    });
  const arg = firstArgument(ctx.file);
  const versioned = (name: string, version: string | undefined) => (version ? `${name} ${version}` : name);
  return {
    compiler: new Callable('compiler', (args, kw, line) => {
      const lang = arg(args, kw, 'language', 'compiler', line);
      const name = variant[`${lang}_compiler`] ?? DEFAULT_COMPILERS[target.os][lang] ?? lang;
      return versioned(`${name}_${target.subdir}`, variant[`${lang}_compiler_version`]);
    }),
    stdlib: new Callable('stdlib', (args, kw, line) => {
      const lang = arg(args, kw, 'language', 'stdlib', line);
      const name = variant[`${lang}_stdlib`] ?? DEFAULT_STDLIB[target.os];
      return versioned(`${name}_${target.subdir}`, variant[`${lang}_stdlib_version`]);
    }),
    cdt: new Callable('cdt', (args, kw, line) => {
      const pkg = arg(args, kw, 'package_name', 'cdt', line);
      const cdtName = variant.cdt_name ?? 'cos7';
      const cdtArch = variant.cdt_arch ?? (target.arch === 'x86' ? 'i686' : target.arch);
      return `${pkg}-${cdtName}-${cdtArch}`;
    }),
    // conda-build's signature: pin_subpackage(subpackage_name, min_pin='x.x.x.x.x.x', max_pin='x', exact=False).
    pin_subpackage: pinSubpackage(ctx, 'subpackage_name', (name, out, { args, kw }) => {
      // A keyword wins over its position; None (null) is a value: no bound on that side.
      const at = (key: string, i: number) => (Object.hasOwn(kw, key) ? kw[key] : args[i]);
      if (at('exact', 3) === true) return `${name} ${out.version} ${out.build}`;
      const pins = { ...kw, min_pin: at('min_pin', 1), max_pin: at('max_pin', 2) };
      return pinSpec(name, out.version, pins, { min: 'x.x.x.x.x.x', max: 'x' });
    }),
    pin_compatible: new Callable('pin_compatible', (args, kw, line) => {
      const name = arg(args, kw, 'package_name', 'pin_compatible', line);
      // Without solving the host environment, the version pinned in the variant config is the best we know;
      // with none, the bare name (what conda-build prints before it has solved).
      const version = variantVersion(variant, name);
      if (kw.lower_bound != null && kw.upper_bound != null) return pinSpec(name, '', kw, { min: 'x', max: 'x' });
      if (!version) return name;
      if (kw.exact === true) return `${name} ${version}`;
      return pinSpec(name, version, kw, { min: 'x.x.x.x.x.x', max: 'x' });
    }),
    load_setup_py_data: unsupported('load_setup_py_data'),
    load_file_regex: unsupported('load_file_regex'),
    load_file_data: unsupported('load_file_data'),
    load_str_data: unsupported('load_str_data'),
  };
}
