import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Compile } from '../compiler/args.ts';
import { isMsvcCompile, msvcJobArgs } from '../compiler/msvc.ts';
import type { CompileFn, CompilerRun } from '../compiler/run.ts';
import { replaceFileSync } from '../core/atomic-fs.ts';
import type { Config } from '../core/config.ts';
import { isAccelError } from '../core/errors.ts';
import { MtlsClient } from '../net/client.ts';
import { type Identity, loadIdentity } from '../net/tls-identity.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { jobEnv, mapArgs, Refusal } from './policy.ts';
import { type JobResult, JobResultSchema, type JobSpec, toolchainKey } from './protocol.ts';
import { checkSyncer, markSyncerDown, markSyncerUp } from './syncer-health.ts';
import { cachedToolchain } from './toolchain-key.ts';

/** Submissions per compile: a stale include tree is refreshed and the job sent again, at most this often. */
const MAX_SUBMISSIONS = 3;

export type FarmRun = CompilerRun & {
  fallback?: string;
  remote?: boolean;
  /** The worker's own time for the job (diagnostics, the benchmark). */
  timings?: { prepare: number; compile: number; collect: number };
};

/** Why the farm could not compile this one: it compiles here, and the message is counted. */
export class Fallback extends Error {}

/** Compiles one cache miss on the farm, or locally with the reason when the farm cannot. */
export async function farmCompile(
  config: Config,
  home: string,
  store: Store,
  call: { compilerPath: string; args: string[]; options: DispatchOptions },
): Promise<FarmRun> {
  const farm = config.farm;
  const { compilerPath, args, options } = call;
  return remoteOrLocal({
    home,
    endpoint: farm.syncer,
    startTimeoutMs: farm.startTimeout * 1000,
    call,
    connect: () => {
      try {
        return clientFor(farm.syncer, home);
      } catch (err) {
        if (isAccelError(err) && err.code.startsWith('ACCEL_CERTS_')) throw new Fallback('no client certificate');
        throw err;
      }
    },
    reachable: (client) => reachable(client, farm.startTimeout * 1000),
    run: (client) =>
      dispatch(client, store, compilerPath, args, options, farm.startTimeout * 1000, farm.jobTimeout * 1000),
  });
}

/**
 * The part every remote path shares (the syncer's protocol, REAPI): an endpoint found unreachable is not asked
 * again until its back-off is over (one probe then decides for all compiles), and whatever the remote side
 * cannot do (a {@link Fallback}) compiles here with the reason, which the wrapper counts and announces once.
 */
export async function remoteOrLocal<C>(o: {
  home: string;
  endpoint: string;
  startTimeoutMs: number;
  call: { compilerPath: string; args: string[]; options: DispatchOptions };
  /** The client for the endpoint; a {@link Fallback} when there can be none (no certificate, a bad URL). */
  connect: () => C;
  reachable: (client: C) => Promise<boolean>;
  run: (client: C) => Promise<FarmRun>;
}): Promise<FarmRun> {
  const { compilerPath, args, options } = o.call;
  const local = async (reason: string): Promise<FarmRun> => ({
    ...(await options.local(compilerPath, args)),
    fallback: reason,
  });
  let client: C;
  try {
    client = o.connect();
  } catch (err) {
    if (err instanceof Fallback) return local(err.message);
    throw err;
  }
  const health = await checkSyncer(o.home, o.endpoint, () => o.reachable(client), o.startTimeoutMs);
  if (!health.up) return local(health.probed ? 'farm unreachable' : 'farm unreachable (remembered)');
  try {
    const run = await o.run(client);
    markSyncerUp(o.home, o.endpoint);
    return run;
  } catch (err) {
    if (!(err instanceof Fallback)) throw err;
    if (err.message === 'farm unreachable') markSyncerDown(o.home, o.endpoint);
    return local(err.message);
  }
}

