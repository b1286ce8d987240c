import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chownSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveCompiler } from '../compiler/compiler-identity.ts';
import { parseDepFile } from '../compiler/depfile.ts';
import type { Log } from '../core/log.ts';
import { MtlsClient } from '../net/client.ts';
import { createMtlsServer, sendJson } from '../net/server.ts';
import type { Identity } from '../net/tls-identity.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_LIMITS, probeSandbox, type SandboxUser, sandboxCommand, sandboxUser } from './bubblewrap.ts';
import { checkCompiler, jobEnv, mapArgs, Refusal } from './policy.ts';
import {
  type Assignment,
  AssignmentSchema,
  INLINE_OUTPUT_MAX,
  type JobOutput,
  type JobResult,
  parseMessage,
  type TreeManifest,
  TreeManifestSchema,
  toolchainKey,
  type WorkerReport,
} from './protocol.ts';
import {
  createJobRoot,
  type InputMode,
  InputPool,
  makeJobDirs,
  materialize,
  readDigest,
  readJobFile,
  sweepJobRoots,
  unmapText,
} from './sandbox.ts';
import { toolchainOf } from './toolchain-key.ts';

export interface WorkerOptions {
  store: Store;
  identity: Identity;
  log: Log;
  home: string;
  syncer: string;
  cores: number;
  compilers: string[];
  jobTimeoutMs: number;
  statusHost: string;
  statusPort: number;
  env: NodeJS.ProcessEnv;
  /** Run jobs without the sandbox (trusted clients only); the default refuses to start without one. */
  unsandboxed?: boolean;
  /** The unprivileged user a root worker runs jobs as (default nobody). */
  sandboxUser?: string;
}

/**
 * A worker: `cores` slots, each asking the syncer for the next job (so an idle machine takes work as soon as
 * it has a free slot), compiling it in a fresh job directory with the include tree linked in, and sending
 * the outputs back as blobs. Only allowed compilers from this machine's PATH run, with checked arguments.
 */
/** How often a worker repeats that its syncer cannot be reached, while it cannot. */
const UNREACHABLE_REPEAT_MS = 30_000;

