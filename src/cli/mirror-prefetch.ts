import { Command } from 'commander';
import { createLog } from '../core/log.ts';
import { createProgress } from '../core/progress.ts';
import { formatSize } from '../core/size.ts';
import { Fetcher } from '../fetch/fetcher.ts';
import { freshnessPolicy } from '../mirror/freshness.ts';
import { prefetch } from '../mirror/prefetch.ts';
import { readWantedFiles } from '../mirror/wanted.ts';
import { withStore } from './globals.ts';
import { collect, parseCount } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** `accel mirror prefetch`: fetches the URLs that lists and Bazel files name into the store, with progress. */
export function mirrorPrefetchCommand(runner: Runner): Command {
  return new Command('prefetch')
    .description(
      'warm the cache from a URL list (url [sha256] per line) or Bazel files (WORKSPACE, *.bzl, MODULE.bazel)',
    )
    .argument('<files...>', 'URL lists or Bazel files')
    .option('-j, --jobs <n>', 'downloads at once', '8')
    .option(
      '--allow <host>',
      'allow an upstream (host or host:port) on a private or loopback address; repeatable, or comma-separated',
      collect,
    )
    .action(
      runner.action(async (g, files: string[], flags: { jobs: string; allow?: string[] }) => {
        const concurrency = parseCount(flags.jobs, '--jobs');
        const started = Date.now();
        const wanted = files.flatMap((f) => readWantedFiles(f));
        const config = g.config.mirror;
        const result = await withStore(g, async (store) => {
          const progress = createProgress(wanted.length, 'prefetch', {
            quiet: g.log.level === 'quiet',
            withBytes: true,
          });
          const fetcher = new Fetcher(store, {
            allow: [...config.allow, ...(flags.allow ?? [])],
            stallMs: config.stallTimeout * 1000,
            log: createLog('quiet'),
            onBytes: (n) => progress.bytes(n),
          });
          try {
            return await prefetch(store, fetcher, wanted, {
              concurrency,
              policy: freshnessPolicy(config.ttl, config.immutable),
              now: Date.now,
              onDone: (url) => progress.tick(url),
            });
          } finally {
            progress.stop();
          }
        });
        const bytes = result.fetched.reduce((n, f) => n + f.size, 0);
        const seconds = (Date.now() - started) / 1000;
        const rate = seconds > 0 && bytes > 0 ? ` in ${seconds.toFixed(1)} s, ${formatSize(bytes / seconds)}/s` : '';
        const lines = [
          ...result.failed.map((f) => `failed  ${f.url} (${f.source}): ${f.reason}`),
          `prefetched ${result.fetched.length} files (${formatSize(bytes)}${rate}), ${result.cached.length} already cached, ${result.failed.length} failed`,
        ];
        return dataResult(result, () => lines.join('\n'), result.failed.length > 0 ? 1 : 0);
      }),
    );
}
