import type * as grpc from '@grpc/grpc-js';
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
        try {
          ctx.authorize(call, 'read');
          const digest = parseResource(call.request.resource_name, false);
          const data = storage.read(digest.hash);
          if (!data) throw new RpcError(Code.NOT_FOUND, `blob ${digest.hash} not in the CAS`);
          const offset = call.request.read_offset;
          if (offset < 0 || offset > data.length)
            throw new RpcError(Code.OUT_OF_RANGE, `read_offset ${offset} past the blob`);
          const limit = call.request.read_limit;
          const end = limit > 0 ? Math.min(data.length, offset + limit) : data.length;
          if (end === offset) call.write({ data: Buffer.alloc(0) });
          for (let i = offset; i < end; i += CHUNK) call.write({ data: data.subarray(i, Math.min(end, i + CHUNK)) });
          call.end();
        } catch (err) {
          call.emit('error', toServiceError(err, ctx));
        }
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
