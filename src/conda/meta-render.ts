import { parse as parseYaml, YAMLParseError } from 'yaml';
import { condaFunctions } from './functions.ts';
import { Evaluator } from './jinja-eval.ts';
import { type Node, parseTemplate } from './jinja-parse.ts';
import { type Dict, isDict } from './jinja-values.ts';
import { type Platform, platformNames } from './platform.ts';
import type { Recipe } from './recipe.ts';
import { recipeError } from './recipe-error.ts';
import {
  asBool,
  asDict,
  asInt,
  asList,
  type OutputRecord,
  type RecipeText,
  readAbout,
  readRunExports,
  readSources,
  readTest,
  specName,
  where,
} from './record.ts';
import {
  buildString,
  pinFromVariant,
  type RenderedRecipe,
  type RenderOptions,
  renderVariants,
  renderWithPins,
  variantHash,
} from './render-variants.ts';
import { applySelectors } from './selectors.ts';
import { yamlError } from './variants.ts';

/**
 * Renders a meta.yaml like conda-build: per variant, selectors, Jinja, YAML, records. Recipes that call
 * pin_subpackage or use PKG_* render up to three times per variant, since those need the outputs' versions and
 * build strings, which only a render tells.
 */
export function renderMeta(recipe: Recipe, options: RenderOptions): RenderedRecipe {
  const templates = new Map<string, Node[]>();
  const src: RecipeText = { file: recipe.metaFile, text: recipe.metaText };
  return renderVariants({
    recipe,
    options,
    warnings: [],
    render: ({ target, build, all, usedValues, ctx }) => {
      const names = platformNames(target, build, all);
      const selected = applySelectors(recipe.metaText, recipe.metaFile, names);
      let nodes = templates.get(selected);
      if (!nodes) {
        nodes = parseTemplate(selected, recipe.metaFile);
        templates.set(selected, nodes);
      }
      // conda-build's placeholders for what only a first render can tell.
      let pkg: Dict = {
        PKG_NAME: '',
        PKG_VERSION: '',
        PKG_BUILDNUM: '',
        PKG_HASH: '1234567',
        PKG_BUILD_STRING: 'placeholder',
      };
      const render = () => {
        const globals: Dict = {
          ...names,
          ...buildVariables(recipe, target, all),
          ...pkg,
          ...condaFunctions(ctx),
          environ: { ...options.env },
          os: { environ: options.env },
        };
        const rendered = new Evaluator(recipe.metaFile, globals).render(nodes);
        return parseMeta(rendered.text, recipe.metaFile, rendered.lines);
      };
      let meta = render();
      if (asBool(asDict(meta.build, src, 'build').skip)) return null;
      let outputs = outputsOf(meta, recipe, target, usedValues);
      // PKG_* are the package's: like the outputs' pins, only a render tells them.
      if (ctx.usedPins.value || recipe.metaText.includes('PKG_')) {
        outputs = renderWithPins(ctx, outputs, 2, (previous) => {
          const p = asDict(meta.package, src, 'package');
          pkg = {
            PKG_NAME: p.name ?? '',
            PKG_VERSION: p.version ?? '',
            PKG_BUILDNUM: String(asInt(asDict(meta.build, src, 'build').number, src, 'build/number')),
            PKG_HASH: variantHash({ ...usedValues, target_platform: target.subdir }).slice(1),
            PKG_BUILD_STRING: previous[0]?.build_string ?? '',
          };
          meta = render();
          return outputsOf(meta, recipe, target, usedValues);
        });
      }
      const top = asDict(meta.requirements, src, 'requirements');
      return {
        records: outputs.filter((o) => !skippedOutputs.has(o)),
        build: asList(top.build, src, 'requirements/build'),
        host: asList(top.host, src, 'requirements/host'),
      };
    },
  });
}

/**
 * The variables conda-build puts into the Jinja context besides the variant. Paths that exist only during a
 * build render as shell variables (`{{ PYTHON }} -m pip install .` → `$PYTHON -m pip install .`), which the
 * build script expands to the same path conda-build would have written in.
 */
function buildVariables(recipe: Recipe, target: Platform, variant: Record<string, string>): Dict {
  const shell = (name: string) => (target.os === 'win' ? `%${name}%` : `$${name}`);
  const vars: Dict = {
    RECIPE_DIR: recipe.dir,
    SHLIB_EXT: target.os === 'win' ? '.dll' : target.os === 'osx' ? '.dylib' : '.so',
  };
  for (const name of ['PYTHON', 'PREFIX', 'BUILD_PREFIX', 'SRC_DIR', 'SP_DIR', 'PIP', 'CPU_COUNT']) {
    vars[name] = shell(name);
  }
  const py = variant.python && /^(\d+)\.(\d+)/.exec(variant.python);
  if (py) {
    vars.PY_VER = `${py[1]}.${py[2]}`;
    vars.CONDA_PY = `${py[1]}${py[2]}`;
  }
  const np = variant.numpy && /^(\d+)\.(\d+)/.exec(variant.numpy);
  if (np) {
    vars.NPY_VER = `${np[1]}.${np[2]}`;
    vars.CONDA_NPY = `${np[1]}${np[2]}`;
  }
  return vars;
}

