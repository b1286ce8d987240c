import { recipeError } from './recipe-error.ts';

/** A Jinja expression (also a line selector, which is a Python expression of the same shape), with its line. */
export type Expr =
  | { t: 'lit'; v: unknown; line: number }
  | { t: 'name'; n: string; line: number }
  | { t: 'attr'; o: Expr; n: string; line: number }
  | { t: 'index'; o: Expr; i: Expr; line: number }
  | { t: 'slice'; o: Expr; a: Expr | undefined; b: Expr | undefined; line: number }
  | { t: 'call'; f: Expr; args: Expr[]; kwargs: [string, Expr][]; line: number }
  | { t: 'filter'; v: Expr; n: string; args: Expr[]; kwargs: [string, Expr][]; line: number }
  | { t: 'test'; v: Expr; n: string; neg: boolean; line: number }
  | { t: 'bin'; op: string; l: Expr; r: Expr; line: number }
  | { t: 'not'; v: Expr; line: number }
  | { t: 'neg'; v: Expr; line: number }
  | { t: 'cond'; c: Expr; a: Expr; b: Expr | undefined; line: number }
  | { t: 'list'; items: Expr[]; line: number }
  | { t: 'dict'; entries: [Expr, Expr][]; line: number };

type Tok = { k: 'name' | 'num' | 'str' | 'op' | 'end'; v: string; num?: number };

const OPS = ['**', '//', '==', '!=', '<=', '>=', '(', ')', '[', ']', '{', '}', ',', '.', ':', '|', '~', '+', '-', '*'];
const OPS1 = ['/', '%', '<', '>', '='];

