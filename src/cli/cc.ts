import { realpathSync } from 'node:fs';
import { isSea } from 'node:sea';
import { Command } from 'commander';
import { bump, readCounters, zeroCounters } from '../cc/counters.ts';
import { masqueradePath, writeMasqueradeDir } from '../cc/masquerade.ts';
import { RemoteCache } from '../cc/remote.ts';
import { runCc } from '../cc/wrapper.ts';
import { AccelError, isAccelError } from '../core/errors.ts';
import { formatSize } from '../core/size.ts';
import { farmCompileFn } from '../farm/dispatch.ts';
import { type Globals, withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

interface CcFlags {
  stats?: boolean;
  zeroStats?: boolean;
  masqueradeDir?: boolean;
}

export function ccCommand(runner: Runner): Command {
  return new Command('cc')
    .description('compile through the cache: accel cc -- gcc -c x.c -o x.o')
    .argument('[compiler...]', 'the compiler and its arguments, after --')
    .option('--stats', 'show hits, misses and uncacheable calls by reason')
    .option('--zero-stats', 'reset the counters')
    .option('--masquerade-dir', 'print a directory of gcc/g++/cc/c++/clang/clang++ that compile through accel')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Examples:
  $ accel cc -- gcc -O2 -c foo.c -o foo.o
  $ make CC="accel cc -- gcc" CXX="accel cc -- g++"
  $ PATH="$(accel cc --masquerade-dir):$PATH" make -j8
  $ accel cc --stats`,
    )
    .action(
      runner.action(async (g, compiler: string[], flags: CcFlags) => {
        if (flags.masqueradeDir) {
          // The command that runs this accel: the executable itself, or node and the entry script from source.
          const accel = isSea() ? [process.execPath] : [process.execPath, process.argv[1] as string];
          const dir = writeMasqueradeDir(g.home, accel);
          return dataResult({ dir }, () => dir);
        }
        if (flags.stats || flags.zeroStats) return stats(g, flags.zeroStats === true);
        if (compiler.length === 0) {
          throw new AccelError('ACCEL_USAGE_NO_COMPILER', 'no compiler given', { hint: 'accel cc -- gcc -c foo.c' });
        }
        return withStore(g, async (store) => {
          try {
            const outcome = await runCc({
              store,
              argv: compiler,
              cwd: process.cwd(),
              env: g.env,
              skip: { dirs: [masqueradePath(g.home)], self: isSea() ? [realpathSync(process.execPath)] : [] },
              remote: g.config.cc.remote ? new RemoteCache(g.config.cc.remote, g.config.cc.remoteToken) : undefined,
              compile: farmCompileFn(g.config, g.home, store),
            });
            return { kind: 'passthrough' as const, ...outcome };
          } catch (err) {
            if (isAccelError(err) && err.code !== 'ACCEL_CC_NO_COMPILER') bump(store, 'errors');
            throw err;
          }
        });
      }),
    );
}

async function stats(g: Globals, zero: boolean) {
  const { counters, info } = await withStore(g, (store) => {
    const before = readCounters(store);
    if (zero) zeroCounters(store);
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
