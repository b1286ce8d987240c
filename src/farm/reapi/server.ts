import { createHash, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AccelError } from '../../core/errors.ts';
import type { Log } from '../../core/log.ts';
import type { Identity, Role } from '../../net/tls-identity.ts';
import { roleFromOu } from '../../net/tls-identity.ts';
import type { Digest as StoreDigest } from '../../store/digest.ts';
import { CACHE_AC_NS } from '../../store/refs.ts';
import type { Store } from '../../store/store.ts';
import { jobEnv, mapArgs, Refusal } from '../policy.ts';
import type { JobResult, JobSpec, TreeManifest } from '../protocol.ts';
import type { JobQueue } from '../queue.ts';
import { compilerCall } from './command.ts';
import {
  type Action,
  type ActionResult,
  type Command,
  codec,
  DIGEST_SHA256,
  type Digest,
  type Directory,
  msg,
  type Operation,
  type OutputFile,
  type RpcStatus,
  STAGE,
  services,
  typeUrl,
  V2,
} from './proto.ts';

/**
 * The syncer's Remote Execution API v2 endpoint (gRPC over the farm's mutual TLS). CAS blobs are the store's
 * blobs and action-cache entries the store's `cache-ac` refs, the very ones the mirror's /cache/ac and
 * /cache/cas serve, so a result cached through either is a hit through the other. Execute turns an action
 * into a farm job: its input tree becomes the job's manifest under {@link ACTION_ROOT}, its command must be an
 * allowed compiler call (command.ts), and a worker runs it in the sandbox like any other job.
 */
export interface ReapiOptions {
  store: Store;
  queue: JobQueue;
  identity: Identity;
  log: Log;
  host: string;
  port: number;
  compilers: string[];
  /** Milliseconds an action may wait for a worker before it fails UNAVAILABLE. */
  startTimeoutMs: number;
}

/** Where an action's input root appears to the job (the worker lays it out under its sandbox root). */
export const ACTION_ROOT = '/reapi';
/** The empty blob: present whether or not anyone stored it (the protocol says so). */
const EMPTY = createHash('sha256').digest('hex');
/** What one batch request or response may carry; gRPC's default message limit is 4 MiB. */
const MAX_BATCH = 4 * 1024 * 1024 - 64 * 1024;
const MAX_MESSAGE = 8 * 1024 * 1024;
/** Blobs up to this size travel inline in a result (stdout, stderr). */
const INLINE_MAX = 64 * 1024;
const CHUNK = 64 * 1024;
/** A worker polls at least every 20 s while idle and renews its leases while busy. */
const WORKER_SEEN_MS = 60_000;
const ROLES: Role[] = ['client'];

const Code = grpc.status;

class RpcError extends Error {
  readonly code: grpc.status;
  readonly details: grpc.Metadata | undefined;
  constructor(code: grpc.status, message: string, details?: grpc.Metadata) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** FAILED_PRECONDITION naming the missing blobs, as Bazel expects (it uploads them and asks again). */
function missingBlobs(digests: Digest[]): RpcError {
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

const rpcStatus = codec<RpcStatus>('google.rpc.Status');

export function isDigestHash(hash: string): boolean {
  return /^[0-9a-f]{64}$/.test(hash);
}

function checkDigest(d: Digest | undefined, what: string): Digest {
  if (!d || !isDigestHash(d.hash) || !Number.isSafeInteger(d.size_bytes) || d.size_bytes < 0) {
    throw new RpcError(Code.INVALID_ARGUMENT, `${what}: not a SHA-256 digest`);
  }
  return d;
}

export function createReapiServer(options: ReapiOptions) {
  const { store, queue, log } = options;
  // grpc-js writes its own diagnostics to stderr; ours say the same with a code and a hint (--debug shows its).
  grpc.setLogger({ error: (...args: unknown[]) => log.debug(`grpc: ${args.map(String).join(' ')}`) } as Console);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE,
    'grpc.max_send_message_length': MAX_MESSAGE,
  });
  const operations = new Map<string, Promise<Operation>>();
  const stats = { executed: 0, cached: 0, refused: 0, acHits: 0, acMisses: 0 };

