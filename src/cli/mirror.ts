import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { updateConfigFile } from '../core/config.ts';
import { AccelError } from '../core/errors.ts';
import { createLog } from '../core/log.ts';
import { createProgress } from '../core/progress.ts';
import { formatSize } from '../core/size.ts';
import { Fetcher } from '../fetch/fetcher.ts';
import {
  currentEpoch,
  findEpoch,
  listEpochs,
  listPins,
  pinEpoch,
  pinnedEpochId,
  unpinSuite,
} from '../mirror/apt/epochs.ts';
import { aptClientConfig, readMachineSources } from '../mirror/apt/sources.ts';
import { bazelGrpcConfig, mirrorGrpcUrl, writeBazelGrpcConfig } from '../mirror/bazel-grpc-config.ts';
import { cacheToken } from '../mirror/cache-token.ts';
import {
  buildCacheConfig,
  CLIENT_TOOLS,
  type ClientTool,
  clientConfig,
  formatClientConfig,
  mirrorBaseUrl,
  pinnedUrls,
  plainHttpHosts,
  writeBazelConfig,
  writeHomeDownloaderConfig,
} from '../mirror/client-config.ts';
import { freshnessPolicy } from '../mirror/freshness.ts';
import { fillFront, frontDir, sweepFront } from '../mirror/front.ts';
import { importDirectory } from '../mirror/import.ts';
import { nginxSite } from '../mirror/nginx.ts';
import { parseParent } from '../mirror/parent.ts';
import { prefetch } from '../mirror/prefetch.ts';
import { createMirrorServer } from '../mirror/server.ts';
import { discoverUpstreams, npmRegistryFromNpm } from '../mirror/upstreams.ts';
import { readWantedFiles } from '../mirror/wanted.ts';
import { parseBind, parsePort } from '../net/address.ts';
import { type Globals, withServingStore, withStore } from './globals.ts';
import { collect, parseCount } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';
import { runService } from './service.ts';

interface ServeFlags {
  port?: string;
  grpcPort?: string;
  bind?: string;
  offline?: boolean;
  token?: string;
  allow: string[];
  parent?: string;
}

/** apt: sources for this machine's archives through the mirror, and the remaps that name their upstreams. */
function aptConfig(g: Globals, url: string | undefined, save: boolean) {
  const { bind, port } = g.config.mirror;
  const base = url ?? mirrorBaseUrl(bind, port);
  const sources = readMachineSources(g.env.ACCEL_APT_ETC ?? '/etc/apt').filter((s) =>
    s.uris.every((u) => /^https?:/.test(u)),
  );
  if (sources.length === 0) {
    throw new AccelError('ACCEL_MIRROR_NO_UPSTREAM', 'this machine has no http(s) apt sources to mirror', {
      hint: 'add a remap by hand: {"mirror": {"remaps": {"debian": ["http://<your archive>/debian"]}}}',
      exitCode: 2,
    });
  }
  const config = aptClientConfig(sources, base);
  if (save) {
    const file = updateConfigFile(g.home, (raw) => {
      if (typeof raw.mirror !== 'object' || raw.mirror === null) raw.mirror = {};
      const mirror = raw.mirror as Record<string, unknown>;
      mirror.remaps = { ...((mirror.remaps as object | undefined) ?? {}), ...config.remaps };
    });
    g.log.info(`saved the remaps ${Object.keys(config.remaps).join(', ')} into ${file}`);
  }
  const text = [
    '# ---- /etc/apt/sources.list.d/accel.sources (replace the sources it mirrors)',
    '# Pin a build to one snapshot epoch with URIs: <base>/r/<remap>@<epoch> (see `accel mirror apt epochs`).',
    config.sources,
    '# ---- end of accel.sources',
    '',
    save
      ? `# ${g.home}/config.json now holds these remaps (the upstream archives, from this machine's apt sources)`
      : "# $ACCEL_HOME/config.json: the upstream archives, from this machine's apt sources (--save merges them in)",
    JSON.stringify({ mirror: { remaps: config.remaps } }, null, 2),
  ].join('\n');
  return dataResult(config, () => text);
}

/**
 * The hosts Bazel must reach over plain http: those the given Bazel files (and, with --write, the workspace's
 * own WORKSPACE files) name with `http://`, and those `mirror prefetch`/`import` stored pinned URLs of.
 */
async function bazelHttpHosts(g: Globals, files: string[], workspace: string | undefined): Promise<string[]> {
  const found = workspace
    ? ['WORKSPACE', 'WORKSPACE.bazel', 'MODULE.bazel']
        .map((f) => join(resolve(workspace), f))
        .filter((f) => existsSync(f))
    : [];
  const urls = [...files, ...found].flatMap((f) => readWantedFiles(f).flatMap((w) => w.urls));
  try {
    await withStore(g, (store) => urls.push(...pinnedUrls(store)));
  } catch (err) {
    // A home we may not write: the files alone decide.
    g.log.debug(`not reading the store's URLs: ${(err as Error).message}`);
  }
  return plainHttpHosts(urls);
}

