import { basename, isAbsolute } from 'node:path';
import { checkTool, Refusal, type Tool } from '../policy.ts';

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
/** What the syncer's REAPI actions may run (farm.reapiRun). */
export type ReapiRun = 'compilers' | 'any';

/** An action's command under `reapiRun: any`: the program as named, its arguments, its whole environment. */
export interface CommandRun {
  program: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Under `any`, every argv runs, inside the worker's sandbox. Refused only what cannot be passed on exactly:
 * an empty command, a NUL, a program name containing `=` or an environment name that is empty or holds `=`
 * (the job's environment is set by `env -i NAME=VALUE… PROGRAM` after the sandbox drops privileges).
 */
export function commandRun(argv: readonly string[], variables: readonly { name: string; value: string }[]): CommandRun {
  const [program, ...args] = argv;
  if (!program) throw unrunnable('the action has no command');
  if (program.includes('=')) throw unrunnable(`the program name '${program}' holds '='`);
  if (argv.some((a) => a.includes('\0'))) throw unrunnable('an argument holds a NUL byte');
  const env: Record<string, string> = {};
  for (const { name, value } of variables) {
    if (!name || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw unrunnable(`the environment variable ${JSON.stringify(name)} cannot be passed on`);
    }
    env[name] = value;
  }
  return { program, args, env };
}

interface CompilerCall {
  /** The name the worker runs it by (from its own PATH). */
  compiler: string;
  args: string[];
  /** A compiler (compile or link), or a binutil (ar, strip, objcopy): how mapArgs reads the arguments. */
  tool: Tool;
}

/** The setup script Bazel sources before every genrule command (a fixed path in its own repository). */
const GENRULE_SETUP = /^source (?:external\/bazel_tools|\.\.\/bazel_tools)\/tools\/genrule\/genrule-setup\.sh;\s*/;
const SHELLS = new Set(['bash', 'sh']);
/** Where a program named by absolute path may be: the worker runs its own copy from its PATH either way. */
const SYSTEM_BIN = /^\/(?:usr\/(?:local\/)?)?bin\/[^/]+$/;

export function compilerCall(argv: readonly string[], allowed: readonly string[]): CompilerCall {
  let words = [...argv];
  if (words.length === 3 && SHELLS.has(basename(words[0] ?? '')) && words[1] === '-c') {
    words = shellWords((words[2] as string).replace(GENRULE_SETUP, ''));
  }
  const [first, ...args] = words;
  if (!first) throw refused('the action has no command');
  if (first.includes('/') && (!isAbsolute(first) || !SYSTEM_BIN.test(first))) {
    throw refused(`'${first}' is not a compiler or binutil from the system's bin directories`);
  }
  const { tool, name } = checkTool(first, allowed);
  return { compiler: name, args, tool };
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

function unrunnable(message: string): Refusal {
  return new Refusal('ACCEL_REAPI_COMMAND_REFUSED', message);
}

function refused(message: string): Refusal {
  return new Refusal(
    'ACCEL_REAPI_COMMAND_REFUSED',
    `${message}; this farm runs only allowed compilers, links, ar and strip (farm.reapiRun: compilers)`,
  );
}
