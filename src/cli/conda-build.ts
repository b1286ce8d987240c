import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { installClient } from '../cc/client-install.ts';
import { startDetached } from '../cc/daemon-client.ts';
import { readChannel } from '../conda/builder/channel-packages.ts';
import type {
  BuildContext,
  CacheTally,
  CompileCache,
  FeedstockResult,
  PackageTools,
  TestMode,
} from '../conda/builder/context.ts';
import { buildFeedstocks } from '../conda/builder/graph.ts';
import { recentBuilds } from '../conda/builder/history.ts';
import { hostSubdir } from '../conda/platform.ts';
import { renderFeedstocks } from '../conda/render-set.ts';
import { UpstreamChannel } from '../conda/solve/upstream.ts';
import { AccelError, isAccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import { formatSize } from '../core/size.ts';
import { readMachineSources } from '../mirror/apt/sources.ts';
import type { Store } from '../store/store.ts';
import { type Globals, withStore } from './globals.ts';
import { parseCount } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

interface BuildFlags {
  all?: string;
  targetPlatform?: string;
  channel?: string;
  jobs: string;
  test?: TestMode;
  variantConfig?: string[];
  allow?: string[];
  ciSupport: boolean;
  source?: string[];
  keepGoing?: boolean;
  ccCache: boolean;
  testCache: boolean;
  buildCache: boolean;
  upstreamChannel?: string[];
  skipExisting?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** condapkg's installer and channel index, as the builder uses them; loaded when a build needs them. */
const packageTools: PackageTools = {
  install: async (file, prefix) => {
    const { installCondaPackage } = await import('../conda/pkg/install.ts');
    await installCondaPackage(file, prefix);
  },
  publish: async (channel, file) => {
    // A rebuild of the same name-version-build (an edited recipe) replaces the local channel's copy, as
    // conda-build does with its output folder; the index is rewritten right after.
    const { addToChannel } = await import('../conda/pkg/channel-index.ts');
    const { readCondaInfo } = await import('../conda/pkg/read.ts');
    const subdir = (await readCondaInfo(file)).index.subdir;
    const have = readChannel(channel, [subdir]).find((p) => p.filename === basename(file));
    if (have) rmSync(join(channel, subdir, basename(file)), { force: true });
    await addToChannel(channel, file);
  },
  runExports: async (file) => {
    const { readCondaInfo } = await import('../conda/pkg/read.ts');
    const info = await readCondaInfo(file);
    const member = info.info.find((m) => m.name.endsWith('run_exports.json'));
    const parsed = member ? (JSON.parse(member.data.toString('utf8')) as { weak?: string[]; strong?: string[] }) : {};
    return { weak: parsed.weak ?? [], strong: parsed.strong ?? [] };
  },
};

export function condaBuildCommand(runner: Runner): Command {
  return new Command('build')
    .description(
      'build feedstocks into a local channel: sources through the store, cross toolchain, tests, skip if unchanged',
    )
    .argument('[feedstocks...]', 'feedstock (or recipe) directories')
    .option('--all <dir>', 'build every feedstock under <dir>, in dependency order')
    .option('--target-platform <subdir>', 'platform to build for, e.g. linux-aarch64 (default: this machine)')
    .option('--channel <dir>', 'local channel: host requirements come from it, packages go to it', 'channel')
    .option('-j, --jobs <n>', 'feedstocks built at once', '2')
    .addOption(
      new Option(
        '--test <mode>',
        'run tests natively, under qemu, or not (default: emulated when cross-building)',
      ).choices(['native', 'emulated', 'skip']),
    )
    .option('--variant-config <file>', 'conda_build_config.yaml over each recipe’s own (repeatable)', collect)
    .option(
      '--source <name=file>',
      'use a local archive instead of a source URL: NAME is a feedstock or the URL’s file name (repeatable)',
      collect,
    )
    .option(
      '--upstream-channel <url>',
      'a channel to solve against after the local one (repeatable, in priority order; conda.upstreamChannels)',
      collect,
    )
    .option('--skip-existing', 'do not build an output whose name-version-build the local channel or an upstream has')
    .option('-k, --keep-going', 'after a render or build failure, build everything that does not need it')
    .option('--no-cc-cache', 'compile without accel’s compile cache (on by default: rebuilds reuse every compile)')
    .option(
      '--no-build-cache',
      'run every build script again (by default, scripts that ran before with the same inputs are not run again)',
    )
    .option(
      '--no-test-cache',
      'run every test again (by default, tests that passed before with the same inputs are not run again)',
    )
    .option('--no-ci-support', 'ignore the feedstocks’ .ci_support/<target>_*.yaml variant files (used by default)')
    .option(
      '--allow <host>',
      'allow source downloads from a host on a private or loopback address (repeatable)',
      collect,
    )
    .addHelpText(
      'after',
      `
Examples:
  $ accel conda build --all examples/feedstocks --target-platform linux-aarch64 --channel ./channel
  $ accel conda build examples/feedstocks/libgreet-feedstock --target-platform linux-aarch64 --test skip
  $ accel conda build my-feedstock --target-platform linux-aarch64 --upstream-channel http://127.0.0.1:8000/conda/org --skip-existing
  $ accel conda builds`,
    )
    .action(
      runner.action(async (g, dirs: string[], flags: BuildFlags) => {
        const roots = [...dirs, ...(flags.all ? [flags.all] : [])];
        if (roots.length === 0) {
          throw new AccelError('ACCEL_USAGE_NO_FEEDSTOCK', 'name feedstock directories or --all DIR', { exitCode: 2 });
        }
        const build = hostSubdir();
        const target = flags.targetPlatform ?? build;
        const options = {
          targetPlatform: target,
          buildPlatform: build,
          variantFiles: flags.variantConfig ?? [],
          env: { ...g.env },
        };
        const jobs = parseCount(flags.jobs, '--jobs', 'ACCEL_USAGE_JOBS');
        const sources = { ...g.config.conda.sources, ...parseSourceFlags(flags.source ?? []) };
        const keepGoing = flags.keepGoing === true;
        const { recipes, failed } = renderFeedstocks(roots, options, {
          ciSupport: flags.ciSupport,
          keepGoing,
        });
        for (const w of recipes.flatMap((r) => r.warnings)) g.log.warn(w);
        for (const f of failed) g.log.warn(`${f.feedstock}: does not render: ${f.error.message.split('\n')[0]}`);
        const cross = target !== build;
        const test: TestMode = flags.test ?? (cross ? 'emulated' : 'native');
        const channel = resolve(flags.channel ?? 'channel');
        const upstreams = flags.upstreamChannel ?? g.config.conda.upstreamChannels;
        // A bad URL is a usage error before anything is rendered or fetched.
        for (const url of upstreams) UpstreamChannel.check(url);
        const built = await withStore(g, async (store) => {
          const ctx: BuildContext = {
            store,
            channel,
            targetPlatform: target,
            test,
            testCache: flags.testCache,
            buildCache: flags.buildCache,
            env: g.env,
            allow: [...g.config.mirror.allow, ...(flags.allow ?? [])],
            stallMs: g.config.mirror.stallTimeout * 1000,
            sysroot: g.config.conda.sysroot,
            debianArchive: g.config.conda.debianArchive || machineDebianArchive(),
            condaMirror: g.config.conda.mirror,
            upstreams: upstreams.map(
              (url) =>
                new UpstreamChannel(url, {
                  store,
                  mirror: g.config.conda.mirror,
                  allow: [...g.config.mirror.allow, ...(flags.allow ?? [])],
                  stallMs: g.config.mirror.stallTimeout * 1000,
                  log: g.log,
                }),
            ),
            skipExisting: flags.skipExisting === true,
            sources,
            tools: packageTools,
            cc: flags.ccCache ? compileCache(g, store) : null,
            log: g.log,
            onEvent: progressLine(g, recipes.length + failed.length),
          };
          // A feedstock that did not render is taken to provide the package named like it (zlib-feedstock → zlib).
          const unavailable = new Map(failed.map((f) => [f.feedstock, f.feedstock]));
          try {
            return await buildFeedstocks(recipes, ctx, { jobs, keepGoing, unavailable });
          } finally {
            for (const u of ctx.upstreams) u.release();
          }
        });
        const results: FeedstockResult[] = [
          ...failed.map(
            (f): FeedstockResult => ({
              feedstock: f.feedstock,
              status: 'failed',
              packages: [],
              log: null,
              seconds: 0,
              scriptSeconds: 0,
              error: f.error,
              key: null,
            }),
          ),
          ...built,
        ].sort((a, b) => a.feedstock.localeCompare(b.feedstock));
        return summarise(results, channel, g.log);
      }),
    );
}

/**
 * The compile cache for build scripts: the native client installed into the home, the daemon started on the
 * first build that compiles. Without the client (a checkout where `npm run build:client` never ran) the build
 * goes on uncached, and says so.
 */
function compileCache(g: Globals, store: Store): CompileCache | null {
  let client: string;
  try {
    client = installClient(g.home).client;
  } catch (err) {
    if (!isAccelError(err)) throw err;
    g.log.warn(`building without the compile cache: ${err.message} (${err.hint ?? ''})`);
    return null;
  }
  let started: Promise<unknown> | undefined;
  const zero: CacheTally = { hit: 0, miss: 0, uncacheable: 0, failed: 0 };
  return {
    client,
    start: async () => {
      started ??= startDetached(g.home, g.env, g.config.cc.daemonIdleTimeout, availableParallelism());
      await started;
    },
    take: (tag) => ({ ...zero, ...store.counters.takeTally(tag) }),
  };
}

/** `--source NAME=FILE`, repeatable: NAME is a feedstock or the file name of a source URL. */
function parseSourceFlags(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) {
      throw new AccelError('ACCEL_USAGE_SOURCE', `--source wants NAME=FILE, not '${v}'`, {
        hint: 'e.g. --source zlib=/srv/orig/zlib_1.3.orig.tar.gz (NAME: a feedstock, or the file name of its source URL)',
        exitCode: 2,
      });
    }
    out[v.slice(0, i)] = resolve(v.slice(i + 1));
  }
  return out;
}

