import type * as grpc from '@grpc/grpc-js';
import { type Digest, type Directory, msg, services } from '../proto.ts';
import { Code, checkDigest, RpcError, type ServiceContext, toServiceError, unary } from '../rpc.ts';
import type { ReapiStorage } from '../storage.ts';

/** What one batch request or response may carry; gRPC's default message limit is 4 MiB. */
export const MAX_BATCH = 4 * 1024 * 1024 - 64 * 1024;
/** GetTree answers in pages of this many directories. */
const TREE_PAGE = 1000;

/** ContentAddressableStorage: the store's blobs, by SHA-256. */
export function casService(ctx: ServiceContext, storage: ReapiStorage) {
  return {
    definition: services.ContentAddressableStorage as unknown as grpc.ServiceDefinition,
    implementation: {
      FindMissingBlobs: unary(ctx, 'read', (req: { blob_digests: Digest[] }) => ({
        missing_blob_digests: storage.findMissing(req.blob_digests.map((d) => checkDigest(d, 'blob_digests'))),
      })),
      BatchUpdateBlobs: unary(
        ctx,
        'write',
        async (req: { requests: { digest?: Digest; data: Buffer; compressor: number }[] }) => {
          // The message limit bounds the batch. Side by side: each put ends in an fsync, and they overlap.
          const responses = await Promise.all(
            req.requests.map(async (r) => {
              const digest = checkDigest(r.digest, 'requests.digest');
              if (r.compressor !== 0)
                return {
                  digest,
                  status: { code: Code.INVALID_ARGUMENT, message: 'compressed uploads are not supported' },
                };
              try {
                await storage.put(digest, Buffer.from(r.data));
                return { digest, status: { code: 0, message: '' } };
              } catch (err) {
                const e = toServiceError(err, ctx);
                if (e.code === Code.INTERNAL) throw err;
                return { digest, status: { code: e.code, message: e.message } };
              }
            }),
          );
          return { responses };
        },
      ),
      BatchReadBlobs: unary(ctx, 'read', (req: { digests: Digest[] }) => {
        const digests = req.digests.map((d) => checkDigest(d, 'digests'));
        const total = digests.reduce((n, d) => n + d.size_bytes, 0);
        if (total > MAX_BATCH)
          throw new RpcError(Code.INVALID_ARGUMENT, `batch of ${total} bytes exceeds ${MAX_BATCH}`);
        return {
          responses: digests.map((digest) => {
            const data = storage.read(digest.hash);
            return data
              ? { digest, data, status: { code: 0, message: '' } }
              : { digest, status: { code: Code.NOT_FOUND, message: 'not in the CAS' } };
          }),
        };
      }),
      GetTree: (call: grpc.ServerWritableStream<{ root_digest?: Digest }, unknown>) => {
        try {
          ctx.authorize(call, 'read');
          const directories = tree(storage, checkDigest(call.request.root_digest, 'root_digest'));
          for (let i = 0; i < directories.length; i += TREE_PAGE) {
            call.write({ directories: directories.slice(i, i + TREE_PAGE) });
          }
          call.end();
        } catch (err) {
          call.emit('error', toServiceError(err, ctx));
        }
      },
    },
  };
}

/** Every directory below `root`, breadth first, each once. */
function tree(storage: ReapiStorage, root: Digest): Directory[] {
  const directories: Directory[] = [];
  const queue = [root];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const d = queue.shift() as Digest;
    if (seen.has(d.hash)) continue;
    seen.add(d.hash);
    const data = storage.read(d.hash);
    if (!data) throw new RpcError(Code.NOT_FOUND, `directory ${d.hash} not in the CAS`);
    const dir = msg.Directory.decode(data);
    directories.push(dir);
    for (const sub of dir.directories) queue.push(checkDigest(sub.digest, 'directories.digest'));
  }
  return directories;
}