/**
 * `mirror config nginx`: makes (or refreshes) the front tree nginx serves hits from, and prints or writes the
 * site that puts nginx in front of accel.
 */
async function nginxConfig(g: Globals, url: string | undefined, listen: string, write: string | undefined) {
  const { bind, port, token } = g.config.mirror;
  const accel = url ?? mirrorBaseUrl(bind, port);
  // The site first: a value it refuses leaves the store untouched.
  const site = nginxSite({ home: g.home, accel, listen, token });
  const linked = await withStore(g, (store) => {
    const swept = sweepFront(g.home);
    return { linked: fillFront(store), swept };
  });
  g.log.info(`front tree ${frontDir(g.home)}: ${linked.linked} immutable URLs linked`);
  if (write !== undefined) {
    const file = resolve(write);
    replaceFileSync(file, site, 0o644);
    return dataResult({ file, ...linked }, () => `wrote ${file}\nreload nginx: nginx -s reload`);
  }
  return dataResult({ site, ...linked }, () => site.trimEnd());
}

/** `mirror config bazel --grpc`: the .bazelrc lines for the remote downloader and cache, printed or written. */
function bazelGrpc(g: Globals, tool: string, flags: { write?: string; grpcUrl?: string }) {
  if (tool !== 'bazel') throw new AccelError('ACCEL_USAGE_BAD_TOOL', '--grpc is for bazel only', { exitCode: 2 });
  const { bind, grpcPort, token } = g.config.mirror;
  const url = mirrorGrpcUrl(flags.grpcUrl, bind, grpcPort);
  // The mirror's own token opens everything; without one, the cache token is what writes need.
  const header = token || cacheToken(g.home);
  if (flags.write !== undefined) {
    const written = writeBazelGrpcConfig(flags.write, url, header);
    return dataResult(written, () => `updated ${written.bazelrc}`);
  }
  const config = bazelGrpcConfig(url, header);
  return dataResult(config, () => formatClientConfig(config).trimEnd());
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function mirrorCommand(runner: Runner): Command {
  const mirror = new Command('mirror').description(
    'caching mirror for build dependencies (source tarballs, apt, conda)',
  );

  mirror
    .command('serve')
    .description('serve the store over HTTP, fetching what it lacks from upstreams')
    .option('--port <port>', 'TCP port (default: config mirror.port, 8000; 0 picks a free one)')
    .option('--bind <address>', 'address to listen on (default: 127.0.0.1)')
    .option(
      '--grpc-port <port>',
      "also serve gRPC here: REAPI CAS and action cache, Remote Asset Fetch (Bazel's remote downloader; mirror.grpcPort)",
    )
    .option('--offline', 'never contact an upstream; a miss is 504')
    .option('--token <token>', 'require "Authorization: Bearer <token>" on every request')
    .addOption(
      new Option('--allow <host>', 'allow an upstream on a private or loopback address; repeatable, or comma-separated')
        .argParser(collect)
        .default([]),
    )
    .option('--parent <url>', 'ask this parent accel mirror for every miss instead of the upstreams (mirror.parent)')
    .addHelpText(
      'after',
      `
Routes:
  /<http|https>/<host>/<path>   fetch <scheme>://<host>/<path> through the cache (add ?sha256=<hex> to pin it)
  /r/<name>/<path>              try the upstreams of remap <name> (config mirror.remaps) in order
  /conda/<name>/<subdir>/<file> a local conda channel, read-only (config mirror.condaChannels)
  /_accel/status                status page (also /_accel/status.json, /_accel/metrics)`,
    )
    .action(
      runner.action(async (g, flags: ServeFlags) => {
        const config = g.config.mirror;
        const port = parsePort(flags.port ?? config.port, flags.port === undefined ? 'mirror.port' : '--port');
        const bind = parseBind(flags.bind ?? config.bind, flags.bind === undefined ? 'mirror.bind' : '--bind');
        const grpcText = flags.grpcPort ?? config.grpcPort;
        const grpcPort =
          grpcText === ''
            ? undefined
            : parsePort(grpcText, flags.grpcPort === undefined ? 'mirror.grpcPort' : '--grpc-port');
        const token = flags.token ?? config.token;
        const parent = parseParent(
          flags.parent ?? config.parent,
          flags.parent === undefined ? 'mirror.parent' : '--parent',
        );
        const stats = await withServingStore(g, async (store) => {
          const server = createMirrorServer({
            store,
            log: g.log,
            port,
            bind,
            grpcPort,
            offline: flags.offline === true,
            token,
            cacheToken: cacheToken(g.home),
            ttlSeconds: config.ttl,
            negativeTtlSeconds: config.negativeTtl,
            stallSeconds: config.stallTimeout,
            remaps: config.remaps,
            immutable: config.immutable,
            allow: [...config.allow, ...flags.allow],
            proxyHosts: config.proxyHosts,
            parent,
            parentToken: config.parentToken,
            condaChannels: Object.fromEntries(
              Object.entries(config.condaChannels).map(([name, dir]) => [name, resolve(dir)]),
            ),
          });
          for (const [name, dir] of Object.entries(server.context.condaChannels)) {
            if (!existsSync(join(dir, 'noarch', 'repodata.json'))) {
              g.log.warn(
                `conda channel '${name}': ${dir} has no noarch/repodata.json yet (run accel conda index ${dir})`,
              );
            }
          }
          if (!LOOPBACK.test(bind) && !token) {
            g.log.warn(`listening on ${bind} without --token: anyone who can reach this port can use the mirror`);
          }
          const address = await server.listen();
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          g.log.info(
            `mirror listening on http://${host}:${address.port}/${server.grpcPort() === undefined ? '' : ` and grpc://${host}:${server.grpcPort()}`} (${flags.offline ? 'offline' : 'online'}${parent ? `, parent ${parent.base}` : ''}, store ${store.home})`,
          );
          await runService(server);
          return server.context.stats;
        });
        g.log.info(`mirror stopped: ${stats.requests} requests, ${stats.hits} hits, ${stats.misses} misses`);
        return dataResult(stats, () => '');
      }),
    );
  mirror
    .command('prefetch')
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

  mirror
    .command('import')
    .description('import files already on disk: a Bazel repository cache, a distdir, or a folder of files')
    .argument('<dir>', 'repository cache (content_addressable/sha256/<hex>/file), distdir or folder')
    .option(
      '--urls <file>',
      'a URL list or Bazel file naming what the files are (url [sha256] per line); repeatable',
      collect,
    )
    .action(
      runner.action(async (g, dir: string, flags: { urls?: string[] }) => {
        const wanted = (flags.urls ?? []).flatMap((f) => readWantedFiles(f));
        const result = await withStore(g, (store) => importDirectory(store, dir, { wanted }));
        const mapped = result.imported.filter((i) => i.urls.length > 0).length;
        const lines = [
          ...result.failed.map((f) => `failed  ${f.file}: ${f.reason}`),
          `imported ${result.imported.length} files (${mapped} with URLs), ${result.failed.length} failed`,
        ];
        return dataResult(result, () => lines.join('\n'), result.failed.length > 0 ? 1 : 0);
      }),
    );

  mirror
    .command('config')
    .description(`print what makes a tool use the mirror (apt, ${CLIENT_TOOLS.join(', ')}, cache, nginx)`)
    .argument(
      '<tool>',
      `apt | ${CLIENT_TOOLS.join(' | ')} | cache (the shared build cache and its write token) | nginx (a front for hits)`,
    )
    .option('--url <base>', 'the mirror as clients reach it (default: http://<mirror.bind>:<mirror.port>)')
    .option('--upstream <url>', "an upstream to mirror, instead of the tool's own configuration; repeatable", collect)
    .option(
      '--write <path>',
      'bazel: write accel-downloader.cfg and the .bazelrc line into this workspace; nginx: write the site to this file',
    )
    .option('--listen <address>', 'nginx only: what nginx listens on (default: 127.0.0.1:8080)')
    .option('--grpc', "bazel only: use the mirror's gRPC port (remote downloader and remote cache) instead")
    .option(
      '--grpc-url <url>',
      'with --grpc: the port as Bazel reaches it (default: grpc://<mirror.bind>:<mirror.grpcPort>)',
    )
    .option('--save', 'apt only: merge the remaps into $ACCEL_HOME/config.json, keeping its other settings')
    .option(
      '--workspace <file>',
      'bazel only: a WORKSPACE or .bzl file whose plain-http hosts get rules of their own; repeatable',
      collect,
    )
    .action(
      runner.action(
        async (
          g,
          tool: string,
          flags: {
            url?: string;
            upstream?: string[];
            write?: string;
            save?: boolean;
            workspace?: string[];
            listen?: string;
            grpc?: boolean;
            grpcUrl?: string;
          },
        ) => {
          if (flags.grpc) return bazelGrpc(g, tool, flags);
          if (tool === 'apt') return aptConfig(g, flags.url, flags.save === true);
          if (tool === 'nginx') return nginxConfig(g, flags.url, flags.listen ?? '127.0.0.1:8080', flags.write);
          if (flags.save) throw new AccelError('ACCEL_USAGE_BAD_TOOL', '--save is for apt only', { exitCode: 2 });
          if (tool === 'cache') {
            const { bind, port } = g.config.mirror;
            const config = buildCacheConfig(flags.url ?? mirrorBaseUrl(bind, port), cacheToken(g.home));
            return dataResult(config, () => formatClientConfig(config).trimEnd());
          }
          if (!(CLIENT_TOOLS as readonly string[]).includes(tool)) {
            throw new AccelError('ACCEL_USAGE_BAD_TOOL', `no client config for '${tool}'`, {
              hint: `choose one of apt, ${CLIENT_TOOLS.join(', ')}, cache, nginx`,
            });
          }
          const { bind, port } = g.config.mirror;
          const base = flags.url ?? mirrorBaseUrl(bind, port);
          const httpHosts = tool === 'bazel' ? await bazelHttpHosts(g, flags.workspace ?? [], flags.write) : [];
          if (flags.write !== undefined) {
            if (tool !== 'bazel') throw new AccelError('ACCEL_USAGE_BAD_TOOL', '--write is for bazel and nginx only');
            const written = writeBazelConfig(resolve(flags.write), base, httpHosts);
            return dataResult(written, () => `wrote ${written.downloaderConfig}\nupdated ${written.bazelrc}`);
          }
          const upstreams = discoverUpstreams(g.env, g.env.HOME || homedir(), {
            only: tool,
            askNpm: tool === 'npm' && !flags.upstream ? () => npmRegistryFromNpm(g.env) : undefined,
          });
          if (flags.upstream) {
            if (tool === 'pip') upstreams.pipIndex = flags.upstream[0];
            if (tool === 'npm') upstreams.npmRegistry = flags.upstream[0];
            if (tool === 'conda') upstreams.condaChannels = flags.upstream;
          }
          // Bazel's .bazelrc line names a file: accel writes it into its home, so the line works as printed.
          const written = tool === 'bazel' ? writeHomeDownloaderConfig(g.home, base, httpHosts) : undefined;
          if (tool === 'bazel' && !written) g.log.warn(`cannot write into ${g.home}: save the config where it says`);
          const config = clientConfig(tool as ClientTool, {
            base,
            upstreams,
            downloaderConfigPath: written,
            downloaderConfigWritten: written !== undefined,
            httpHosts,
          });
          return dataResult(config, () => formatClientConfig(config).trimEnd());
        },
      ),
    );

  const apt = mirror.command('apt').description('Debian archives through the mirror: consistent snapshot epochs');
  apt
    .command('epochs')
    .description('list the epochs (consistent Release snapshots) the mirror holds')
    .option('--remap <name>', 'only this remap')
    .action(
      runner.action(async (g, flags: { remap?: string }) => {
        const rows = await withStore(g, (store) =>
          listEpochs(store, flags.remap).map((e) => ({
            ...e,
            pinned: pinnedEpochId(store, e.remap, e.suite) === e.id,
            current: currentEpoch(store, e.remap, e.suite)?.id === e.id,
          })),
        );
        return dataResult(rows, () =>
          rows
            .map(
              (e) =>
                `${e.remap}\t${e.suite}\t${e.id}\t${new Date(e.createdAt).toISOString()}\t${e.release.InRelease ?? e.release.Release}${e.pinned ? '\tpinned' : e.current ? '\tcurrent' : ''}`,
            )
            .join('\n'),
        );
      }),
    );
  apt
    .command('pin')
    .description('make an epoch the one unpinned clients of its suite see')
    .argument('<remap>')
    .argument('<epoch>')
    .action(
      runner.action(async (g, remap: string, id: string) => {
        const epoch = await withStore(g, (store) => {
          const found = findEpoch(store, remap, id);
          if (!found) {
            throw new AccelError('ACCEL_APT_UNKNOWN_EPOCH', `no epoch ${id} of remap ${remap}`, {
              hint: 'list them with `accel mirror apt epochs`',
            });
          }
          pinEpoch(store, found);
          return found;
        });
        return dataResult(epoch, () => `${remap}/${epoch.suite} pinned to ${epoch.id}`);
      }),
    );
  apt
    .command('unpin')
    .description('let clients of a suite see the newest epoch again')
    .argument('<remap>')
    .argument('<suite>')
    .action(
      runner.action(async (g, remap: string, suite: string) => {
        await withStore(g, (store) => {
          if (unpinSuite(store, remap, suite)) return;
          const pinned = listPins(store);
          throw new AccelError('ACCEL_APT_NOT_PINNED', `${remap}/${suite} is not pinned`, {
            hint: pinned.length > 0 ? `pinned now: ${pinned.join(', ')}` : 'no suite is pinned',
          });
        });
        return dataResult({ removed: true }, () => `${remap}/${suite} follows the newest epoch`);
      }),
    );

  return mirror;
}