/** One line per package as it finishes (stderr); the start of a real build too, on a TTY. */
function progressLine(g: Globals, total: number): BuildContext['onEvent'] {
  let finished = 0;
  const tty = process.stderr.isTTY === true;
  return (e) => {
    if (e.state === 'start') {
      if (tty) g.log.info(`[${finished}/${total}] building ${e.feedstock} ... (tail -f ${e.detail})`);
      return;
    }
    finished++;
    g.log.info(`[${finished}/${total}] ${e.state} ${e.feedstock}${e.detail ? ` (${e.detail})` : ''}`);
  };
}

function summarise(results: FeedstockResult[], channel: string, log: Log) {
  const failed = results.filter((r) => r.status === 'failed');
  const blocked = results.filter((r) => r.status === 'blocked');
  if (failed.length > 0) {
    // The first failure in full (the end of its log, then the error), one line for each other one. The
    // per-feedstock results still go to stdout (--json, or the table), and the exit code says it failed.
    const first = failed[0] as FeedstockResult;
    const [headline, ...tail] = (first.error?.message ?? `${first.feedstock} failed`).split('\n');
    if (tail.length > 0) {
      process.stderr.write(`--- ${first.feedstock}: end of the build log ---\n${tail.join('\n')}\n---\n`);
    }
    const others = [...failed.slice(1), ...blocked].map((r) => `${r.feedstock} (${r.status})`);
    log.error(
      `${headline}${others.length > 0 ? `\nalso not built: ${others.join(', ')}` : ''} [${first.error?.code ?? 'ACCEL_CONDA_BUILD_FAILED'}]`,
    );
    for (const f of failed.slice(1)) {
      log.error(
        `${(f.error?.message ?? `${f.feedstock} failed`).split('\n')[0]} [${f.error?.code ?? 'ACCEL_CONDA_BUILD_FAILED'}]`,
      );
    }
    const hint = [
      (first.error as { hint?: string } | undefined)?.hint,
      first.log ? `full log: accel store get ${first.log}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    if (hint) process.stderr.write(`accel: hint: ${hint}\n`);
  }
  const data = { channel, results };
  const exitCode = failed.length > 0 ? 1 : undefined;
  return dataResult(
    data,
    () =>
      [
        ...results.map((r) => {
          const size = r.packages.reduce((n, p) => n + p.size, 0);
          const cc = r.cc ? `, compiles: ${r.cc.hit} cached, ${r.cc.miss} compiled` : '';
          const scripts = r.scripts?.reused
            ? `, build scripts: ${r.scripts.reused} not run (same inputs as before)`
            : '';
          const tests = r.tests?.cached ? `, tests: ${r.tests.cached} passed before, ${r.tests.run} run` : '';
          return `${r.status.padEnd(8)}${r.feedstock.padEnd(20)}${r.seconds.toFixed(2).padStart(7)} s  ${r.packages.length} package(s), ${formatSize(size)}${scripts}${cc}${tests}`;
        }),
        `channel: ${channel}`,
      ].join('\n'),
    exitCode,
  );
}

export function condaBuildsCommand(runner: Runner): Command {
  return new Command('builds')
    .description('list recent conda builds: status, time, packages and the log digest')
    .option('-n, --limit <n>', 'how many', '20')
    .action(
      runner.action(async (g, flags: { limit: string }) => {
        const entries = await withStore(g, (store) => recentBuilds(store, Math.max(1, Number(flags.limit) || 20)));
        return dataResult(entries, () =>
          entries.length === 0
            ? 'no conda builds in this store yet'
            : entries
                .map(
                  (e) =>
                    `${e.started}  ${e.status.padEnd(8)}${e.feedstock.padEnd(20)}${e.seconds.toFixed(2).padStart(7)} s  log ${e.log ? e.log.slice(0, 12) : '-'}${e.cc ? `  compiles ${e.cc.hit} cached, ${e.cc.miss} compiled` : ''}${e.error ? `  ${e.error}` : ''}`,
                )
                .join('\n'),
        );
      }),
    );
}

/** The Debian archive this machine's apt sources name (the first `…/debian` URI), or '' when none does. */
function machineDebianArchive(): string {
  for (const source of readMachineSources()) {
    if (!source.types.includes('deb')) continue;
    const uri = source.uris.find((u) => /^https?:\/\/[^/]+(\/.*)?\/debian\/?$/.test(u));
    if (uri) return uri;
  }
  return '';
}
