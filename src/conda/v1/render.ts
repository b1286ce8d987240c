import type { FunctionContext } from '../functions.ts';
import { Evaluator } from '../jinja-eval.ts';
import { type Platform, platformNames } from '../platform.ts';
import type { Recipe } from '../recipe.ts';
import { recipeError } from '../recipe-error.ts';
import { type OutputRecord, type Source, specName } from '../record.ts';
import {
  buildString,
  pinFromVariant,
  type RenderedRecipe,
  type RenderOptions,
  renderVariants,
  renderWithPins,
  variantHash,
} from '../render-variants.ts';
import { condition, evaluate, scalarValue } from './evaluate.ts';
import { v1Functions } from './functions.ts';
import { Node } from './node.ts';
import { checkKeys } from './schema.ts';
import { scriptOf } from './script.ts';
import { readTests } from './tests.ts';
import { entry, parseTree, type YNode } from './tree.ts';

/** Paths whose scalars are bare expressions, evaluated by the renderer rather than templated. */
const BARE = new Set(['build/skip', 'outputs/build/skip', 'cache/build/skip']);

/** Keys an output inherits from the top level of a multi-output recipe (an output's own value wins, key by key). */
const INHERITED = ['build', 'requirements', 'about'];

/**
 * Renders a rattler-build recipe (`recipe.yaml`, the v1 format) into the same records a meta.yaml renders to,
 * so plan, build, test and publish treat both alike. Per variant: context in order, then the tree with its
 * `${{ … }}` expressions and `if:` items evaluated, then the records. Recipes that call pin_subpackage render
 * twice, since a pin needs the outputs' versions and build strings.
 */
export function renderV1(recipe: Recipe, options: RenderOptions): RenderedRecipe {
  const file = recipe.metaFile;
  const tree = parseTree(recipe.metaText, file);
  const warnings = checkKeys(tree, file);
  const schema = entry(tree, 'schema_version');
  if (schema && !(schema.value.kind === 'scalar' && schema.value.value === '1')) {
    throw recipeError('UNSUPPORTED', { file, line: schema.line }, 'schema_version: only version 1 is known');
  }
  return renderVariants({
    recipe,
    options,
    warnings,
    usedKeys: (used, config) => {
      // Requirements in flow lists (`host: [zlib, python]`) are bare words too, which the text scan cannot see.
      for (const word of bareWords(tree)) if (config.values.has(word)) used.add(word);
      // build/variant: keys that vary the build though the recipe does not name them, and keys that must not.
      for (const key of variantKeys(tree, 'use_keys')) used.add(key);
      for (const key of variantKeys(tree, 'ignore_keys')) used.delete(key);
    },
    render: ({ target, build, all, usedValues, ctx }) => {
      const pass = () => renderVariant({ recipe, tree, target, build, all, usedValues, ctx, env: options.env });
      let records = pass();
      if (records && ctx.usedPins.value) records = renderWithPins(ctx, records, 1, pass);
      if (!records) return null;
      return {
        records,
        build: records.flatMap((r) => r.top_level?.requirements.build ?? []),
        host: records.flatMap((r) => r.top_level?.requirements.host ?? []),
      };
    },
  });
}

/** The scalars of build/variant/<which> at the top level and in every output (conditions' branches too). */
function variantKeys(tree: YNode, which: 'use_keys' | 'ignore_keys'): string[] {
  const builds = [entry(tree, 'build')?.value];
  const outputs = entry(tree, 'outputs')?.value;
  if (outputs?.kind === 'seq') for (const o of outputs.items) builds.push(entry(o, 'build')?.value);
  const keys: string[] = [];
  for (const b of builds) {
    const list = entry(entry(b, 'variant')?.value, which)?.value;
    if (list) keys.push(...bareWords(list));
  }
  return keys;
}

/** Every scalar of the recipe that is a single word (`zlib`, `python`): the names a variant key may pin. */
function bareWords(node: YNode, out = new Set<string>()): Set<string> {
  if (node.kind === 'scalar') {
    if (/^[A-Za-z0-9_.-]+$/.test(node.value.trim())) out.add(node.value.trim());
  } else if (node.kind === 'seq') {
    for (const i of node.items) bareWords(i, out);
  } else {
    for (const e of node.entries) bareWords(e.value, out);
  }
  return out;
}

interface VariantInput {
  recipe: Recipe;
  tree: YNode;
  target: Platform;
  build: Platform;
  all: Record<string, string>;
  usedValues: Record<string, string>;
  ctx: FunctionContext;
  env: Record<string, string | undefined>;
}