/** Whether the syncer answers at all (any HTTP status): its cheapest request, once per back-off. */
async function reachable(client: MtlsClient, timeoutMs: number): Promise<boolean> {
  try {
    await client.request('GET', '/status', undefined, { timeoutMs });
    return true;
  } catch {
    return false;
  }
}

const clients = new Map<string, MtlsClient>();

/** Requests the syncer answers at once (tree refresh, a blob): a stalled syncer means a local compile. */
const QUICK_MS = 30_000;

type DispatchOptions = Parameters<CompileFn>[2];

/**
 * One client per syncer and home for the life of the process: a long-lived caller (the compile-cache daemon)
 * reuses its TLS connections instead of a handshake per job. Idle keep-alive sockets are unref'd by Node's
 * agent, so they never keep a short-lived `accel cc` alive.
 */
function clientFor(syncer: string, home: string): MtlsClient {
  const key = `${syncer}\0${home}`;
  let client = clients.get(key);
  if (!client) {
    const identity: Identity = loadIdentity(home, 'client');
    client = new MtlsClient(syncer, identity, { maxSockets: 256 });
    clients.set(key, client);
  }
  return client;
}

async function dispatch(
  client: MtlsClient,
  store: Store,
  compilerPath: string,
  args: string[],
  options: DispatchOptions,
  startTimeoutMs: number,
  jobTimeoutMs: number,
): Promise<FarmRun> {
  const toolchain = await cachedToolchain(store, compilerPath);
  const env = jobEnv(options.env);
  const spec: JobSpec = {
    compiler: basename(compilerPath),
    toolchain: toolchainKey(toolchain),
    cwd: options.cwd,
    // An MSVC driver's arguments as it reads them: `CL` and `_CL_` are in them, and never sent as variables.
    args: isMsvcCompile(options.compile)
      ? msvcJobArgs(options.compile)
      : withOutput(withExpandedArgs(args, options.compile), options.compile),
    env,
    startTimeoutMs,
  };
  // The only files a result may write here: the outputs these arguments name (a worker cannot pick others).
  let expected: Set<string>;
  try {
    expected = new Set(
      mapArgs({ args: spec.args, cwd: spec.cwd, roots: ['/'], root: '/', compiler: spec.compiler }).outputs,
    );
  } catch (err) {
    // Counted by the argument (`refused argument -fplugin=x`), so --stats shows what keeps compiles local.
    if (err instanceof Refusal)
      throw new Fallback(err.argument ? `refused argument ${err.argument}` : `refused: ${err.code}`);
    throw err;
  }
  for (let submission = 1; ; submission++) {
    const result = await submit(client, { ...spec, submission }, startTimeoutMs, jobTimeoutMs);
    if (result.status === 'not-started') throw new Fallback('no worker in time');
    if (result.status === 'failed') {
      // A file made here a moment ago (a build writing its sources as it goes, as configure and conda builds
      // do) may not be in the syncer's tree yet: have it read that file and send the job again.
      const missing = /^the job read (\/.+), which is not among its inputs$/.exec(result.reason)?.[1];
      if (missing && submission < MAX_SUBMISSIONS && fileDigest(missing) !== undefined) {
        await refresh(client, [missing]);
        continue;
      }
      throw new Fallback('infrastructure failure');
    }
    if (result.status === 'refused') throw new Fallback(`refused: ${result.code}`);
    // Did the worker see the files as they are here? Headers changed since the manifest are refreshed.
    const stale = result.inputs.filter(([path, digest]) => fileDigest(path) !== digest).map(([path]) => path);
    let fresh = stale.length === 0;
    if (result.exitCode !== 0) {
      // A failed compile names no inputs: it is real only if the tree was current (e.g. a header it needs
      // may have appeared since the manifest). A full refresh answers that.
      const refreshed = await refresh(client, undefined);
      fresh = refreshed === result.manifest;
    } else if (!fresh) await refresh(client, stale);
    if (fresh) return finish(client, store, result, expected);
    if (submission >= MAX_SUBMISSIONS) throw new Fallback('include tree changing');
  }
}

