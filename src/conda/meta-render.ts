import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { fsError } from '../core/errors.ts';
import { isMachineTool, TOOLCHAIN_RUNTIME } from './build-tools.ts';
import { condaFunctions, type FunctionContext, type OutputPin } from './functions.ts';
import { Evaluator } from './jinja-eval.ts';
import { type Node, parseTemplate } from './jinja-parse.ts';
import { type Dict, isDict } from './jinja-values.ts';
import { type Platform, parsePlatform, platformNames } from './platform.ts';
import type { Recipe } from './recipe.ts';
import { usedVariables } from './recipe.ts';
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
import { applySelectors } from './selectors.ts';
import { renderV1 } from './v1/render.ts';
import { addVariantFile, emptyConfig, expandVariants, firstValues, type VariantConfig, yamlError } from './variants.ts';

export interface RenderOptions {
  targetPlatform: string;
  buildPlatform: string;
  /** conda_build_config.yaml files applied over the recipe's own, later ones winning (conda-build's `-m`). */
  variantFiles: string[];
  /** What `environ[...]` sees. */
  env: Record<string, string | undefined>;
}

/** A recipe rendered for every variant: its packages, and the requirements of the recipe's own build. */
export interface RenderedRecipe {
  feedstock: string;
  metaFile: string;
  records: OutputRecord[];
  /**
   * Package names needed to build anything in this recipe (top-level and per-output build and host), from
   * the channel: build tools, compilers and the toolchain's runtime are not among them.
   */
  buildRequires: string[];
  /** Build requirements the build machine provides: tools (make, cmake, …) and compilers. */
  machineRequires: string[];
  /** What the recipe asks for that accel accepts but does not do (a v1 recipe's dynamic_linking checks). */
  warnings: string[];
}

/**
 * Renders a recipe like conda-build: variant configs → used keys → per variant: selectors, Jinja, YAML,
 * records. Recipes that call pin_subpackage or use PKG_* render up to three times per variant, since those
 * need the outputs' versions and build strings, which only a render tells.
 */
export function renderRecipe(recipe: Recipe, options: RenderOptions): RenderedRecipe {
  if (recipe.format === 'v1') return renderV1(recipe, options);
  const target = parsePlatform(options.targetPlatform);
  const build = parsePlatform(options.buildPlatform);
  const config = loadConfig(recipe, options, target, build);
  const used = usedVariables(recipe, config.values.keys());
  used.delete('target_platform');
  const base = firstValues(config);
  const records: OutputRecord[] = [];
  const buildRequires = new Set<string>();
  const tools = new Set<string>();
  const dists = new Set<string>();
  const templates = new Map<string, Node[]>();
  const src: RecipeText = { file: recipe.metaFile, text: recipe.metaText };
  for (const variant of expandVariants(config, used)) {
    const all: Record<string, string> = { ...base, ...variant, target_platform: target.subdir };
    const names = platformNames(target, build, all);
    const selected = applySelectors(recipe.metaText, recipe.metaFile, names);
    let nodes = templates.get(selected);
    if (!nodes) {
      nodes = parseTemplate(selected, recipe.metaFile);
      templates.set(selected, nodes);
    }
    const ctx: FunctionContext = {
      file: recipe.metaFile,
      target,
      variant: all,
      outputs: undefined,
      usedPins: { value: false },
    };
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
      return { meta: parseMeta(rendered.text, recipe.metaFile, rendered.lines), lines: rendered.lines };
    };
    let { meta } = render();
    if (asBool(asDict(meta.build, src, 'build').skip)) continue;
    const usedValues = Object.fromEntries([...used].sort().map((k) => [k, all[k] as string]));
    let outputs = outputsOf(meta, recipe, target, usedValues);
    // pin_subpackage needs the outputs' versions and build strings, PKG_* the package's: both are known only
    // after a render, so such recipes render again, until the build strings stop changing (a build string
    // made from PKG_HASH changes once: placeholder, then the hash).
    if (ctx.usedPins.value || recipe.metaText.includes('PKG_')) {
      for (let pass = 0; pass < 2; pass++) {
        ctx.outputs = new Map<string, OutputPin>(
          outputs.map((o) => [o.name, { version: o.version, build: o.build_string }]),
        );
        const p = asDict(meta.package, src, 'package');
        pkg = {
          PKG_NAME: p.name ?? '',
          PKG_VERSION: p.version ?? '',
          PKG_BUILDNUM: String(asInt(asDict(meta.build, src, 'build').number, src, 'build/number')),
          PKG_HASH: variantHash({ ...usedValues, target_platform: target.subdir }).slice(1),
          PKG_BUILD_STRING: outputs[0]?.build_string ?? '',
        };
        ({ meta } = render());
        const next = outputsOf(meta, recipe, target, usedValues);
        const same =
          next.length === outputs.length && next.every((o, i) => o.build_string === outputs[i]?.build_string);
        outputs = next;
        if (same) break;
      }
    }
    for (const record of outputs.filter((o) => !skippedOutputs.has(o))) {
      for (const spec of record.requirements.build) addBuildSide(spec, buildRequires, tools);
      for (const spec of record.requirements.host) addHostSide(spec, buildRequires);
      // Variants that make the same package (a noarch: python recipe over three pythons) build it once, like
      // conda-build, which keeps the first.
      const dist = `${record.subdir}/${record.name}-${record.version}-${record.build_string}`;
      if (dists.has(dist)) continue;
      dists.add(dist);
      records.push(record);
    }
    const top = asDict(meta.requirements, src, 'requirements');
    for (const spec of asList(top.build, src, 'requirements/build')) addBuildSide(spec, buildRequires, tools);
    for (const spec of asList(top.host, src, 'requirements/host')) addHostSide(spec, buildRequires);
  }
  return {
    feedstock: recipe.feedstock,
    metaFile: recipe.metaFile,
    records,
    buildRequires: [...buildRequires].sort(),
    machineRequires: [...tools].sort(),
    warnings: [],
  };
}

