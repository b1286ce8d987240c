import { createHash, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Log } from '../../core/log.ts';
import {
  type Action,
  type ActionResult,
  type Command,
  type Digest,
  msg,
  type Operation,
  type OutputFile,
  type RpcStatus,
  STAGE,
  services,
  typeUrl,
  V2,
} from '../../reapi/proto.ts';
import { Code, checkDigest, missingBlobs, RpcError, type ServiceContext, toServiceError } from '../../reapi/rpc.ts';
import type { ReapiStorage } from '../../reapi/storage.ts';
import type { Digest as StoreDigest } from '../../store/digest.ts';
import { jobEnv, mapArgs, Refusal } from '../policy.ts';
import type { JobResult, JobSpec, TreeManifest } from '../protocol.ts';
import type { JobQueue } from '../queue.ts';
import { compilerCall } from './command.ts';

/** Where an action's input root appears to the job (the worker lays it out under its sandbox root). */
export const ACTION_ROOT = '/reapi';
/** Blobs up to this size travel inline in a result (stdout, stderr). */
const INLINE_MAX = 64 * 1024;
/** A worker polls at least every 20 s while idle and renews its leases while busy. */
const WORKER_SEEN_MS = 60_000;

export interface ExecutionStats {
  executed: number;
  cached: number;
  refused: number;
}

/** What Execute needs besides the call: the storage, the farm's queue, and the syncer's settings. */
export interface ExecutionDeps {
  storage: ReapiStorage;
  queue: JobQueue;
  stats: ExecutionStats;
  log: Log;
  options: {
    compilers: string[];
    /** Milliseconds an action may wait for a worker before it fails UNAVAILABLE. */
    startTimeoutMs: number;
  };
}

/**
 * Execution: an action becomes a farm job. Its input tree becomes the job's manifest under {@link ACTION_ROOT},
 * its command must be an allowed compiler call (command.ts), and a worker runs it in the sandbox like any
 * other job. A finished operation can be waited for a minute (WaitExecution).
 */
export function executionService(ctx: ServiceContext, deps: ExecutionDeps) {
  const operations = new Map<string, Promise<Operation>>();
  return {
    definition: services.Execution as unknown as grpc.ServiceDefinition,
    implementation: {
      Execute: (
        call: grpc.ServerWritableStream<
          { action_digest?: Digest; skip_cache_lookup: boolean; inline_output_files: string[] },
          Operation
        >,
      ) => {
        const name = `operations/${randomUUID()}`;
        let run: Promise<Operation>;
        try {
          ctx.authorize(call, 'write');
          // A client that goes away (Ctrl-C in Bazel) takes its queued or running job with it.
          const gone = new AbortController();
          call.on('cancelled', () => gone.abort());
          run = execute(
            deps,
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
        streamOperation(ctx, call, run);
      },
      WaitExecution: (call: grpc.ServerWritableStream<{ name: string }, Operation>) => {
        try {
          ctx.authorize(call, 'write');
        } catch (err) {
          call.emit('error', toServiceError(err, ctx));
          return;
        }
        const run = operations.get(call.request.name);
        if (!run) {
          call.emit('error', toServiceError(new RpcError(Code.NOT_FOUND, `no operation ${call.request.name}`), ctx));
          return;
        }
        streamOperation(ctx, call, run);
      },
    },
  };
}

/** The input root as a job manifest: every file at ACTION_ROOT/path; missing blobs named. */
function inputManifest(storage: ReapiStorage, root: Digest): TreeManifest {
  const files: Record<string, string> = {};
  const missing: Digest[] = [];
  const walk = (d: Digest, dir: string, depth: number) => {
    if (depth > 256) throw new RpcError(Code.INVALID_ARGUMENT, 'input tree nested too deeply');
    const data = storage.read(d.hash);
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
      if (!storage.has(digest.hash)) missing.push(digest);
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
  deps: ExecutionDeps,
  name: string,
  req: { action_digest?: Digest; skip_cache_lookup: boolean; inline_output_files?: string[] },
  progress: (op: Operation) => void,
  cancelled: AbortSignal,
): Promise<Operation> {
  const { storage, queue, stats, log, options } = deps;
  const store = storage.store;
  const actionDigest = checkDigest(req.action_digest, 'action_digest');
  const meta = (stage: number) => ({
    type_url: typeUrl(`${V2}.ExecuteOperationMetadata`),
    value: msg.ExecuteOperationMetadata.encode({ stage, action_digest: actionDigest }),
  });
  const done = (response: { result?: ActionResult; cached_result: boolean; status?: RpcStatus; message: string }) => ({
    name,
    done: true,
    metadata: meta(STAGE.COMPLETED),
    response: { type_url: typeUrl(`${V2}.ExecuteResponse`), value: msg.ExecuteResponse.encode(response) },
  });
  progress({ name, done: false, metadata: meta(STAGE.CACHE_CHECK) });
  if (!req.skip_cache_lookup) {
    const hit = storage.actionResult(actionDigest.hash);
    if (hit) {
      stats.cached++;
      return done({ result: hit, cached_result: true, status: { code: 0, message: '' }, message: '' });
    }
  }
  const actionBytes = storage.read(actionDigest.hash);
  if (!actionBytes) throw missingBlobs([actionDigest]);
  const action: Action = msg.Action.decode(actionBytes);
  const commandDigest = checkDigest(action.command_digest, 'command_digest');
  const commandBytes = storage.read(commandDigest.hash);
  if (!commandBytes) throw missingBlobs([commandDigest]);
  const command: Command = msg.Command.decode(commandBytes);
  const manifest = inputManifest(storage, checkDigest(action.input_root_digest, 'input_root_digest'));
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
    storage,
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
    await storage.putActionResult(actionDigest.hash, {
      ...rest,
      output_files: output_files.map(({ contents: _, ...f }) => f),
    });
  });
  stored.catch((err: Error) => log.warn(`reapi: storing the result of ${actionDigest.hash}: ${err.message}`));
  if (inlineOnly(actionResult)) {
    // Everything the client needs is in the answer; the store catches up after it.
    return done({ result: actionResult, cached_result: false, status: { code: 0, message: '' }, message: '' });
  }
  await stored;
  return done({ result: actionResult, cached_result: false, status: { code: 0, message: '' }, message: '' });
}

/**
 * A finished job as an ActionResult, and what must be stored for it: its outputs, stdout and stderr in the
 * CAS. Outputs the client asked to get inline travel in the answer, and are stored after it (off the
 * compile's critical path, each put is an fsync); the others are stored before, since the client will
 * read them from the CAS.
 */
async function toActionResult(
  storage: ReapiStorage,
  result: JobResult,
  command: Command,
  cwd: string,
  queuedAt: Date,
  inline: Set<string>,
): Promise<{ result: ActionResult; persist: () => Promise<void> }> {
  const { store } = storage;
  const has = (hash: string) => storage.has(hash);
  const ensure = (data: Buffer) => storage.ensure(data);
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

function streamOperation(
  ctx: ServiceContext,
  call: grpc.ServerWritableStream<unknown, Operation>,
  run: Promise<Operation>,
) {
  run.then(
    (op) => {
      call.write(op);
      call.end();
    },
    (err: unknown) => call.emit('error', toServiceError(err, ctx)),
  );
}

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

function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