  const has = (hash: string) => hash === EMPTY || store.has(hash as StoreDigest);
  /** A blob as it was hashed; one whose bytes no longer match is quarantined by the store and reads as missing. */
  const read = (d: Digest): Buffer | undefined => {
    if (d.hash === EMPTY) return Buffer.alloc(0);
    try {
      return store.read(d.hash as StoreDigest);
    } catch (err) {
      if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') return undefined;
      throw err;
    }
  };

  /** Every RPC: a certificate of this installation with an allowed role (the TLS layer checked the chain). */
  function authorize(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): void {
    const cert = call.getAuthContext().sslPeerCertificate;
    const role = roleFromOu(cert?.subject?.OU);
    if (!role || !ROLES.includes(role)) {
      throw new RpcError(
        Code.PERMISSION_DENIED,
        `a ${role ?? 'certificate without a role'} may not use the Remote Execution API (allowed: ${ROLES.join(', ')})`,
      );
    }
  }

  function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res) {
    return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      (async () => {
        authorize(call);
        return fn(call.request);
      })().then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err, log)),
      );
    };
  }

  /** An action result whose blobs are all still here, or undefined (evicted blobs make it a miss). */
  function cachedResult(hash: string): ActionResult | undefined {
    const ref = store.refs.get(CACHE_AC_NS, hash);
    const data = ref && read({ hash: ref.digest, size_bytes: 0 });
    if (!data) return undefined;
    let result: ActionResult;
    try {
      result = msg.ActionResult.decode(data);
    } catch {
      return undefined;
    }
    const blobs = [
      ...result.output_files.map((f) => f.digest),
      ...(result.output_directories ?? []).map((d) => d.tree_digest),
      result.stdout_digest,
      result.stderr_digest,
    ];
    for (const d of blobs) if (d?.hash && !has(d.hash)) return undefined;
    return result;
  }

  async function storeResult(hash: string, result: ActionResult): Promise<void> {
    store.refs.set(CACHE_AC_NS, hash, await ensure(msg.ActionResult.encode(result)));
  }

  /** Stores `data` unless the store has it (every put is an fsync); returns its digest. */
  async function ensure(data: Buffer): Promise<StoreDigest> {
    const digest = createHash('sha256').update(data).digest('hex') as StoreDigest;
    if (!has(digest)) await store.putBuffer(data, { expected: digest });
    return digest;
  }

  async function putBlob(d: Digest, data: Buffer): Promise<void> {
    if (data.length !== d.size_bytes)
      throw new RpcError(Code.INVALID_ARGUMENT, `blob ${d.hash}: size ${data.length}, digest says ${d.size_bytes}`);
    if (d.hash === EMPTY || store.has(d.hash as StoreDigest)) return;
    try {
      await store.putBuffer(data, { expected: d.hash as StoreDigest });
    } catch (err) {
      if (err instanceof AccelError && err.code === 'ACCEL_STORE_DIGEST_MISMATCH')
        throw new RpcError(Code.INVALID_ARGUMENT, `blob does not hash to ${d.hash}`);
      throw err;
    }
  }

  /** The input root as a job manifest: every file at ACTION_ROOT/path; missing blobs named. */
  function inputManifest(root: Digest): TreeManifest {
    const files: Record<string, string> = {};
    const missing: Digest[] = [];
    const walk = (d: Digest, dir: string, depth: number) => {
      if (depth > 256) throw new RpcError(Code.INVALID_ARGUMENT, 'input tree nested too deeply');
      const data = read(d);
      if (!data) {
        missing.push(d);
        return;
      }
      const node = msg.Directory.decode(data);
      if (node.symlinks.length > 0) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `input symlink ${posix.join(dir, node.symlinks[0]?.name ?? '')}: not supported by this farm`,
        );
      }
      for (const f of node.files) {
        const digest = checkDigest(f.digest, `input ${f.name}`);
        checkName(f.name);
        if (!has(digest.hash)) missing.push(digest);
        files[posix.join(dir, f.name)] = digest.hash;
      }
      for (const sub of node.directories) {
        checkName(sub.name);
        walk(checkDigest(sub.digest, `directory ${sub.name}`), posix.join(dir, sub.name), depth + 1);
      }
    };
    walk(root, ACTION_ROOT, 0);
    if (missing.length > 0) throw missingBlobs(missing);
    return { roots: [ACTION_ROOT], files };
  }

  /** Runs an action (or finds its cached result) and resolves with the finished Operation. */
  async function execute(
    name: string,
    req: { action_digest?: Digest; skip_cache_lookup: boolean; inline_output_files?: string[] },
    progress: (op: Operation) => void,
    cancelled: AbortSignal,
  ): Promise<Operation> {
    const actionDigest = checkDigest(req.action_digest, 'action_digest');
    const meta = (stage: number) => ({
      type_url: typeUrl(`${V2}.ExecuteOperationMetadata`),
      value: msg.ExecuteOperationMetadata.encode({ stage, action_digest: actionDigest }),
    });
    const done = (response: {
      result?: ActionResult;
      cached_result: boolean;
      status?: RpcStatus;
      message: string;
    }) => ({
      name,
      done: true,
      metadata: meta(STAGE.COMPLETED),
      response: { type_url: typeUrl(`${V2}.ExecuteResponse`), value: msg.ExecuteResponse.encode(response) },
    });
    progress({ name, done: false, metadata: meta(STAGE.CACHE_CHECK) });
    if (!req.skip_cache_lookup) {
      const hit = cachedResult(actionDigest.hash);
      if (hit) {
        stats.cached++;
        return done({ result: hit, cached_result: true, status: { code: 0, message: '' }, message: '' });
      }
    }
    const actionBytes = read(actionDigest);
    if (!actionBytes) throw missingBlobs([actionDigest]);
    const action: Action = msg.Action.decode(actionBytes);
    const commandDigest = checkDigest(action.command_digest, 'command_digest');
    const commandBytes = read(commandDigest);
    if (!commandBytes) throw missingBlobs([commandDigest]);
    const command: Command = msg.Command.decode(commandBytes);
    const manifest = inputManifest(checkDigest(action.input_root_digest, 'input_root_digest'));
    const wd = posix.normalize(posix.join('/', command.working_directory || '.'));
    const cwd = posix.join(ACTION_ROOT, wd);
    let spec: JobSpec;
    try {
      const call = compilerCall(command.arguments, options.compilers);
      spec = {
        compiler: call.compiler,
        toolchain: '',
        cwd,
        args: call.args,
        env: jobEnv(Object.fromEntries(command.environment_variables.map((v) => [v.name, v.value]))),
        startTimeoutMs: options.startTimeoutMs,
      };
      // Refused here, before a worker is bothered: arguments that read or write outside the input root.
      mapArgs({ args: spec.args, cwd, roots: [ACTION_ROOT], root: '/sandbox' });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      stats.refused++;
      throw new RpcError(Code.PERMISSION_DENIED, `${err.code}: ${err.message}`);
    }
    // Without a worker that could take it, the action fails now (the client builds locally or elsewhere);
    // with one, it waits its turn however long the queue is.
    if (!queue.hasWorkerFor(spec.compiler, WORKER_SEEN_MS)) {
      throw new RpcError(Code.UNAVAILABLE, `no worker with ${spec.compiler} has asked for work in the last minute`);
    }
    // The manifest travels inside the assignment; its digest only names it (results say which tree they saw).
    const manifestDigest = createHash('sha256').update(JSON.stringify(manifest)).digest('hex');
    progress({ name, done: false, metadata: meta(STAGE.QUEUED) });
    const queuedAt = new Date();
    // The action's inputs stay in the store until a worker has them, whatever the size limit evicts meanwhile.
    const hold = store.processHold(`reapi:${name}`);
    store.hold(hold, Object.values(manifest.files) as StoreDigest[]);
    const job = queue.submit(spec, { digest: manifestDigest, manifest });
    cancelled.addEventListener('abort', () => job.cancel(), { once: true });
    const result = await job.result.finally(() => store.release(hold));
    stats.executed++;
    const { result: actionResult, persist } = await toActionResult(
      result,
      command,
      cwd,
      queuedAt,
      new Set(req.inline_output_files ?? []),
    );
    // Blobs first, then the cache entry that names them: a reader never finds an entry whose blobs are missing.
    const cacheable = actionResult.exit_code === 0 && !action.do_not_cache;
    const stored = persist().then(async () => {
      if (!cacheable) return;
      const { output_files, ...rest } = actionResult;
      await storeResult(actionDigest.hash, { ...rest, output_files: output_files.map(({ contents: _, ...f }) => f) });
    });
    stored.catch((err: Error) => log.warn(`reapi: storing the result of ${actionDigest.hash}: ${err.message}`));
    if (inlineOnly(actionResult)) {
      // Everything the client needs is in the answer; the store catches up after it.
      return done({ result: actionResult, cached_result: false, status: { code: 0, message: '' }, message: '' });
    }
    await stored;
    return done({ result: actionResult, cached_result: false, status: { code: 0, message: '' }, message: '' });
  }

  /** A finished job as an ActionResult: the declared outputs it made, stdout and stderr, all in the CAS. */
  /**
   * A finished job as an ActionResult, and what must be stored for it: its outputs, stdout and stderr in the
   * CAS. Outputs the client asked to get inline travel in the answer, and are stored after it (off the
   * compile's critical path, each put is an fsync); the others are stored before, since the client will
   * read them from the CAS.
   */
  async function toActionResult(
    result: JobResult,
    command: Command,
    cwd: string,
    queuedAt: Date,
    inline: Set<string>,
  ): Promise<{ result: ActionResult; persist: () => Promise<void> }> {
    if (result.status === 'refused') throw new RpcError(Code.PERMISSION_DENIED, `${result.code}: ${result.message}`);
    if (result.status === 'not-started') throw new RpcError(Code.UNAVAILABLE, 'no worker took the action in time');
    if (result.status === 'failed')
      throw new RpcError(Code.UNAVAILABLE, `the farm could not run the action: ${result.reason}`);
    const declared = new Set([...command.output_files, ...command.output_paths]);
    const kept = result.outputs.filter((out) => declared.has(posix.relative(cwd, out.path)));
    const later: (() => Promise<unknown>)[] = [];
    const now: Promise<unknown>[] = [];
    const outputs: OutputFile[] = [];
    for (const out of kept) {
      const rel = posix.relative(cwd, out.path);
      const data = out.data === undefined ? undefined : Buffer.from(out.data, 'base64');
      const put = () =>
        data && !has(out.digest) ? store.putBuffer(data, { expected: out.digest as StoreDigest }) : Promise.resolve();
      if (data && inline.has(rel)) later.push(put);
      else now.push(put());
      outputs.push({
        path: rel,
        digest: { hash: out.digest, size_bytes: out.size },
        is_executable: out.executable === true,
        ...(data && inline.has(rel) ? { contents: data } : {}),
      });
    }
    // Side by side: each put ends in an fsync, and they overlap.
    await Promise.all(now);
    for (const out of outputs) {
      if (!out.contents && !has(out.digest?.hash ?? ''))
        throw new RpcError(Code.UNAVAILABLE, `output ${out.path} did not reach the syncer`);
    }
    const stdout = Buffer.from(result.stdout, 'latin1');
    const stderr = Buffer.from(result.stderr, 'latin1');
    const streams = [stdout, stderr].map((b) => (b.length <= INLINE_MAX ? () => ensure(b) : undefined));
    // Streams too large to travel inline are stored now; the others with the inline outputs.
    await Promise.all([stdout, stderr].filter((b) => b.length > INLINE_MAX).map((b) => ensure(b)));
    for (const s of streams) if (s) later.push(s);
    const digestOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    return {
      result: {
        output_files: outputs.sort((a, b) => (a.path < b.path ? -1 : 1)),
        exit_code: result.exitCode,
        stdout_digest: { hash: digestOf(stdout), size_bytes: stdout.length },
        stderr_digest: { hash: digestOf(stderr), size_bytes: stderr.length },
        ...(stdout.length <= INLINE_MAX ? { stdout_raw: stdout } : {}),
        ...(stderr.length <= INLINE_MAX ? { stderr_raw: stderr } : {}),
        execution_metadata: {
          worker: result.worker,
          queued_timestamp: timestamp(queuedAt),
          worker_completed_timestamp: timestamp(new Date()),
        },
      },
      persist: async () => {
        await Promise.all(later.map((f) => f()));
      },
    };
  }

  function streamOperation(call: grpc.ServerWritableStream<unknown, Operation>, run: Promise<Operation>) {
    run.then(
      (op) => {
        call.write(op);
        call.end();
      },
      (err: unknown) => call.emit('error', toServiceError(err, log)),
    );
  }

  server.addService(services.Capabilities as unknown as grpc.ServiceDefinition, {
    GetCapabilities: unary(() => ({
      cache_capabilities: {
        digest_functions: [DIGEST_SHA256],
        action_cache_update_capabilities: { update_enabled: true },
        max_batch_total_size_bytes: MAX_BATCH,
        symlink_absolute_path_strategy: 1,
        supported_compressors: [],
      },
      execution_capabilities: { digest_function: DIGEST_SHA256, exec_enabled: true, digest_functions: [DIGEST_SHA256] },
      deprecated_api_version: { major: 2 },
      low_api_version: { major: 2 },
      high_api_version: { major: 2, minor: 0 },
    })),
  });

  server.addService(services.ContentAddressableStorage as unknown as grpc.ServiceDefinition, {
    FindMissingBlobs: unary((req: { blob_digests: Digest[] }) => ({
      missing_blob_digests: req.blob_digests.filter((d) => !has(checkDigest(d, 'blob_digests').hash)),
    })),
    BatchUpdateBlobs: unary(async (req: { requests: { digest?: Digest; data: Buffer; compressor: number }[] }) => {
      // Side by side: each put ends in an fsync, and they overlap.
      const responses = await Promise.all(
        req.requests.map(async (r) => {
          const digest = checkDigest(r.digest, 'requests.digest');
          if (r.compressor !== 0)
            return { digest, status: { code: Code.INVALID_ARGUMENT, message: 'compressed uploads are not supported' } };
          try {
            await putBlob(digest, Buffer.from(r.data));
            return { digest, status: { code: 0, message: '' } };
          } catch (err) {
            if (!(err instanceof RpcError)) throw err;
            return { digest, status: { code: err.code, message: err.message } };
          }
        }),
      );
      return { responses };
    }),
    BatchReadBlobs: unary((req: { digests: Digest[] }) => {
      const total = req.digests.reduce((n, d) => n + Number(d.size_bytes), 0);
      if (total > MAX_BATCH) throw new RpcError(Code.INVALID_ARGUMENT, `batch of ${total} bytes exceeds ${MAX_BATCH}`);
      return {
        responses: req.digests.map((d) => {
          const digest = checkDigest(d, 'digests');
          const data = read(digest);
          return data
            ? { digest, data, status: { code: 0, message: '' } }
            : { digest, status: { code: Code.NOT_FOUND, message: 'not in the CAS' } };
        }),
      };
    }),
    GetTree: (call: grpc.ServerWritableStream<{ root_digest?: Digest }, unknown>) => {
      try {
        authorize(call);
        const directories: Directory[] = [];
        const queue = [checkDigest(call.request.root_digest, 'root_digest')];
        const seen = new Set<string>();
        while (queue.length > 0) {
          const d = queue.shift() as Digest;
          if (seen.has(d.hash)) continue;
          seen.add(d.hash);
          const data = read(d);
          if (!data) throw new RpcError(Code.NOT_FOUND, `directory ${d.hash} not in the CAS`);
          const dir = msg.Directory.decode(data);
          directories.push(dir);
          for (const sub of dir.directories) queue.push(checkDigest(sub.digest, 'directories.digest'));
        }
        for (let i = 0; i < directories.length; i += 1000) call.write({ directories: directories.slice(i, i + 1000) });
        call.end();
      } catch (err) {
        call.emit('error', toServiceError(err, log));
      }
    },
  });

  server.addService(services.ActionCache as unknown as grpc.ServiceDefinition, {
    GetActionResult: unary((req: { action_digest?: Digest }) => {
      const digest = checkDigest(req.action_digest, 'action_digest');
      const result = cachedResult(digest.hash);
      if (!result) {
        stats.acMisses++;
        throw new RpcError(Code.NOT_FOUND, `no result for action ${digest.hash}`);
      }
      stats.acHits++;
      return result;
    }),
    UpdateActionResult: unary(async (req: { action_digest?: Digest; action_result?: ActionResult }) => {
      const digest = checkDigest(req.action_digest, 'action_digest');
      if (!req.action_result) throw new RpcError(Code.INVALID_ARGUMENT, 'action_result missing');
      await storeResult(digest.hash, req.action_result);
      return req.action_result;
    }),
  });

  server.addService(services.ByteStream as unknown as grpc.ServiceDefinition, {
    Read: (
      call: grpc.ServerWritableStream<{ resource_name: string; read_offset: number; read_limit: number }, unknown>,
    ) => {
      try {
        authorize(call);
        const digest = parseResource(call.request.resource_name, false);
        const data = read(digest);
        if (!data) throw new RpcError(Code.NOT_FOUND, `blob ${digest.hash} not in the CAS`);
        const offset = call.request.read_offset;
        if (offset < 0 || offset > data.length)
          throw new RpcError(Code.OUT_OF_RANGE, `read_offset ${offset} past the blob`);
        const end = call.request.read_limit > 0 ? Math.min(data.length, offset + call.request.read_limit) : data.length;
        if (end === offset) call.write({ data: Buffer.alloc(0) });
        for (let i = offset; i < end; i += CHUNK) call.write({ data: data.subarray(i, Math.min(end, i + CHUNK)) });
        call.end();
      } catch (err) {
        call.emit('error', toServiceError(err, log));
      }
    },
    Write: (
      call: grpc.ServerReadableStream<
        { resource_name: string; write_offset: number; finish_write: boolean; data: Buffer },
        unknown
      >,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      // Streamed into a store writer chunk by chunk (the call paused while a write is in flight), so a large
      // blob never sits whole in memory; committed only complete and matching its digest, else dropped.
      let writer: Awaited<ReturnType<Store['createWriter']>> | undefined;
      let writes: Promise<void> = Promise.resolve();
      let size = 0;
      let digest: Digest | undefined;
      let finished = false;
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        writes.finally(() => writer?.abort()).catch(() => {});
        callback(toServiceError(err, log));
      };
      try {
        authorize(call);
      } catch (err) {
        return fail(err);
      }
      call.on('data', (req: { resource_name: string; write_offset: number; finish_write: boolean; data: Buffer }) => {
        if (failed) return;
        try {
          if (!digest) digest = parseResource(req.resource_name, true);
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
        call.pause();
        writes = writes
          .then(async () => {
            writer ??= await store.createWriter();
            if (chunk.length > 0) await writer.write(chunk);
          })
          .then(
            () => {
              if (!failed) call.resume();
            },
            (err: unknown) => fail(err),
          );
      });
      call.on('end', () => {
        if (failed) return;
        if (!digest || !finished)
          return fail(new RpcError(Code.INVALID_ARGUMENT, 'the upload ended without finish_write'));
        const d = digest;
        if (size !== d.size_bytes)
          return fail(new RpcError(Code.INVALID_ARGUMENT, `${size} bytes, the digest says ${d.size_bytes}`));
        writes
          .then(async () => {
            if (failed) return;
            if (d.hash === EMPTY || has(d.hash)) await writer?.abort();
            else await (writer ?? (await store.createWriter())).commit({ expected: d.hash as StoreDigest });
            callback(null, { committed_size: d.size_bytes });
          })
          .catch((err: unknown) => {
            writer?.abort().catch(() => {});
            fail(
              err instanceof AccelError && err.code === 'ACCEL_STORE_DIGEST_MISMATCH'
                ? new RpcError(Code.INVALID_ARGUMENT, `the bytes do not hash to ${d.hash}`)
                : err,
            );
          });
      });
      call.on('error', () => {
        failed = true;
        writes.finally(() => writer?.abort()).catch(() => {});
      });
    },
    QueryWriteStatus: unary((req: { resource_name: string }) => {
      const digest = parseResource(req.resource_name, true);
      const complete = has(digest.hash);
      return { committed_size: complete ? digest.size_bytes : 0, complete };
    }),
  });

  server.addService(services.Execution as unknown as grpc.ServiceDefinition, {
    Execute: (
      call: grpc.ServerWritableStream<
        { action_digest?: Digest; skip_cache_lookup: boolean; inline_output_files: string[] },
        Operation
      >,
    ) => {
      const name = `operations/${randomUUID()}`;
      let run: Promise<Operation>;
      try {
        authorize(call);
        // A client that goes away (Ctrl-C in Bazel) takes its queued or running job with it.
        const gone = new AbortController();
        call.on('cancelled', () => gone.abort());
        run = execute(
          name,
          call.request,
          (op) => {
            if (!call.cancelled) call.write(op);
          },
          gone.signal,
        );
      } catch (err) {
        run = Promise.reject(err);
      }
      operations.set(name, run);
      // A finished operation can be waited for a while (a client that lost its stream asks WaitExecution).
      const forget = () => setTimeout(() => operations.delete(name), 60_000).unref();
      run.then(forget, forget);
      streamOperation(call, run);
    },
    WaitExecution: (call: grpc.ServerWritableStream<{ name: string }, Operation>) => {
      try {
        authorize(call);
      } catch (err) {
        call.emit('error', toServiceError(err, log));
        return;
      }
      const run = operations.get(call.request.name);
      if (!run) {
        call.emit('error', toServiceError(new RpcError(Code.NOT_FOUND, `no operation ${call.request.name}`), log));
        return;
      }
      streamOperation(call, run);
    },
  });

  let bound = 0;
  return {
    stats,
    async listen(): Promise<number> {
      const credentials = grpc.ServerCredentials.createSsl(
        Buffer.from(options.identity.ca),
        [{ private_key: Buffer.from(options.identity.key), cert_chain: Buffer.from(options.identity.cert) }],
        true,
      );
      const address = options.host.includes(':')
        ? `[${options.host}]:${options.port}`
        : `${options.host}:${options.port}`;
      bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(address, credentials, (err, port) => {
          if (!err) return resolve(port);
          const inUse = /EADDRINUSE|address already in use/i.test(err.message);
          reject(
            new AccelError(
              inUse ? 'ACCEL_NET_PORT_IN_USE' : 'ACCEL_NET_CANNOT_LISTEN',
              inUse
                ? `${address} (the REAPI port) is already in use`
                : `cannot listen on ${address} for REAPI: ${err.message}`,
              {
                hint: 'stop the other server, choose another --reapi-port, or serve no REAPI (--no-reapi)',
                exitCode: 2,
              },
            ),
          );
        });
      });
      return bound;
    },
    port: () => bound,
    close(): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

