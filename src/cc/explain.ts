import { createHash } from 'node:crypto';
import type { Compile } from '../compiler/args.ts';
import { parseMsvcArgs } from '../compiler/msvc-options.ts';
import { parseArgs } from '../compiler/options.ts';
import type { Digest } from '../store/digest.ts';
import { REF_NS } from '../store/namespaces.ts';
import type { Store } from '../store/store.ts';
import type { Ingredient } from './key.ts';
import { entryDifferences, type ManifestLookup, manifestEntries } from './manifest.ts';

/**
 * Misses explained (ccache's debug mode, kept small): each miss records, per source, the key it made and a
 * short hash of each of the key's ingredients. A later miss of the same source compares its own ingredients
 * with the nearest record and names what differs; a miss whose key was known names the header that changed.
 * Recording happens on the miss path only, after the compile: a hit reads and writes nothing more.
 */

const NS = REF_NS.ccExplain;
/** Keys remembered per source: the last few configurations it was compiled in. */
const MAX_RECORDS = 6;

interface ExplainRecord {
  key: Digest;
  /** `what` and a 16-hex-digit hash of its value, in key order. */
  ingredients: [string, string][];
}

function sourceId(compile: Compile): string {
  return createHash('sha256').update(`${compile.mode} ${compile.keySource}`).digest('hex');
}

/** The key's ingredients with its arguments one per option (`["-I","inc"]`), so a miss names the one that differs. */
function perOption(ingredients: readonly Ingredient[]): Ingredient[] {
  // The MSVC driver's arguments (its flavor ends the mode) are read with cl's rules: `/I inc` is one option.
  const mode = ingredients.find(([what]) => what === 'mode')?.[1] ?? '';
  const msvc = / (cl|clang-cl)$/.test(mode);
  const parse = (args: string[]) =>
    msvc ? parseMsvcArgs(args, { slashPaths: mode.endsWith('clang-cl') }) : parseArgs(args);
  return ingredients.flatMap(([what, value]): Ingredient[] =>
    what === 'arguments'
      ? parse(JSON.parse(value) as string[]).map((a): Ingredient => ['argument', JSON.stringify(a.raw)])
      : [[what, value]],
  );
}

function hashed(ingredients: readonly Ingredient[]): [string, string][] {
  return perOption(ingredients).map(([what, value]) => [
    what,
    createHash('sha256').update(`${what}\0${value}`).digest('hex').slice(0, 16),
  ]);
}

function records(store: Store, compile: Compile): ExplainRecord[] {
  return (store.refs.get(NS, sourceId(compile))?.meta as { records?: ExplainRecord[] } | undefined)?.records ?? [];
}

/** Remembers a miss's key and ingredients under its source (newest first). `result`: what the ref holds. */
export function recordMiss(
  store: Store,
  what: { compile: Compile; key: Digest; ingredients: readonly Ingredient[]; result: Digest },
): void {
  const old = records(store, what.compile).filter((r) => r.key !== what.key);
  const newest: ExplainRecord = { key: what.key, ingredients: hashed(what.ingredients) };
  store.refs.set(NS, sourceId(what.compile), what.result, { records: [newest, ...old].slice(0, MAX_RECORDS) });
}

export interface MissQuestion {
  compile: Compile;
  key: Digest;
  ingredients: readonly Ingredient[];
  lookup: ManifestLookup;
}

/** Why this compile finds no result, in words: one line, the reasons separated by "; ". */
export function explainMiss(store: Store, q: MissQuestion): string {
  const entries = manifestEntries(store, q.key);
  if (entries.length > 0) {
    const live = entries.filter((e) => store.has(e.result));
    if (live.length === 0) return 'the result for this key was removed from the store (size limit or gc)';
    let nearest: string[] | undefined;
    for (const entry of live) {
      const found = entryDifferences(entry, q.lookup, 3);
      if (found.length === 0) return 'a matching entry exists: this compile would hit';
      if (!nearest || found.length < nearest.length) nearest = found;
    }
    return `same key; the nearest entry differs: ${(nearest as string[]).join('; ')}`;
  }
  const known = records(store, q.compile);
  if (known.length === 0) return `no entry for this source (${q.compile.keySource}) in this cache`;
  const mine = hashed(q.ingredients);
  let best: string[] | undefined;
  for (const record of known) {
    const found = differences(mine, record.ingredients, perOption(q.ingredients));
    if (!best || found.length < best.length) best = found;
  }
  const reasons = best && best.length > 0 ? best : ['an ingredient of the key differs'];
  return `differs from the nearest entry: ${reasons.join('; ')}`;
}

/** The ingredients that differ, in words: singletons by name, lists (arguments, paths) by their elements. */
function differences(mine: [string, string][], theirs: [string, string][], values: readonly Ingredient[]): string[] {
  const found: string[] = [];
  const group = (list: [string, string][]) => {
    const by = new Map<string, string[]>();
    for (const [what, hash] of list) by.set(what, [...(by.get(what) ?? []), hash]);
    return by;
  };
  const a = group(mine);
  const b = group(theirs);
  const valueAt = new Map<string, string[]>();
  for (const [what, value] of values) valueAt.set(what, [...(valueAt.get(what) ?? []), value]);
  for (const what of new Set([...a.keys(), ...b.keys()])) {
    const here = a.get(what) ?? [];
    const there = b.get(what) ?? [];
    if (here.join() === there.join()) continue;
    const shown = valueAt.get(what) ?? [];
    if (what === 'argument' || what === 'debug path') {
      const left = [...there];
      const before = found.length;
      here.forEach((hash, i) => {
        const k = left.indexOf(hash);
        if (k >= 0) left.splice(k, 1);
        else
          found.push(
            `${what} ${JSON.stringify(shownValue(what, shown[i]))} is new (the nearest entry has no such one)`,
          );
      });
      if (left.length > 0) found.push(`${left.length} ${what}(s) of the nearest entry are not in this compile`);
      if (found.length === before) found.push(`the same ${what}s in another order`);
      continue;
    }
    found.push(describe(what, shown[0]));
  }
  return found;
}

/** An argument as a user would write it: an option and its value (`-I inc`), kept in the key as JSON. */
function shownValue(what: string, value: string | undefined): string {
  if (what !== 'argument' || value === undefined) return value ?? '';
  try {
    return (JSON.parse(value) as string[]).join(' ');
  } catch {
    return value;
  }
}

function describe(what: string, value: string | undefined): string {
  switch (what) {
    case 'compiler':
      return `the compiler differs (path, size or time: ${value})`;
    case 'compiler version':
      return `the compiler's version differs (${value})`;
    case 'source':
      return `the source path differs (${value})`;
    case 'source content':
      return `the source's content differs`;
    case 'cwd':
      return `the working directory differs, and debug info holds it (${value || 'no -g'}; see cc.baseDirs and -fdebug-prefix-map)`;
    default:
      return what.startsWith('env ')
        ? `environment variable ${what.slice(4)} differs (now ${JSON.stringify(value ?? '')})`
        : `${what} differs (${value})`;
  }
}
