import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { cacheHealthFor } from '../cc/cache-health.ts';
import { accelItself, installClient } from '../cc/client-install.ts';
import { startDaemon } from '../cc/daemon.ts';
import { compileViaDaemon, daemonStatus, startDetached, stopDaemon, waitFor } from '../cc/daemon-client.ts';
import { writeMasqueradeDir } from '../cc/masquerade.ts';
import { daemonPaths } from '../cc/protocol.ts';
import { RemoteCache } from '../cc/remote.ts';
import { runCc } from '../cc/wrapper.ts';
import { parseBaseDirs } from '../compiler/base-dirs.ts';
import { runCompiler } from '../compiler/run.ts';
import { AccelError, isAccelError } from '../core/errors.ts';
import { parseRemoteTiers, RemoteSpecProblem } from '../core/remote-tiers.ts';
import { formatSize } from '../core/size.ts';
import { farmCompileFn } from '../farm/dispatch.ts';
import { Store } from '../store/store.ts';
import { type Globals, sizeLimitOf, withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';
import { runService } from './service.ts';

interface CcFlags {
  explain?: boolean;
  stats?: boolean;
  zeroStats?: boolean;
  masqueradeDir?: boolean;
  clientDir?: boolean;
}

export function ccCommand(runner: Runner): Command {
  const cc = new Command('cc')
    .description('compile through the cache: accel cc -- gcc -c x.c -o x.o')
    .argument('[compiler...]', 'the compiler and its arguments, after --')
    .option('--explain', 'say whether this compile would hit, and if not why (nothing is compiled or written)')
    .option('--stats', 'show hits, misses and uncacheable calls by reason')
    .option('--zero-stats', 'reset the counters')
    .option(
      '--masquerade-dir',
      'print a directory of gcc/g++/cc/c++/clang/clang++ that compile through accel (the native client)',
    )
    .option(
      '--client-dir',
      'install the native client and print its directory (accel-cc, a launcher: CMAKE_C_COMPILER_LAUNCHER=accel-cc)',
    )
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Examples:
  $ accel cc -- gcc -O2 -c foo.c -o foo.o
  $ make CC="accel cc -- gcc" CXX="accel cc -- g++"
  $ PATH="$(accel cc --masquerade-dir):$PATH" make -j8
  $ PATH="$(accel cc --client-dir):$PATH" cmake -G Ninja -DCMAKE_C_COMPILER_LAUNCHER=accel-cc ..
  $ accel cc --explain -- gcc -O2 -c foo.c -o foo.o
  $ ACCEL_CC_EXPLAIN=1 make -j8      (why each miss missed: $ACCEL_HOME/run/cc-explain.log)
  $ ACCEL_CC_BASEDIRS=/builds make   (checkouts under /builds share results)
  $ accel cc --stats
  $ accel cc daemon --status`,
    )
    .action(
      runner.action(async (g, compiler: string[], flags: CcFlags) => {
        if (flags.masqueradeDir) {
          installClient(g.home);
          const dir = writeMasqueradeDir(g.home);
          return dataResult({ dir }, () => dir);
        }
        if (flags.clientDir) {
          const dir = dirname(installClient(g.home).client);
          return dataResult({ dir }, () => dir);
        }
        if (flags.stats || flags.zeroStats) return stats(g, flags.zeroStats === true);
        if (compiler.length === 0) {
          throw new AccelError('ACCEL_USAGE_NO_COMPILER', 'no compiler given', { hint: 'accel cc -- gcc -c foo.c' });
        }
        // With a daemon running it does the work: no store to open here, and its stat cache is warm.
        if (!flags.explain && existsSync(daemonPaths(g.home).socket)) {
          const answer = await compileViaDaemon(g.home, compiler, process.cwd(), g.env);
          if (answer?.kind === 'done') {
            const { exitCode, stdout, stderr } = answer;
            return { kind: 'passthrough' as const, exitCode, stdout, stderr };
          }
          if (answer?.kind === 'delegate') {
            const run = await runCompiler(answer.compiler, compiler.slice(1), {
              cwd: process.cwd(),
              env: g.env,
              inherit: true,
            });
            return { kind: 'passthrough' as const, exitCode: run.code, stdout: run.stdout, stderr: run.stderr };
          }
        }
        return withStore(g, async (store) => {
          try {
            const outcome = await runCc({
              store,
              argv: compiler,
              cwd: process.cwd(),
              env: g.env,
              skip: accelItself(g.home),
              remote: flags.explain ? undefined : remoteCache(g),
              compile: farmCompileFn(g.config, g.home, store),
              ...cacheSettings(g),
              explainOnly: flags.explain,
            });
            return { kind: 'passthrough' as const, ...outcome };
          } catch (err) {
            if (isAccelError(err) && err.code !== 'ACCEL_CC_NO_COMPILER') store.counters.bump('errors');
            throw err;
          }
        });
      }),
    );
  cc.addCommand(daemonCommand(runner));
  return cc;
}

interface DaemonFlags {
  detach?: boolean;
  status?: boolean;
  stop?: boolean;
  idleTimeout?: number;
  jobs?: number;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function daemonCommand(runner: Runner): Command {
  return new Command('daemon')
    .description('the compile-cache daemon behind accel-cc and accel cc (started on demand, exits when idle)')
    .option('--detach', 'start in the background; return once it answers')
    .option('--status', 'show the running daemon')
    .option('--stop', 'stop the running daemon')
    .option(
      '--idle-timeout <seconds>',
      'exit after this long without a request (default: cc.daemonIdleTimeout)',
      positiveNumber,
    )
    .option('--jobs <n>', 'compiles at once (default: the number of CPUs)', positiveNumber)
    .addHelpText(
      'after',
      `
Examples:
  $ accel cc daemon --detach          start it now (accel-cc starts it on demand anyway)
  $ accel cc daemon --status
  $ accel cc daemon --stop`,
    )
    .action(
      runner.action(async (g, flags: DaemonFlags) => {
        if (flags.status) {
          const status = await daemonStatus(g.home);
          if (!status) {
            throw new AccelError('ACCEL_CC_DAEMON_NOT_RUNNING', `no cc daemon runs for ${g.home}`, {
              hint: 'accel cc daemon --detach starts one; accel-cc starts one on demand',
            });
          }
          return dataResult(status, () =>
            [
              `pid:           ${status.pid}`,
              `uptime:        ${status.uptimeSeconds} s (exits after ${status.idleTimeoutSeconds} s idle)`,
              `requests:      ${status.requests}`,
              `in progress:   ${status.active} (${status.compiling} compiling, ${status.queued} waiting; ${status.jobs} at once)`,
            ].join('\n'),
          );
        }
        if (flags.stop) {
          const pid = await stopDaemon(g.home);
          if (pid !== undefined) await waitFor(() => !existsSync(daemonPaths(g.home).pid), 10_000);
          return dataResult({ stopped: pid ?? null }, () =>
            pid === undefined ? 'no cc daemon was running' : `stopped the cc daemon (pid ${pid})`,
          );
        }
        const idleSeconds = flags.idleTimeout ?? g.config.cc.daemonIdleTimeout;
        const jobs = Math.floor(flags.jobs ?? availableParallelism());
        installClient(g.home);
        if (flags.detach) {
          const status = await startDetached(g.home, g.env, idleSeconds, jobs);
          return dataResult(status, () => `cc daemon running (pid ${status.pid})`);
        }

        const { shared, verifyHits } = g.config.store;
        const store = Store.open({ home: g.home, log: g.log, shared, verifyHits });
        const limit = store.limitSize(sizeLimitOf(g.config));
        try {
          const daemon = await startDaemon({
            home: g.home,
            store,
            log: g.log,
            jobs,
            idleMs: idleSeconds * 1000,
            skip: accelItself(g.home),
            remote: remoteCache(g),
            compile: farmCompileFn(g.config, g.home, store),
            ...cacheSettings(g),
          });
          g.log.info(`cc daemon: pid ${process.pid} on ${daemonPaths(g.home).socket}`);
          await runService(daemon);
        } finally {
          await limit.close();
          store.close();
        }
        return dataResult({ stopped: process.pid }, () => '');
      }),
    );
}

/** The settings the wrapper takes (a compile's own ACCEL_CC_BASEDIRS and ACCEL_CC_EXPLAIN override them). */
function cacheSettings(g: Globals): { baseDirs: string[]; explain: string } {
  return { baseDirs: parseBaseDirs(g.config.cc.baseDirs, 'cc.baseDirs'), explain: g.config.cc.explain };
}

/** The shared caches `cc.remote` names (checked when the config was loaded), or none. */
function remoteCache(g: Globals): RemoteCache | undefined {
  const tiers = parseRemoteTiers(g.config.cc.remote);
  if (tiers instanceof RemoteSpecProblem) throw new Error(`cc.remote passed the schema: ${tiers.problem}`);
  if (tiers.length === 0) return undefined;
  return new RemoteCache(tiers, { token: g.config.cc.remoteToken || undefined, health: cacheHealthFor(g.home) });
}

async function stats(g: Globals, zero: boolean) {
  const { counters, info } = await withStore(g, (store) => {
    const before = store.counters.read();
    if (zero) store.counters.zero();
    return { counters: before, info: store.info() };
  });
  const hits = (counters.hit ?? 0) + (counters['remote hit'] ?? 0);
  const misses = counters.miss ?? 0;
  const uncacheable = Object.entries(counters).filter(([k]) => k.startsWith('uncacheable: '));
  const pct = (n: number, of: number) => (of === 0 ? '' : ` (${((100 * n) / of).toFixed(1)} %)`);
  const lines = [
    `cacheable calls:     ${hits + misses}`,
    `  hits:              ${hits}${pct(hits, hits + misses)}`,
    `    local:           ${counters.hit ?? 0}`,
    `    remote:          ${counters['remote hit'] ?? 0}`,
    ...Object.entries(counters)
      .filter(([k]) => k.startsWith('remote hit: '))
      .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
      .map(([k, v]) => `      ${`${k.slice('remote hit: '.length)}:`.padEnd(15)}${v}`),
    `  misses:            ${misses}${pct(misses, hits + misses)}`,
    `uncacheable calls:   ${uncacheable.reduce((n, [, v]) => n + v, 0)}`,
    ...uncacheable.map(([k, v]) => `  ${k.slice('uncacheable: '.length)}: ${v}`),
    `failed compiles:     ${counters['compile failed'] ?? 0}`,
    `errors:              ${counters.errors ?? 0}`,
    `store:               ${info.blobs} blobs, ${formatSize(info.bytes)} (${info.home})`,
    ...(zero ? ['statistics zeroed'] : []),
  ];
  return dataResult({ counters, store: { blobs: info.blobs, bytes: info.bytes } }, () => lines.join('\n'));
}
