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
