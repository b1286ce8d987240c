/**
 * Values in rendered recipes follow Python's rules, because conda-build evaluates them with Jinja2 on Python:
 * `str(True)` is `True`, `'a.b.c'.replace('.', '')` replaces every dot, `None` prints as `None`.
 */

/** A name that is not defined. Only `default`, `is defined` and `is undefined` may touch it. */
export class Undefined {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

/** A function recipes may call; `line` is where the call is, for errors. */
type JinjaFunction = (args: unknown[], kwargs: Record<string, unknown>, line: number) => unknown;

export class Callable {
  readonly name: string;
  readonly fn: JinjaFunction;
  constructor(name: string, fn: JinjaFunction) {
    this.name = name;
    this.fn = fn;
  }
}

export type Dict = Record<string, unknown>;

export function isDict(v: unknown): v is Dict {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Undefined) && !(v instanceof Callable)
  );
}

/** The Python builtins selectors use (`# [int(float(vc)) < 14]`); Jinja recipes call them too. */
export const PY_BUILTINS: Dict = {
  int: new Callable('int', ([v]) => {
    const n = typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number.parseFloat(pyStr(v));
    return Number.isNaN(n) ? 0 : Math.trunc(n);
  }),
  float: new Callable('float', ([v]) => {
    const n = typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number.parseFloat(pyStr(v));
    return Number.isNaN(n) ? 0 : n;
  }),
  str: new Callable('str', ([v]) => pyStr(v)),
  len: new Callable('len', ([v]) => (typeof v === 'string' || Array.isArray(v) ? v.length : 0)),
  range: new Callable('range', (args) => {
    const [a, b] = args.length > 1 ? [Number(args[0]), Number(args[1])] : [0, Number(args[0])];
    return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
  }),
};

/** Python's `str()`. */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v instanceof Callable) return `<function ${v.name}>`;
  if (isDict(v))
    return `{${Object.entries(v)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return String(v);
}

function pyRepr(v: unknown): string {
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : pyStr(v);
}

/** Python truthiness. */
export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

export function pyEquals(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  if (typeof a === 'boolean' && typeof b === 'number') return Number(a) === b;
  if (typeof b === 'boolean' && typeof a === 'number') return Number(b) === a;
  return a === b || (a === undefined && b === null) || (a === null && b === undefined);
}

/** Python's `str.split(sep=None, maxsplit=-1)`. */
export function pySplit(s: string, sep?: unknown, maxsplit = -1): string[] {
  if (sep === undefined || sep === null) {
    const parts = s.trim().split(/\s+/);
    return parts.length === 1 && parts[0] === '' ? [] : parts;
  }
  const sepText = String(sep);
  const parts = s.split(sepText);
  if (maxsplit < 0 || parts.length <= maxsplit + 1) return parts;
  return [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(sepText)];
}

/** Python's slice of a string or a list with possibly negative bounds. */
export function pySlice<T extends string | unknown[]>(v: T, a: number | undefined, b: number | undefined): T {
  const n = v.length;
  const norm = (x: number | undefined, dflt: number) =>
    x === undefined ? dflt : x < 0 ? Math.max(0, n + x) : Math.min(n, x);
  return v.slice(norm(a, 0), norm(b, n)) as T;
}

/** Python's `'%s-%d' % (a, b)`, for the conversions recipes use (s, d, i, r, %%). */
export function percentFormat(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([sdir%])/g, (_, c: string) => {
    if (c === '%') return '%';
    const v = args[i++];
    return c === 'd' || c === 'i' ? String(Math.trunc(Number(v))) : pyStr(v);
  });
}

export function replaceCount(s: string, from: string, to: string, count: number): string {
  if (count < 0) return s.split(from).join(to);
  const parts = s.split(from);
  return (
    parts.slice(0, count + 1).join(to) + (parts.length > count + 1 ? from + parts.slice(count + 1).join(from) : '')
  );
}

/** A bound method of a Python string (`version.split('.')`), or undefined when strings have no such method. */
export function stringMethod(s: string, n: string): Callable | undefined {
  const m = (fn: (args: unknown[]) => unknown) => new Callable(n, (args) => fn(args));
  switch (n) {
    case 'split':
      return m(([sep, max]) => pySplit(s, sep, typeof max === 'number' ? max : -1));
    case 'replace':
      return m(([a, b, c]) => replaceCount(s, pyStr(a), pyStr(b), typeof c === 'number' ? c : -1));
    case 'lower':
      return m(() => s.toLowerCase());
    case 'upper':
      return m(() => s.toUpperCase());
    case 'strip':
      return m(([c]) => (c === undefined ? s.trim() : trimChars(s, pyStr(c), true, true)));
    case 'lstrip':
      return m(([c]) => (c === undefined ? s.trimStart() : trimChars(s, pyStr(c), true, false)));
    case 'rstrip':
      return m(([c]) => (c === undefined ? s.trimEnd() : trimChars(s, pyStr(c), false, true)));
    case 'startswith':
      return m(([p]) => s.startsWith(pyStr(p)));
    case 'endswith':
      return m(([p]) => s.endsWith(pyStr(p)));
    case 'join':
      return m(([items]) => (Array.isArray(items) ? items.map((x) => pyStr(x)).join(s) : ''));
    case 'format':
      return m((args) => {
        let i = 0;
        return s.replace(/\{(\d*)\}/g, (_, k: string) => pyStr(args[k === '' ? i++ : Number(k)]));
      });
  }
  return undefined;
}

function trimChars(s: string, chars: string, start: boolean, end: boolean): string {
  let a = 0;
  let b = s.length;
  while (start && a < b && chars.includes(s[a] as string)) a++;
  while (end && b > a && chars.includes(s[b - 1] as string)) b--;
  return s.slice(a, b);
}
