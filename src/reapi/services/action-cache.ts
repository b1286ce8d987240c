import type * as grpc from '@grpc/grpc-js';
import { type ActionResult, type Digest, services } from '../proto.ts';
import { Code, checkDigest, RpcError, type ServiceContext, unary } from '../rpc.ts';
import type { ReapiStorage } from '../storage.ts';

export interface ActionCacheCounters {
  acHits: number;
  acMisses: number;
}

/** ActionCache: results by action digest; a result whose blobs are gone is a miss (storage.ts decides). */
export function actionCacheService(ctx: ServiceContext, storage: ReapiStorage, stats: ActionCacheCounters) {
  return {
    definition: services.ActionCache as unknown as grpc.ServiceDefinition,
    implementation: {
      GetActionResult: unary(ctx, 'read', (req: { action_digest?: Digest }) => {
        const digest = checkDigest(req.action_digest, 'action_digest');
        const result = storage.actionResult(digest.hash);
        if (!result) {
          stats.acMisses++;
          throw new RpcError(Code.NOT_FOUND, `no result for action ${digest.hash}`);
        }
        stats.acHits++;
        return result;
      }),
      UpdateActionResult: unary(ctx, 'write', async (req: { action_digest?: Digest; action_result?: ActionResult }) => {
        const digest = checkDigest(req.action_digest, 'action_digest');
        if (!req.action_result) throw new RpcError(Code.INVALID_ARGUMENT, 'action_result missing');
        await storage.putActionResult(digest.hash, req.action_result);
        return req.action_result;
      }),
    },
  };
}
