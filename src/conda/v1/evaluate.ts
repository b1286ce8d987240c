import type { Evaluator } from '../jinja-eval.ts';
import { parseExpr } from '../jinja-expr.ts';
import { pyStr, truthy } from '../jinja-values.ts';
import { recipeError } from '../recipe-error.ts';
import type { YEntry, YNode } from './tree.ts';

/** `${{ expr }}`; an expression holding `}}` inside a string literal is not one recipes write. */
const TEMPLATE = /\$\{\{([\s\S]*?)\}\}/g;

/** A value the way minijinja prints it into YAML: booleans lower case, None empty. */
function text(v: unknown): string {
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (v === null || v === undefined) return '';
  return pyStr(v);
}

/** Renders the `${{ … }}` parts of one scalar; everything else (shell's `${VAR}`, `{#`) is left as it is. */
function renderScalar(ev: Evaluator, value: string, file: string, line: number): string {
  if (!value.includes('${{')) return value;
  return value.replace(TEMPLATE, (_m, body: string) => text(ev.value(parseExpr(body, file, line), line)));
}

/** The value of a scalar that is wholly one `${{ expr }}`, typed (a context entry may be a number or a list). */
export function scalarValue(ev: Evaluator, value: string, file: string, line: number): unknown {
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(value);
  if (whole && !(whole[1] as string).includes('}}')) return ev.value(parseExpr(whole[1] as string, file, line), line);
  return renderScalar(ev, value, file, line);
}

/** A bare condition (`if: win`, `skip: match(python, "<3.9")`), or a templated one. */
export function condition(ev: Evaluator, value: string, file: string, line: number): boolean {
  if (value.includes('${{')) return truthy(scalarValue(ev, value, file, line));
  const v = ev.value(parseExpr(value, file, line), line);
  return truthy(v);
}

/**
 * Evaluates a recipe subtree for one variant: every scalar rendered, every `- if: … then: … else: …` item of
 * a list replaced by the items of the branch taken (nested conditions too). `expressions` names the paths whose
 * scalars are bare expressions (build/skip), which stay as written for the caller to evaluate.
 */
export function evaluate(ev: Evaluator, node: YNode, file: string, path: string, bare: Set<string>): YNode {
  switch (node.kind) {
    case 'scalar':
      if (bare.has(path)) return node;
      return { ...node, value: renderScalar(ev, node.value, file, node.line) };
    case 'map':
      return {
        ...node,
        entries: node.entries.map(
          (e): YEntry => ({ ...e, value: evaluate(ev, e.value, file, join(path, e.key), bare) }),
        ),
      };
    case 'seq': {
      const items: YNode[] = [];
      for (const item of node.items) {
        const branch = conditional(item, file);
        if (!branch) {
          items.push(evaluate(ev, item, file, path, bare));
          continue;
        }
        const taken = condition(ev, branch.test.value, file, branch.test.line) ? branch.taken : branch.otherwise;
        if (!taken) continue;
        const list: YNode = taken.kind === 'seq' ? taken : { kind: 'seq', items: [taken], line: taken.line };
        const inner = evaluate(ev, list, file, path, bare);
        if (inner.kind === 'seq') items.push(...inner.items);
      }
      return { ...node, items };
    }
  }
}

/** `{if: cond, then: …, else: …}` as a list item; other mappings are ordinary items. */
function conditional(
  node: YNode,
  file: string,
): { test: { value: string; line: number }; taken: YNode | undefined; otherwise: YNode | undefined } | undefined {
  if (node.kind !== 'map' || !node.entries.some((e) => e.key === 'if')) return undefined;
  const get = (k: string) => node.entries.find((e) => e.key === k)?.value;
  const test = get('if') as YNode;
  for (const e of node.entries) {
    if (!['if', 'then', 'else'].includes(e.key)) {
      throw recipeError('RECIPE', { file, line: e.line }, `'${e.key}' in a condition: only if, then and else go there`);
    }
  }
  if (test.kind !== 'scalar' || test.value.trim() === '') {
    throw recipeError('RECIPE', { file, line: test.line }, "'if:' needs an expression (if: linux)");
  }
  if (!get('then')) throw recipeError('RECIPE', { file, line: node.line }, "'if:' without 'then:'");
  return { test: { value: test.value, line: test.line }, taken: get('then'), otherwise: get('else') };
}

export function join(path: string, key: string): string {
  return path ? `${path}/${key}` : key;
}
