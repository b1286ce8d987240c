import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { recipeError } from '../recipe-error.ts';

/**
 * A v1 recipe (`recipe.yaml`) as YAML with the line of every node. Unlike meta.yaml, a v1 recipe is YAML before
 * any templating, so it is parsed once and its `${{ … }}` expressions and `if:` conditions are evaluated on the
 * tree afterwards, per variant; every error can still name the key's path and its line.
 */
export type YNode =
  | { kind: 'scalar'; value: string; line: number; plain: boolean }
  | { kind: 'seq'; items: YNode[]; line: number }
  | { kind: 'map'; entries: YEntry[]; line: number };

export interface YEntry {
  key: string;
  value: YNode;
  line: number;
}

export function parseTree(text: string, file: string): YNode {
  const lineCounter = new LineCounter();
  // Scalars stay strings (failsafe): `version: 1.10` is not 1.1; typed meanings come from the keys.
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined) => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  const first = doc.errors[0];
  if (first) {
    const message = (first.message.split('\n')[0] ?? first.message).replace(/ at line \d+, column \d+:?$/, '');
    throw recipeError(
      'YAML',
      { file, line: lineOf(first.pos[0]) },
      `invalid YAML: ${message}`,
      'check the indentation and quoting on that line (a value starting with ${{ needs no quotes, one starting with { or * does)',
    );
  }
  const walk = (node: unknown): YNode => {
    const n = node as Node | null;
    const line = lineOf(n?.range?.[0]);
    if (n === null || n === undefined) return { kind: 'scalar', value: '', line, plain: true };
    if (isAlias(n))
      throw recipeError('RECIPE', { file, line }, 'YAML aliases (*name) are not supported in recipe.yaml');
    if (isScalar(n)) {
      const value = n.value === null || n.value === undefined ? '' : String(n.value);
      return { kind: 'scalar', value, line, plain: n.type === 'PLAIN' };
    }
    if (isSeq(n)) return { kind: 'seq', items: n.items.map(walk), line };
    if (isMap(n)) {
      return {
        kind: 'map',
        line,
        entries: n.items.map((pair) => {
          const k = pair.key as Node | null;
          if (!isScalar(k)) throw recipeError('RECIPE', { file, line: lineOf(k?.range?.[0]) }, 'keys must be plain');
          return { key: String(k.value), value: walk(pair.value), line: lineOf(k.range?.[0]) };
        }),
      };
    }
    throw recipeError('RECIPE', { file, line }, 'unexpected YAML node');
  };
  const root = walk(doc.contents);
  if (root.kind !== 'map') {
    throw recipeError('RECIPE', { file, line: root.line }, 'recipe.yaml must be a mapping (package:, source:, …)');
  }
  return root;
}

/** The entry `key` of a mapping node, or undefined. */
export function entry(node: YNode | undefined, key: string): YEntry | undefined {
  return node?.kind === 'map' ? node.entries.find((e) => e.key === key) : undefined;
}
