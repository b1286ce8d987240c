import * as grpc from '@grpc/grpc-js';
import type { Log } from '../../core/log.ts';
import type { Identity, Role } from '../../net/tls-identity.ts';
import { roleFromOu } from '../../net/tls-identity.ts';
import { createGrpcServer } from '../../reapi/grpc-server.ts';
import { Code, RpcError, type ServiceContext } from '../../reapi/rpc.ts';
import { actionCacheService } from '../../reapi/services/action-cache.ts';
import { byteStreamService } from '../../reapi/services/bytestream.ts';
import { capabilitiesService } from '../../reapi/services/capabilities.ts';
import { casService } from '../../reapi/services/cas.ts';
import { ReapiStorage } from '../../reapi/storage.ts';
import type { Store } from '../../store/store.ts';
import type { JobQueue } from '../queue.ts';
import type { ReapiRun } from './command.ts';
import { executionService } from './execution.ts';

export { ACTION_ROOT } from './input-tree.ts';

/**
 * The syncer's Remote Execution API v2 endpoint (gRPC over the farm's mutual TLS). The CAS, ByteStream and
 * action cache are the shared services of src/reapi/ over the store (the same storage the mirror's gRPC port
 * and its /cache routes use, so a result cached through any of them is a hit through the others); Execution
 * (execution.ts) turns an action into a farm job.
 */
export interface ReapiOptions {
  store: Store;
  queue: JobQueue;
  identity: Identity;
  log: Log;
  host: string;
  port: number;
  compilers: string[];
  /** What actions may run (farm.reapiRun). */
  reapiRun: ReapiRun;
  /** Milliseconds an action may wait for a worker before it fails UNAVAILABLE. */
  startTimeoutMs: number;
}

const ROLES: Role[] = ['client'];

/** Every RPC: a certificate of this installation with an allowed role (the TLS layer checked the chain). */
function authorizeCertificate(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): void {
  const cert = call.getAuthContext().sslPeerCertificate;
  const role = roleFromOu(cert?.subject?.OU);
  if (!role || !ROLES.includes(role)) {
    throw new RpcError(
      Code.PERMISSION_DENIED,
      `a ${role ?? 'certificate without a role'} may not use the Remote Execution API (allowed: ${ROLES.join(', ')})`,
    );
  }
}

export function createReapiServer(options: ReapiOptions) {
  const { store, queue, log } = options;
  const storage = new ReapiStorage(store);
  const stats = { executed: 0, cached: 0, refused: 0, acHits: 0, acMisses: 0 };
  const ctx: ServiceContext = { authorize: authorizeCertificate, log, name: 'reapi' };
  const server = createGrpcServer(log, [
    capabilitiesService(ctx, { exec: true }),
    casService(ctx, storage),
    actionCacheService(ctx, storage, stats),
    byteStreamService(ctx, storage),
    executionService(ctx, { storage, queue, stats, log, options }),
  ]);
  return {
    stats,
    listen: (): Promise<number> =>
      server.listen({
        host: options.host,
        port: options.port,
        credentials: grpc.ServerCredentials.createSsl(
          Buffer.from(options.identity.ca),
          [{ private_key: Buffer.from(options.identity.key), cert_chain: Buffer.from(options.identity.cert) }],
          true,
        ),
        what: 'the REAPI port',
        hint: 'stop the other server, choose another --reapi-port, or serve no REAPI (--no-reapi)',
      }),
    port: server.port,
    close: server.close,
  };
}
