import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log } from '../core/log.ts';
import { Fetcher } from '../fetch/fetcher.ts';
import {
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  guardConnections,
  serverTimeouts,
} from '../net/connections.ts';
import { listenError } from '../net/server.ts';
import type { Store } from '../store/store.ts';
import { AptArchive } from './apt/archive.ts';
import type { MirrorContext } from './context.ts';
import { freshnessPolicy } from './freshness.ts';
import { createMirrorGrpcServer, type MirrorGrpcServer } from './grpc/server.ts';
import { handleRequest } from './handler.ts';
import type { Parent } from './parent.ts';
import { newStats } from './stats.ts';

export interface MirrorOptions {
  store: Store;
  log: Log;
  port: number;
  bind: string;
  /** Also serve gRPC (REAPI CAS and action cache, Remote Asset Fetch) on this port; undefined: off. */
  grpcPort?: number;
  offline: boolean;
  token: string;
  /** Bearer token a write to the build cache needs (`mirror.token` also does); see cache-token.ts. */
  cacheToken: string;
  ttlSeconds: number;
  /** Seconds a 404/410 is remembered online (default 60). */
  negativeTtlSeconds?: number;
  stallSeconds: number;
  remaps: Record<string, string[]>;
  immutable: string[];
  allow: string[];
  /** Hosts served in forward-proxy mode besides the remaps' upstreams. */
  proxyHosts?: string[];
  /** Local conda channels served at /conda/<name>/: name → directory. */
  condaChannels?: Record<string, string>;
  /** A parent mirror asked for every miss instead of the upstreams (see parent.ts). */
  parent?: Parent;
  /** Bearer token for the parent (its mirror.token); sent to the parent's origin only. */
  parentToken?: string;
  /** Connection cap and timeouts (tests shorten them). */
  connections?: ConnectionLimits;
  now?: () => number;
}

export interface MirrorServer {
  listen(): Promise<AddressInfo>;
  address(): AddressInfo;
  /** The gRPC port once listening; undefined when gRPC is off. */
  grpcPort(): number | undefined;
  /** Stops accepting, ends open connections (keep-alive ones included) and resolves when closed. */
  close(): Promise<void>;
  readonly context: MirrorContext;
}

export function createMirrorServer(options: MirrorOptions): MirrorServer {
  const now = options.now ?? Date.now;
  const stats = newStats(now());
  const { parent } = options;
  const fetcher = new Fetcher(options.store, {
    // The parent is configured, so trusted: it may be on the LAN. Origins a client names are still checked
    // against `allow` alone before the parent is asked (handler.ts).
    allow: parent ? [...options.allow, parent.host] : options.allow,
    ...(parent && options.parentToken
      ? { authorization: { origin: parent.origin, value: `Bearer ${options.parentToken}` } }
      : {}),
    stallMs: options.stallSeconds * 1000,
    log: options.log,
    onBytes: (n) => {
      stats.bytesFetched += n;
    },
  });
  const context: MirrorContext = {
    store: options.store,
    fetcher,
    stats,
    policy: freshnessPolicy(options.ttlSeconds, options.immutable, options.negativeTtlSeconds),
    offline: options.offline,
    token: options.token,
    cacheToken: options.cacheToken,
    remaps: options.remaps,
    log: options.log,
    now,
    verified: new Map(),
    apt: new AptArchive({
      store: options.store,
      fetcher,
      offline: options.offline,
      ttlSeconds: options.ttlSeconds,
      now,
      log: options.log,
      parent,
    }),
    proxyHosts: options.proxyHosts ?? [],
    condaChannels: options.condaChannels ?? {},
    parent,
    allow: options.allow,
  };
  const limits = options.connections ?? DEFAULT_CONNECTION_LIMITS;
  const server: Server = createServer({ maxHeaderSize: 16 * 1024, ...serverTimeouts(limits) }, (req, res) => {
    handleRequest(context, req, res).catch((err: unknown) => {
      options.log.error(`request ${req.url}: ${(err as Error).stack ?? err}`);
      res.destroy();
    });
  });
  // A PUT of a large blob may take a while to arrive; headers may not.
  server.requestTimeout = 10 * 60_000;
  const connections = guardConnections(server, limits);
  const grpc: MirrorGrpcServer | undefined =
    options.grpcPort === undefined
      ? undefined
      : createMirrorGrpcServer({ context, log: options.log, bind: options.bind, port: options.grpcPort });
  return {
    context,
    listen: async () => {
      const address = await new Promise<AddressInfo>((resolve, reject) => {
        const failed = (err: unknown) => reject(listenError(err, options.bind, options.port));
        server.once('error', failed);
        server.listen(options.port, options.bind, () => {
          server.off('error', failed);
          resolve(server.address() as AddressInfo);
        });
      });
      try {
        await grpc?.listen();
      } catch (err) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw err;
      }
      return address;
    },
    address: () => server.address() as AddressInfo,
    grpcPort: () => grpc?.port(),
    // Downloads in flight are stopped and settled before close() resolves, so the caller may close the store.
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const grpcClosed = grpc?.close();
      await fetcher.close();
      await grpcClosed;
      connections.closeAll();
      await closed;
    },
  };
}