export function createWorker(options: WorkerOptions) {
  const { store, log } = options;
  const id = `${options.identity.name}-${randomUUID().slice(0, 8)}`;
  const client = new MtlsClient(options.syncer, options.identity, { maxSockets: options.cores * 2 + 4 });
  const compilerPaths = new Map<string, string>();
  const toolchains: string[] = [];
  const counters = { running: 0, done: 0, failed: 0, refused: 0, blobsFetched: 0, bytesFetched: 0 };
  const manifests = new Map<string, TreeManifest>();
  const fetching = new Map<string, Promise<void>>();
  let closing = false;
  let statusUrl = '';
  const loops: Promise<void>[] = [];
  const polls = new Set<AbortController>();
  const children = new Set<ReturnType<typeof spawn>>();
  const pool = new InputPool(options.home, store);
  /** Set by start(): the uid jobs run as (undefined: the worker's own), and how inputs reach them. */
  let user: SandboxUser | undefined;
  let inputMode: InputMode = { kind: 'copy' };

  const statusServer = createMtlsServer({
    identity: options.identity,
    host: options.statusHost,
    port: options.statusPort,
    handler: (req, res) => {
      if (req.method === 'GET' && req.url === '/status') return sendJson(res, 200, status());
      sendJson(res, 404, { code: 'ACCEL_FARM_NOT_FOUND', message: `no route ${req.method} ${req.url}` });
    },
  });

  function status() {
    return {
      id,
      name: options.identity.name,
      syncer: options.syncer,
      cores: options.cores,
      ...counters,
      compilers: Object.fromEntries(compilerPaths),
      toolchains,
    };
  }

  function report(): WorkerReport {
    return {
      id,
      name: options.identity.name,
      cores: options.cores,
      running: counters.running,
      done: counters.done,
      failed: counters.failed,
      toolchains,
      blobsFetched: counters.blobsFetched,
      statusUrl,
    };
  }

  /**
   * Whether the syncer answers, shared by the slots: the first failed poll says so at once, then every 30 s
   * while it lasts, and the first answer after says it is back (a worker whose syncer is down is not silent).
   */
  const reach = { down: false, lastWarned: 0 };
  function unreachable(err: Error): void {
    const now = Date.now();
    if (reach.down && now - reach.lastWarned < UNREACHABLE_REPEAT_MS) return;
    log.warn(`cannot reach the syncer at ${options.syncer} (${err.message}), retrying`);
    reach.down = true;
    reach.lastWarned = now;
  }
  function reached(): void {
    if (!reach.down) return;
    reach.down = false;
    log.info(`the syncer at ${options.syncer} answers again`);
  }

  async function slot(): Promise<void> {
    while (!closing) {
      const abort = new AbortController();
      polls.add(abort);
      let job: Assignment | undefined;
      try {
        const res = await client.request('POST', '/work', report(), { signal: abort.signal });
        reached();
        if (res.status === 200) job = parseMessage(AssignmentSchema, JSON.parse(res.body.toString()), 'assignment');
        else if (res.status !== 204) throw new Error(`syncer answered ${res.status}: ${res.body.toString()}`);
      } catch (err) {
        if (closing) return;
        unreachable(err as Error);
        // The syncer is down or restarting: ask again shortly.
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        polls.delete(abort);
      }
      if (job) await run(job);
    }
  }

  async function run(job: Assignment): Promise<void> {
    counters.running++;
    const lost = new AbortController();
    const beat = setInterval(
      () => {
        client
          .request('POST', `/jobs/${job.id}/heartbeat?worker=${encodeURIComponent(id)}`)
          .then((r) => {
            if (r.status === 410) lost.abort();
          })
          .catch(() => {});
      },
      Math.max(200, job.leaseMs / 3),
    );
    let result: JobResult;
    try {
      result = await execute(job, lost.signal);
    } catch (err) {
      result = { status: 'failed', reason: `worker ${options.identity.name}: ${(err as Error).message}` };
    } finally {
      clearInterval(beat);
      counters.running--;
    }
    if (result.status === 'done') counters.done++;
    else if (result.status === 'refused') counters.refused++;
    else counters.failed++;
    for (let attempt = 0; attempt < 5 && !closing; attempt++) {
      try {
        await client.request('POST', `/jobs/${job.id}/result?worker=${encodeURIComponent(id)}`, result);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      }
    }
  }

  async function execute(job: Assignment, lost: AbortSignal): Promise<JobResult> {
    const { spec } = job;
    let compilerPath: string | undefined;
    try {
      checkCompiler(spec.compiler, options.compilers);
      compilerPath = compilerPaths.get(spec.compiler);
      if (!compilerPath) throw new Refusal('ACCEL_FARM_COMPILER_REFUSED', `${spec.compiler} is not on this worker`);
    } catch (err) {
      if (err instanceof Refusal) return { status: 'refused', code: err.code, message: err.message };
      throw err;
    }
    const t0 = performance.now();
    const manifest = job.inputs ?? (await loadManifest(job.manifest));
    const host = createJobRoot(options.home);
    // Inside the sandbox the job directory appears at a path of its own; unsandboxed it is the host path.
    const root = options.unsandboxed ? host : `/accel-job-${randomBytes(6).toString('hex')}`;
    try {
      let mapped: ReturnType<typeof mapArgs>;
      // Normalised, so `/../../x` names /x inside the job and never climbs out of it.
      const cwd = resolve('/', spec.cwd);
      try {
        mapped = mapArgs({ args: spec.args, cwd, roots: manifest.roots, root });
      } catch (err) {
        if (err instanceof Refusal) return { status: 'refused', code: err.code, message: err.message };
        throw err;
      }
      // An action's own input tree is held for this job (a syncer's tree is held with its manifest).
      const hold = job.inputs ? store.processHold(`job:${job.id}`) : undefined;
      if (hold) store.hold(hold, Object.values(manifest.files) as Digest[]);
      try {
        await fetchBlobs(Object.values(manifest.files));
        if (user) chownSync(host, user.uid, user.gid);
        materialize({ store, pool, manifest, root: host, mode: inputMode });
      } finally {
        if (hold) store.release(hold);
      }
      const made = new Set<string>();
      makeJobDirs(host, join(host, cwd), made, inputMode);
      for (const out of mapped.outputs) makeJobDirs(host, dirname(join(host, out)), made, inputMode);
      const env: NodeJS.ProcessEnv = {
        ...jobEnv(spec.env),
        PATH: options.env.PATH ?? '/usr/bin:/bin',
        ...(options.unsandboxed ? {} : { TMPDIR: '/tmp' }),
      };
      const t1 = performance.now();
      const run = await compile(compilerPath, mapped.args, { host, root, cwd, env, signal: lost });
      const t2 = performance.now();
      if (run.timedOut) {
        return { status: 'failed', reason: `compile timed out after ${options.jobTimeoutMs / 1000} s`, retry: false };
      }
      if (lost.aborted) return { status: 'failed', reason: 'lease lost' };
      const stderr = unmapText(run.stderr.toString('latin1'), root);
      if (
        !options.unsandboxed &&
        (run.code === 126 || run.code === 127 || /^(bwrap|setpriv|prlimit): /m.test(stderr))
      ) {
        // The sandbox could not start the compiler: the worker's problem, never the client's compile error.
        return { status: 'failed', reason: `sandbox: ${stderr.trim().split('\n')[0]}`, retry: false };
      }
      // A job with its own complete input tree (an REAPI action) has no client to resend it: a read outside
      // that tree is the compile's own error, reported as such.
      if (run.code !== 0 && !job.inputs) {
        const undeclared = undeclaredRead(stderr, cwd, manifest);
        // Not a compile error: the job wanted a file the farm did not give it; the client compiles locally.
        if (undeclared)
          return {
            status: 'failed',
            reason: `the job read ${undeclared}, which is not among its inputs`,
            retry: false,
          };
      }
      const outputs: JobOutput[] = [];
      const inputs: [string, string][] = [];
      if (run.code === 0) {
        for (const path of mapped.outputs) {
          let data = readJobFile(host, path);
          if (!data) continue;
          if (mapped.depFiles.includes(path)) {
            const text = unmapText(data.toString('utf8'), root);
            data = Buffer.from(text);
            for (const dep of parseDepFile(text).deps) {
              const abs = resolve(cwd, dep);
              // The digest of what the job read, not of what it was given: the client compares it with its own.
              if (manifest.files[abs]) inputs.push([abs, readDigest(host, abs) ?? 'missing']);
            }
          }
          const digest = createHash('sha256').update(data).digest('hex');
          // readJobFile checked it is a regular file inside the job; the job's processes are gone by now.
          const executable = (statSync(join(host, path)).mode & 0o111) !== 0 ? { executable: true } : {};
          if (data.length <= INLINE_OUTPUT_MAX)
            outputs.push({ path, digest, size: data.length, data: data.toString('base64'), ...executable });
          else {
            await upload(digest, data);
            outputs.push({ path, digest, size: data.length, ...executable });
          }
        }
      }
      return {
        status: 'done',
        exitCode: run.code,
        stdout: unmapText(run.stdout.toString('latin1'), root),
        stderr,
        outputs,
        inputs,
        manifest: job.manifest,
        worker: options.identity.name,
        timings: { prepare: t1 - t0, compile: t2 - t1, collect: performance.now() - t2 },
      };
    } finally {
      // Off the job's critical path: the result goes out while the directory is removed.
      rm(host, { recursive: true, force: true }).catch((err: Error) => log.warn(`removing ${host}: ${err.message}`));
    }
  }

  /**
   * Runs the compiler confined (or, unsandboxed, in a process group of its own) and waits for it. Whatever it
   * started is killed when it ends, times out, loses its lease or the worker closes.
   */
  function compile(
    path: string,
    args: string[],
    o: { host: string; root: string; cwd: string; env: NodeJS.ProcessEnv; signal: AbortSignal },
  ): Promise<{ code: number; stdout: Buffer; stderr: Buffer; timedOut: boolean }> {
    return new Promise((resolvePromise, reject) => {
      let child: ReturnType<typeof spawn>;
      if (options.unsandboxed) {
        // setpriv's parent-death signal: a worker killed with -9 takes the compiler driver with it.
        child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', path, ...args], {
          cwd: join(o.host, o.cwd),
          env: o.env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      } else {
        const command = sandboxCommand({
          compiler: path,
          args,
          host: o.host,
          jobRoot: o.root,
          cwd: join(o.root, o.cwd),
          toolchain: [...compilerPaths.values()],
          limits: { ...DEFAULT_LIMITS, cpuSeconds: Math.ceil(options.jobTimeoutMs / 1000) },
          user,
        });
        child = spawn(command.file, command.args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      }
      children.add(child);
      let timedOut = false;
      const killGroup = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, options.jobTimeoutMs);
      o.signal.addEventListener('abort', killGroup, { once: true });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      const done = () => {
        clearTimeout(timer);
        children.delete(child);
        o.signal.removeEventListener('abort', killGroup);
      };
      child.on('error', (e) => {
        done();
        reject(e);
      });
      child.on('close', (code) => {
        done();
        // Anything the compile left running in its group (a daemonised child) goes with it.
        killGroup();
        resolvePromise({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut });
      });
    });
  }

  async function loadManifest(digest: string): Promise<TreeManifest> {
    const known = manifests.get(digest);
    if (known) return known;
    await fetchBlobs([digest], false);
    const manifest = parseMessage(
      TreeManifestSchema,
      JSON.parse((store.read(digest as Digest) as Buffer).toString()),
      'include-tree manifest',
    );
    manifests.set(digest, manifest);
    // A tree's files stay in this store while its manifest is one of the last eight: jobs in flight read them.
    store.hold(store.processHold(`tree:${digest}`), [digest as Digest, ...(Object.values(manifest.files) as Digest[])]);
    if (manifests.size > 8) {
      const oldest = manifests.keys().next().value as string;
      manifests.delete(oldest);
      store.release(store.processHold(`tree:${oldest}`));
    }
    return manifest;
  }

  /** Fetches the blobs this store lacks, each once even when several jobs need it at the same time. */
  async function fetchBlobs(digests: string[], count = true): Promise<void> {
    const wanted = [...new Set(digests)].filter((d) => !store.has(d as Digest));
    await Promise.all(
      wanted.map((digest) => {
        let p = fetching.get(digest);
        if (!p) {
          p = (async () => {
            const res = await client.request('GET', `/blobs/${digest}`);
            if (res.status !== 200) throw new Error(`blob ${digest} not on the syncer (${res.status})`);
            await store.putBuffer(res.body, { expected: digest as Digest });
            if (count) {
              counters.blobsFetched++;
              counters.bytesFetched += res.body.length;
            }
          })().finally(() => fetching.delete(digest));
          fetching.set(digest, p);
        }
        return p;
      }),
    );
  }

  /** Sends a large output to the syncer unless it already has it. */
  async function upload(digest: string, data: Buffer): Promise<void> {
    const { value } = await client.json<{ missing: string[] }>('POST', '/blobs/missing', { digests: [digest] });
    if (value.missing.length === 0) return;
    const res = await client.request('PUT', `/blobs/${digest}`, data);
    if (res.status !== 200) throw new Error(`uploading an output: ${res.status} ${res.body.toString()}`);
  }

  return {
    id,
    status,
    /** Checks the sandbox, sweeps dead workers' job directories, serves /status and starts taking jobs. */
    async listen(): Promise<AddressInfo> {
      for (const name of options.compilers) {
        try {
          const path = resolveCompiler(name, options.env, process.cwd(), { dirs: [], self: [] });
          compilerPaths.set(name, path);
          toolchains.push(toolchainKey(toolchainOf(path)));
        } catch {
          log.debug(`compiler ${name} not found on PATH`);
        }
      }
      const swept = sweepJobRoots(options.home);
      if (swept > 0) log.info(`removed ${swept} job directories left by a worker that was killed`);
      if (options.unsandboxed) {
        log.warn(
          'WORKER RUNS JOBS WITHOUT A SANDBOX (--unsandboxed): any client with a certificate can read and write what this user can. Use it only with trusted clients.',
        );
      } else {
        user = sandboxUser(options.sandboxUser);
        probeSandbox(user, [...compilerPaths.values()]);
        if (user) inputMode = { kind: 'link', owner: { uid: user.uid, gid: user.gid } };
      }
      const address = await statusServer.listen();
      statusUrl = `https://${address.address}:${address.port}/status`;
      for (let i = 0; i < options.cores; i++) loops.push(slot());
      return address;
    },
    address: () => statusServer.address(),
    async close(): Promise<void> {
      closing = true;
      for (const p of polls) p.abort();
      for (const c of children) {
        try {
          if (c.pid) process.kill(-c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await Promise.allSettled(loops);
      await statusServer.close();
      client.close();
    },
  };
}

/**
 * A failed compile that wanted a file the sandbox does not have: an absolute path outside the job's inputs
 * and the toolchain (`#include "/etc/shadow"`, a header outside the farm's dirs). Undefined for ordinary errors.
 */
export function undeclaredRead(stderr: string, cwd: string, manifest: TreeManifest): string | undefined {
  for (const m of stderr.matchAll(
    /(?:^|\s)(?:fatal )?error: (.+?): (?:No such file or directory|Permission denied)$/gm,
  )) {
    const path = resolve(cwd, m[1] as string);
    if (!manifest.files[path]) return path;
  }
  return undefined;
}
