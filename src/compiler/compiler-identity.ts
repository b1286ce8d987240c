import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { COMPILER_NAMES } from '../core/compiler-names.ts';
import { AccelError } from '../core/errors.ts';
import { msvcFlavor } from './msvc.ts';

/** Which compiler binary this is: the file itself, by path, size and mtime (ccache's default "mtime" check). */
export interface CompilerIdentity {
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * Finds the real compiler on PATH, skipping `skipDirs` (accel's masquerade directory) and any file that is
 * accel itself, so a masqueraded `gcc` never calls itself.
 */
export function resolveCompiler(
  name: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
  skip: { dirs: string[]; self: string[] },
): string {
  // A path to accel itself (a masquerade link, which CMake records as the compiler when it configured with the
  // masquerade on PATH) stands for the compiler of that name: found on PATH past accel, never called again.
  if (name.includes('/') && isAccel(isAbsolute(name) ? name : resolve(cwd, name), skip)) {
    return resolveCompiler(basename(name), env, cwd, skip);
  }
  const candidates = name.includes('/')
    ? [isAbsolute(name) ? name : resolve(cwd, name)]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter((d) => d && !skip.dirs.includes(resolve(d)))
        .map((d) => join(resolve(cwd, d), name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (!statSync(candidate).isFile()) continue;
      const real = realpathSync(candidate);
      if (skip.self.includes(real)) continue;
      return candidate;
    } catch {
      // not here
    }
  }
  throw new AccelError('ACCEL_CC_NO_COMPILER', `${name}: command not found`, {
    hint: 'check PATH, or name the compiler with its full path',
    exitCode: 127,
  });
}

function isAccel(path: string, skip: { dirs: string[]; self: string[] }): boolean {
  if (skip.dirs.includes(resolve(dirname(path)))) return true;
  try {
    return skip.self.includes(realpathSync(path));
  } catch {
    return false;
  }
}

export function compilerIdentity(path: string): CompilerIdentity {
  const real = realpathSync(path);
  const st = statSync(real);
  return { path: real, size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
}

/** A compiler's name: gcc's and clang's (versioned, or a cross compiler's), and the MSVC drivers (msvc.ts). */
export function isCompilerName(name: string): boolean {
  const base = basename(name);
  return (
    COMPILER_NAMES.includes(base) ||
    /^(.*-)?(gcc|g\+\+|clang|clang\+\+)(-\d+(\.\d+)*)?$/.test(base) ||
    msvcFlavor(base) !== undefined
  );
}
