import { Evaluator } from './jinja-eval.ts';
import { type Expr, parseExpr } from './jinja-expr.ts';
import type { Dict } from './jinja-values.ts';
import { truthy } from './jinja-values.ts';

/**
 * `content  # [expr]` at the end of a line, also with words between (`# only for the docs [win]`); the
 * expression is Python, which our Jinja expressions cover.
 */
const SELECTOR = /^(.*?)\s*#[^[\]]*\[([^[\]]+)\]\s*$/;

const parsed = new Map<string, Expr>();

/**
 * Applies line selectors: a line whose selector is false becomes empty, a true one loses its selector comment.
 * Line numbers stay as in the file, so later Jinja and YAML errors still point at the right line. Selectors run
 * before Jinja (conda-build runs them after, with a lenient undefined): then a line meant for another platform
 * can never trip an undefined variable, which lets undefined variables be errors everywhere else.
 */
export function applySelectors(text: string, file: string, names: Dict): string {
  const lines = text.split('\n');
  // conda-build turns variant values into ints and bools for selectors: `# [gcc_maj_ver < 15]`, and
  // `# [is_rc]` is false for `is_rc: 'False'`.
  const numeric = Object.fromEntries(Object.entries(names).map(([k, v]) => [k, selectorValue(v)]));
  const evaluator = new Evaluator(file, numeric, { unknownIsFalse: true });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.includes('[')) continue;
    const m = SELECTOR.exec(line);
    if (!m) continue;
    const source = m[2] as string;
    const key = `${i + 1}\0${source}`;
    let expr = parsed.get(key);
    if (!expr) {
      // Parsed selectors are shared by the variants of a recipe and by recipes with the same lines; bounded
      // so that planning thousands of feedstocks does not keep every selector ever seen.
      if (parsed.size >= 20_000) parsed.clear();
      expr = parseExpr(source, file, i + 1);
      parsed.set(key, expr);
    }
    lines[i] = selectorTrue(evaluator, expr) ? (m[1] as string) : '';
  }
  return lines.join('\n');
}

function selectorValue(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (/^\d+$/.test(v)) return Number(v);
  const lower = v.toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : v;
}

function selectorTrue(evaluator: Evaluator, expr: Expr): boolean {
  return truthy(evaluator.eval(expr));
}
