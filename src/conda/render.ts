import { renderMeta } from './meta-render.ts';
import type { Recipe } from './recipe.ts';
import type { RenderedRecipe, RenderOptions } from './render-variants.ts';
import { renderV1 } from './v1/render.ts';

/** Renders a recipe for every variant by its format: meta.yaml like conda-build, recipe.yaml like rattler-build. */
export function renderRecipe(recipe: Recipe, options: RenderOptions): RenderedRecipe {
  return recipe.format === 'v1' ? renderV1(recipe, options) : renderMeta(recipe, options);
}
