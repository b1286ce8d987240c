import * as grpc from '@grpc/grpc-js';
import type { MethodSpec } from './proto.ts';

export interface CallOptions {
  metadata?: grpc.Metadata;
  /** Milliseconds before the call fails with DEADLINE_EXCEEDED; none when absent. */
  timeoutMs?: number;
}

/** One unary call of a method of the proto subset over a grpc-js client; rejects with the call's ServiceError. */
export function unaryCall<Res>(
  client: grpc.Client,
  spec: MethodSpec,
  req: unknown,
  options: CallOptions = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize as (b: Buffer) => Res,
      req,
      options.metadata ?? new grpc.Metadata(),
      options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs },
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    );
  });
}
