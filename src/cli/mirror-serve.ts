import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { cacheToken } from '../mirror/cache-token.ts';
import { parseParent } from '../mirror/parent.ts';
import { createMirrorServer } from '../mirror/server.ts';
import { parseBind, parsePort } from '../net/address.ts';
import { withServingStore } from './globals.ts';
import { collect } from './parse.ts';
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

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** `accel mirror serve`: the mirror's HTTP (and optional gRPC) server over the store, until a signal stops it. */
export function mirrorServeCommand(runner: Runner): Command {
  return new Command('serve')
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
}
