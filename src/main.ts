import { VERSION } from './core/version.ts';

/*
 * The entry point, and the only place that ends the process. It loads the CLI lazily: `--version` answers
 * before commander, the store or SQLite are loaded (in the single executable esbuild turns the dynamic
 * import into a lazily initialised module, so nothing else is evaluated).
 */
const invokedAs = (process.argv0.split('/').pop() ?? '').replace(/-\d+(\.\d+)*$/, '');
// A masquerade link (gcc → accel, from `accel cc --masquerade-dir`) makes accel the compile wrapper.
const argv = /^(.*-)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)$/.test(invokedAs)
  ? ['cc', '--', invokedAs, ...process.argv.slice(2)]
  : process.argv.slice(2);

if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A reader that went away (`accel store get x | head`) is not an error of ours.
    if (err.code === 'EPIPE') process.exit(0);
  });
  // exitCode rather than exit(): let stdout drain first. No top-level await: the executable runs CommonJS.
  import('./cli/program.ts').then(
    ({ run }) =>
      run(argv).then((code) => {
        process.exitCode = code;
      }),
    (err: unknown) => {
      process.stderr.write(
        `accel: internal error (a bug; please report it with this trace):\n${String((err as Error)?.stack ?? err)}\n`,
      );
      process.exitCode = 70;
    },
  );
}
