// A small Remote Execution API client for the integration tests: a gRPC channel with a farm certificate,
// blobs and directory trees uploaded by digest, actions executed, ByteStream reads.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { unaryCall } from '../../src/reapi/call.ts';
import {
  type ActionResult,
  type Digest,
  type Directory,
  type MethodSpec,
  msg,
  type Operation,
  services,
} from '../../src/reapi/proto.ts';

export function digestOf(data: Buffer): Digest {
  return { hash: createHash('sha256').update(data).digest('hex'), size_bytes: data.length };
}

/**
 * A gRPC client presenting `home`'s certificate (none when `home` is undefined) and trusting `caHome`'s CA
 * (`home`'s by default); closed when the test ends.
 */
export function reapiClient(t: TestContext, port: number, home: string | undefined, caHome = home): grpc.Client {
  if (caHome === undefined) throw new Error('a client without a certificate needs caHome for the CA');
  const ca = Buffer.from(loadIdentity(caHome).ca);
  const id = home === undefined ? undefined : loadIdentity(home);
  const credentials = id
    ? grpc.credentials.createSsl(ca, Buffer.from(id.key), Buffer.from(id.cert))
    : grpc.credentials.createSsl(ca);
  const c = new grpc.Client(`127.0.0.1:${port}`, credentials);
  t.after(() => c.close());
  return c;
}

export function unary<Res>(c: grpc.Client, spec: MethodSpec, req: unknown): Promise<Res> {
  return unaryCall<Res>(c, spec, req, { timeoutMs: 30_000 });
}

/** Uploads blobs in one batch; every one must be accepted. */
export async function putBlobs(c: grpc.Client, blobs: Buffer[]): Promise<Digest[]> {
  const digests = blobs.map(digestOf);
  const r = await unary<{ responses: { status?: { code: number; message: string } }[] }>(
    c,
    services.ContentAddressableStorage.BatchUpdateBlobs,
    { requests: blobs.map((data, i) => ({ digest: digests[i], data })) },
  );
  for (const res of r.responses) assert.equal(res.status?.code ?? 0, 0, res.status?.message);
  return digests;
}

/** An input tree: a file is a Buffer (or `{ data, executable }`), a symlink `{ symlink }`, a directory an object. */
export type TreeSpec = { [name: string]: Buffer | { data: Buffer; executable: true } | { symlink: string } | TreeSpec };

/** Uploads a tree's files and Directory messages; returns the root's digest. */
export async function putTree(c: grpc.Client, tree: TreeSpec): Promise<Digest> {
  const blobs: Buffer[] = [];
  const encode = (spec: TreeSpec): Digest => {
    const dir: Directory = { files: [], directories: [], symlinks: [] };
    for (const name of Object.keys(spec).sort()) {
      const v = spec[name] as TreeSpec[string];
      if (Buffer.isBuffer(v)) {
        blobs.push(v);
        dir.files.push({ name, digest: digestOf(v), is_executable: false });
      } else if ('symlink' in v && typeof v.symlink === 'string') dir.symlinks.push({ name, target: v.symlink });
      else if ('data' in v && Buffer.isBuffer(v.data)) {
        blobs.push(v.data);
        dir.files.push({ name, digest: digestOf(v.data), is_executable: true });
      } else dir.directories.push({ name, digest: encode(v as TreeSpec) });
    }
    const data = msg.Directory.encode(dir);
    blobs.push(data);
    return digestOf(data);
  };
  const root = encode(tree);
  await putBlobs(c, blobs);
  return root;
}

export interface ActionSpec {
  args: string[];
  tree: TreeSpec;
  env?: Record<string, string>;
  outputFiles?: string[];
  outputDirs?: string[];
  /** REAPI v2.1's output_paths (files or directories); when set, output_files and output_directories stay empty. */
  outputPaths?: string[];
  cwd?: string;
  doNotCache?: boolean;
}

/** Uploads an action with its command and input tree; returns the action's digest. */
export async function putAction(c: grpc.Client, spec: ActionSpec): Promise<Digest> {
  const root = await putTree(c, spec.tree);
  const command = msg.Command.encode({
    arguments: spec.args,
    environment_variables: Object.entries(spec.env ?? {})
      .sort()
      .map(([name, value]) => ({ name, value })),
    output_files: spec.outputPaths ? [] : (spec.outputFiles ?? []),
    output_directories: spec.outputPaths ? [] : (spec.outputDirs ?? []),
    output_paths: spec.outputPaths ?? [],
    working_directory: spec.cwd ?? '',
  });
  const [commandDigest] = await putBlobs(c, [command]);
  const action = msg.Action.encode({
    command_digest: commandDigest,
    input_root_digest: root,
    do_not_cache: spec.doNotCache ?? false,
    salt: Buffer.alloc(0),
  });
  const [actionDigest] = await putBlobs(c, [action]);
  return actionDigest as Digest;
}

/** Executes an action; resolves with its ExecuteResponse, rejects with the call's gRPC error. */
export async function execute(
  c: grpc.Client,
  action: Digest,
  options: ExecuteOptions = {},
): Promise<{ result?: ActionResult; cached_result: boolean }> {
  const last = (await executeOps(c, action, options)).at(-1);
  if (!last?.done || !last.response) throw new Error('the operation did not finish');
  return msg.ExecuteResponse.decode(last.response.value);
}

export interface ExecuteOptions {
  skipCache?: boolean;
  /** Output files whose contents the response carries inline. */
  inline?: string[];
}

/** Executes an action; resolves with every Operation the stream sent, rejects with the call's gRPC error. */
export function executeOps(c: grpc.Client, action: Digest, options: ExecuteOptions = {}): Promise<Operation[]> {
  const spec = services.Execution.Execute;
  return new Promise((resolve, reject) => {
    const ops: Operation[] = [];
    const s = c.makeServerStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      {
        action_digest: action,
        skip_cache_lookup: options.skipCache ?? false,
        inline_output_files: options.inline ?? [],
      },
      new grpc.Metadata(),
      { deadline: Date.now() + 120_000 },
    );
    s.on('data', (op: Operation) => ops.push(op));
    s.on('error', reject);
    s.on('end', () => resolve(ops));
  });
}

/** A ByteStream read of `digest` (a range when offset/limit are given), as the chunks that arrived. */
export function byteStreamRead(
  c: grpc.Client,
  digest: Digest,
  range: { offset?: number; limit?: number } = {},
): Promise<Buffer[]> {
  const spec = services.ByteStream.Read;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = c.makeServerStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      {
        resource_name: `blobs/${digest.hash}/${digest.size_bytes}`,
        read_offset: range.offset ?? 0,
        read_limit: range.limit ?? 0,
      },
      new grpc.Metadata(),
      { deadline: Date.now() + 60_000 },
    );
    s.on('data', (r: { data: Buffer }) => chunks.push(Buffer.from(r.data)));
    s.on('error', reject);
    s.on('end', () => resolve(chunks));
  });
}

/** A blob read back whole through BatchReadBlobs. */
export async function readBlob(c: grpc.Client, digest: Digest): Promise<Buffer> {
  const r = await unary<{ responses: { data: Buffer; status?: { code: number } }[] }>(
    c,
    services.ContentAddressableStorage.BatchReadBlobs,
    { digests: [digest] },
  );
  assert.equal(r.responses[0]?.status?.code ?? 0, 0, `blob ${digest.hash} readable`);
  return Buffer.from(r.responses[0]?.data ?? Buffer.alloc(0));
}
