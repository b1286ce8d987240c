import * as grpc from '@grpc/grpc-js';
import { AccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import { codec, type Digest, msg, type RpcStatus, typeUrl } from './proto.ts';
import { isDigestHash } from './storage.ts';

/** What the services of one server share: who may do what, and where diagnostics go. */
export interface ServiceContext {
  /** Throws an {@link RpcError} when the call may not read (or write). */
  authorize: Authorize;
  log: Log;
  /** Prefix of the server's log lines ('reapi', 'mirror grpc'). */
  name: string;
}

export type Access = 'read' | 'write';
export type Authorize = (call: CallInfo, access: Access) => void;
export type CallInfo = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'metadata'>;

export const Code = grpc.status;

export class RpcError extends Error {
  readonly code: grpc.status;
  readonly details: grpc.Metadata | undefined;
  constructor(code: grpc.status, message: string, details?: grpc.Metadata) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

const rpcStatus = codec<RpcStatus>('google.rpc.Status');

/** FAILED_PRECONDITION naming the missing blobs, as Bazel expects (it uploads them and asks again). */
export function missingBlobs(digests: Digest[]): RpcError {
  const failure = msg.PreconditionFailure.encode({
    violations: digests.map((d) => ({ type: 'MISSING', subject: `blobs/${d.hash}/${d.size_bytes}`, description: '' })),
  });
  const status = {
    code: Code.FAILED_PRECONDITION,
    message: `${digests.length} blob(s) missing`,
    details: [{ type_url: typeUrl('google.rpc.PreconditionFailure'), value: failure }],
  };
  const md = new grpc.Metadata();
  md.set('grpc-status-details-bin', rpcStatus.encode(status));
  return new RpcError(Code.FAILED_PRECONDITION, status.message, md);
}

export function checkDigest(d: Digest | undefined, what: string): Digest {
  if (!d || !isDigestHash(d.hash) || !Number.isSafeInteger(d.size_bytes) || d.size_bytes < 0) {
    throw new RpcError(Code.INVALID_ARGUMENT, `${what}: not a SHA-256 digest`);
  }
  return d;
}

/** `[instance/]blobs/HASH/SIZE` (reads) or `[instance/]uploads/UUID/blobs/HASH/SIZE[/…]` (writes). */
export function parseResource(name: string, upload: boolean): Digest {
  const parts = name.split('/');
  const at = parts.indexOf('blobs');
  const ok = at >= 0 && (!upload || (at >= 2 && parts[at - 2] === 'uploads'));
  const hash = parts[at + 1] ?? '';
  const size = Number(parts[at + 2]);
  if (!ok || !isDigestHash(hash) || !Number.isSafeInteger(size) || size < 0) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `resource name ${JSON.stringify(name.slice(0, 200))}: expected ${upload ? 'uploads/UUID/' : ''}blobs/SHA256/SIZE`,
    );
  }
  return { hash, size_bytes: size };
}

/** A unary handler: authorized for `access`, errors mapped to gRPC statuses. */
export function unary<Req, Res>(ctx: ServiceContext, access: Access, fn: (req: Req) => Promise<Res> | Res) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    (async () => {
      ctx.authorize(call, access);
      return fn(call.request);
    })().then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err, ctx)),
    );
  };
}

/** An error as gRPC sends it: a status code, its text, and the details (a PreconditionFailure) when there are. */
export function toServiceError(err: unknown, ctx: Pick<ServiceContext, 'log' | 'name'>): grpc.ServiceError {
  const rpc = asRpcError(err);
  if (rpc.code === Code.INTERNAL) ctx.log.warn(`${ctx.name}: ${rpc.message}`);
  const message = asciiMessage(rpc.message);
  return Object.assign(new Error(message), {
    code: rpc.code,
    details: message,
    metadata: rpc.details ?? new grpc.Metadata(),
  });
}

/** Typographic characters our messages use, as the ASCII a terminal shows the same way. */
const ASCII_FOR: Record<string, string> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2013': '-',
  '\u2014': '-',
  '\u2026': '...',
  '\u00d7': 'x',
  '\u2192': '->',
};

/**
 * A status message as ASCII. Clients print the grpc-message header byte by byte (Bazel shows `farm?s` for
 * `farm’s`), so typographic quotes and dashes become their ASCII look-alikes and anything else non-ASCII
 * (a file name, a compiler's localized diagnostic) becomes \uXXXX, which still names it exactly.
 */
export function asciiMessage(text: string): string {
  return text.replace(/[^\x20-\x7e\n\t]/g, (c) => {
    const known = ASCII_FOR[c];
    if (known !== undefined) return known;
    const code = c.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f ? ' ' : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function asRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof AccelError) {
    const code = accelStatus(err.code);
    if (code !== undefined) return new RpcError(code, `${err.code}: ${err.message}`);
  }
  return new RpcError(Code.INTERNAL, String((err as Error)?.message ?? err));
}

/** The gRPC status of the AccelErrors storage and fetching raise for a client's mistake or a full disk. */
function accelStatus(code: string): grpc.status | undefined {
  if (code === 'ACCEL_REAPI_BAD_BLOB') return Code.INVALID_ARGUMENT;
  if (code === 'ACCEL_FS_NO_SPACE') return Code.RESOURCE_EXHAUSTED;
  return undefined;
}
