import type { AddressInfo } from 'node:net';
import type { Log } from '../core/log.ts';
import { createMtlsServer } from '../net/server.ts';
import type { Identity } from '../net/tls-identity.ts';
import type { Store } from '../store/store.ts';
import { JobQueue } from './queue.ts';
import type { ReapiRun } from './reapi/command.ts';
import { createReapiServer } from './reapi/server.ts';
import { type FarmStatus, farmStatus } from './status.ts';
import { POLL_MS, syncerHandler } from './syncer-routes.ts';
import { IncludeTree } from './tree.ts';

interface SyncerOptions {
  store: Store;
  identity: Identity;
  log: Log;
  home: string;
  host: string;
  port: number;
  dirs: string[];
  compilers: string[];
  leaseMs: number;
  /** Where the Remote Execution API (gRPC) listens; undefined: not served. 0: any free port. */
  reapiPort?: number;
  /** How long an REAPI action waits for a worker. */
  startTimeoutMs?: number;
  /** What REAPI actions may run (farm.reapiRun); default compilers. */
  reapiRun?: ReapiRun;
}

/** The syncer: job queue with leases, include-tree manifests, and blobs by digest, behind mutual TLS. */
export function createSyncer(options: SyncerOptions) {
  const { store, log } = options;
  const tree = new IncludeTree(store, options.dirs, log);
  const queue = new JobQueue({ leaseMs: options.leaseMs, manifest: () => tree.manifest });
  let url = '';
  // A worker counts while it asked for work within two polls.
  const reapiRun = options.reapiPort === undefined ? undefined : (options.reapiRun ?? 'compilers');
  const status = (): FarmStatus => farmStatus({ url, tree, queue, store, reapiRun }, POLL_MS * 2);
  const server = createMtlsServer({
    identity: options.identity,
    host: options.host,
    port: options.port,
    handler: syncerHandler({ store, tree, queue, compilers: options.compilers, status }),
    onError: (err) => log.warn(`syncer: ${(err as Error).message}`),
  });
  const reapi =
    options.reapiPort === undefined
      ? undefined
      : createReapiServer({
          store,
          queue,
          identity: options.identity,
          log,
          host: options.host,
          port: options.reapiPort,
          compilers: options.compilers,
          reapiRun: options.reapiRun ?? 'compilers',
          startTimeoutMs: options.startTimeoutMs ?? 60_000,
        });

  return {
    async listen(): Promise<AddressInfo> {
      await tree.start(options.home);
      let address: AddressInfo;
      try {
        address = await server.listen();
      } catch (err) {
        // A failed start undoes what it started: the watchers would keep the process alive.
        await tree.close();
        throw err;
      }
      url = `https://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
      try {
        await reapi?.listen();
      } catch (err) {
        await server.close();
        await tree.close();
        throw err;
      }
      return address;
    },
    address: () => server.address(),
    /** The REAPI port, once listening (undefined when REAPI is off). */
    reapiPort: () => reapi?.port(),
    reapiStats: () => reapi?.stats,
    status,
    tree,
    async close(): Promise<void> {
      queue.close();
      await reapi?.close();
      await server.close();
      await tree.close();
    },
  };
}
