// The house rules that no compiler checks (DESIGN.md, STYLE.md), read from the source itself: imports flow one
// way and never in a circle, files stay small enough to read, functions short enough to hold in one's head.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers.ts';

const SRC = join(ROOT, 'src');
const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 150;

/**
 * Levels from the top: a module imports its own folder or a strictly lower level, never a sibling feature
 * (DESIGN.md: `main → cli → {mirror, cc, farm, conda} → {fetch, compiler, reapi} → {store, net} → core`).
 */
const LEVEL: Record<string, number> = {
  'main.ts': 0,
  cli: 1,
  mirror: 2,
  cc: 2,
  farm: 2,
  conda: 2,
  fetch: 3,
  compiler: 3,
  reapi: 3,
  store: 4,
  net: 4,
  core: 5,
  types: 6,
};

function sources(): string[] {
  return (readdirSync(SRC, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(SRC, f));
}

/** Every relative import and re-export of a file (type-only ones too: they tie two modules as much). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+\.ts)'/gms)) {
    found.push(normalize(join(dirname(file), m[1] as string)));
  }
  return found;
}

const area = (file: string) => relative(SRC, file).split('/')[0] as string;

test('no import circle in src/', () => {
  const files = sources();
  const edges = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC))]));
  const circles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === 'open') {
        circles.push(
          path
            .slice(path.indexOf(next))
            .concat(next)
            .map((f) => relative(SRC, f))
            .join(' → '),
        );
      } else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  assert.deepEqual(circles, []);
});

test('imports flow down: a module imports its own folder or a lower level, never a sibling feature', () => {
  const wrong: string[] = [];
  for (const file of sources()) {
    const from = area(file);
    for (const target of importsOf(file)) {
      if (!target.startsWith(SRC)) continue;
      const to = area(target);
      if (to === from) continue;
      if ((LEVEL[to] ?? -1) <= (LEVEL[from] ?? -1)) wrong.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test(`no source file over ${MAX_FILE_LINES} lines`, () => {
  const long = sources()
    .map((f) => ({ file: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > MAX_FILE_LINES)
    .map((f) => `${f.file}: ${f.lines}`);
  assert.deepEqual(long, []);
});

/**
 * Top-level functions and class members, from their first line to the closing brace at their indentation. One
 * longer than the limit passes only when the comment right above it says why with "(long: …)".
 */
test(`no function over ${MAX_FUNCTION_LINES} lines unless its comment says why`, () => {
  const start =
    /^( {0,2})(?:export )?(?:default )?(?:async )?(?:function\*? \w+|(?:static |private |readonly |get |set |async |#)*[#\w]+\s*(?:<[^>]*>)?\()/;
  const long: string[] = [];
  for (const file of sources()) {
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      const m = start.exec(line);
      if (!m || line.trimEnd().endsWith(';') || /^\s*(if|for|while|switch|return|catch)\b/.test(line)) continue;
      const indent = (m[1] as string).length;
      let end = i + 1;
      while (end < lines.length && !new RegExp(`^ {${indent}}[}\\]]`).test(lines[end] as string)) end++;
      const length = end - i + 1;
      if (length > MAX_FUNCTION_LINES && !/\(long: /.test(lines.slice(Math.max(0, i - 12), i).join('\n'))) {
        long.push(`${relative(ROOT, file)}:${i + 1} ${line.trim().slice(0, 60)} (${length} lines)`);
      }
      i = end;
    }
  }
  assert.deepEqual(long, []);
});