function parseMeta(text: string, file: string, lines: number[]): Dict {
  let doc: unknown;
  try {
    // Numbers stay strings (conda-build's loader does the same: version 1.10 is not 1.1).
    doc = parseYaml(text, { schema: 'failsafe', logLevel: 'error' });
  } catch (err) {
    if (err instanceof YAMLParseError) throw yamlError(file, err, lines);
    throw err;
  }
  if (!isDict(doc))
    throw recipeError('RECIPE', { file, line: 1 }, 'meta.yaml must be a mapping (package:, source:, …)');
  return doc;
}

function outputsOf(meta: Dict, recipe: Recipe, target: Platform, used: Record<string, string>): OutputRecord[] {
  const file: RecipeText = { file: recipe.metaFile, text: recipe.metaText };
  const pkg = asDict(meta.package, file, 'package');
  const name = typeof pkg.name === 'string' ? pkg.name.trim() : '';
  const version = typeof pkg.version === 'string' ? pkg.version.trim() : '';
  if (!name) throw recipeError('RECIPE', where(file, 'package'), 'package/name is missing');
  const topBuild = asDict(meta.build, file, 'build');
  const topNumber = asInt(topBuild.number, file, 'build/number');
  const sources = readSources(meta.source, file);
  const outputs = meta.outputs === undefined || meta.outputs === null ? undefined : meta.outputs;
  const specs: Dict[] =
    outputs === undefined ? [meta] : Array.isArray(outputs) ? outputs.map((o) => asDict(o, file, 'outputs')) : [];
  if (outputs !== undefined && !Array.isArray(outputs)) {
    throw recipeError('RECIPE', where(file, 'outputs'), "'outputs' must be a list");
  }
  const topReq = asDict(meta.requirements, file, 'requirements');
  const topLevel =
    outputs === undefined
      ? null
      : {
          name,
          requirements: {
            build: asList(topReq.build, file, 'requirements/build'),
            host: pinFromVariant(asList(topReq.host, file, 'requirements/host'), used),
          },
          script: topScript(recipe, meta),
        };
  if (outputs !== undefined && needsImplicitOutput(meta, specs, name, file)) specs.push({ name });
  return specs.map((given) => {
    const isTop = given === meta;
    const spec = isTop ? given : inheritTopLevel(meta, given, name, file);
    const b = asDict(spec.build, file, 'build');
    const outName = isTop ? name : typeof spec.name === 'string' ? spec.name.trim() : '';
    if (!outName) throw recipeError('RECIPE', where(file, 'outputs'), 'an output has no name');
    const outVersion = (typeof spec.version === 'string' ? spec.version.trim() : '') || version;
    if (!outVersion) throw recipeError('RECIPE', where(file, 'package'), `package/version is missing for ${outName}`);
    const number = b.number === undefined ? topNumber : asInt(b.number, file, 'build/number');
    const noarch = typeof b.noarch === 'string' && b.noarch !== '' ? b.noarch.trim() : null;
    const req = Array.isArray(spec.requirements)
      ? { run: spec.requirements }
      : asDict(spec.requirements, file, 'requirements');
    const list = (k: string) => asList(req[k], file, `requirements/${k}`);
    const explicit = typeof b.string === 'string' && b.string !== '' ? b.string.trim() : undefined;
    const record: OutputRecord = {
      feedstock: recipe.feedstock,
      recipe_dir: recipe.dir,
      name: outName,
      version: outVersion,
      build_number: number,
      build_string:
        explicit ??
        buildString({
          noarch,
          number,
          values: used,
          target,
          usesPython: [...list('build'), ...list('host')].some((s) => specName(s) === 'python'),
        }),
      subdir: noarch ? 'noarch' : target.subdir,
      noarch,
      variant: used,
      requirements: {
        build: list('build'),
        host: pinFromVariant(list('host'), used),
        run: list('run'),
        run_constrained: list('run_constrained'),
      },
      run_exports: readRunExports(b.run_exports, file),
      ignore_run_exports: {
        by_name: asList(b.ignore_run_exports, file, 'build/ignore_run_exports'),
        from_package: asList(b.ignore_run_exports_from, file, 'build/ignore_run_exports_from').map(specName),
      },
      test: readTest(spec.test, file),
      sources,
      about: readAbout(spec.about ?? meta.about, file),
      top_level: topLevel,
      entry_points: asList(b.entry_points, file, 'build/entry_points'),
      ...filesOf(isTop ? undefined : spec.files, file),
      // The output's own script only: a top-level build/script merged in above stays the shared build's.
      script: scriptOf(given, isTop, recipe, meta),
    };
    // An output whose build/skip is true is not built (conda-build drops it, keeping the others); it stays
    // in the list until the render is done, since pin_subpackage may still name it.
    if (!isTop && asBool(b.skip)) skippedOutputs.add(record);
    return record;
  });
}

