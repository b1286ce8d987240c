import { AccelError } from '../core/errors.ts';

/**
 * A count flag (`-j 4`, `--cores 16`): a whole number ≥ 1, written in decimal. `-j 0`, `-j abc` and `-j 2.5`
 * are usage errors (exit 2), never a silent default.
 */
export function parseCount(value: string, flag: string, code = 'ACCEL_USAGE_BAD_COUNT'): number {
  const n = /^[1-9]\d{0,5}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isInteger(n)) {
    throw new AccelError(code, `${flag} must be a whole number from 1 to 999999, not '${value}'`, {
      hint: `for example ${flag} 4`,
      exitCode: 2,
    });
  }
  return n;
}

/**
 * Commander's collector for a repeatable option (`--allow a --allow b`, or `--allow a,b`). A variadic option
 * (`--allow <host...>`) would swallow the operands after it: `prefetch --allow 127.0.0.1:8001 WORKSPACE`.
 */
export function collect(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  return [...(previous ?? []), ...items];
}
