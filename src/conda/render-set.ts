import { basename } from 'node:path';
import { isAccelError } from '../core/errors.ts';
import { renderWithCiSupport } from './ci-support.ts';
import { feedstockDirs, loadRecipe } from './recipe.ts';
import { renderRecipe } from './render.ts';
import type { RenderedRecipe, RenderOptions } from './render-variants.ts';

/** A feedstock that did not render, with the error a user reads. */
export interface RenderFailure {
  feedstock: string;
  dir: string;
  error: { code: string; message: string; hint?: string };
}

/**
 * Renders every feedstock under `roots` (feedstock directories, or directories of them, symlinks followed),
 * for `conda plan` and `conda build` alike. Without keepGoing the first render error is thrown; with it, each
 * failure is kept and the rest render.
 */
export function renderFeedstocks(
  roots: string[],
  options: RenderOptions,
  flags: { ciSupport: boolean; keepGoing: boolean },
): { recipes: RenderedRecipe[]; failed: RenderFailure[] } {
  const found = roots.flatMap(feedstockDirs);
  const recipes: RenderedRecipe[] = [];
  const failed: RenderFailure[] = [];
  for (const dir of found) {
    try {
      const recipe = loadRecipe(dir);
      recipes.push(flags.ciSupport ? renderWithCiSupport(recipe, options) : renderRecipe(recipe, options));
    } catch (err) {
      if (!flags.keepGoing || !isAccelError(err)) throw err;
      failed.push({
        feedstock: basename(dir).replace(/-feedstock$/, ''),
        dir,
        error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
      });
    }
  }
  return { recipes, failed };
}