export function lex(body: string, file: string, line: number): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < body.length) {
    const ch = body[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const rest = body.slice(i);
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (name) {
      toks.push({ k: 'name', v: name[0] });
      i += name[0].length;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(rest);
    if (num) {
      toks.push({ k: 'num', v: num[0], num: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      let s = '';
      while (j < body.length && body[j] !== ch) {
        if (body[j] === '\\' && j + 1 < body.length) {
          const e = body[j + 1] as string;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else s += body[j++];
      }
      if (j >= body.length) throw recipeError('JINJA_SYNTAX', { file, line }, 'unterminated string');
      toks.push({ k: 'str', v: s });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => rest.startsWith(o)) ?? OPS1.find((o) => rest.startsWith(o));
    if (!op) throw recipeError('JINJA_SYNTAX', { file, line }, `unexpected character '${ch}' in Jinja expression`);
    toks.push({ k: 'op', v: op });
    i += op.length;
  }
  toks.push({ k: 'end', v: '' });
  return toks;
}

/** A recursive-descent parser over one tag's tokens, with Jinja's operator precedence. */
export class ExprParser {
  private pos = 0;
  private readonly toks: Tok[];
  private readonly file: string;
  private readonly line: number;

  constructor(toks: Tok[], file: string, line: number) {
    this.toks = toks;
    this.file = file;
    this.line = line;
  }

  peek(offset = 0): Tok {
    return this.toks[Math.min(this.pos + offset, this.toks.length - 1)] as Tok;
  }
  next(): Tok {
    return this.toks[this.pos++] as Tok;
  }
  is(v: string, k?: Tok['k']): boolean {
    const t = this.peek();
    return t.v === v && (k === undefined ? t.k === 'op' || t.k === 'name' : t.k === k);
  }
  accept(v: string): boolean {
    if (!this.is(v)) return false;
    this.pos++;
    return true;
  }
  expect(v: string): void {
    if (!this.accept(v)) this.fail(`expected '${v}'`);
  }
  fail(what: string): never {
    const t = this.peek();
    throw recipeError(
      'JINJA_SYNTAX',
      { file: this.file, line: this.line },
      `${what}, found ${t.k === 'end' ? 'the end of the tag' : `'${t.v}'`}`,
    );
  }
  atEnd(): boolean {
    return this.peek().k === 'end';
  }
  name(): string {
    const t = this.next();
    if (t.k !== 'name') {
      this.pos--;
      this.fail('expected a name');
    }
    return t.v;
  }

  expr(): Expr {
    const a = this.or();
    if (this.is('if', 'name')) {
      this.next();
      const c = this.or();
      const b = this.accept('else') ? this.expr() : undefined;
      return { t: 'cond', c, a, b, line: this.line };
    }
    return a;
  }
  or(): Expr {
    let l = this.and();
    while (this.accept('or')) l = { t: 'bin', op: 'or', l, r: this.and(), line: this.line };
    return l;
  }
  and(): Expr {
    let l = this.not();
    while (this.accept('and')) l = { t: 'bin', op: 'and', l, r: this.not(), line: this.line };
    return l;
  }
  not(): Expr {
    if (this.accept('not')) return { t: 'not', v: this.not(), line: this.line };
    return this.compare();
  }
  compare(): Expr {
    let l = this.concat();
    for (;;) {
      const t = this.peek();
      if (t.k === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) {
        this.next();
        l = { t: 'bin', op: t.v, l, r: this.concat(), line: this.line };
      } else if (this.is('in', 'name')) {
        this.next();
        l = { t: 'bin', op: 'in', l, r: this.concat(), line: this.line };
      } else if (this.is('not', 'name') && this.peek(1).v === 'in') {
        this.pos += 2;
        l = { t: 'not', v: { t: 'bin', op: 'in', l, r: this.concat(), line: this.line }, line: this.line };
      } else if (this.is('is', 'name')) {
        this.next();
        const neg = this.accept('not');
        l = { t: 'test', v: l, n: this.name(), neg, line: this.line };
      } else return l;
    }
  }
  concat(): Expr {
    let l = this.add();
    while (this.accept('~')) l = { t: 'bin', op: '~', l, r: this.add(), line: this.line };
    return l;
  }
  add(): Expr {
    let l = this.mul();
    while (this.is('+', 'op') || this.is('-', 'op')) {
      const op = this.next().v;
      l = { t: 'bin', op, l, r: this.mul(), line: this.line };
    }
    return l;
  }
  mul(): Expr {
    let l = this.unary();
    while (['*', '/', '//', '%'].some((o) => this.is(o, 'op'))) {
      const op = this.next().v;
      l = { t: 'bin', op, l, r: this.unary(), line: this.line };
    }
    return l;
  }
  unary(): Expr {
    if (this.accept('-')) return { t: 'neg', v: this.unary(), line: this.line };
    return this.filtered(this.postfix(this.primary()));
  }
  filtered(v: Expr): Expr {
    let e = v;
    while (this.accept('|')) {
      const n = this.name();
      const { args, kwargs } = this.is('(', 'op') ? this.callArgs() : { args: [], kwargs: [] };
      e = { t: 'filter', v: e, n, args, kwargs, line: this.line };
    }
    return e;
  }
  postfix(p: Expr): Expr {
    let e = p;
    for (;;) {
      if (this.accept('.')) e = { t: 'attr', o: e, n: this.name(), line: this.line };
      else if (this.is('(', 'op')) {
        const { args, kwargs } = this.callArgs();
        e = { t: 'call', f: e, args, kwargs, line: this.line };
      } else if (this.accept('[')) {
        const a = this.is(':', 'op') ? undefined : this.expr();
        if (this.accept(':')) {
          const b = this.is(']', 'op') ? undefined : this.expr();
          e = { t: 'slice', o: e, a, b, line: this.line };
        } else if (a) e = { t: 'index', o: e, i: a, line: this.line };
        this.expect(']');
      } else return e;
    }
  }
  callArgs(): { args: Expr[]; kwargs: [string, Expr][] } {
    this.expect('(');
    const args: Expr[] = [];
    const kwargs: [string, Expr][] = [];
    while (!this.accept(')')) {
      if (this.peek().k === 'name' && this.peek(1).v === '=' && this.peek(1).k === 'op') {
        const n = this.name();
        this.next();
        kwargs.push([n, this.expr()]);
      } else args.push(this.expr());
      if (!this.is(')', 'op')) this.expect(',');
    }
    return { args, kwargs };
  }
  primary(): Expr {
    const t = this.next();
    const line = this.line;
    if (t.k === 'num') return { t: 'lit', v: t.num, line };
    if (t.k === 'str') {
      let s = t.v;
      while (this.peek().k === 'str') s += this.next().v;
      return { t: 'lit', v: s, line };
    }
    if (t.k === 'name') {
      if (t.v === 'true' || t.v === 'True') return { t: 'lit', v: true, line };
      if (t.v === 'false' || t.v === 'False') return { t: 'lit', v: false, line };
      if (t.v === 'none' || t.v === 'None') return { t: 'lit', v: null, line };
      return { t: 'name', n: t.v, line };
    }
    if (t.v === '(') {
      const first = this.expr();
      if (this.accept(')')) return first;
      const items = [first];
      while (this.accept(',') && !this.is(')', 'op')) items.push(this.expr());
      this.expect(')');
      return { t: 'list', items, line };
    }
    if (t.v === '[') {
      const items: Expr[] = [];
      while (!this.accept(']')) {
        items.push(this.expr());
        if (!this.is(']', 'op')) this.expect(',');
      }
      return { t: 'list', items, line };
    }
    if (t.v === '{') {
      const entries: [Expr, Expr][] = [];
      while (!this.accept('}')) {
        const k = this.expr();
        this.expect(':');
        entries.push([k, this.expr()]);
        if (!this.is('}', 'op')) this.expect(',');
      }
      return { t: 'dict', entries, line };
    }
    this.pos--;
    return this.fail('expected a value');
  }
}

/** Parses one expression (a whole `{{ }}` body, or a line selector). */
export function parseExpr(body: string, file: string, line: number): Expr {
  const p = new ExprParser(lex(body, file, line), file, line);
  const e = p.expr();
  if (!p.atEnd()) p.fail('expected the end of the expression');
  return e;
}
