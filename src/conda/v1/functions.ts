import { versionMatches } from '../builder/match.ts';
import {
  condaFunctions,
  type FunctionContext,
  firstArgument,
  pinRange,
  pinSubpackage,
  variantVersion,
} from '../functions.ts';
import { Callable, type Dict, pyStr } from '../jinja-values.ts';
import { parsePlatform } from '../platform.ts';
import { recipeError } from '../recipe-error.ts';

/**
 * A v1 bound: a pin pattern of x's (`x.x`) taken from the version, a literal version, or None (no bound).
 * `lower` says which side, since the upper side of a pattern increments its last part.
 */
function bound(version: string, value: unknown, lower: boolean): string | null {
  if (value === null) return null;
  const text = pyStr(value);
  if (/^x(\.x)*$/.test(text)) {
    const range = pinRange(version, lower ? text : null, lower ? null : text);
    return range || null;
  }
  return `${lower ? '>=' : '<'}${text}`;
}

function pinned(name: string, version: string, kw: Dict, line: number, file: string): string {
  if (kw.exact === true) return `${name} ${version}`;
  for (const old of ['min_pin', 'max_pin']) {
    if (kw[old] !== undefined) {
      throw recipeError(
        'JINJA_TYPE',
        { file, line },
        `${old} is conda-build's argument; recipe.yaml says ${old === 'min_pin' ? 'lower_bound' : 'upper_bound'}`,
      );
    }
  }
  const lower = bound(version, kw.lower_bound === undefined ? 'x.x.x.x.x.x' : kw.lower_bound, true);
  const upper = bound(version, kw.upper_bound === undefined ? 'x' : kw.upper_bound, false);
  const range = [lower, upper].filter((b) => b !== null).join(',');
  return range ? `${name} ${range}` : name;
}

/**
 * The functions and names a v1 recipe's expressions see (rattler-build's): compiler() and stdlib() as in
 * conda-build, pin_subpackage/pin_compatible with lower_bound/upper_bound, match(), is_linux() and friends,
 * and `env.get`/`env.exists` over the environment accel runs in.
 */
export function v1Functions(ctx: FunctionContext, env: Record<string, string | undefined>): Dict {
  const base = condaFunctions(ctx);
  const name = firstArgument(ctx.file);
  const platformIs = (fn: string, test: (p: ReturnType<typeof parsePlatform>) => boolean) =>
    new Callable(fn, (args, _kw, line) => {
      const subdir = args[0] === undefined ? ctx.target.subdir : pyStr(args[0]);
      try {
        return test(parsePlatform(subdir));
      } catch {
        throw recipeError('JINJA_TYPE', { file: ctx.file, line }, `${fn}('${subdir}'): not a platform`);
      }
    });
  return {
    compiler: base.compiler,
    stdlib: base.stdlib,
    cdt: base.cdt,
    pin_subpackage: pinSubpackage(ctx, 'name', (pkg, out, { kw, line }) => {
      if (kw.exact === true) return `${pkg} ${out.version} ${out.build}`;
      return pinned(pkg, out.version, kw, line, ctx.file);
    }),
    pin_compatible: new Callable('pin_compatible', (args, kw, line) => {
      const pkg = name(args, kw, 'name', 'pin_compatible', line);
      // The host environment is not solved at render time: the variant's pin is the version we know.
      const version = variantVersion(ctx.variant, pkg);
      if (!version) return pkg;
      return pinned(pkg, version, kw, line, ctx.file);
    }),
    match: new Callable('match', (args, _kw, line) => {
      if (args.length !== 2) {
        throw recipeError('JINJA_TYPE', { file: ctx.file, line }, 'match() takes a variant value and a version spec');
      }
      const value = pyStr(args[0]).split(/\s+/)[0] ?? '';
      return versionMatches(value, pyStr(args[1]));
    }),
    is_unix: platformIs('is_unix', (p) => p.os !== 'win'),
    is_linux: platformIs('is_linux', (p) => p.os === 'linux'),
    is_osx: platformIs('is_osx', (p) => p.os === 'osx'),
    is_win: platformIs('is_win', (p) => p.os === 'win'),
    env: {
      get: new Callable('env.get', (args, kw, line) => {
        const key = name(args, kw, 'name', 'env.get', line);
        const v = env[key];
        if (v !== undefined) return v;
        const fallback = args[1] ?? kw.default;
        if (fallback === undefined) {
          throw recipeError(
            'UNDEFINED',
            { file: ctx.file, line },
            `env.get('${key}'): the environment has no ${key}`,
            `set ${key}, or give a default: env.get('${key}', default='…')`,
          );
        }
        return fallback;
      }),
      exists: new Callable(
        'env.exists',
        (args, kw, line) => env[name(args, kw, 'name', 'env.exists', line)] !== undefined,
      ),
    },
  };
}