/** conda-forge's compiler and stdlib packages are named `<compiler>_<subdir>` (`gcc_linux-aarch64`). */
export function isCompilerPackage(name: string): boolean {
  return /_(linux|osx|win)-[a-z0-9]+$/.test(name);
}

/** A build requirement: a package the set must provide, or a tool or compiler the build machine provides. */
export function addBuildSide(spec: string, packages: Set<string>, machine: Set<string>): void {
  const name = specName(spec);
  if (isMachineTool(name) || isCompilerPackage(name)) machine.add(name);
  else packages.add(name);
}

/** A host requirement: a package of the set, except the toolchain's runtime (libgcc, libstdcxx). */
export function addHostSide(spec: string, packages: Set<string>): void {
  const name = specName(spec);
  if (!TOOLCHAIN_RUNTIME.has(name)) packages.add(name);
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

export function loadConfig(recipe: Recipe, options: RenderOptions, target: Platform, build: Platform): VariantConfig {
  const config = emptyConfig();
  const names = platformNames(target, build, {});
  // The recipe's own file first, then the given ones, which win (conda-build's `-m`): a feedstock's
  // .ci_support/<variant>.yaml then selects exactly that variant.
  if (recipe.configFile && recipe.configText !== undefined) {
    addVariantFile(config, recipe.configFile, recipe.configText, names);
  }
  for (const file of options.variantFiles) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw fsError(err, 'reading variant config', file);
    }
    addVariantFile(config, file, text, names);
  }
  return config;
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

/** conda-build's hash: SHA-1 over the sorted JSON of the variant values a package depends on, 7 hex digits. */
export function variantHash(values: Record<string, string>): string {
  const sorted = Object.keys(values)
    .sort()
    .map((k) => `${JSON.stringify(k)}: ${JSON.stringify(values[k])}`);
  return `h${createHash('sha1')
    .update(`{${sorted.join(', ')}}`)
    .digest('hex')
    .slice(0, 7)}`;
}

export interface BuildStringInput {
  noarch: string | null;
  number: number;
  values: Record<string, string>;
  target: Platform;
  /** Whether the package itself builds against python (then `py311` leads its build string). */
  usesPython: boolean;
}

export function buildString({ noarch, number, values, target, usesPython }: BuildStringInput): string {
  if (noarch) return `${noarch === 'python' ? 'py' : ''}${variantHash({})}_${number}`;
  const py = usesPython && values.python ? `py${values.python.replace(/^(\d+)\.(\d+).*$/, '$1$2')}` : '';
  return `${py}${variantHash({ ...values, target_platform: target.subdir })}_${number}`;
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
  return specs.map((spec) => {
    const isTop = spec === meta;
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
      script: scriptOf(spec, isTop, recipe, meta),
    };
    // An output whose build/skip is true is not built (conda-build drops it, keeping the others); it stays
    // in the list until the render is done, since pin_subpackage may still name it.
    if (!isTop && asBool(b.skip)) skippedOutputs.add(record);
    return record;
  });
}

const skippedOutputs = new WeakSet<OutputRecord>();

/** An output's `files:`, a list of globs or `{include: [...], exclude: [...]}`. */
function filesOf(v: unknown, file: RecipeText): { files: string[]; files_exclude: string[] } {
  if (isDict(v)) {
    return { files: asList(v.include, file, 'files/include'), files_exclude: asList(v.exclude, file, 'files/exclude') };
  }
  return { files: asList(v, file, 'outputs/files'), files_exclude: [] };
}

/** A bare host requirement named like a variant key takes that key's value (`zlib` → `zlib 1.3`). */
function pinFromVariant(specs: string[], used: Record<string, string>): string[] {
  return specs.map((s) => (/\s/.test(s) || used[s] === undefined ? s : `${s} ${used[s]}`));
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
