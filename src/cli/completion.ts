import { type Command, Command as Commander } from 'commander';
import { AccelError } from '../core/errors.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** One command of the tree, as the completion scripts need it. */
interface Node {
  /** Space-separated path from the root ("" for accel itself, "mirror apt" for `accel mirror apt`). */
  path: string;
  description: string;
  subcommands: string[];
  /** Every flag spelling (`-j`, `--jobs`). */
  flags: string[];
  /** The flags that take a value: the word after them is not a subcommand. */
  valued: string[];
}

/** Walks commander's tree (every command group loaded) into the rows the scripts are made of. */
function commandTree(program: Command): Node[] {
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string) => {
    const visible = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const flags: string[] = [];
    const valued: string[] = [];
    for (const option of cmd.options) {
      const spellings = [option.short, option.long].filter((f): f is string => Boolean(f));
      flags.push(...spellings);
      if (option.required || option.optional) valued.push(...spellings);
    }
    flags.push('--help');
    nodes.push({ path, description: cmd.description(), subcommands: visible.map((c) => c.name()), flags, valued });
    for (const sub of visible) walk(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  walk(program, '');
  return nodes;
}

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/** A word for a shell script in single quotes. */
function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function bashScript(nodes: Node[]): string {
  // Keys are the path from `accel` itself: bash's associative arrays take no empty key.
  const key = (n: Node) => q(n.path === '' ? 'accel' : `accel ${n.path}`);
  const table = (name: string, pick: (n: Node) => string[]) =>
    `  declare -A ${name}=(\n${nodes.map((n) => `    [${key(n)}]=${q(pick(n).join(' '))}`).join('\n')}\n  )`;
  return `# accel completion for bash. Load it with:  source <(accel completion bash)
# or install it:  accel completion bash > ~/.local/share/bash-completion/completions/accel
_accel() {
${table('cmds', (n) => n.subcommands)}
${table('flags', (n) => n.flags)}
${table('valued', (n) => n.valued)}
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path=accel w i skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    # After --, the words are the compiler's: let bash complete files.
    [[ $w == -- ]] && return 0
    if [[ $w == -* ]]; then
      [[ " \${valued[$path]} --home " == *" $w "* ]] && skip=1
      continue
    fi
    [[ " \${cmds[$path]} " == *" $w "* ]] && path="$path $w"
  done
  # The value of a flag: files and directories.
  if [[ " \${valued[$path]} --home " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "\${flags[$path]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${cmds[$path]}" -- "$cur"))
    ((\${#COMPREPLY[@]})) || COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _accel accel
`;
}

function zshScript(nodes: Node[]): string {
  // zsh runs the bash function through its bash-completion layer, so both shells complete the same way.
  return `#compdef accel
# accel completion for zsh. Load it with:  source <(accel completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(nodes).replace(/^# accel completion for bash.*\n# or install.*\n/, '')}`;
}

function fishScript(nodes: Node[]): string {
  const lines = [
    '# accel completion for fish. Load it with:  accel completion fish | source',
    '# or install it:  accel completion fish > ~/.config/fish/completions/accel.fish',
    '# The command path typed so far ("mirror apt" for `accel mirror apt …`), from the known subcommands.',
    'function __accel_path',
    '    set -l path ""',
    '    for w in (commandline -opc)[2..-1]',
    '        test "$w" = "--"; and return 1',
    '        string match -q -- "-*" $w; and continue',
    '        set -l candidate (string trim -- "$path $w")',
    '        contains -- $candidate $__accel_commands; and set path $candidate',
    '    end',
    '    echo $path',
    'end',
    'function __accel_at',
    '    set -l path (__accel_path); or return 1',
    '    test "$path" = "$argv[1]"',
    'end',
    `set -g __accel_commands ${nodes
      .filter((n) => n.path !== '')
      .map((n) => q(n.path))
      .join(' ')}`,
    'complete -c accel -f',
    ...['--home', '--json', '--verbose', '--quiet'].map(
      (f) => `complete -c accel -l ${f.slice(2)}${f === '--home' ? ' -r -F' : ''}`,
    ),
  ];
  for (const node of nodes) {
    const here = `-n ${q(`__accel_at ${q(node.path)}`)}`;
    for (const sub of node.subcommands) {
      const child = nodes.find((n) => n.path === (node.path === '' ? sub : `${node.path} ${sub}`));
      lines.push(`complete -c accel ${here} -a ${q(sub)} -d ${q(child?.description.split('\n')[0] ?? '')}`);
    }
    for (const flag of node.flags.filter(
      (f) => f.startsWith('--') && !['--home', '--json', '--verbose', '--quiet'].includes(f),
    )) {
      lines.push(`complete -c accel ${here} -l ${flag.slice(2)}${node.valued.includes(flag) ? ' -r -F' : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function completionCommand(runner: Runner, program: () => Promise<Command>): Command {
  return new Commander('completion')
    .description('print a shell completion script (bash, zsh or fish) for every command and flag')
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText(
      'after',
      `
Examples:
  $ source <(accel completion bash)                       this shell
  $ accel completion bash > ~/.local/share/bash-completion/completions/accel
  $ accel completion fish > ~/.config/fish/completions/accel.fish`,
    )
    .action(
      runner.action(async (_g, shell: string) => {
        if (!(SHELLS as readonly string[]).includes(shell)) {
          throw new AccelError('ACCEL_USAGE_BAD_SHELL', `no completion for '${shell}'`, {
            hint: `choose one of ${SHELLS.join(', ')}`,
            exitCode: 2,
          });
        }
        const nodes = commandTree(await program());
        const script = { bash: bashScript, zsh: zshScript, fish: fishScript }[shell as Shell](nodes);
        return dataResult({ shell, script }, () => script.trimEnd());
      }),
    );
}
