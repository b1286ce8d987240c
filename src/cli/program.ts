import { Command, CommanderError, Option } from 'commander';
import { errnoCode, isAccelError } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';
import type { CommandResult } from './result.ts';
import { Runner } from './runner.ts';

/** Exit codes (DESIGN.md): 0 ok, 1 AccelError, 2 usage or config, 70 internal bug. */
const EXIT_OK = 0;
const EXIT_USAGE = 2;
const EXIT_BUG = 70;

/**
 * Each command group loads only when it runs: `accel cc` (thousands of calls per build) must not pay for the
 * mirror, apt and HTTP code. In the executable esbuild turns these imports into lazily initialised modules.
 */
const COMMANDS: Record<string, { hidden?: boolean; load: () => Promise<(runner: Runner) => Command> }> = {
  store: { load: async () => (await import('./store.ts')).storeCommand },
  mirror: { load: async () => (await import('./mirror.ts')).mirrorCommand },
  cc: { load: async () => (await import('./cc.ts')).ccCommand },
  certs: { load: async () => (await import('./certs.ts')).certsCommand },
  syncer: { load: async () => (await import('./syncer.ts')).syncerCommand },
  worker: { load: async () => (await import('./worker.ts')).workerCommand },
  farm: { load: async () => (await import('./farm.ts')).farmCommand },
  conda: { load: async () => (await import('./conda.ts')).condaCommand },
  version: { load: async () => (await import('./version.ts')).versionCommand },
  completion: {
    load: async () => {
      const { completionCommand } = await import('./completion.ts');
      // The script covers the whole tree, so it is made from a program with every command group loaded.
      return (runner: Runner) => completionCommand(runner, () => buildProgram(new Runner(), []));
    },
  },
  debug: { hidden: true, load: async () => (await import('./debug.ts')).debugCommand },
};

/** The command group argv names (skipping global options), or all of them for help and errors. */
function wanted(argv: string[]): string[] {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--home') i++;
    else if (!arg.startsWith('-')) return arg in COMMANDS ? [arg] : Object.keys(COMMANDS);
  }
  return Object.keys(COMMANDS);
}

/** The command tree; `argv` selects which command groups load (all of them for help, errors and tests). */
export async function buildProgram(runner: Runner, argv: string[]): Promise<Command> {
  const program = new Command('accel')
    .description('build accelerator: dependency mirror, compile cache and farm, over one content-addressed store')
    .version(VERSION, '-V, --version', 'print the accel version')
    .showSuggestionAfterError()
    // `accel cc -- gcc -c x.c`: options after the subcommand's operands belong to the compiler.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
Examples:
  $ accel store put ./lua-5.4.6.tar.gz          store a file, print its sha256
  $ accel store get <digest> -o lua.tar.gz      restore it (atomic write)
  $ accel store gc --max-size 10G               evict least recently used blobs
  $ accel --home /tmp/s --json store info       another store, machine-readable

Exit status: 0 ok, 1 error, 2 usage or configuration error, 70 internal error.
Settings: flags > ACCEL_* environment > $ACCEL_HOME/config.json > defaults.
`,
    );
  for (const name of wanted(argv)) {
    const command = COMMANDS[name] as (typeof COMMANDS)[string];
    program.addCommand((await command.load())(runner), { hidden: command.hidden === true });
  }
  configureDeep(program);
  return program;
}

/**
 * The options every command takes, wherever they are typed before `--`: `accel --json store info`,
 * `accel store info --json` and `accel cc --stats --json` all work, as git, cargo and kubectl allow. Each
 * command of the tree declares them (under "Global Options:" in its help); `optsWithGlobals()` merges them,
 * the one typed nearest the end winning.
 */
function globalOptions(): Option[] {
  return [
    new Option('--home <dir>', 'store directory (default: $ACCEL_HOME, $XDG_CACHE_HOME/accel, ~/.cache/accel)'),
    new Option('--json', 'print results as JSON on stdout'),
    new Option('-v, --verbose', 'log more on stderr'),
    new Option('-q, --quiet', 'log only errors on stderr'),
  ];
}

/** Subcommands added with addCommand do not inherit these settings, so apply them to the whole tree. */
function configureDeep(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({ outputError: (text, write) => write(`accel: ${text}`) });
  for (const option of globalOptions()) cmd.addOption(option.helpGroup('Global Options:'));
  cmd.commands.forEach(configureDeep);
}

/** Runs the CLI and returns the exit code, which `main.ts` applies. */
export async function run(argv: string[]): Promise<number> {
  const runner = new Runner();
  const program = await buildProgram(runner, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return runner.result ? await emit(runner.result, runner.json) : EXIT_OK;
  } catch (err) {
    return report(err);
  }
}

async function emit(result: CommandResult, json: boolean): Promise<number> {
  if (result.kind === 'passthrough') {
    process.stderr.write(result.stderr);
    process.stdout.write(result.stdout);
    return result.exitCode;
  }
  if (result.kind === 'stream') {
    await result.write(process.stdout);
    return EXIT_OK;
  }
  const text = json ? JSON.stringify(result.data, null, 2) : result.text();
  if (text !== '') process.stdout.write(`${text}\n`);
  return result.exitCode ?? EXIT_OK;
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander already printed help, the version or the usage error.
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (isAccelError(err)) {
    process.stderr.write(`accel: error: ${err.message} [${err.code}]\n`);
    if (err.hint) process.stderr.write(`accel: hint: ${err.hint}\n`);
    return err.exitCode;
  }
  // A reader that went away (`accel store get x | head`) is not an error of ours.
  if (errnoCode(err) === 'EPIPE') return EXIT_OK;
  process.stderr.write(
    `accel: internal error (a bug; please report it with this trace):\n${(err as Error)?.stack ?? String(err)}\n`,
  );
  return EXIT_BUG;
}