/** One variant's records, or null when the recipe's build/skip is true for it. */
function renderVariant(input: VariantInput): OutputRecord[] | null {
  const { recipe, tree, target, build, all, usedValues, ctx } = input;
  const file = recipe.metaFile;
  const names = platformNames(target, build, all);
  const ev = new Evaluator(
    file,
    { ...names, ...v1Functions(ctx, input.env) },
    {
      undefinedHint: (name) => `define '${name.split('.')[0]}' under context:, or pass it in variants.yaml`,
    },
  );
  // rattler-build's names: the hash without its `h` (recipes write `h${{ hash }}`), and host_platform.
  ev.define('hash', variantHash({ ...usedValues, target_platform: target.subdir }).slice(1));
  ev.define('host_platform', target.subdir);
  const context = entry(tree, 'context')?.value;
  if (context && context.kind !== 'map') {
    throw recipeError('RECIPE', { file, line: context.line }, "'context' must be a mapping of names to values");
  }
  for (const e of context?.kind === 'map' ? context.entries : []) {
    if (e.value.kind !== 'scalar') {
      throw recipeError('RECIPE', { file, line: e.line }, `context/${e.key} must be a value`);
    }
    ev.define(e.key, contextValue(ev, e.value, file));
  }
  const rest: YNode = {
    kind: 'map',
    line: tree.line,
    entries: tree.kind === 'map' ? tree.entries.filter((e) => e.key !== 'context' && e.key !== 'extra') : [],
  };
  const doc = new Node(evaluate(ev, rest, file, '', BARE), file, '');
  if (skipped(ev, doc.get('build')?.get('skip'), file)) return null;
  const topSources = readSources(doc.get('source'));
  const outputs = doc.get('outputs');
  const render = { recipe, target, usedValues, ev };
  if (!outputs) {
    const pkg = doc.require('package');
    return [
      outputRecord(render, doc, {
        name: pkg.require('name').str(),
        version: pkg.require('version').str(),
        sources: topSources,
        topLevel: null,
        inherited: false,
      }),
    ];
  }
  if (doc.get('package')) {
    throw recipeError(
      'RECIPE',
      doc.get('package')?.pos() ?? doc.pos(),
      'a recipe with outputs names itself under recipe:, not package:',
    );
  }
  const top = doc.get('recipe');
  const version = top?.get('version')?.str() ?? '';
  const cache = doc.get('cache');
  const cacheReq = cache?.get('requirements');
  const topLevel: OutputRecord['top_level'] = cache
    ? {
        name: top?.get('name')?.str() ?? recipe.feedstock,
        requirements: { build: cacheReq?.get('build')?.strings() ?? [], host: cacheReq?.get('host')?.strings() ?? [] },
        script: (() => {
          const s = scriptOf(recipe, cache.get('build')?.get('script'), cache.pos());
          return s ? { file: s.file, text: s.text } : null;
        })(),
      }
    : null;
  const sources = [...topSources, ...readSources(cache?.get('source'))];
  const records: OutputRecord[] = [];
  for (const out of outputs.items()) {
    const merged = inherit(doc, out);
    if (skipped(ev, merged.get('build')?.get('skip'), file)) continue;
    const pkg = merged.require('package');
    records.push(
      outputRecord(render, merged, {
        name: pkg.require('name').str(),
        version: pkg.get('version')?.str() || version,
        sources: [...sources, ...readSources(out.get('source'))],
        topLevel,
        inherited: true,
      }),
    );
  }
  return records;
}

/** A context value: typed when it is one expression or a plain integer or boolean, else the rendered text. */
function contextValue(ev: Evaluator, node: Extract<YNode, { kind: 'scalar' }>, file: string): unknown {
  if (node.value.includes('${{')) return scalarValue(ev, node.value, file, node.line);
  if (node.plain && /^-?\d+$/.test(node.value)) return Number(node.value);
  if (node.plain && /^(true|false)$/i.test(node.value)) return node.value.toLowerCase() === 'true';
  return node.value;
}

function skipped(ev: Evaluator, node: Node | undefined, file: string): boolean {
  if (!node) return false;
  const list = node.raw.kind === 'seq' ? node.items() : [node];
  return list.some((n) => {
    const s = n.scalar();
    return condition(ev, s.value, file, s.line);
  });
}

