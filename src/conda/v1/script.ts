import { existsSync, readFileSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Recipe } from '../recipe.ts';
import { recipeError } from '../recipe-error.ts';
import { Node } from './node.ts';

/**
 * A build script: a file of the recipe (`build.sh` when none is named), inline commands (a string or a list),
 * or `{file | content, env}`. Returns null when there is nothing to run.
 */
export function scriptOf(
  recipe: Recipe,
  node: Node | undefined,
  pos: { file: string; line: number },
  interpreters: readonly string[] = ['bash'],
): { file: string | null; text: string; interpreter?: string } | null {
  const fromFile = (name: string, at: { file: string; line: number }) => {
    const candidates = name.endsWith('.sh') ? [name] : [name, `${name}.sh`];
    for (const c of candidates) {
      const path = resolve(recipe.dir, c);
      if (relative(recipe.dir, path).startsWith('..')) {
        throw recipeError('RECIPE', at, `script file ${name} is outside the recipe directory`);
      }
      if (existsSync(path) && statSync(path).isFile()) return { file: c, text: readFileSync(path, 'utf8') };
    }
    return undefined;
  };
  if (!node) return fromFile('build.sh', pos) ?? null;
  if (node.raw.kind === 'seq') return { file: null, text: node.strings().join('\n') };
  if (node.raw.kind === 'scalar') {
    const s = node.str();
    // One line naming a file of the recipe is that file; anything else is a command.
    if (!s.includes('\n')) {
      const f = fromFile(s.trim(), node.pos());
      if (f) return f;
      if (/\.(sh|bat|ps1)$/.test(s.trim())) {
        throw recipeError('RECIPE', node.pos(), `build script ${s.trim()} is not in ${recipe.dir}`);
      }
    }
    return { file: null, text: s };
  }
  const interpreter = node.get('interpreter')?.str() ?? 'bash';
  if (!interpreters.includes(interpreter)) {
    throw recipeError(
      'UNSUPPORTED',
      node.get('interpreter')?.pos() ?? node.pos(),
      `${node.path}/interpreter: ${interpreter} is not supported here; accel runs ${interpreters.join(' or ')} scripts here`,
    );
  }
  const env = node.get('env');
  const exports =
    env?.raw.kind === 'map'
      ? env.raw.entries.map((e) => `export ${e.key}=${shellQuote(new Node(e.value, node.file, '').str())}`)
      : [];
  const named = node.get('file')?.str();
  const content = node.get('content');
  let body: { file: string | null; text: string } | null;
  if (named) {
    const f = fromFile(named, node.get('file')?.pos() ?? node.pos());
    if (!f)
      throw recipeError(
        'RECIPE',
        node.get('file')?.pos() ?? node.pos(),
        `build script ${named} is not in ${recipe.dir}`,
      );
    body = f;
  } else if (content) {
    body = { file: null, text: content.raw.kind === 'seq' ? content.strings().join('\n') : content.str() };
  } else {
    body = fromFile('build.sh', node.pos()) ?? null;
  }
  if (!body) return null;
  if (interpreter !== 'bash') {
    // A test in python: its text fed to the test environment's python, after the exports.
    const tag = 'ACCEL_PYTHON_SCRIPT';
    const text = [...exports, `python - <<'${tag}'`, body.text.replace(/\n$/, ''), tag].join('\n');
    return { file: null, text, interpreter };
  }
  if (exports.length === 0) return body;
  return { file: null, text: `${exports.join('\n')}\n${body.text}` };
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
