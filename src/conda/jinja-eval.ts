import type { Expr } from './jinja-expr.ts';
import type { Node } from './jinja-parse.ts';
import {
  Callable,
  type Dict,
  isDict,
  percentFormat,
  pyEquals,
  pySlice,
  pySplit,
  pyStr,
  replaceCount,
  stringMethod,
  truthy,
  Undefined,
} from './jinja-values.ts';
import { recipeError } from './recipe-error.ts';

/** Rendered text, and for each of its lines the source line it came from (so YAML errors point at the recipe). */
interface Rendered {
  text: string;
  lines: number[];
}

type Scope = Map<string, unknown>;

const FILTERS =
  'lower, upper, replace, default (d), join, int, float, string, length, trim, first, last, list, split, version_to_buildstring';

/** Evaluates parsed templates and expressions against variables, with StrictUndefined semantics. */
export class Evaluator {
  private readonly file: string;
  private readonly scopes: Scope[];
  private readonly unknownIsFalse: boolean;
  private readonly undefinedHint: ((name: string) => string) | undefined;

  /**
   * `unknownIsFalse`: selector semantics, where a name nobody defined is simply false. `undefinedHint`: what
   * an undefined name's error tells to do (recipe formats define variables in different places).
   */
  constructor(
    file: string,
    globals: Dict,
    options: { unknownIsFalse?: boolean; undefinedHint?: (name: string) => string } = {},
  ) {
    this.file = file;
    this.scopes = [new Map(Object.entries(globals))];
    this.unknownIsFalse = options.unknownIsFalse === true;
    this.undefinedHint = options.undefinedHint;
  }

  /** Sets a global (a v1 recipe's `context:` entries, defined one after another). */
  define(name: string, value: unknown): void {
    this.scopes[0]?.set(name, value);
  }

  /** An expression's value; an undefined one is an error at `line`. */
  value(e: Expr, line: number): unknown {
    return this.defined(this.eval(e), line);
  }

  /** The value of a variable after rendering (e.g. `{% set version = … %}`), or undefined. */
  variable(name: string): unknown {
    return this.scopes[0]?.get(name);
  }

  render(nodes: Node[]): Rendered {
    const out: string[] = [];
    const lines: number[] = [1];
    const emit = (s: string, line: number, literal: boolean) => {
      if (lines.length === 1 && out.length === 0) lines[0] = line;
      let l = line;
      for (const ch of s) {
        if (ch === '\n') lines.push(literal ? ++l : l);
      }
      out.push(s);
    };
    const walk = (list: Node[]) => {
      for (const node of list) {
        switch (node.t) {
          case 'text':
            emit(node.s, node.line, true);
            break;
          case 'out': {
            const v = this.eval(node.e);
            // Inside a YAML comment (`# version is 0.{{ CLANG_MAJOR }}`) the value is never read: an undefined
            // one there is no error, as recipes that build on conda-forge rely on.
            if (v instanceof Undefined && inComment(out)) break;
            emit(this.str(v, node.line), node.line, false);
            break;
          }
          case 'set': {
            const v = this.eval(node.e);
            this.assign(node.names, v, node.line);
            break;
          }
          case 'if': {
            const branch = node.branches.find((b) => truthy(this.defined(this.eval(b.c), b.c.line)));
            walk(branch ? branch.body : node.otherwise);
            break;
          }
          case 'for': {
            const items = this.iterable(this.eval(node.iter), node.line);
            if (items.length === 0) walk(node.otherwise);
            const scope: Scope = new Map();
            this.scopes.push(scope);
            items.forEach((item, index) => {
              scope.set('loop', {
                index: index + 1,
                index0: index,
                first: index === 0,
                last: index === items.length - 1,
                length: items.length,
              });
              this.assign(node.names, item, node.line, scope);
              walk(node.body);
            });
            this.scopes.pop();
            break;
          }
        }
      }
    };
    walk(nodes);
    return { text: out.join(''), lines };
  }

  private assign(names: string[], v: unknown, line: number, scope?: Scope): void {
    const target = scope ?? (this.scopes[this.scopes.length - 1] as Scope);
    if (names.length === 1) {
      target.set(names[0] as string, v);
      return;
    }
    const items = this.iterable(v, line);
    if (items.length !== names.length) {
      throw this.error('JINJA_TYPE', line, `cannot unpack ${items.length} values into ${names.length} names`);
    }
    names.forEach((n, i) => {
      target.set(n, items[i]);
    });
  }

