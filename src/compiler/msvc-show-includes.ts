import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCompiler } from './run.ts';

/**
 * `/showIncludes`: how an MSVC driver says which headers a compile read — one line per header, in include
 * order, `Note: including file:` then one space per nesting level and the path as the compiler opened it
 * (cl.exe: absolute; clang-cl: as found, `inc/a.h`, `./local.h`). cl.exe translates the prefix into the
 * language of its installation ("Hinweis: Einlesen der Datei:", "Remarque : inclusion du fichier :", …);
 * clang-cl always prints the English one. The cache uses it where gcc's driver has `-MD -MF`: a miss adds
 * `/showIncludes`, takes the header list from the output, and replays the output without those lines unless
 * the user asked for them (Ninja's `deps = msvc` reads them from the compiler's stdout).
 */
export const SHOW_INCLUDES_PREFIX = 'Note: including file:';

export interface ShowIncludes {
  /** Every header named, first mention first, each once. */
  headers: string[];
  /** The output without the header lines, byte for byte otherwise (line ends kept). */
  rest: Buffer;
}

/** Splits a compiler's output (stdout; clang-cl with `/E` moves it to stderr) into headers and the rest. */
export function splitShowIncludes(output: Buffer | string, prefix = SHOW_INCLUDES_PREFIX): ShowIncludes {
  const bytes = typeof output === 'string' ? Buffer.from(output) : output;
  const marker = Buffer.from(prefix);
  const headers: string[] = [];
  const seen = new Set<string>();
  const kept: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl + 1;
    const line = bytes.subarray(start, end);
    if (line.subarray(0, marker.length).equals(marker)) {
      // The nesting is spaces before the path; a path of only spaces is no header.
      const path = line
        .subarray(marker.length)
        .toString('utf8')
        .replace(/\r?\n$/, '')
        .replace(/^ +/, '');
      if (path && !seen.has(path)) {
        seen.add(path);
        headers.push(path);
      }
    } else kept.push(line);
    start = end;
  }
  return { headers, rest: Buffer.concat(kept) };
}

/**
 * The prefix a driver prints before a header it was seen to include: the text of the line naming `header`,
 * up to the spaces before it. undefined when no line names it.
 */
export function showIncludesPrefixFrom(output: string, header: string): string | undefined {
  for (const line of output.split(/\r?\n/)) {
    if (!line.endsWith(header)) continue;
    const before = line.slice(0, line.length - header.length);
    // The path as printed may carry a directory (`C:\probe\accel-probe.h`, `./accel-probe.h`).
    const m = /^(.*\S) +(?:\S*[\\/])?$/.exec(before);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/**
 * Asks an MSVC driver for its `/showIncludes` prefix by compiling, in a scratch directory, a source that
 * includes one header (what sccache does, since cl.exe's prefix follows its installation's language; ccache
 * asks the user instead). Callers keep the answer with the compiler's other facts, under its identity.
 */
export async function probeShowIncludesPrefix(
  compilerPath: string,
  options: { env: NodeJS.ProcessEnv; scratch: string; extraArgs?: string[] },
): Promise<string | undefined> {
  const dir = mkdtempSync(join(options.scratch, 'showincludes.'));
  try {
    writeFileSync(join(dir, 'accel-probe.h'), '#define ACCEL_PROBE 1\n');
    writeFileSync(join(dir, 'accel-probe.c'), '#include "accel-probe.h"\nint accel_probe = ACCEL_PROBE;\n');
    const args = [...(options.extraArgs ?? []), '/nologo', '/X', '/showIncludes', '/c', '/Foaccel-probe.obj'];
    const run = await runCompiler(compilerPath, [...args, 'accel-probe.c'], { cwd: dir, env: options.env });
    if (run.code !== 0) return undefined;
    const text = `${run.stdout.toString('utf8')}\n${run.stderr.toString('utf8')}`;
    return showIncludesPrefixFrom(text, 'accel-probe.h');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
