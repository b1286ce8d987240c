import { randomBytes } from 'node:crypto';
import { chownSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveCompiler } from '../compiler/compiler-identity.ts';
import type { Digest } from '../store/digest.ts';
import { compileConfined } from './job-compile.ts';
import { collectOutputs } from './job-outputs.ts';
import { checkTool, jobEnv, type MappedArgs, mapArgs, paramsFiles, Refusal, type Tool } from './policy.ts';
import type { Assignment, JobResult, TreeManifest } from './protocol.ts';
import { createJobRoot, makeJobDirs, materialize, unmapText } from './sandbox.ts';
import type { WorkerContext } from './worker-context.ts';

/**
 * Runs one assigned job: checks its compiler and arguments, lays out its inputs in a fresh job directory,
 * compiles, and collects the outputs (small ones inline, large ones uploaded as blobs).
 */
export async function executeJob(ctx: WorkerContext, job: Assignment, lost: AbortSignal): Promise<JobResult> {
  const { options } = ctx;
  const { store, log } = options;
  const { spec } = job;
  // A command (an REAPI action under the syncer's reapiRun: any) runs as named, inside the sandbox.
  const command = spec.run === 'command';
  let compilerPath: string | undefined;
  let tool: Tool = 'compiler';
  try {
    if (command) {
      // The syncer's owner opted in to running any command, always inside the sandbox: a worker without one
      // runs compilers and binutils only (their arguments checked), never a command it cannot confine.
      if (options.unsandboxed) {
        throw new Refusal(
          'ACCEL_FARM_COMMAND_UNSANDBOXED',
          `this worker runs without a sandbox (--unsandboxed), so it runs no action's own command ('${spec.compiler}'); only allowed compilers, linkers and archivers`,
          spec.compiler,
        );
      }
      compilerPath = spec.compiler;
    } else {
      // A compiler (compile or link) or a binutil Bazel's C/C++ rules run (ar, strip), by name.
      const checked = checkTool(spec.compiler, options.compilers);
      tool = checked.tool;
      compilerPath = tool === 'compiler' ? ctx.compilerPaths.get(checked.name) : binutilPath(ctx, checked.name);
    }
    if (!compilerPath) throw new Refusal('ACCEL_FARM_COMPILER_REFUSED', `${spec.compiler} is not on this worker`);
  } catch (err) {
    if (err instanceof Refusal) return { status: 'refused', code: err.code, message: err.message };
    throw err;
  }
  const t0 = performance.now();
  const manifest = job.inputs ?? (await ctx.blobs.manifest(job.manifest));
  const host = createJobRoot(options.home);
  // Inside the sandbox the job directory appears at a path of its own; unsandboxed it is the host path.
  const root = options.unsandboxed ? host : `/accel-job-${randomBytes(6).toString('hex')}`;
  // An action's own input tree is held for this job (a syncer's tree is held with its manifest).
  const hold = job.inputs ? store.processHold(`job:${job.id}`) : undefined;
  if (hold) store.hold(hold, Object.values(manifest.files) as Digest[]);
  try {
    let mapped: MappedArgs;
    // Normalised, so `/../../x` names /x inside the job and never climbs out of it.
    const cwd = resolve('/', spec.cwd);
    try {
      mapped = command
        ? { kind: 'link', args: spec.args, outputs: [], depFiles: [] } // kind: unused for a command
        : await checkedArgs(ctx, { tool, args: spec.args, cwd, manifest, root, compiler: spec.compiler });
    } catch (err) {
      if (hold) store.release(hold);
      if (err instanceof Refusal) return { status: 'refused', code: err.code, message: err.message };
      throw err;
    }
    try {
      await ctx.blobs.fetch(Object.values(manifest.files));
      if (ctx.user) chownSync(host, ctx.user.uid, ctx.user.gid);
      materialize({ store, pool: ctx.pool, manifest, root: host, mode: ctx.inputMode });
    } finally {
      if (hold) store.release(hold);
    }
    const made = new Set<string>();
    makeJobDirs(host, join(host, cwd), made, ctx.inputMode);
    // REAPI: the worker makes the parent directories of every declared output before the command runs.
    const declared = [...(spec.declared?.files ?? []), ...(spec.declared?.dirs ?? [])].map((p) => resolve('/', p));
    for (const out of [...mapped.outputs, ...declared]) {
      makeJobDirs(host, dirname(join(host, out)), made, ctx.inputMode);
    }
    const PATH = options.env.PATH ?? '/usr/bin:/bin';
    // A command's environment is the action's own, set inside the sandbox after privileges are dropped
    // (never seen by prlimit, bwrap or setpriv: LD_PRELOAD there would run the job's code as the worker).
    const env: NodeJS.ProcessEnv = command
      ? { PATH }
      : { ...jobEnv(spec.env), PATH, ...(options.unsandboxed ? {} : { TMPDIR: '/tmp' }) };
    const inner = command ? { PATH, ...spec.env } : undefined;
    const t1 = performance.now();
    const run = await compileConfined(ctx, compilerPath, mapped.args, {
      host,
      root,
      cwd,
      env,
      commandEnv: inner,
      signal: lost,
    });
    const t2 = performance.now();
    if (run.timedOut) {
      return { status: 'failed', reason: `compile timed out after ${options.jobTimeoutMs / 1000} s`, retry: false };
    }
    if (lost.aborted) return { status: 'failed', reason: 'lease lost' };
    const stderr = unmapText(run.stderr.toString('latin1'), root);
    // A command's 126 and 127 are its own (a test that runs a missing program); a compiler's are the sandbox's.
    const sandboxExit = !command && (run.code === 126 || run.code === 127);
    if (!options.unsandboxed && (sandboxExit || /^(bwrap|setpriv|prlimit): /m.test(stderr))) {
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
    // A command's outputs are collected whatever its exit (a failing test's log and XML are what the user reads).
    const collected =
      run.code === 0 || command
        ? await collectOutputs(ctx, { mapped, host, root, cwd, manifest, declared: spec.declared })
        : { outputs: [], links: [], dirs: [], inputs: [] };
    return {
      status: 'done',
      exitCode: run.code,
      stdout: unmapText(run.stdout.toString('latin1'), root),
      stderr,
      outputs: collected.outputs,
      inputs: collected.inputs,
      ...(spec.declared ? { links: collected.links, dirs: collected.dirs } : {}),
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
 * The job's arguments checked and mapped into the sandbox by the policy (mapArgs), its params files
 * (`@file`: Bazel's links and archives) fetched first and read from the job's inputs.
 */
async function checkedArgs(
  ctx: WorkerContext,
  job: { tool: Tool; args: string[]; cwd: string; manifest: TreeManifest; root: string; compiler: string },
): Promise<MappedArgs> {
  const { manifest } = job;
  const params = paramsFiles(job.args, job.cwd).flatMap((p) => manifest.files[p] ?? []);
  if (params.length > 0) await ctx.blobs.fetch(params);
  return mapArgs({
    tool: job.tool,
    args: job.args,
    cwd: job.cwd,
    roots: manifest.roots,
    root: job.root,
    compiler: job.compiler,
    readParams: (path) => {
      const digest = manifest.files[path];
      return digest === undefined ? undefined : ctx.options.store.read(digest as Digest)?.toString('utf8');
    },
  });
}

/** A binutil from the worker's own PATH (ar, strip, objcopy), or undefined when it has none. */
function binutilPath(ctx: WorkerContext, name: string): string | undefined {
  try {
    return resolveCompiler(name, ctx.options.env, '/', { dirs: [], self: [] });
  } catch {
    return undefined;
  }
}

/**
 * A failed compile that wanted a file the sandbox does not have: an absolute path outside the job's inputs
 * and the toolchain (`#include "/etc/shadow"`, a header outside the farm's dirs). Undefined for ordinary errors.
 */
function undeclaredRead(stderr: string, cwd: string, manifest: TreeManifest): string | undefined {
  for (const m of stderr.matchAll(
    /(?:^|\s)(?:fatal )?error: (.+?): (?:No such file or directory|Permission denied)$/gm,
  )) {
    const path = resolve(cwd, m[1] as string);
    if (!manifest.files[path]) return path;
  }
  return undefined;
}
