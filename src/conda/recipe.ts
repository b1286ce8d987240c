import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AccelError } from '../core/errors.ts';

/**
 * A recipe on disk: conda-build's meta.yaml or rattler-build's recipe.yaml (the v1 format), its own variant
 * config (conda_build_config.yaml, or variants.yaml beside a v1 recipe) and its build scripts.
 */
export interface Recipe {
  /** The feedstock's name (`zlib` for `zlib-feedstock/`). */
  feedstock: string;
  format: 'meta.yaml' | 'v1';
  dir: string;
  /** meta.yaml or recipe.yaml. */
  metaFile: string;
  metaText: string;
  configFile: string | undefined;
  configText: string | undefined;
  /** Build scripts beside meta.yaml by file name (build.sh, build_lib.sh, …). */
  scripts: Map<string, string>;
}

/**
 * Finds the recipe of a feedstock (`<dir>/recipe/meta.yaml` or `recipe.yaml`) or of a recipe directory; a
 * directory holding both (a feedstock midway through its move to v1) is read as meta.yaml, which it still builds
 * with on conda-forge until the old file is removed.
 */
function findRecipe(dir: string): { dir: string; file: string; format: Recipe['format'] } | undefined {
  for (const candidate of [join(dir, 'recipe'), dir]) {
    if (existsSync(join(candidate, 'meta.yaml'))) {
      return { dir: candidate, file: join(candidate, 'meta.yaml'), format: 'meta.yaml' };
    }
    if (existsSync(join(candidate, 'recipe.yaml'))) {
      return { dir: candidate, file: join(candidate, 'recipe.yaml'), format: 'v1' };
    }
  }
  return undefined;
}

export function loadRecipe(dir: string): Recipe {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no such directory: ${dir}`);
  }
  const found = findRecipe(root);
  if (!found) {
    throw new AccelError(
      'ACCEL_CONDA_NO_RECIPE',
      `no recipe in ${dir}: none of recipe/meta.yaml, recipe/recipe.yaml, meta.yaml, recipe.yaml exists`,
      {
        hint: 'point at a feedstock (with recipe/meta.yaml or recipe/recipe.yaml) or a recipe directory',
      },
    );
  }
  const recipeDir = found.dir;
  const metaFile = found.file;
  // A v1 recipe's variants are in variants.yaml; conda_build_config.yaml is read too, as rattler-build does.
  const configFile = [
    ...(found.format === 'v1' ? [join(recipeDir, 'variants.yaml')] : []),
    join(recipeDir, 'conda_build_config.yaml'),
  ].find((f) => existsSync(f));
  const hasConfig = configFile !== undefined;
  const scripts = new Map<string, string>();
  for (const name of readdirSync(recipeDir)) {
    if (/\.(sh|bat)$/.test(name)) scripts.set(name, readFileSync(join(recipeDir, name), 'utf8'));
  }
  // A recipe directory passed directly (`zlib-feedstock/recipe`) is named after its feedstock.
  const base = basename(root) === 'recipe' ? basename(resolve(root, '..')) : basename(root);
  return {
    feedstock: base.replace(/-feedstock$/, ''),
    format: found.format,
    dir: recipeDir,
    metaFile,
    metaText: readFileSync(metaFile, 'utf8'),
    configFile: hasConfig ? configFile : undefined,
    configText: hasConfig ? readFileSync(configFile, 'utf8') : undefined,
    scripts,
  };
}

/** Feedstocks under `dir`: itself when it holds a recipe, else each subdirectory that does (sorted). */
export function feedstockDirs(dir: string): string[] {
  const root = resolve(dir);
  if (findRecipe(root)) return [root];
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no such directory: ${dir}`);
  }
  // A directory of symlinks to feedstock checkouts (how a port's working set is often put together) counts.
  const subdirs = readdirSync(root)
    .map((name) => join(root, name))
    .filter((d) => isDirectory(d))
    .sort();
  const found = subdirs.filter((d) => findRecipe(d));
  if (found.length === 0) {
    throw new AccelError('ACCEL_CONDA_NO_RECIPE', `no feedstock or recipe in ${dir}`, {
      hint: 'pass feedstock directories (each with recipe/meta.yaml or recipe/recipe.yaml), or a directory that holds them',
    });
  }
  return found;
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
  // A v1 recipe's conditions are bare expressions: `- if: linux and cuda_compiler_version != "None"`.
  for (const m of text.matchAll(/^\s*(?:-\s+)?(?:if|skip):\s*(.+)$/gm)) {
    for (const w of (m[1] as string).replace(/(['"])(?:(?!\1).)*\1/g, ' ').match(IDENT) ?? []) words.add(w);
  }
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
