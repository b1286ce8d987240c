import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Recipe } from './recipe.ts';
import { renderRecipe } from './render.ts';
import type { RenderedRecipe, RenderOptions } from './render-variants.ts';

/**
 * A feedstock's `.ci_support/<platform>_*.yaml` files: the variant configs conda-smithy wrote, already merged
 * with conda-forge's global pinning, one per CI job (`linux_aarch64_python3.12.____cpython.yaml`). A feedstock
 * not yet built for a Linux target (the usual case when porting to aarch64) borrows its linux-64 files: the
 * pins are the same, and the target platform is ours, not the file's.
 */
function ciSupportFiles(recipe: Recipe, targetPlatform: string): string[] {
  const root = basename(recipe.dir) === 'recipe' ? dirname(recipe.dir) : recipe.dir;
  const dir = join(root, '.ci_support');
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir).sort();
  const withPrefix = (platform: string) =>
    names.filter((f) => f.startsWith(`${platform.replace('-', '_')}_`) && f.endsWith('.yaml')).map((f) => join(dir, f));
  const own = withPrefix(targetPlatform);
  return own.length > 0 || !targetPlatform.startsWith('linux-') ? own : withPrefix('linux-64');
}

/**
 * Renders a feedstock once per CI variant file of the target platform (each on top of the given variant
 * configs) and merges the results, as conda-forge's CI would build them; without such files, renders once.
 */
export function renderWithCiSupport(recipe: Recipe, options: RenderOptions): RenderedRecipe {
  const files = ciSupportFiles(recipe, options.targetPlatform);
  if (files.length === 0) return renderRecipe(recipe, options);
  const parts = files.map((f) => renderRecipe(recipe, { ...options, variantFiles: [...options.variantFiles, f] }));
  const seen = new Set<string>();
  const records = parts
    .flatMap((p) => p.records)
    .filter((r) => {
      const key = `${r.name}-${r.version}-${r.build_string}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  const merge = (pick: (p: RenderedRecipe) => string[]) => [...new Set(parts.flatMap(pick))].sort();
  return {
    feedstock: recipe.feedstock,
    metaFile: recipe.metaFile,
    records,
    buildRequires: merge((p) => p.buildRequires),
    machineRequires: merge((p) => p.machineRequires),
    warnings: [...new Set(parts.flatMap((p) => p.warnings))],
  };
}
