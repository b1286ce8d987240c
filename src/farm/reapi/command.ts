import { basename, isAbsolute } from 'node:path';
import { checkCompiler, Refusal } from '../policy.ts';

/**
 * What an REAPI action may run on accel's workers: exactly what the farm runs for `accel cc` — an allowed
 * compiler with arguments the allowlist passes (checked again by mapArgs on the syncer and the worker). Any
 * engine runs arbitrary commands; accel's does not, so a farm certificate never becomes a shell on a worker.
 *
 * Bazel wraps a genrule's command in `bash -c "source …/genrule-setup.sh; CMD"`. When CMD is one plain
 * command (words, quotes; no expansion, redirection, pipes, lists or globs) it is taken apart here and the
 * compiler runs directly, without a shell: what bash would have run, minus the setup script's `set -e`
 * options, which change nothing for a single command.
 */
interface CompilerCall {
  compiler: string;
  args: string[];
}

/** The setup script Bazel sources before every genrule command (a fixed path in its own repository). */
const GENRULE_SETUP = /^source (?:external\/bazel_tools|\.\.\/bazel_tools)\/tools\/genrule\/genrule-setup\.sh;\s*/;
const SHELLS = new Set(['bash', 'sh']);
/** Where a compiler named by absolute path may be: the worker runs its own copy from its PATH either way. */
const SYSTEM_BIN = /^\/(?:usr\/(?:local\/)?)?bin\/[^/]+$/;

export function compilerCall(argv: readonly string[], allowed: readonly string[]): CompilerCall {
  let words = [...argv];
  if (words.length === 3 && SHELLS.has(basename(words[0] ?? '')) && words[1] === '-c') {
    words = shellWords((words[2] as string).replace(GENRULE_SETUP, ''));
  }
  const [first, ...args] = words;
  if (!first) throw refused('the action has no command');
  let compiler = first;
  if (first.includes('/')) {
    if (!isAbsolute(first) || !SYSTEM_BIN.test(first)) {
      throw refused(`'${first}' is not a compiler from the system's bin directories`);
    }
    compiler = basename(first);
  }
  checkCompiler(compiler, allowed);
  return { compiler, args };
}

/** Characters a word may hold unquoted: no expansion, globbing, redirection or command separators. */
const PLAIN = /[A-Za-z0-9_@%+=:,./-]/;

/**
 * A shell command line split into words, for the one shape accepted: a single simple command. Single quotes
 * hold anything but a quote; double quotes anything but `$`, backquote, backslash and the quote. Anything else
 * is refused, naming the character.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw refused(`an unclosed ${c} in the command`);
      const quoted = line.slice(i + 1, end);
      if (c === '"' && /[$`\\]/.test(quoted)) throw refused(`an expansion inside double quotes: "${quoted}"`);
      word = (word ?? '') + quoted;
      i = end;
      continue;
    }
    if (!PLAIN.test(c)) {
      throw refused(
        `the command is not a single compiler call: '${c}' at column ${i + 1} of ${JSON.stringify(line.slice(0, 200))}`,
      );
    }
    word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

function refused(message: string): Refusal {
  return new Refusal('ACCEL_REAPI_COMMAND_REFUSED', `${message}; this farm runs only allowed compilers`);
}
