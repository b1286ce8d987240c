import { isAbsolute, resolve } from 'node:path';
import { AccelError } from '../core/errors.ts';

/**
 * Base directories (ccache's `base_dir`, several as in ccache 4.12): an absolute path under one of them is
 * written in the cache key and in the manifests relative to the working directory, so two checkouts of one
 * project at different paths share results. Only the key changes: the compiler still gets the arguments as
 * written, so an object is always the one the compiler makes in place.
 *
 * The relative form is `$CWD` followed by one `/..` per directory of the cwd not shared with the path, then
 * the rest of the path verbatim (`/ckA/src/../inc/h.h` from `/ckA/build` is `$CWD/../src/../inc/h.h`): put
 * back under another cwd it is, byte for byte, what that compiler would have written.
 */
export const CWD_MARK = '$CWD';

/**
 * The base directories of a setting (a list, or one string of `:`-separated paths, ccache's syntax);
 * `where` names the setting or variable for the error.
 */
export function parseBaseDirs(value: string | readonly string[] | undefined, where: string): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? value.split(':') : value;
  const dirs: string[] = [];
  for (const item of items) {
    if (item === '') continue;
    if (!isAbsolute(item)) {
      throw new AccelError('ACCEL_CONFIG_BASE_DIR_RELATIVE', `${where}: base directory ${item} is not absolute`, {
        hint: 'give absolute paths separated by ":", e.g. ACCEL_CC_BASEDIRS=/builds:/home/ci',
      });
    }
    const dir = resolve(item);
    if (dir === '/') {
      throw new AccelError('ACCEL_CONFIG_BASE_DIR_ROOT', `${where}: / as a base directory rewrites system paths too`, {
        hint: 'name the directory that holds the checkouts, e.g. /builds or /home',
      });
    }
    dirs.push(dir);
  }
  return dirs;
}

/** Whether an absolute path lies in one of the base directories (the directory itself included). */
export function underBaseDir(path: string, baseDirs: readonly string[]): boolean {
  return baseDirs.some((dir) => path === dir || path.startsWith(`${dir}/`));
}

/**
 * The `$CWD` form of an absolute path under a base directory, or undefined: not under one, or not expressible
 * exactly (the path leaves the shared part with `.` or `..`, or cwd is not absolute).
 */
export function relativeToCwd(path: string, cwd: string, baseDirs: readonly string[]): string | undefined {
  if (baseDirs.length === 0 || !path.startsWith('/') || !cwd.startsWith('/')) return undefined;
  if (path.length > 1 && path.endsWith('/')) {
    const dir = relativeToCwd(path.slice(0, -1), cwd, baseDirs);
    return dir === undefined ? undefined : `${dir}/`;
  }
  if (!underBaseDir(path, baseDirs)) return undefined;
  const p = path.split('/').slice(1);
  const c = cwd === '/' ? [] : cwd.split('/').slice(1);
  let shared = 0;
  while (shared < p.length && shared < c.length && p[shared] === c[shared] && !isDot(p[shared] as string)) shared++;
  const rest = p.slice(shared);
  if (rest.length > 0 && isDot(rest[0] as string)) return undefined;
  const ups = c.length - shared;
  return [CWD_MARK, ...Array<string>(ups).fill('..'), ...rest].join('/');
}

/** A path as the key or a manifest holds it, made absolute again under this cwd. */
export function expandCwd(path: string, cwd: string): string {
  if (path !== CWD_MARK && !path.startsWith(`${CWD_MARK}/`)) return resolve(cwd, path);
  const parts = path.split('/').slice(1);
  let ups = 0;
  while (parts[ups] === '..') ups++;
  const c = cwd === '/' ? [] : cwd.split('/').slice(1);
  return `/${[...c.slice(0, Math.max(0, c.length - ups)), ...parts.slice(ups)].join('/')}`;
}

/** A path in its key form: relative to the cwd when under a base directory, else as written. */
export function keyPath(path: string, cwd: string, baseDirs: readonly string[]): string {
  return relativeToCwd(path, cwd, baseDirs) ?? path;
}

function isDot(part: string): boolean {
  return part === '.' || part === '..' || part === '';
}
