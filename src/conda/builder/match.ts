import { Version, VersionSpec } from '@conda-org/rattler';

/**
 * Dotted release numbers in order, such as glibc's symbol versions (`2.17` < `2.28` < `2.34`), with conda's
 * rule that missing parts are zero (`1.2` = `1.2.0`) and letters sort before the release (`1.3.0a0` < `1.3.0`).
 * Match specs and package versions in general are rattler's (versionMatches, and the solver).
 */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
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

function parts(version: string): (number | string)[] {
  return (version.toLowerCase().match(/\d+|[a-z]+/g) ?? []).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** Whether a version matches a conda version spec (`>=1.2,<2`, `1.2.*`, `>=2|<1`), by rattler's semantics. */
export function versionMatches(version: string, constraint: string | null): boolean {
  if (constraint === null) return true;
  const spec = new VersionSpec(constraint);
  const v = new Version(version);
  try {
    return spec.matches(v);
  } finally {
    spec.free();
    v.free();
  }
}

/**
 * conda-build's rule for requirements (utils.ensure_valid_spec): `name 1.2`, a bare version with no build
 * string, means `name 1.2.*` (a variant's `zlib: 1.3` pin on a host `zlib` solves to 1.3.1). An operator, a
 * `*`, or an exact build pin is left as written; so is `python x.x` / `numpy x.x`.
 */
export function starBareVersion(spec: string): string {
  const m = /^([\w.-]+)\s+([\w.+_-]+)(\s+\S+)?$/.exec(spec.trim());
  if (!m || m[3] || /^[<>=!~]/.test(m[2] as string) || (m[2] as string).includes('*')) return spec;
  if ((m[1] === 'python' || m[1] === 'numpy') && m[2] === 'x.x') return spec;
  return `${m[1]} ${m[2]}.*`;
}
