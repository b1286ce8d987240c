import * as grpc from '@grpc/grpc-js';
import type { Log } from '../../core/log.ts';
import { createGrpcServer } from '../../reapi/grpc-server.ts';
import { type Access, type CallInfo, Code, RpcError, type ServiceContext } from '../../reapi/rpc.ts';
import { actionCacheService } from '../../reapi/services/action-cache.ts';
import { byteStreamService } from '../../reapi/services/bytestream.ts';
import { capabilitiesService } from '../../reapi/services/capabilities.ts';
import { casService } from '../../reapi/services/cas.ts';
import { ReapiStorage } from '../../reapi/storage.ts';
import type { MirrorContext } from '../context.ts';
import { mayWriteCache, safeEqual } from '../handler.ts';
import { fetchService, pushService } from './asset.ts';

export interface MirrorGrpcOptions {
  context: MirrorContext;
  log: Log;
  bind: string;
  port: number;
}

/**
 * The mirror's gRPC port (mirror.grpcPort): the REAPI CAS, ByteStream and action cache over the same storage
 * as its /cache routes and the syncer, and the Remote Asset API's Fetch, so Bazel's remote downloader and
 * remote cache both point here. Plaintext like the HTTP port (bind loopback, or put it behind TLS yourself);
 * the same tokens: mirror.token for everything when set, the cache token (or mirror.token) for writes.
 */
export function createMirrorGrpcServer(options: MirrorGrpcOptions) {
  const { context, log } = options;
  const storage = new ReapiStorage(context.store);
  const stats = { acHits: 0, acMisses: 0 };
  const ctx: ServiceContext = {
    authorize: (call, access) => authorize(context, call, access),
    log,
    name: 'mirror grpc',
  };
  const server = createGrpcServer(log, [
    capabilitiesService(ctx, { exec: false }),
    casService(ctx, storage),
    actionCacheService(ctx, storage, stats),
    byteStreamService(ctx, storage),
    fetchService(ctx, context),
    pushService(ctx),
  ]);
  return {
    stats,
    listen: (): Promise<number> =>
      server.listen({
        host: options.bind,
        port: options.port,
        credentials: grpc.ServerCredentials.createInsecure(),
        what: "the mirror's gRPC port",
        hint: 'stop the other server or choose another --grpc-port',
      }),
    port: server.port,
    close: server.close,
  };
}

export type MirrorGrpcServer = ReturnType<typeof createMirrorGrpcServer>;

/** What the HTTP port asks of the same request: the mirror token for anything, the cache token for writes. */
function authorize(ctx: MirrorContext, call: CallInfo, access: Access): void {
  const header = call.metadata.get('authorization')[0];
  const authorization = typeof header === 'string' ? header : undefined;
  const offered = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  if (ctx.token && (offered === undefined || !safeEqual(ctx.token, offered))) {
    throw new RpcError(
      offered === undefined ? Code.UNAUTHENTICATED : Code.PERMISSION_DENIED,
      `ACCEL_MIRROR_TOKEN: ${offered === undefined ? 'missing' : 'wrong'} bearer token (authorization metadata)`,
    );
  }
  if (access === 'write' && !mayWriteCache(ctx, authorization)) {
    throw new RpcError(
      offered === undefined ? Code.UNAUTHENTICATED : Code.PERMISSION_DENIED,
      'ACCEL_MIRROR_TOKEN: writing to the build cache needs its token (authorization: Bearer …); `accel mirror config bazel --grpc` prints it',
    );
  }
}