export type ReapiServer = ReturnType<typeof createReapiServer>;

/** Whether the client can use a result without reading anything from the CAS. */
function inlineOnly(result: ActionResult): boolean {
  return (
    result.output_files.every((f) => f.contents !== undefined) &&
    (result.stdout_raw !== undefined || result.stdout_digest?.size_bytes === 0) &&
    (result.stderr_raw !== undefined || result.stderr_digest?.size_bytes === 0)
  );
}

function checkName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new RpcError(Code.INVALID_ARGUMENT, `input name ${JSON.stringify(name)} is not a single path component`);
  }
}

/** `[instance/]blobs/HASH/SIZE` (reads) or `[instance/]uploads/UUID/blobs/HASH/SIZE[/…]` (writes). */
function parseResource(name: string, upload: boolean): Digest {
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

function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** An error as gRPC sends it: a status code, its text, and the details (a PreconditionFailure) when there are. */
function toServiceError(err: unknown, log: Log): grpc.ServiceError {
  const rpc = err instanceof RpcError ? err : new RpcError(Code.INTERNAL, String((err as Error)?.message ?? err));
  if (!(err instanceof RpcError)) log.warn(`reapi: ${rpc.message}`);
  return Object.assign(new Error(rpc.message), {
    code: rpc.code,
    details: rpc.message,
    metadata: rpc.details ?? new grpc.Metadata(),
  });
}