/**
 * `gcc -c foo.c` writes foo.o without naming it: say it, so the worker sends it back (mapArgs only knows the
 * outputs the arguments name). The same file either way, and the same target in a dependency file.
 */
export function withOutput(args: string[], compile: Compile): string[] {
  return args.some((a) => a === '-o' || (a.startsWith('-o') && a.length > 2)) ? args : [...args, '-o', compile.output];
}

/** The arguments as the compiler gets them: @files expanded (they are not shipped). */
export function withExpandedArgs(args: string[], compile: Compile): string[] {
  if (!args.some((a) => a.startsWith('@'))) return args;
  // compile.args expands the user's arguments; without dependency flags of its own the cache appended -MD -MF F.
  return compile.deps ? compile.args : [...compile.args, ...args.slice(-3)];
}

async function submit(
  client: MtlsClient,
  spec: JobSpec,
  startTimeoutMs: number,
  jobTimeoutMs: number,
): Promise<JobResult> {
  // The syncer answers when the job is done: wait for a start, a job's time on a worker (with a retry
  // elsewhere) and some slack, never forever (a stopped syncer still answers TCP keep-alives).
  const answerMs = startTimeoutMs + 3 * jobTimeoutMs + 30_000;
  // Connection failures are retried until the start timeout: a restarting syncer is back within it.
  const deadline = Date.now() + startTimeoutMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      const res = await client.request('POST', '/jobs', spec, { timeoutMs: answerMs });
      const body = JSON.parse(res.body.toString() || '{}');
      if (res.status === 200) {
        if (body.status === 'failed' && body.reason === 'syncer shutting down') {
          spec.submission = (spec.submission ?? 1) + 1;
          continue;
        }
        const parsed = JobResultSchema.safeParse(body);
        if (!parsed.success) throw new Fallback('malformed answer');
        return parsed.data;
      }
      if (res.status === 400) return { status: 'refused', code: body.code, message: body.message };
      throw new Fallback(`syncer error ${res.status}`);
    } catch (err) {
      if (err instanceof Fallback) throw err;
      spec.submission = (spec.submission ?? 1) + 1;
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
    }
  }
  throw new Fallback('farm unreachable');
}

async function refresh(client: MtlsClient, paths: string[] | undefined): Promise<string> {
  try {
    const { status, value } = await client.json<{ manifest: string }>(
      'POST',
      '/tree/refresh',
      { paths },
      { timeoutMs: QUICK_MS },
    );
    if (status !== 200) throw new Error(`status ${status}`);
    return value.manifest;
  } catch {
    throw new Fallback('farm unreachable');
  }
}

function fileDigest(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}

/** Writes the outputs at the client's paths (each by rename, so never half-written) and returns the run. */
async function finish(
  client: MtlsClient,
  store: Store,
  result: JobResult & { status: 'done' },
  expected: Set<string>,
): Promise<FarmRun> {
  const run = {
    code: result.exitCode,
    stdout: Buffer.from(result.stdout, 'latin1'),
    stderr: Buffer.from(result.stderr, 'latin1'),
    remote: true,
    timings: result.timings,
  };
  for (const out of result.outputs) {
    if (!expected.has(out.path)) throw new Fallback('unexpected output');
    let data = out.data === undefined ? store.read(out.digest as Digest) : Buffer.from(out.data, 'base64');
    if (!data) {
      const res = await client.request('GET', `/blobs/${out.digest}`, undefined, { timeoutMs: QUICK_MS }).catch(() => {
        throw new Fallback('farm unreachable');
      });
      if (res.status !== 200) throw new Fallback('output missing on the syncer');
      data = res.body;
    }
    if (createHash('sha256').update(data).digest('hex') !== out.digest) throw new Fallback('output corrupted');
    // No fsync: a compiler does not sync its outputs either, and make reruns what a crash loses. Unlinked
    // first like the cc cache's restored outputs: a build never reads an output while its compile runs.
    replaceFileSync(out.path, data, { mode: 0o666, umask: true });
  }
  return run;
}
