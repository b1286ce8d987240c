import { Command, Option } from 'commander';
import { createMirrorServer } from '../mirror/server.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

interface ServeFlags {
  port?: string;
  bind?: string;
  offline?: boolean;
  token?: string;
  allow: string[];
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
    .option('--offline', 'never contact an upstream; a miss is 504')
    .option('--token <token>', 'require "Authorization: Bearer <token>" on every request')
    .addOption(
      new Option('--allow <host[:port]>', 'allow an upstream on a private or loopback address (repeatable)')
        .argParser((value: string, previous: string[]) => [...previous, value])
        .default([]),
    )
    .addHelpText(
      'after',
      `
Routes:
  /<http|https>/<host>/<path>   fetch <scheme>://<host>/<path> through the cache (add ?sha256=<hex> to pin it)
  /r/<name>/<path>              try the upstreams of remap <name> (config mirror.remaps) in order
  /_accel/status                status page (also /_accel/status.json, /_accel/metrics)`,
    )
    .action(
      runner.action(async (g, flags: ServeFlags) => {
        const config = g.config.mirror;
        const port = flags.port === undefined ? config.port : Number(flags.port);
        const bind = flags.bind ?? config.bind;
        const token = flags.token ?? config.token;
        const stats = await withStore(g, async (store) => {
          const server = createMirrorServer({
            store,
            log: g.log,
            port,
            bind,
            offline: flags.offline === true,
            token,
            ttlSeconds: config.ttl,
            stallSeconds: config.stallTimeout,
            remaps: config.remaps,
            immutable: config.immutable,
            allow: [...config.allow, ...flags.allow],
          });
          const address = await server.listen();
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          g.log.info(
            `mirror listening on http://${host}:${address.port}/ (${flags.offline ? 'offline' : 'online'}, store ${store.home})`,
          );
          if (!LOOPBACK.test(bind) && !token) {
            g.log.warn(`listening on ${bind} without --token: anyone who can reach this port can use the mirror`);
          }
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          await server.close();
          return server.context.stats;
        });
        g.log.info(`mirror stopped: ${stats.requests} requests, ${stats.hits} hits, ${stats.misses} misses`);
        return dataResult(stats, () => '');
      }),
    );
  return mirror;
}