  private error(what: string, line: number, message: string, hint?: string) {
    return recipeError(what, { file: this.file, line }, message, hint);
  }

  private undefinedError(u: Undefined, line: number) {
    return this.error(
      'UNDEFINED',
      line,
      `undefined Jinja variable '${u.name}'`,
      this.undefinedHint?.(u.name) ??
        `define it with {% set ${u.name.split('.')[0]} = ... %} or in conda_build_config.yaml, or write '${u.name} | default(...)'`,
    );
  }

  /** Any use of an undefined value other than `default` and `is defined` is an error. */
  private defined(v: unknown, line: number): unknown {
    if (v instanceof Undefined) throw this.undefinedError(v, line);
    return v;
  }

  private str(v: unknown, line: number): string {
    return pyStr(this.defined(v, line));
  }

  private iterable(v: unknown, line: number): unknown[] {
    const d = this.defined(v, line);
    if (Array.isArray(d)) return d;
    if (typeof d === 'string') return [...d];
    if (isDict(d)) return Object.keys(d);
    throw this.error('JINJA_TYPE', line, `cannot iterate over ${pyStr(d)}`);
  }

  private num(v: unknown, line: number): number {
    const d = this.defined(v, line);
    if (typeof d === 'number') return d;
    if (typeof d === 'boolean') return Number(d);
    throw this.error('JINJA_TYPE', line, `expected a number, got '${pyStr(d)}'`);
  }

  eval(e: Expr): unknown {
    switch (e.t) {
      case 'lit':
        return e.v;
      case 'name': {
        for (let i = this.scopes.length - 1; i >= 0; i--) {
          const scope = this.scopes[i] as Scope;
          if (scope.has(e.n)) return scope.get(e.n);
        }
        return this.unknownIsFalse ? false : new Undefined(e.n);
      }
      case 'attr':
        return this.attr(this.eval(e.o), e.n, e.line, e.o);
      case 'index': {
        const o = this.defined(this.eval(e.o), e.line);
        const i = this.defined(this.eval(e.i), e.line);
        if (typeof i === 'number' && (Array.isArray(o) || typeof o === 'string')) {
          const v = o.at(i);
          if (v === undefined) throw this.error('JINJA_TYPE', e.line, `index ${i} is out of range`);
          return v;
        }
        if (isDict(o) && typeof i === 'string') {
          return Object.hasOwn(o, i) ? o[i] : new Undefined(`${describe(e.o)}[${pyStr(i)}]`);
        }
        throw this.error('JINJA_TYPE', e.line, `cannot index ${pyStr(o)} with ${pyStr(i)}`);
      }
      case 'slice': {
        const o = this.defined(this.eval(e.o), e.line);
        const a = e.a ? this.num(this.eval(e.a), e.line) : undefined;
        const b = e.b ? this.num(this.eval(e.b), e.line) : undefined;
        if (typeof o === 'string' || Array.isArray(o)) return pySlice(o, a, b);
        throw this.error('JINJA_TYPE', e.line, `cannot slice ${pyStr(o)}`);
      }
      case 'call': {
        const f = this.defined(this.eval(e.f), e.line);
        if (!(f instanceof Callable)) throw this.error('JINJA_TYPE', e.line, `${describe(e.f)} is not a function`);
        const args = e.args.map((a) => this.defined(this.eval(a), e.line));
        const kwargs = Object.fromEntries(e.kwargs.map(([k, v]) => [k, this.defined(this.eval(v), e.line)]));
        return f.fn(args, kwargs, e.line);
      }
      case 'filter':
        return this.filter(e);
      case 'test': {
        const v = this.eval(e.v);
        let r: boolean;
        if (e.n === 'defined') r = !(v instanceof Undefined);
        else if (e.n === 'undefined') r = v instanceof Undefined;
        else if (e.n === 'none') r = this.defined(v, e.line) === null;
        else if (e.n === 'string') r = typeof this.defined(v, e.line) === 'string';
        else if (e.n === 'number') r = typeof this.defined(v, e.line) === 'number';
        else throw this.error('UNSUPPORTED', e.line, `unsupported Jinja test 'is ${e.n}'`);
        return e.neg ? !r : r;
      }
      case 'not':
        return !truthy(this.defined(this.eval(e.v), e.line));
      case 'neg':
        return -this.num(this.eval(e.v), e.line);
      case 'cond':
        if (truthy(this.defined(this.eval(e.c), e.line))) return this.eval(e.a);
        return e.b ? this.eval(e.b) : '';
      case 'list':
        return e.items.map((x) => this.defined(this.eval(x), e.line));
      case 'dict': {
        const d: Dict = {};
        for (const [k, v] of e.entries) d[this.str(this.eval(k), e.line)] = this.defined(this.eval(v), e.line);
        return d;
      }
      case 'bin':
        return this.binary(e.op, e.l, e.r, e.line);
    }
  }

