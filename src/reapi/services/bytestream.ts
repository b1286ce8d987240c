import type * as grpc from '@grpc/grpc-js';
import { AccelError } from '../../core/errors.ts';
import { type Digest, services } from '../proto.ts';
import { Code, parseResource, RpcError, type ServiceContext, toServiceError, unary } from '../rpc.ts';
import type { BlobUpload, ReapiStorage } from '../storage.ts';

const CHUNK = 64 * 1024;

interface ReadRequest {
  resource_name: string;
  read_offset: number;
  read_limit: number;
}
interface WriteRequest {
  resource_name: string;
  write_offset: number;
  finish_write: boolean;
  data: Buffer;
}

/** ByteStream: blobs larger than a batch, read in chunks and written as streamed uploads. */
export function byteStreamService(ctx: ServiceContext, storage: ReapiStorage) {
  return {
    definition: services.ByteStream as unknown as grpc.ServiceDefinition,
    implementation: {
      Read: (call: grpc.ServerWritableStream<ReadRequest, unknown>) => {
        streamRead(ctx, storage, call).then(
          () => call.end(),
          (err: unknown) => call.emit('error', toServiceError(err, ctx)),
        );
      },
      Write: (call: grpc.ServerReadableStream<WriteRequest, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        receiveUpload(ctx, storage, call, callback),
      QueryWriteStatus: unary(ctx, 'read', (req: { resource_name: string }) => {
        const digest = parseResource(req.resource_name, true);
        const complete = storage.has(digest.hash);
        return { committed_size: complete ? digest.size_bytes : 0, complete };
      }),
    },
  };
}

/**
 * One Read: the blob streamed from the store in chunks of at most CHUNK bytes, each written when the client
 * has taken the last (gRPC's flow control), so memory stays flat for any blob size and any number of readers.
 * A blob found corrupt on the way fails the call (DATA_LOSS) instead of ending it.
 */
async function streamRead(
  ctx: ServiceContext,
  storage: ReapiStorage,
  call: grpc.ServerWritableStream<ReadRequest, unknown>,
): Promise<void> {
  ctx.authorize(call, 'read');
  const digest = parseResource(call.request.resource_name, false);
  const size = storage.size(digest.hash);
  if (size === undefined) throw new RpcError(Code.NOT_FOUND, `blob ${digest.hash} not in the CAS`);
  const offset = call.request.read_offset;
  if (offset < 0 || offset > size) throw new RpcError(Code.OUT_OF_RANGE, `read_offset ${offset} past the blob`);
  const limit = call.request.read_limit;
  if (limit < 0) throw new RpcError(Code.OUT_OF_RANGE, `read_limit ${limit} is negative`);
  const end = limit > 0 ? Math.min(size, offset + limit) : size;
  if (end === offset) {
    call.write({ data: Buffer.alloc(0) });
    return;
  }
  const send = async (data: Buffer) => {
    if (call.cancelled) throw new RpcError(Code.CANCELLED, 'the client went away');
    if (!call.write({ data })) await new Promise<void>((resolve) => call.once('drain', resolve));
  };
  let found: boolean;
  try {
    found = await storage.stream(digest.hash, { offset, end }, async (chunk) => {
      for (let i = 0; i < chunk.length; i += CHUNK) await send(chunk.subarray(i, i + CHUNK));
    });
  } catch (err) {
    if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') {
      throw new RpcError(Code.DATA_LOSS, `blob ${digest.hash} is corrupt in the CAS; it was removed`);
    }
    throw err;
  }
  if (!found) throw new RpcError(Code.NOT_FOUND, `blob ${digest.hash} not in the CAS`);
}

/**
 * One Write: streamed into a store upload chunk by chunk (the call paused while a write is in flight), so a
 * large blob never sits whole in memory; committed only complete and matching its digest, else dropped.
 */
function receiveUpload(
  ctx: ServiceContext,
  storage: ReapiStorage,
  call: grpc.ServerReadableStream<WriteRequest, unknown>,
  callback: grpc.sendUnaryData<unknown>,
): void {
  let upload: BlobUpload | undefined;
  let writes: Promise<void> = Promise.resolve();
  let size = 0;
  let digest: Digest | undefined;
  let finished = false;
  let failed = false;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    writes.finally(() => upload?.abort()).catch(() => {});
    callback(toServiceError(err, ctx));
  };
  try {
    ctx.authorize(call, 'write');
  } catch (err) {
    fail(err);
    return;
  }
  call.on('data', (req: WriteRequest) => {
    if (failed) return;
    try {
      if (!digest) {
        digest = parseResource(req.resource_name, true);
        upload = storage.upload(digest);
      }
      if (req.write_offset !== size)
        throw new RpcError(Code.INVALID_ARGUMENT, `write_offset ${req.write_offset}, expected ${size}`);
      if (finished) throw new RpcError(Code.INVALID_ARGUMENT, 'data after finish_write');
      size += req.data.length;
      if (size > digest.size_bytes)
        throw new RpcError(Code.INVALID_ARGUMENT, `more than the ${digest.size_bytes} bytes the digest names`);
      if (req.finish_write) finished = true;
    } catch (err) {
      return fail(err);
    }
    const chunk = Buffer.from(req.data);
    const target = upload as BlobUpload;
    call.pause();
    writes = writes
      .then(() => target.write(chunk))
      .then(
        () => {
          if (!failed) call.resume();
        },
        (err: unknown) => fail(err),
      );
  });
  call.on('end', () => {
    if (failed) return;
    if (!digest || !upload || !finished)
      return fail(new RpcError(Code.INVALID_ARGUMENT, 'the upload ended without finish_write'));
    const d = digest;
    const target = upload;
    if (size !== d.size_bytes)
      return fail(new RpcError(Code.INVALID_ARGUMENT, `${size} bytes, the digest says ${d.size_bytes}`));
    writes
      .then(async () => {
        if (failed) return;
        await target.commit();
        callback(null, { committed_size: d.size_bytes });
      })
      .catch((err: unknown) => fail(err));
  });
  call.on('error', () => {
    failed = true;
    writes.finally(() => upload?.abort()).catch(() => {});
  });
}
