import { spawnSync } from 'node:child_process';

/**
 * The include directories a compiler searches, as its driver reports them on stderr for `-E -v` (gcc and
 * clang print the same block):
 *
 *   #include "..." search starts here:
 *    /quote/dir
 *   #include <...> search starts here:
 *    /usr/lib/gcc/x86_64-linux-gnu/12/include
 *    /System/Library/Frameworks (framework directory)
 *   End of search list.
 *
 * Entries are kept as printed (trimmed): a relative entry is relative to the compiler's working directory.
 */
export interface SearchDirs {
  /** Searched for `#include "..."` only (-iquote), before `bracket`. */
  quote: string[];
  /** Searched for both forms, in order: -I, -isystem, CPATH and the compiler's own directories. */
  bracket: string[];
  /** The entries of `bracket` clang marks "(framework directory)" (macOS): headers under `Name.framework/Headers`. */
  frameworks: string[];
}

const QUOTE = '#include "..." search starts here:';
const BRACKET = '#include <...> search starts here:';
const END = 'End of search list.';
const FRAMEWORK = ' (framework directory)';

/** The search list in a driver's `-E -v` stderr; undefined when the text holds no complete list. */
export function parseSearchDirs(stderr: string): SearchDirs | undefined {
  const bracketAt = stderr.indexOf(BRACKET);
  const endAt = stderr.indexOf(END, bracketAt);
  if (bracketAt < 0 || endAt < 0) return undefined;
  const quoteAt = stderr.lastIndexOf(QUOTE, bracketAt);
  const lines = (from: number, to: number) =>
    stderr
      .slice(from, to)
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter(Boolean);
  const quote = quoteAt < 0 ? [] : lines(quoteAt, bracketAt);
  const bracket: string[] = [];
  const frameworks: string[] = [];
  for (const line of lines(bracketAt, endAt)) {
    const dir = line.endsWith(FRAMEWORK) ? line.slice(0, -FRAMEWORK.length) : line;
    if (dir !== line) frameworks.push(dir);
    bracket.push(dir);
  }
  return { quote, bracket, frameworks };
}

export interface SearchDirsProbe {
  /** The `-x` language: c, c++, objective-c, c-header, … */
  language: string;
  /** Options that change the list (a target's: -m32, -mabi=…), passed before `-x`. */
  options?: string[];
  /** The compiler's environment (CPATH and friends add directories); default: this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Asks the compiler (`-E -v` on an empty input); undefined when it fails or prints no search list. */
export function probeSearchDirs(compilerPath: string, probe: SearchDirsProbe): SearchDirs | undefined {
  const run = spawnSync(compilerPath, [...(probe.options ?? []), '-x', probe.language, '-E', '-v', '/dev/null'], {
    encoding: 'utf8',
    env: probe.env ?? process.env,
    timeout: 10_000,
  });
  if (run.status !== 0) return undefined;
  return parseSearchDirs(run.stderr ?? '');
}

const probed = new Map<string, SearchDirs | undefined>();

/**
 * probeSearchDirs(), asked once per process for each compiler path, language and options (the compile-cache
 * daemon scans includes for every compile; a probe costs a compiler start).
 */
export function searchDirsOnce(compilerPath: string, probe: SearchDirsProbe): SearchDirs | undefined {
  const key = [compilerPath, probe.language, ...(probe.options ?? [])].join('\0');
  if (probed.has(key)) return probed.get(key);
  const dirs = probeSearchDirs(compilerPath, probe);
  probed.set(key, dirs);
  return dirs;
}