const skippedOutputs = new WeakSet<OutputRecord>();

/**
 * What an output takes from the recipe's top level, as conda-build's get_output_metadata does. An output
 * named like the package is the top-level package: each key of `requirements` (build, host, run,
 * run_constrained), `build` and `about` it does not set comes from the top level, so lz4-c's output, which
 * sets only build/run_exports, is built with the top-level compilers and takes their run_exports. Any other
 * output without a `build:` section of its own takes the top-level one but for what belongs to one package
 * (entry_points, run_exports, script, noarch); its requirements are its own alone.
 */
function inheritTopLevel(meta: Dict, spec: Dict, name: string, file: RecipeText): Dict {
  const outName = typeof spec.name === 'string' ? spec.name.trim() : '';
  if (outName === name) {
    const merged: Dict = { ...spec };
    const ownReq = Array.isArray(spec.requirements) ? { run: spec.requirements } : spec.requirements;
    for (const [section, own] of [
      ['requirements', ownReq],
      ['build', spec.build],
      ['about', spec.about],
    ] as const) {
      // A key the output names, even emptied by selectors, is the output's own (conda-build checks `in`).
      merged[section] = { ...asDict(meta[section], file, section), ...asDict(own, file, section) };
    }
    return merged;
  }
  if (spec.build !== undefined) return spec;
  const build = { ...asDict(meta.build, file, 'build') };
  for (const key of ['entry_points', 'run_exports', 'script', 'noarch']) delete build[key];
  return { ...spec, build };
}

/**
 * conda-build adds an output named like the package (a package of the top-level requirements and no files)
 * when the top-level requirements name an output, by its name in `run` or through pin_subpackage, and no
 * output is named like the package.
 */
function needsImplicitOutput(meta: Dict, specs: Dict[], name: string, file: RecipeText): boolean {
  const names = specs.map((s) => (typeof s.name === 'string' ? s.name.trim() : ''));
  if (names.includes(name)) return false;
  const top = asDict(meta.requirements, file, 'requirements');
  const run = asList(top.run, file, 'requirements/run').map(specName);
  if (run.some((r) => names.includes(r))) return true;
  return /\{\{\s*pin_subpackage\(.*\)\s*\}\}/.test(topRequirementsText(file.text));
}

/** The recipe's own `requirements:` section as written: from that line to the next top-level key. */
function topRequirementsText(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^requirements\s*:/.test(l));
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && /^[^\s#{]/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** An output's `files:`, a list of globs or `{include: [...], exclude: [...]}`. */
function filesOf(v: unknown, file: RecipeText): { files: string[]; files_exclude: string[] } {
  if (isDict(v)) {
    return { files: asList(v.include, file, 'files/include'), files_exclude: asList(v.exclude, file, 'files/exclude') };
  }
  return { files: asList(v, file, 'outputs/files'), files_exclude: [] };
}

/** The recipe's own build script in a split recipe: build/script, else build.sh; null when it has neither. */
function topScript(recipe: Recipe, meta: Dict): { file: string | null; text: string } | null {
  const file: RecipeText = { file: recipe.metaFile, text: recipe.metaText };
  const inline = asDict(meta.build, file, 'build').script;
  if (inline !== undefined && inline !== null) return { file: null, text: asList(inline, file, 'script').join('\n') };
  const sh = recipe.scripts.get('build.sh');
  return sh === undefined ? null : { file: 'build.sh', text: sh };
}

function scriptOf(spec: Dict, isTop: boolean, recipe: Recipe, meta: Dict): OutputRecord['script'] {
  const file: RecipeText = { file: recipe.metaFile, text: recipe.metaText };
  const inline = (v: unknown) => asList(v, file, 'script').join('\n');
  if (!isTop && typeof spec.script === 'string' && recipe.scripts.has(spec.script.trim())) {
    return { file: spec.script.trim(), text: recipe.scripts.get(spec.script.trim()) as string, shared: false };
  }
  if (!isTop && spec.script !== undefined && spec.script !== null) {
    return { file: null, text: inline(spec.script), shared: false };
  }
  const own = asDict(spec.build, file, 'build').script;
  if (!isTop && own !== undefined && own !== null) return { file: null, text: inline(own), shared: false };
  const top = asDict(meta.build, file, 'build').script;
  if (top !== undefined && top !== null) return { file: null, text: inline(top), shared: !isTop };
  if (recipe.scripts.has('build.sh')) {
    return { file: 'build.sh', text: recipe.scripts.get('build.sh') as string, shared: !isTop };
  }
  return null;
}
