import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { updateConfigFile } from '../core/config.ts';
import { AccelError } from '../core/errors.ts';
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
import { fillFront, frontDir, sweepFront } from '../mirror/front.ts';
import { nginxSite } from '../mirror/nginx.ts';
import { discoverUpstreams, npmRegistryFromNpm } from '../mirror/upstreams.ts';
import { readWantedFiles } from '../mirror/wanted.ts';
import { type Globals, withStore } from './globals.ts';
import { collect } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

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
/** `accel mirror config <tool>`: what makes apt, Bazel, pip, npm, conda, curl, a build cache or nginx use the mirror. */
export function mirrorConfigCommand(runner: Runner): Command {
  return new Command('config')
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
}