  private binary(op: string, le: Expr, re: Expr, line: number): unknown {
    if (op === 'and') {
      const l = this.defined(this.eval(le), line);
      return truthy(l) ? this.defined(this.eval(re), line) : l;
    }
    if (op === 'or') {
      const l = this.defined(this.eval(le), line);
      return truthy(l) ? l : this.defined(this.eval(re), line);
    }
    const l = this.defined(this.eval(le), line);
    const r = this.defined(this.eval(re), line);
    const [l0, r0] = [l, r];
    switch (op) {
      case '~':
        return pyStr(l) + pyStr(r);
      case '==':
        return pyEquals(l, r);
      case '!=':
        return !pyEquals(l, r);
      case 'in':
        if (typeof r === 'string') return r.includes(pyStr(l));
        if (Array.isArray(r)) return r.some((x) => pyEquals(x, l));
        if (isDict(r)) return typeof l === 'string' && Object.hasOwn(r, l);
        throw this.error('JINJA_TYPE', line, `'in' needs a string, list or dict on the right, got ${pyStr(r)}`);
      case '<':
      case '<=':
      case '>':
      case '>=': {
        // Python orders bools as 0 and 1: a selector `py>=38` where py is unknown (False) is simply false.
        const l = typeof l0 === 'boolean' ? Number(l0) : l0;
        const r = typeof r0 === 'boolean' ? Number(r0) : r0;
        if (!((typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string'))) {
          throw this.error('JINJA_TYPE', line, `cannot compare ${pyStr(l)} ${op} ${pyStr(r)}`);
        }
        const c = l < r ? -1 : l > r ? 1 : 0;
        return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
      }
      case '+':
        if (typeof l === 'string' && typeof r === 'string') return l + r;
        if (Array.isArray(l) && Array.isArray(r)) return [...l, ...r];
        return this.num(l, line) + this.num(r, line);
      case '-':
        return this.num(l, line) - this.num(r, line);
      case '*': {
        // Python repeats sequences: `'ab' * 2`, and `cond * ['x']` (True * list is the list, False * list empty).
        const seq =
          typeof l === 'string' || Array.isArray(l) ? l : typeof r === 'string' || Array.isArray(r) ? r : null;
        if (seq !== null) {
          const times = Math.max(0, this.num(seq === l ? r : l, line));
          return typeof seq === 'string' ? seq.repeat(times) : Array.from({ length: times }, () => seq).flat(1);
        }
        return this.num(l, line) * this.num(r, line);
      }
      case '/':
        return this.num(l, line) / this.num(r, line);
      case '//':
        return Math.floor(this.num(l, line) / this.num(r, line));
      case '%':
        if (typeof l === 'string') return percentFormat(l, Array.isArray(r) ? r : [r]);
        return this.num(l, line) % this.num(r, line);
    }
    throw this.error('UNSUPPORTED', line, `unsupported operator '${op}'`);
  }

  private attr(o: unknown, n: string, line: number, oe: Expr): unknown {
    const d = this.defined(o, line);
    if (isDict(d)) {
      if (Object.hasOwn(d, n)) return d[n];
      if (n === 'get')
        return new Callable('get', ([k, dflt]) => (Object.hasOwn(d, pyStr(k)) ? d[pyStr(k)] : (dflt ?? null)));
      if (n === 'keys') return new Callable('keys', () => Object.keys(d));
      if (n === 'values') return new Callable('values', () => Object.values(d));
      if (n === 'items') return new Callable('items', () => Object.entries(d));
      return new Undefined(`${describe(oe)}.${n}`);
    }
    if (typeof d === 'string') {
      const method = stringMethod(d, n);
      if (method) return method;
    }
    throw this.error(
      'UNSUPPORTED',
      line,
      `'${describe(oe)}' has no attribute or supported method '${n}'`,
      'strings support split, replace, lower, upper, strip, lstrip, rstrip, startswith, endswith, join, format',
    );
  }

  private filter(e: Extract<Expr, { t: 'filter' }>): unknown {
    const raw = this.eval(e.v);
    const args = e.args.map((a) => this.defined(this.eval(a), e.line));
    const kw = Object.fromEntries(e.kwargs.map(([k, v]) => [k, this.defined(this.eval(v), e.line)]));
    if (e.n === 'default' || e.n === 'd') {
      const useFalsy = truthy(args[1] ?? kw.boolean ?? false);
      if (raw instanceof Undefined || (useFalsy && !truthy(raw))) return args[0] ?? kw.default_value ?? '';
      return raw;
    }
    const v = this.defined(raw, e.line);
    switch (e.n) {
      case 'lower':
        return pyStr(v).toLowerCase();
      case 'upper':
        return pyStr(v).toUpperCase();
      case 'trim':
        return pyStr(v).trim();
      case 'replace': {
        const [from, to, count] = args;
        return replaceCount(pyStr(v), pyStr(from), pyStr(to), typeof count === 'number' ? count : -1);
      }
      case 'join': {
        const items = this.iterable(v, e.line);
        return items.map((x) => pyStr(x)).join(pyStr(args[0] ?? kw.d ?? ''));
      }
      case 'int': {
        const n = typeof v === 'number' ? v : Number.parseInt(pyStr(v), 10);
        return Number.isNaN(n) ? (args[0] ?? 0) : Math.trunc(n);
      }
      case 'float': {
        const n = typeof v === 'number' ? v : Number.parseFloat(pyStr(v));
        return Number.isNaN(n) ? (args[0] ?? 0) : n;
      }
      case 'string':
        return pyStr(v);
      case 'length':
      case 'count':
        return this.iterable(v, e.line).length;
      case 'first':
        return this.iterable(v, e.line)[0] ?? new Undefined(`${describe(e.v)}|first`);
      case 'last':
        return this.iterable(v, e.line).at(-1) ?? new Undefined(`${describe(e.v)}|last`);
      case 'list':
        return this.iterable(v, e.line);
      // rattler-build's (minijinja) filters, which v1 recipes use: `version | split('.')`, `python | version_to_buildstring`.
      case 'split':
        return pySplit(
          pyStr(v),
          args[0] ?? kw.split ?? null,
          typeof (args[1] ?? kw.maxsplit) === 'number' ? Number(args[1] ?? kw.maxsplit) : -1,
        );
      case 'version_to_buildstring':
        return pyStr(v).split('.').slice(0, 2).join('');
    }
    throw this.error('UNSUPPORTED', e.line, `unsupported Jinja filter '${e.n}'`, `supported filters: ${FILTERS}`);
  }
}

/** Whether the text rendered so far ends in a YAML comment (a `#` at the line start or after a space). */
function inComment(out: string[]): boolean {
  let line = '';
  for (let i = out.length - 1; i >= 0; i--) {
    const part = out[i] as string;
    const nl = part.lastIndexOf('\n');
    line = (nl >= 0 ? part.slice(nl + 1) : part) + line;
    if (nl >= 0) break;
  }
  return /(^|\s)#/.test(line);
}

/** A short spelling of an expression for error messages (`environ["X"]`, `foo.bar`). */
function describe(e: Expr): string {
  switch (e.t) {
    case 'name':
      return e.n;
    case 'attr':
      return `${describe(e.o)}.${e.n}`;
    case 'index':
      return `${describe(e.o)}[...]`;
    case 'call':
      return `${describe(e.f)}(...)`;
    case 'lit':
      return pyStr(e.v);
    default:
      return 'expression';
  }
}
