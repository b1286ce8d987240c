import { type Expr, ExprParser, lex, parseExpr } from './jinja-expr.ts';
import { recipeError } from './recipe-error.ts';

/**
 * The Jinja subset that conda-forge recipes use, parsed into a tree: `{{ expr }}`, `{# comment #}`,
 * `{% set %}`, `{% if/elif/else %}`, `{% for %}` and whitespace control (`{%-`, `-%}`). Every node keeps its
 * source line so that evaluation errors name file:line. Anything else (macros, blocks, includes, …) is refused
 * with its line rather than half-supported.
 */
export type Node =
  | { t: 'text'; s: string; line: number }
  | { t: 'out'; e: Expr; line: number }
  | { t: 'set'; names: string[]; e: Expr; line: number }
  | { t: 'if'; branches: { c: Expr; body: Node[] }[]; otherwise: Node[]; line: number }
  | { t: 'for'; names: string[]; iter: Expr; body: Node[]; otherwise: Node[]; line: number };

interface Tag {
  kind: 'text' | 'out' | 'stmt';
  body: string;
  line: number;
}

/** Splits a template into text, `{{ }}` and `{% %}` pieces, applying `-` whitespace control. */
function scan(src: string, file: string): Tag[] {
  const tags: Tag[] = [];
  let i = 0;
  let line = 1;
  let trimNext = false;
  const advance = (s: string) => {
    for (const ch of s) if (ch === '\n') line++;
  };
  while (i < src.length) {
    const open = src.slice(i).search(/\{[{%#]/);
    const end = open < 0 ? src.length : i + open;
    let text = src.slice(i, end);
    const textLine = line;
    advance(text);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) tags.push({ kind: 'text', body: text, line: textLine });
      break;
    }
    const kind = src[end + 1] as '{' | '%' | '#';
    const close = kind === '{' ? '}}' : kind === '%' ? '%}' : '#}';
    const closeAt = src.indexOf(close, end + 2);
    if (closeAt < 0) {
      throw recipeError('JINJA_SYNTAX', { file, line }, `unclosed '{${kind}'`, `add the closing '${close}'`);
    }
    let inner = src.slice(end + 2, closeAt);
    if (inner.startsWith('-')) {
      inner = inner.slice(1);
      text = text.replace(/\s+$/, '');
    }
    if (inner.endsWith('-')) {
      inner = inner.slice(0, -1);
      trimNext = true;
    }
    if (text) tags.push({ kind: 'text', body: text, line: textLine });
    if (kind !== '#') tags.push({ kind: kind === '{' ? 'out' : 'stmt', body: inner, line });
    advance(src.slice(end, closeAt + 2));
    i = closeAt + 2;
  }
  return tags;
}

const SUPPORTED = 'set, if/elif/else/endif and for/endfor';

/** Parses a template into its node tree. */
export function parseTemplate(src: string, file: string): Node[] {
  const tags = scan(src, file);
  let i = 0;
  const block = (ends: string[]): { nodes: Node[]; end: string; line: number } => {
    const nodes: Node[] = [];
    while (i < tags.length) {
      const tag = tags[i++] as Tag;
      if (tag.kind === 'text') nodes.push({ t: 'text', s: tag.body, line: tag.line });
      else if (tag.kind === 'out') nodes.push({ t: 'out', e: parseExpr(tag.body, file, tag.line), line: tag.line });
      else {
        const p = new ExprParser(lex(tag.body, file, tag.line), file, tag.line);
        const word = p.peek().k === 'name' ? p.next().v : '';
        if (ends.includes(word)) {
          i--;
          return { nodes, end: word, line: tag.line };
        }
        nodes.push(statement(word, p, tag));
      }
    }
    if (ends.length > 0) {
      const last = tags[tags.length - 1];
      throw recipeError('JINJA_SYNTAX', { file, line: last ? last.line : 1 }, `missing {% ${ends[ends.length - 1]} %}`);
    }
    return { nodes, end: '', line: 0 };
  };
  /** The tag that ended a block: re-read it to parse an `elif` condition. */
  const closing = (): ExprParser => {
    const tag = tags[i++] as Tag;
    const p = new ExprParser(lex(tag.body, file, tag.line), file, tag.line);
    p.next();
    return p;
  };
  const statement = (word: string, p: ExprParser, tag: Tag): Node => {
    const pos = { file, line: tag.line };
    if (word === 'set') {
      const names = [p.name()];
      while (p.accept(',')) names.push(p.name());
      p.expect('=');
      const e = p.expr();
      if (!p.atEnd()) p.fail('expected the end of the set tag');
      return { t: 'set', names, e, line: tag.line };
    }
    if (word === 'if') {
      const branches: { c: Expr; body: Node[] }[] = [];
      let c = p.expr();
      if (!p.atEnd()) p.fail('expected the end of the if tag');
      let otherwise: Node[] = [];
      for (;;) {
        const b = block(['elif', 'else', 'endif']);
        branches.push({ c, body: b.nodes });
        const q = closing();
        if (b.end === 'elif') {
          c = q.expr();
          continue;
        }
        if (b.end === 'else') {
          otherwise = block(['endif']).nodes;
          closing();
        }
        return { t: 'if', branches, otherwise, line: tag.line };
      }
    }
    if (word === 'for') {
      const names = [p.name()];
      while (p.accept(',')) names.push(p.name());
      p.expect('in');
      const iter = p.expr();
      if (!p.atEnd()) p.fail('expected the end of the for tag (loop filters and recursive loops are not supported)');
      const b = block(['else', 'endfor']);
      closing();
      let otherwise: Node[] = [];
      if (b.end === 'else') {
        otherwise = block(['endfor']).nodes;
        closing();
      }
      return { t: 'for', names, iter, body: b.nodes, otherwise, line: tag.line };
    }
    if (['endif', 'endfor', 'elif', 'else'].includes(word)) {
      throw recipeError('JINJA_SYNTAX', pos, `{% ${word} %} without its opening tag`);
    }
    throw recipeError(
      'UNSUPPORTED',
      pos,
      `unsupported Jinja statement '{% ${word || tag.body.trim()} %}'`,
      `accel renders the Jinja subset recipes use: ${SUPPORTED}, {{ expressions }}, filters and the conda-build functions`,
    );
  };
  return block([]).nodes;
}