/** An output with the top level's build, requirements and about merged under its own (its own keys win). */
function inherit(doc: Node, out: Node): Node {
  const entries = out.raw.kind === 'map' ? [...out.raw.entries] : [];
  for (const key of INHERITED) {
    const mine = entries.findIndex((e) => e.key === key);
    const theirs = doc.get(key)?.raw;
    if (theirs?.kind !== 'map') continue;
    const own = entries[mine];
    if (!own) {
      entries.push({ key, value: theirs, line: theirs.line });
    } else if (own.value.kind === 'map') {
      const keys = new Set(own.value.entries.map((e) => e.key));
      const value: YNode = {
        ...own.value,
        entries: [...own.value.entries, ...theirs.entries.filter((e) => !keys.has(e.key))],
      };
      entries[mine] = { ...own, value };
    }
  }
  return new Node({ ...out.raw, kind: 'map', entries } as YNode, out.file, 'outputs');
}

interface RenderInput {
  recipe: Recipe;
  target: Platform;
  usedValues: Record<string, string>;
  ev: Evaluator;
}

function outputRecord(
  input: RenderInput,
  spec: Node,
  o: { name: string; version: string; sources: Source[]; topLevel: OutputRecord['top_level']; inherited: boolean },
): OutputRecord {
  const { recipe, target, usedValues } = input;
  const b = spec.get('build');
  const req = spec.get('requirements');
  const list = (k: string) => req?.get(k)?.strings() ?? [];
  const number = b?.get('number')?.int() ?? 0;
  const noarch = b?.get('noarch')?.str() || null;
  const explicit = b?.get('string')?.str();
  const usesPython = [...list('build'), ...list('host')].some((s) => specName(s) === 'python');
  const files = b?.get('files');
  const own = b?.get('script');
  let script: OutputRecord['script'] = null;
  if (own) {
    const s = scriptOf(recipe, own, own.pos());
    script = s ? { ...s, shared: false } : null;
  } else if (o.topLevel) {
    // A cache output without a script of its own is made of the cache's files (all, or its `files:`).
    script = { file: null, text: '', shared: true };
  } else {
    const s = scriptOf(recipe, undefined, spec.pos());
    script = s ? { ...s, shared: false } : null;
  }
  if (!o.version) throw recipeError('RECIPE', spec.pos(), `package/version is missing for ${o.name}`);
  const runExports = req?.get('run_exports');
  const ignore = req?.get('ignore_run_exports');
  const about = spec.get('about');
  return {
    feedstock: recipe.feedstock,
    recipe_dir: recipe.dir,
    name: o.name,
    version: o.version,
    build_number: number,
    build_string: explicit || buildString({ noarch, number, values: usedValues, target, usesPython }),
    subdir: noarch ? 'noarch' : target.subdir,
    noarch,
    variant: usedValues,
    requirements: {
      build: list('build'),
      host: pinFromVariant(list('host'), usedValues),
      run: list('run'),
      run_constrained: list('run_constraints'),
    },
    run_exports: !runExports
      ? { weak: [], strong: [] }
      : runExports.raw.kind === 'map'
        ? { weak: runExports.get('weak')?.strings() ?? [], strong: runExports.get('strong')?.strings() ?? [] }
        : { weak: runExports.strings(), strong: [] },
    ignore_run_exports: {
      by_name: ignore?.get('by_name')?.strings() ?? [],
      from_package: (ignore?.get('from_package')?.strings() ?? []).map(specName),
    },
    test: readTests(spec.get('tests'), recipe, target),
    sources: o.sources,
    about: {
      home: about?.get('homepage')?.str() || null,
      license: about?.get('license')?.str() || null,
      summary: about?.get('summary')?.str() || null,
    },
    top_level: o.topLevel,
    entry_points: b?.get('python')?.get('entry_points')?.strings() ?? [],
    files: files ? (files.raw.kind === 'map' ? (files.get('include')?.strings() ?? []) : files.strings()) : [],
    files_exclude: files?.raw.kind === 'map' ? (files.get('exclude')?.strings() ?? []) : [],
    script,
  };
}

function readSources(node: Node | undefined): Source[] {
  if (!node) return [];
  const list = node.raw.kind === 'seq' ? node.items() : [node];
  return list.map((s) => {
    const str = (k: string) => s.get(k)?.str() || null;
    const url = s.get('url');
    return {
      url: url ? (url.raw.kind === 'seq' ? (url.strings()[0] ?? null) : url.str()) : null,
      sha256: str('sha256'),
      md5: str('md5'),
      sha1: null,
      patches: s.get('patches')?.strings() ?? [],
      folder: str('target_directory'),
      git_url: str('git'),
      git_rev: str('rev') ?? str('tag') ?? str('branch'),
      path: str('path'),
      file_name: str('file_name'),
    };
  });
}
