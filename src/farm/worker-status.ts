import { createMtlsServer, type MtlsServer, sendJson } from '../net/server.ts';
import type { WorkerReport } from './protocol.ts';
import type { WorkerContext } from './worker-context.ts';

/** What the worker's /status answers. */
export function workerStatus(ctx: WorkerContext) {
  const { options } = ctx;
  return {
    id: ctx.id,
    name: options.identity.name,
    syncer: options.syncer,
    cores: options.cores,
    ...ctx.counters,
    compilers: Object.fromEntries(ctx.compilerPaths),
    toolchains: ctx.toolchains,
  };
}

/** What the worker tells the syncer with each request for work. */
export function workerReport(ctx: WorkerContext): WorkerReport {
  const { counters } = ctx;
  return {
    id: ctx.id,
    name: ctx.options.identity.name,
    cores: ctx.options.cores,
    running: counters.running,
    done: counters.done,
    failed: counters.failed,
    toolchains: ctx.toolchains,
    blobsFetched: counters.blobsFetched,
    statusUrl: ctx.statusUrl,
  };
}

/** The worker's own server: GET /status, behind the same mutual TLS as the syncer. */
export function createWorkerStatusServer(ctx: WorkerContext): MtlsServer {
  const { options } = ctx;
  return createMtlsServer({
    identity: options.identity,
    host: options.statusHost,
    port: options.statusPort,
    handler: (req, res) => {
      if (req.method === 'GET' && req.url === '/status') return sendJson(res, 200, workerStatus(ctx));
      sendJson(res, 404, { code: 'ACCEL_FARM_NOT_FOUND', message: `no route ${req.method} ${req.url}` });
    },
  });
}
