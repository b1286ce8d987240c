import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fsError } from '../core/errors.ts';
import { isCompilerPackage, isMachineTool, TOOLCHAIN_RUNTIME } from './build-tools.ts';
import type { FunctionContext, OutputPin } from './functions.ts';
import { type Platform, parsePlatform, platformNames } from './platform.ts';
import { type Recipe, usedVariables } from './recipe.ts';
import { type OutputRecord, specName } from './record.ts';
import { addVariantFile, emptyConfig, expandVariants, firstValues, type VariantConfig } from './variants.ts';

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

/** One variant, as a recipe format's renderer sees it. */
interface Variant {
  target: Platform;
  build: Platform;
  /** Every variant value (the first one of each key the recipe does not use), target_platform among them. */
  all: Record<string, string>;
  /** The values of the keys the recipe uses, sorted by key: what its hash and build strings are made of. */
  usedValues: Record<string, string>;
  /** What compiler(), pin_subpackage() and friends read, fresh for this variant. */
  ctx: FunctionContext;
}

/** A variant's packages, and the requirements of the recipe's own build beyond theirs (a split recipe's top). */
interface VariantOutputs {
  records: OutputRecord[];
  build: string[];
  host: string[];
}

interface VariantLoop {
  recipe: Recipe;
  options: RenderOptions;
  /** Adds the keys the recipe varies on that a scan of its text does not see, drops those it says must not. */
  usedKeys?: (used: Set<string>, config: VariantConfig) => void;
  /** One variant's outputs, or null when the recipe skips that variant. */
  render: (variant: Variant) => VariantOutputs | null;
  warnings: string[];
}

/**
 * The loop both recipe formats share: variant configs → the keys the recipe uses → one render per combination
 * of their values → records, each package once, and what building them needs from the channel and the machine.
 */
export function renderVariants(loop: VariantLoop): RenderedRecipe {
  const { recipe, options } = loop;
  const target = parsePlatform(options.targetPlatform);
  const build = parsePlatform(options.buildPlatform);
  const config = loadVariantConfig(recipe, options, target, build);
  const used = usedVariables(recipe, config.values.keys());
  loop.usedKeys?.(used, config);
  used.delete('target_platform');
  const base = firstValues(config);
  const records: OutputRecord[] = [];
  const buildRequires = new Set<string>();
  const tools = new Set<string>();
  const dists = new Set<string>();
  for (const variant of expandVariants(config, used)) {
    const all: Record<string, string> = { ...base, ...variant, target_platform: target.subdir };
    const usedValues = Object.fromEntries([...used].sort().map((k) => [k, all[k] as string]));
    const ctx: FunctionContext = {
      file: recipe.metaFile,
      target,
      variant: all,
      outputs: undefined,
      usedPins: { value: false },
    };
    const outputs = loop.render({ target, build, all, usedValues, ctx });
    if (!outputs) continue;
    for (const record of outputs.records) {
      for (const spec of record.requirements.build) addBuildSide(spec, buildRequires, tools);
      for (const spec of record.requirements.host) addHostSide(spec, buildRequires);
      // Variants that make the same package (a noarch: python recipe over three pythons) build it once, like
      // conda-build, which keeps the first.
      const dist = `${record.subdir}/${record.name}-${record.version}-${record.build_string}`;
      if (dists.has(dist)) continue;
      dists.add(dist);
      records.push(record);
    }
    for (const spec of outputs.build) addBuildSide(spec, buildRequires, tools);
    for (const spec of outputs.host) addHostSide(spec, buildRequires);
  }
  return {
    feedstock: recipe.feedstock,
    metaFile: recipe.metaFile,
    records,
    buildRequires: [...buildRequires].sort(),
    machineRequires: [...tools].sort(),
    warnings: loop.warnings,
  };
}

/**
 * pin_subpackage needs the outputs' versions and build strings, which only a render tells: renders again with
 * the last render's outputs known, at most `passes` times, until the build strings stop changing (a build
 * string made from a hash changes once: placeholder, then the hash). `render` returns null when the recipe
 * turns out to skip the variant.
 */
export function renderWithPins<R extends OutputRecord[] | null>(
  ctx: FunctionContext,
  outputs: OutputRecord[],
  passes: number,
  render: (previous: OutputRecord[]) => R,
): OutputRecord[] | R {
  let current = outputs;
  for (let pass = 0; pass < passes; pass++) {
    ctx.outputs = new Map<string, OutputPin>(
      current.map((o) => [o.name, { version: o.version, build: o.build_string }]),
    );
    const next = render(current);
    if (next === null) return next;
    const same = next.length === current.length && next.every((o, i) => o.build_string === current[i]?.build_string);
    current = next;
    if (same) break;
  }
  return current;
}

/** A build requirement: a package the set must provide, or a tool or compiler the build machine provides. */
function addBuildSide(spec: string, packages: Set<string>, machine: Set<string>): void {
  const name = specName(spec);
  if (isMachineTool(name) || isCompilerPackage(name)) machine.add(name);
  else packages.add(name);
}

/** A host requirement: a package of the set, except the toolchain's runtime (libgcc, libstdcxx). */
function addHostSide(spec: string, packages: Set<string>): void {
  const name = specName(spec);
  if (!TOOLCHAIN_RUNTIME.has(name)) packages.add(name);
}

function loadVariantConfig(recipe: Recipe, options: RenderOptions, target: Platform, build: Platform): VariantConfig {
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

/** A bare host requirement named like a variant key takes that key's value (`zlib` → `zlib 1.3`). */
export function pinFromVariant(specs: string[], used: Record<string, string>): string[] {
  return specs.map((s) => (/\s/.test(s) || used[s] === undefined ? s : `${s} ${used[s]}`));
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

interface BuildStringInput {
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
