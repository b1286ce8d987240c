import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AccelError } from '../core/errors.ts';

/** A conda-build recipe on disk: meta.yaml, its own conda_build_config.yaml and its build scripts. */
export interface Recipe {
  /** The feedstock's name (`zlib` for `zlib-feedstock/`). */
  feedstock: string;
  dir: string;
  metaFile: string;
  metaText: string;
  configFile: string | undefined;
  configText: string | undefined;
  /** Build scripts beside meta.yaml by file name (build.sh, build_lib.sh, …). */
  scripts: Map<string, string>;
}

/** Finds the recipe of a feedstock (`<dir>/recipe/meta.yaml`) or of a recipe directory (`<dir>/meta.yaml`). */
export function findRecipeDir(dir: string): string | undefined {
  for (const candidate of [join(dir, 'recipe'), dir]) {
    if (existsSync(join(candidate, 'meta.yaml'))) return candidate;
  }
  return undefined;
}

/** A recipe in rattler-build's format (`recipe.yaml`), which accel does not read. */
function findV1Recipe(dir: string): string | undefined {
  return [join(dir, 'recipe', 'recipe.yaml'), join(dir, 'recipe.yaml')].find((f) => existsSync(f));
}

export function loadRecipe(dir: string): Recipe {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no such directory: ${dir}`);
  }
  const recipeDir = findRecipeDir(root);
  const v1 = recipeDir ? undefined : findV1Recipe(root);
  if (v1) {
    throw new AccelError(
      'ACCEL_CONDA_UNSUPPORTED',
      `${v1}:1: recipe.yaml (rattler-build's format) is not supported; accel reads conda-build's meta.yaml`,
      { hint: 'render this feedstock with rattler-build, or use a version of it that still has meta.yaml' },
    );
  }
  if (!recipeDir) {
    throw new AccelError(
      'ACCEL_CONDA_NO_RECIPE',
      `no recipe in ${dir}: neither recipe/meta.yaml nor meta.yaml exists`,
      {
        hint: 'point at a feedstock (with recipe/meta.yaml) or a recipe directory (with meta.yaml)',
      },
    );
  }
  const metaFile = join(recipeDir, 'meta.yaml');
  const configFile = join(recipeDir, 'conda_build_config.yaml');
  const hasConfig = existsSync(configFile);
  const scripts = new Map<string, string>();
  for (const name of readdirSync(recipeDir)) {
    if (/\.(sh|bat)$/.test(name)) scripts.set(name, readFileSync(join(recipeDir, name), 'utf8'));
  }
  // A recipe directory passed directly (`zlib-feedstock/recipe`) is named after its feedstock.
  const base = basename(root) === 'recipe' ? basename(resolve(root, '..')) : basename(root);
  return {
    feedstock: base.replace(/-feedstock$/, ''),
    dir: recipeDir,
    metaFile,
    metaText: readFileSync(metaFile, 'utf8'),
    configFile: hasConfig ? configFile : undefined,
    configText: hasConfig ? readFileSync(configFile, 'utf8') : undefined,
    scripts,
  };
}

/**
 * Feedstocks under `dir`: itself when it holds a recipe, else each subdirectory that does (sorted).
 * Feedstocks whose recipe is a rattler-build `recipe.yaml` are listed apart, so that a plan can say which
 * feedstocks it could not read instead of silently treating their packages as external.
 */
export function feedstockDirs(dir: string): { feedstocks: string[]; unsupported: string[] } {
  const root = resolve(dir);
  if (findRecipeDir(root)) return { feedstocks: [root], unsupported: [] };
  if (findV1Recipe(root)) return { feedstocks: [], unsupported: [root] };
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no such directory: ${dir}`);
  }
  // A directory of symlinks to feedstock checkouts (how a port's working set is often put together) counts.
  const subdirs = readdirSync(root)
    .map((name) => join(root, name))
    .filter((d) => isDirectory(d))
    .sort();
  const found = subdirs.filter((d) => findRecipeDir(d));
  const unsupported = subdirs.filter((d) => !findRecipeDir(d) && findV1Recipe(d));
  if (found.length === 0 && unsupported.length === 0) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no feedstock or recipe in ${dir}`, {
      hint: 'pass feedstock directories (each with recipe/meta.yaml), or a directory that holds them',
    });
  }
  return { feedstocks: found, unsupported };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // a dangling symlink
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/g;

/**
 * The variant keys a recipe uses (conda-build's rule, narrowed): names in Jinja expressions and selectors,
 * bare requirement names (`- zlib` is pinned by a `zlib:` key), `$key` in build scripts, and the keys behind
 * compiler()/stdlib(). Only these multiply the variants and go into the build string hash.
 */
export function usedVariables(recipe: Recipe, keys: Iterable<string>): Set<string> {
  const words = new Set<string>();
  const text = recipe.metaText;
  for (const m of text.matchAll(/\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}|#\s*\[([^[\]]+)\]\s*$/gm)) {
    for (const w of (m[1] ?? m[2] ?? m[3] ?? '').replace(/(['"])(?:(?!\1).)*\1/g, ' ').match(IDENT) ?? []) {
      words.add(w);
    }
  }
  for (const m of text.matchAll(/^\s*-\s+([A-Za-z0-9_.-]+)\s*(?:#.*)?$/gm)) words.add(m[1] as string);
  for (const m of text.matchAll(/(compiler|stdlib)\(\s*['"](\w+)['"]/g)) {
    const lang = m[2] as string;
    if (m[1] === 'compiler') words.add(`${lang}_compiler`).add(`${lang}_compiler_version`);
    else words.add(`${lang}_stdlib`).add(`${lang}_stdlib_version`);
  }
  if (['py', 'PY_VER', 'CONDA_PY'].some((w) => words.has(w))) words.add('python');
  if (['np', 'NPY_VER', 'CONDA_NPY'].some((w) => words.has(w))) words.add('numpy');
  for (const script of recipe.scripts.values()) {
    for (const m of script.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) words.add(m[1] as string);
  }
  const used = new Set<string>();
  for (const k of keys) if (words.has(k)) used.add(k);
  return used;
}
