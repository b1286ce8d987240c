/**
 * The part of conda's match specs that feedstocks use: `name`, `name 1.2` (1.2, 1.2.x), `name 1.2.0 h1_0`
 * (exact, with build string), `name >=1.2.0,<1.3.0a0`, `name 1.2.*`, `name >=2|<1`, `name==1.2`.
 */
export interface MatchSpec {
  name: string;
  version: string | null;
  build: string | null;
}

export function parseSpec(spec: string): MatchSpec {
  const text = spec.trim();
  const m = /^([A-Za-z0-9_.+-]+?)\s*((?:[<>=!~].*)|(?:\s.*))?$/.exec(text);
  if (!m) return { name: text, version: null, build: null };
  const rest = (m[2] ?? '').trim().split(/\s+/).filter(Boolean);
  return { name: m[1] as string, version: rest[0] ?? null, build: rest[1] ?? null };
}

type Part = number | string;

function parts(version: string): Part[][] {
  const v = version.toLowerCase().replace(/^\d+!/, '');
  return v
    .split(/[.+_-]/)
    .map((seg) => (seg.match(/\d+|[a-z]+|\*/g) ?? []).map((p) => (/^\d+$/.test(p) ? Number(p) : p)));
}

/** conda's version order, enough for release numbers with pre-release letters (`1.3.0a0` < `1.3.0`). */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a).flat();
  const pb = parts(b).flat();
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'string' && typeof y === 'string') return x < y ? -1 : 1;
    return typeof x === 'string' ? -1 : 1;
  }
  return 0;
}

function matchOne(version: string, constraint: string): boolean {
  const m = /^(>=|<=|==|!=|~=|>|<|=)?(.*)$/.exec(constraint.trim()) as RegExpExecArray;
  const op = m[1] ?? '';
  let want = m[2] as string;
  if (want === '*' || want === '') return true;
  if (op === '' || op === '=' || (op === '==' && want.endsWith('*'))) {
    want = want.replace(/\.?\*$/, '');
    if (op === '==' && !m[2]?.endsWith('*')) return compareVersions(version, want) === 0;
    return version === want || version.startsWith(`${want}.`) || compareVersions(version, want) === 0;
  }
  const c = compareVersions(version, want);
  switch (op) {
    case '>=':
      return c >= 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '<':
      return c < 0;
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    default:
      return compareVersions(version, want) >= 0 && version.startsWith(want.split('.').slice(0, -1).join('.'));
  }
}

export function versionMatches(version: string, constraint: string | null): boolean {
  if (constraint === null) return true;
  return constraint.split('|').some((alt) => alt.split(',').every((c) => matchOne(version, c)));
}

export function specMatches(spec: MatchSpec, pkg: { name: string; version: string; build: string }): boolean {
  if (spec.name !== pkg.name || !versionMatches(pkg.version, spec.version)) return false;
  if (spec.build === null || spec.build === '*') return true;
  const re = new RegExp(`^${spec.build.replace(/[.+?^${}()[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(pkg.build);
}
