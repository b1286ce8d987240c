import type * as grpc from '@grpc/grpc-js';
import { AccelError } from '../../core/errors.ts';
import { DIGEST_SHA256, type FetchBlobRequest, type FetchBlobResponse, services } from '../../reapi/proto.ts';
import { Code, RpcError, type ServiceContext, unary } from '../../reapi/rpc.ts';
import type { MirrorContext } from '../context.ts';
import { fetchToStore } from '../fetch-blob.ts';
import { parseQualifiers } from './qualifiers.ts';

const MAX_URIS = 32;

/**
 * The Remote Asset API's Fetch service: Bazel's `--experimental_remote_downloader` hands every download to
 * FetchBlob, which fetches it into the store by the mirror's rules (fetch-blob.ts) and answers its digest;
 * Bazel then reads the blob from the CAS on the same port. Directories are not fetched (UNIMPLEMENTED).
 */
export function fetchService(ctx: ServiceContext, mirror: MirrorContext) {
  return {
    definition: services.Fetch as unknown as grpc.ServiceDefinition,
    implementation: {
      FetchBlob: unary(ctx, 'read', (req: FetchBlobRequest) => fetchBlob(mirror, req)),
      FetchDirectory: unary(ctx, 'read', () => {
        throw new RpcError(
          Code.UNIMPLEMENTED,
          'ACCEL_REAPI_UNIMPLEMENTED: accel mirror fetches blobs (FetchBlob), not directories; Bazel 4 asks only for blobs',
        );
      }),
    },
  };
}

/** The Push service: the mirror learns URLs by fetching them, never from a client's say-so. */
export function pushService(ctx: ServiceContext) {
  const refuse = () => {
    throw new RpcError(
      Code.UNIMPLEMENTED,
      'ACCEL_REAPI_UNIMPLEMENTED: accel mirror does not take pushed URL bindings (a client could bind any content to any URL); it fetches with FetchBlob',
    );
  };
  return {
    definition: services.Push as unknown as grpc.ServiceDefinition,
    implementation: { PushBlob: unary(ctx, 'write', refuse), PushDirectory: unary(ctx, 'write', refuse) },
  };
}

async function fetchBlob(mirror: MirrorContext, req: FetchBlobRequest): Promise<FetchBlobResponse> {
  if (req.digest_function !== 0 && req.digest_function !== DIGEST_SHA256) {
    throw new RpcError(Code.INVALID_ARGUMENT, `digest_function ${req.digest_function}: accel stores SHA-256 only`);
  }
  if (req.uris.length === 0) throw new RpcError(Code.INVALID_ARGUMENT, 'no uris to fetch');
  if (req.uris.length > MAX_URIS) throw new RpcError(Code.INVALID_ARGUMENT, `more than ${MAX_URIS} uris`);
  for (const uri of req.uris) checkUri(uri);
  let qualifiers: ReturnType<typeof parseQualifiers>;
  try {
    qualifiers = parseQualifiers(req.qualifiers, req.uris);
  } catch (err) {
    throw asRpc(err);
  }
  const oldest = req.oldest_content_accepted;
  const oldestAcceptedMs = oldest && oldest.seconds > 0 ? oldest.seconds * 1000 + oldest.nanos / 1e6 : undefined;
  const timeoutMs = req.timeout ? req.timeout.seconds * 1000 + req.timeout.nanos / 1e6 : 0;
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
  const failures: RpcError[] = [];
  for (const [i, uri] of req.uris.entries()) {
    const left = deadline === undefined ? undefined : deadline - Date.now();
    if (left !== undefined && left <= 0) break;
    try {
      const fetched = fetchToStore(mirror, {
        url: uri,
        pinned: qualifiers.pinned,
        headers: qualifiers.headers[i],
        oldestAcceptedMs,
      });
      const stored = await (left === undefined ? fetched : withTimeout(fetched, left, uri));
      return {
        status: { code: 0, message: '' },
        uri,
        qualifiers: req.qualifiers,
        blob_digest: { hash: stored.digest, size_bytes: stored.size },
      };
    } catch (err) {
      failures.push(asRpc(err, uri));
    }
  }
  if (failures.length === 0) {
    throw new RpcError(Code.DEADLINE_EXCEEDED, `ACCEL_MIRROR_TIMEOUT: no uri fetched within ${timeoutMs} ms`);
  }
  // The last failure decides the code (the client may retry UNAVAILABLE); every URI's reason is in the text.
  const last = failures[failures.length - 1] as RpcError;
  return Promise.reject(new RpcError(last.code, failures.map((f) => f.message).join('; ')));
}

function checkUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new RpcError(Code.INVALID_ARGUMENT, `ACCEL_FETCH_BAD_URL: not a URL: ${JSON.stringify(uri.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RpcError(Code.INVALID_ARGUMENT, `ACCEL_FETCH_BAD_URL: only http and https URLs are fetched, not ${uri}`);
  }
}

/** The fetch keeps running after a timeout (its blob lands in the store for the next request); the answer does not wait. */
function withTimeout<T>(work: Promise<T>, ms: number, uri: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RpcError(Code.DEADLINE_EXCEEDED, `ACCEL_MIRROR_TIMEOUT: ${uri} not fetched within ${ms} ms`)),
      ms,
    );
  });
  work.catch(() => {});
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** A fetch failure as a gRPC status, its stable code first in the text. */
function asRpc(err: unknown, uri?: string): RpcError {
  if (err instanceof RpcError) return err;
  if (!(err instanceof AccelError)) throw err;
  const where = uri && !err.message.includes(uri) ? `${uri}: ` : '';
  const text = `${err.code}: ${where}${err.message}${err.hint ? ` (hint: ${err.hint})` : ''}`;
  return new RpcError(fetchStatus(err.code), text);
}

function fetchStatus(code: string): grpc.status {
  switch (code) {
    case 'ACCEL_REAPI_BAD_QUALIFIER':
    case 'ACCEL_MIRROR_BAD_PATH':
    case 'ACCEL_MIRROR_BAD_SCHEME':
    case 'ACCEL_MIRROR_NOT_FOUND':
    case 'ACCEL_FETCH_BAD_URL':
      return Code.INVALID_ARGUMENT;
    case 'ACCEL_FETCH_REFUSED':
      return Code.PERMISSION_DENIED;
    case 'ACCEL_MIRROR_UPSTREAM_NOT_FOUND':
      return Code.NOT_FOUND;
    case 'ACCEL_STORE_DIGEST_MISMATCH':
      return Code.FAILED_PRECONDITION;
    case 'ACCEL_FS_NO_SPACE':
      return Code.RESOURCE_EXHAUSTED;
    default:
      return Code.UNAVAILABLE;
  }
}
