import type * as grpc from '@grpc/grpc-js';
import { DIGEST_SHA256, services } from '../proto.ts';
import { type ServiceContext, unary } from '../rpc.ts';
import { MAX_BATCH } from './cas.ts';

/**
 * Capabilities: SHA-256 only, uncompressed, action-cache updates allowed, absolute symlink targets disallowed
 * (SymlinkAbsolutePathStrategy DISALLOWED = 1); execution only where there is an engine.
 */
export function capabilitiesService(ctx: ServiceContext, options: { exec: boolean }) {
  return {
    definition: services.Capabilities as unknown as grpc.ServiceDefinition,
    implementation: {
      GetCapabilities: unary(ctx, 'read', () => ({
        cache_capabilities: {
          digest_functions: [DIGEST_SHA256],
          action_cache_update_capabilities: { update_enabled: true },
          max_batch_total_size_bytes: MAX_BATCH,
          symlink_absolute_path_strategy: 1,
          supported_compressors: [],
        },
        execution_capabilities: {
          digest_function: DIGEST_SHA256,
          exec_enabled: options.exec,
          digest_functions: [DIGEST_SHA256],
        },
        deprecated_api_version: { major: 2 },
        low_api_version: { major: 2 },
        // 2.1: output_paths and output_symlinks are understood (src/farm/reapi/action-result.ts).
        high_api_version: { major: 2, minor: 1 },
      })),
    },
  };
}
