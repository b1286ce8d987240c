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
  type RpcStatus,
  STAGE,
  services,
  typeUrl,
  V2,
} from '../../reapi/proto.ts';
import { Code, checkDigest, missingBlobs, RpcError, type ServiceContext, toServiceError } from '../../reapi/rpc.ts';
import { EMPTY_HASH, type ReapiStorage } from '../../reapi/storage.ts';
import type { Digest as StoreDigest } from '../../store/digest.ts';
import { jobEnv, mapArgs, Refusal } from '../policy.ts';
import type { JobSpec } from '../protocol.ts';
import type { JobQueue } from '../queue.ts';
import { declaredPaths, inlineOnly, toActionResult } from './action-result.ts';
import { commandRun, compilerCall, type ReapiRun } from './command.ts';
import { ACTION_ROOT, inputManifest } from './input-tree.ts';

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
    /** What an action may run: allowed compilers with checked arguments, or any command (in the sandbox). */
    reapiRun: ReapiRun;
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
  // The protocol's empty blob exists without an upload; a worker fetches inputs from the store.
  if (Object.values(manifest.files).includes(EMPTY_HASH)) await storage.storeEmpty();
  const wd = posix.normalize(posix.join('/', command.working_directory || '.'));
  const cwd = posix.join(ACTION_ROOT, wd);
  let spec: JobSpec;
  try {
    // A params file (`@file`, Bazel's links and archives) is read from the action's own input tree.
    const readParams = (path: string) => {
      const hash = manifest.files[path];
      return hash === undefined ? undefined : storage.read(hash)?.toString('utf8');
    };
    spec = jobSpec(command, cwd, options, readParams);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    stats.refused++;
    // PERMISSION_DENIED: Bazel's --remote_local_fallback runs the action locally instead.
    throw new RpcError(Code.PERMISSION_DENIED, `${err.code}: ${err.message}`);
  }
  // Without a worker that could take it, the action fails now (the client builds locally or elsewhere);
  // with one, it waits its turn however long the queue is.
  const program = spec.run === 'command' ? undefined : spec.compiler;
  if (!queue.hasWorkerFor(program, WORKER_SEEN_MS)) {
    throw new RpcError(
      Code.UNAVAILABLE,
      `no worker${program ? ` with ${program}` : ''} has asked for work in the last minute`,
    );
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
  const ran = Date.now();
  if (result.status === 'done' && result.timings) {
    const t = result.timings;
    log.debug(
      `reapi ${actionDigest.hash.slice(0, 12)} ${spec.compiler}: ${ran - queuedAt.getTime()} ms from queue to result (worker: prepare ${Math.round(t.prepare)}, run ${Math.round(t.compile)}, collect ${Math.round(t.collect)} ms)`,
    );
  }
  const { result: actionResult, persist } = await toActionResult(storage, result, {
    command,
    cwd,
    queuedAt,
    inline: new Set(req.inline_output_files ?? []),
  });
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
 * The job an action becomes. `compilers`: an allowed compiler call whose arguments mapArgs accepts (reading
 * and writing only inside the input root), refused here before a worker is bothered. `any`: the argv as it
 * is, with its environment, for the worker's sandbox. Either way the worker collects the declared outputs.
 */
function jobSpec(
  command: Command,
  cwd: string,
  options: ExecutionDeps['options'],
  readParams: (path: string) => string | undefined,
): JobSpec {
  const declared = declaredPaths(command, cwd);
  const base = { toolchain: '', cwd, startTimeoutMs: options.startTimeoutMs, declared };
  if (options.reapiRun === 'any') {
    const run = commandRun(command.arguments, command.environment_variables);
    return { ...base, run: 'command', compiler: run.program, args: run.args, env: run.env };
  }
  const call = compilerCall(command.arguments, options.compilers);
  const env = jobEnv(Object.fromEntries(command.environment_variables.map((v) => [v.name, v.value])));
  mapArgs({ tool: call.tool, args: call.args, cwd, roots: [ACTION_ROOT], root: '/sandbox', readParams });
  return { ...base, compiler: call.compiler, args: call.args, env };
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
