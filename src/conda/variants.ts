import { parse as parseYaml, YAMLParseError } from 'yaml';
import { Evaluator } from './jinja-eval.ts';
import { parseExpr } from './jinja-expr.ts';
import { type Dict, isDict, truthy } from './jinja-values.ts';
import { recipeError } from './recipe-error.ts';
import { applySelectors } from './selectors.ts';

/** A merged set of conda_build_config.yaml files: each key's candidate values, and which keys vary together. */
export interface VariantConfig {
  values: Map<string, string[]>;
  zipKeys: string[][];
  /** Which file each key's values came from, for errors. */
  origin: Map<string, string>;
}

/** Keys with a meaning of their own rather than candidate values. */
const SPECIAL = new Set(['zip_keys', 'pin_run_as_build', 'extend_keys', 'ignore_version', 'ignore_build_only_deps']);

export function emptyConfig(): VariantConfig {
  return { values: new Map(), zipKeys: [], origin: new Map() };
}

/**
 * Reads one conda_build_config.yaml (selectors applied for the target) into `into`; a later file replaces the
 * values of the keys it names. Scalars stay strings (`3.10` must not become 3.1).
 */
export function addVariantFile(into: VariantConfig, file: string, text: string, names: Dict): void {
  const selected = applySelectors(text, file, names);
  let doc: unknown;
  try {
    doc = parseYaml(selected, { schema: 'failsafe', logLevel: 'error' });
  } catch (err) {
    if (err instanceof YAMLParseError) throw yamlError(file, err);
    throw err;
  }
  if (doc === null || doc === undefined || doc === '') return;
  const core: unknown = parseYaml(selected, { logLevel: 'error' });
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw recipeError('VARIANT', { file, line: 1 }, 'a variant config must be a mapping of keys to lists of values');
  }
  for (const [key, value] of Object.entries(doc as Dict)) {
    if (key === 'zip_keys') {
      addZipKeys(into, file, value);
      continue;
    }
    if (SPECIAL.has(key)) continue;
    // Selectors may empty a key's list (`- gcc  # [linux]` on Windows): then this file does not set it. An
    // explicit `""` is a value (openblas' empty suffix variant), told apart from an empty item by the core
    // schema, which reads the one as '' and the other as null.
    const explicit = (core as Dict | null)?.[key];
    const all = conditionalItems(Array.isArray(value) ? value : [value], file, text, key, names);
    const list = all.filter(
      (v, i) => v !== null && (v !== '' || (Array.isArray(explicit) ? explicit[i] : explicit) === ''),
    );
    if (list.length === 0) continue;
    if (list.some((v) => typeof v !== 'string')) {
      throw recipeError('VARIANT', { file, line: lineOf(text, key) }, `'${key}' must be a value or a list of values`);
    }
    into.values.set(key, list as string[]);
    into.origin.set(key, file);
  }
}

/**
 * A variants.yaml (rattler-build's) chooses values with `- if: linux then: … else: …` items instead of selector
 * comments: such an item becomes the values of the branch taken.
 */
function conditionalItems(items: unknown[], file: string, text: string, key: string, names: Dict): unknown[] {
  if (!items.some((i) => isDict(i) && 'if' in i)) return items;
  const evaluator = new Evaluator(file, names, { unknownIsFalse: true });
  return items.flatMap((item) => {
    if (!isDict(item) || !('if' in item)) return [item];
    const line = lineOf(text, key);
    if (typeof item.if !== 'string' || item.then === undefined) {
      throw recipeError('VARIANT', { file, line }, `${key}: a condition needs 'if: <expression>' and 'then:'`);
    }
    const branch = truthy(evaluator.eval(parseExpr(item.if, file, line))) ? item.then : item.else;
    if (branch === undefined || branch === null) return [];
    return conditionalItems(Array.isArray(branch) ? branch : [branch], file, text, key, names);
  });
}

function addZipKeys(into: VariantConfig, file: string, value: unknown): void {
  // A flat list of keys is one group (conda-build accepts both shapes).
  const list = Array.isArray(value) && value.every((v) => typeof v === 'string') ? [value] : value;
  const groups = Array.isArray(list) && list.every(Array.isArray) ? (list as unknown[][]) : undefined;
  if (!groups || groups.some((g) => g.some((k) => typeof k !== 'string'))) {
    throw recipeError('VARIANT', { file, line: 1 }, 'zip_keys must be a list of lists of keys');
  }
  for (const group of groups as string[][]) {
    // Groups that share a key become one group: zipping is transitive.
    const overlapping = into.zipKeys.filter((g) => g.some((k) => group.includes(k)));
    const merged = [...new Set([...overlapping.flat(), ...group])];
    into.zipKeys = [...into.zipKeys.filter((g) => !overlapping.includes(g)), merged];
  }
}

/**
 * Every combination of the used keys' values, zipped keys moving together (conda-build's expansion restricted
 * to the variables the recipe uses, so an unused key never multiplies the builds).
 */
export function expandVariants(config: VariantConfig, used: Set<string>): Record<string, string>[] {
  const groups: string[][] = [];
  const seen = new Set<string>();
  for (const key of config.values.keys()) {
    if (!used.has(key) || seen.has(key)) continue;
    const zip = config.zipKeys.find((g) => g.includes(key));
    const group = zip ? zip.filter((k) => config.values.has(k)) : [key];
    for (const k of group) seen.add(k);
    const lengths = new Set(group.map((k) => (config.values.get(k) as string[]).length));
    if (lengths.size > 1) {
      const file = config.origin.get(key) ?? 'conda_build_config.yaml';
      throw recipeError(
        'VARIANT',
        { file, line: 1 },
        `zipped keys ${group.join(', ')} have different numbers of values (${group
          .map((k) => `${k}: ${(config.values.get(k) as string[]).length} in ${config.origin.get(k) ?? '?'}`)
          .join(', ')})`,
        'keys in one zip_keys group need the same number of values; a variant file that sets one key of a group must set all of them',
      );
    }
    groups.push(group);
  }
  let variants: Record<string, string>[] = [{}];
  for (const group of groups) {
    const count = (config.values.get(group[0] as string) as string[]).length;
    const next: Record<string, string>[] = [];
    for (const v of variants) {
      for (let i = 0; i < count; i++) {
        const add = Object.fromEntries(group.map((k) => [k, (config.values.get(k) as string[])[i] as string]));
        next.push({ ...v, ...add });
      }
    }
    variants = next;
  }
  return variants;
}

/** All keys at their first value: what a recipe sees for keys it does not vary over. */
export function firstValues(config: VariantConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of config.values) if (v[0] !== undefined) out[k] = v[0];
  return out;
}

export function yamlError(file: string, err: YAMLParseError, lineMap?: number[]) {
  const outLine = err.linePos?.[0]?.line ?? 1;
  const line = lineMap ? (lineMap[outLine - 1] ?? outLine) : outLine;
  const first = err.message.split('\n')[0] ?? err.message;
  return recipeError(
    'YAML',
    { file, line },
    `invalid YAML: ${first.replace(/ at line \d+, column \d+:?$/, '')}`,
    'check the indentation and quoting on that line (values starting with { or * need quotes)',
  );
}

function lineOf(text: string, key: string): number {
  const i = text.split('\n').findIndex((l) => l.startsWith(`${key}:`));
  return i < 0 ? 1 : i + 1;
}
