import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { resolveCompiler } from '../compiler/compiler-identity.ts';
import { MtlsClient } from '../net/client.ts';
import { probeSandbox, sandboxUser } from './bubblewrap.ts';
import { killProcessGroup } from './job-compile.ts';
import { toolchainKey } from './protocol.ts';
import { InputPool, sweepJobRoots } from './sandbox.ts';
import { toolchainOf } from './toolchain-key.ts';
import { WorkerBlobs } from './worker-blobs.ts';
import type { WorkerContext, WorkerCounters, WorkerOptions } from './worker-context.ts';
import { WorkerPolls } from './worker-poll.ts';
import { createWorkerStatusServer, workerStatus } from './worker-status.ts';

/**
 * A worker: `cores` slots, each asking the syncer for the next job (so an idle machine takes work as soon as
 * it has a free slot), compiling it in a fresh job directory with the include tree linked in, and sending
 * the outputs back as blobs. Only allowed compilers from this machine's PATH run, with checked arguments.
 */
export function createWorker(options: WorkerOptions) {
  const { store, log } = options;
  const client = new MtlsClient(options.syncer, options.identity, { maxSockets: options.cores * 2 + 4 });
  const counters: WorkerCounters = { running: 0, done: 0, failed: 0, refused: 0, blobsFetched: 0, bytesFetched: 0 };
  const ctx: WorkerContext = {
    options,
    id: `${options.identity.name}-${randomUUID().slice(0, 8)}`,
    client,
    counters,
    compilerPaths: new Map(),
    toolchains: [],
    children: new Set(),
    pool: new InputPool(options.home, store),
    blobs: new WorkerBlobs(store, client, counters),
    user: undefined,
    inputMode: { kind: 'copy' },
    statusUrl: '',
    closing: false,
  };
  const statusServer = createWorkerStatusServer(ctx);
  const polls = new WorkerPolls(ctx);

  return {
    id: ctx.id,
    status: () => workerStatus(ctx),
    /** Checks the sandbox, sweeps dead workers' job directories, serves /status and starts taking jobs. */
    async listen(): Promise<AddressInfo> {
      for (const name of options.compilers) {
        try {
          const path = resolveCompiler(name, options.env, process.cwd(), { dirs: [], self: [] });
          ctx.compilerPaths.set(name, path);
          ctx.toolchains.push(toolchainKey(toolchainOf(path)));
        } catch {
          log.debug(`compiler ${name} not found on PATH`);
        }
      }
      const swept = sweepJobRoots(options.home);
      if (swept > 0) log.info(`removed ${swept} job directories left by a worker that was killed`);
      if (options.unsandboxed) {
        log.warn(
          'WORKER RUNS JOBS WITHOUT A SANDBOX (--unsandboxed): any client with a certificate can read and write what this user can. Use it only with trusted clients.',
        );
      } else {
        ctx.user = sandboxUser(options.sandboxUser);
        probeSandbox(ctx.user, [...ctx.compilerPaths.values()]);
        if (ctx.user) ctx.inputMode = { kind: 'link', owner: { uid: ctx.user.uid, gid: ctx.user.gid } };
      }
      const address = await statusServer.listen();
      ctx.statusUrl = `https://${address.address}:${address.port}/status`;
      polls.start(options.cores);
      return address;
    },
    address: () => statusServer.address(),
    async close(): Promise<void> {
      ctx.closing = true;
      polls.abort();
      for (const c of ctx.children) killProcessGroup(c);
      await polls.settled();
      await statusServer.close();
      client.close();
    },
  };
}
