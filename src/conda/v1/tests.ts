import type { Platform } from '../platform.ts';
import type { Recipe } from '../recipe.ts';
import type { OutputRecord } from '../record.ts';
import type { Node } from './node.ts';
import { scriptOf, shellQuote } from './script.ts';

/**
 * The v1 `tests:` list as the builder's one test: `script` tests' commands, requirements and files;
 * `package_contents` as checks on the installed package; `python` imports as python commands.
 */
export function readTests(node: Node | undefined, recipe: Recipe, target: Platform): OutputRecord['test'] {
  const test: OutputRecord['test'] = { commands: [], requires: [], imports: [], files: [], source_files: [] };
  if (!node) return test;
  for (const t of node.items()) {
    const script = t.get('script');
    if (script) {
      const s = scriptOf(recipe, script, script.pos(), ['bash', 'python']);
      if (s) test.commands.push(s.text);
      if (s?.interpreter === 'python') test.requires.push('python');
      const req = t.get('requirements');
      test.requires.push(...(req?.get('run')?.strings() ?? []), ...(req?.get('build')?.strings() ?? []));
      const files = t.get('files');
      test.files.push(...(files?.get('recipe')?.strings() ?? []));
      test.source_files.push(...(files?.get('source')?.strings() ?? []));
    }
    const contents = t.get('package_contents');
    if (contents) test.commands.push(...contentChecks(contents, target));
    const python = t.get('python');
    if (python) {
      const imports = python.get('imports')?.strings() ?? [];
      test.imports.push(...imports);
      for (const m of imports) test.commands.push(`python -c ${shellQuote(`import ${m}`)}`);
      if (python.get('pip_check')?.str() !== 'false') {
        test.commands.push('python -m pip check');
        test.requires.push('pip');
      }
      test.requires.push('python');
    }
  }
  test.requires = [...new Set(test.requires)];
  return test;
}

/**
 * Shell checks for `package_contents`: each listed path must exist in the test prefix (a glob: match something),
 * or for `not_exists` must not. Each check is one traced command, so a failure names the path it was about.
 */
function contentChecks(node: Node, target: Platform): string[] {
  const checks: string[] = [];
  const isGlob = (p: string) => /[*?[]/.test(p);
  const at = (p: string) => `"$PREFIX"/${shellQuote(p)}`;
  const exists = (p: string) => (isGlob(p) ? `compgen -G "$PREFIX/${p}" >/dev/null` : `test -e ${at(p)}`);
  const absent = (p: string) => (isGlob(p) ? `test -z "$(compgen -G "$PREFIX/${p}")"` : `test ! -e ${at(p)}`);
  const files = node.get('files');
  if (files?.raw.kind === 'map') {
    for (const f of files.get('exists')?.strings() ?? []) checks.push(exists(f));
    for (const f of files.get('not_exists')?.strings() ?? []) checks.push(absent(f));
  } else {
    for (const f of files?.strings() ?? []) checks.push(exists(f));
  }
  for (const h of node.get('include')?.strings() ?? []) checks.push(exists(`include/${h}`));
  const shlib = target.os === 'osx' ? 'dylib' : 'so';
  for (const l of node.get('lib')?.strings() ?? [])
    checks.push(exists(l.includes('.') ? `lib/${l}` : `lib/lib${l}.${shlib}`));
  for (const b of node.get('bin')?.strings() ?? []) checks.push(exists(`bin/${b}`));
  for (const p of node.get('site_packages')?.strings() ?? []) {
    const path = p.replace(/\./g, '/');
    checks.push(
      `compgen -G "$PREFIX/lib/python*/site-packages/${path}/__init__.py" >/dev/null || compgen -G "$PREFIX/lib/python*/site-packages/${path}.py" >/dev/null`,
    );
  }
  // Globs with ** reach into subdirectories, as rattler-build's do.
  return checks.length > 0 ? ['shopt -s globstar', ...checks] : [];
}
