import { createHash, randomBytes } from 'node:crypto';
import { chownSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseDepFile } from '../compiler/depfile.ts';
import type { Digest } from '../store/digest.ts';
import { compileConfined } from './job-compile.ts';
import { checkCompiler, jobEnv, type MappedArgs, mapArgs, Refusal } from './policy.ts';
import { type Assignment, INLINE_OUTPUT_MAX, type JobOutput, type JobResult, type TreeManifest } from './protocol.ts';
import { createJobRoot, makeJobDirs, materialize, readDigest, readJobFile, unmapText } from './sandbox.ts';
import type { WorkerContext } from './worker-context.ts';

/**
 * Runs one assigned job: checks its compiler and arguments, lays out its inputs in a fresh job directory,
 * compiles, and collects the outputs (small ones inline, large ones uploaded as blobs).
 */
export async function executeJob(ctx: WorkerContext, job: Assignment, lost: AbortSignal): Promise<JobResult> {
  const { options } = ctx;
  const { store, log } = options;
  const { spec } = job;
  let compilerPath: string | undefined;
  try {
    checkCompiler(spec.compiler, options.compilers);
    compilerPath = ctx.compilerPaths.get(spec.compiler);
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
  try {
    let mapped: MappedArgs;
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
      await ctx.blobs.fetch(Object.values(manifest.files));
      if (ctx.user) chownSync(host, ctx.user.uid, ctx.user.gid);
      materialize({ store, pool: ctx.pool, manifest, root: host, mode: ctx.inputMode });
    } finally {
      if (hold) store.release(hold);
    }
    const made = new Set<string>();
    makeJobDirs(host, join(host, cwd), made, ctx.inputMode);
    for (const out of mapped.outputs) makeJobDirs(host, dirname(join(host, out)), made, ctx.inputMode);
    const env: NodeJS.ProcessEnv = {
      ...jobEnv(spec.env),
      PATH: options.env.PATH ?? '/usr/bin:/bin',
      ...(options.unsandboxed ? {} : { TMPDIR: '/tmp' }),
    };
    const t1 = performance.now();
    const run = await compileConfined(ctx, compilerPath, mapped.args, { host, root, cwd, env, signal: lost });
    const t2 = performance.now();
    if (run.timedOut) {
      return { status: 'failed', reason: `compile timed out after ${options.jobTimeoutMs / 1000} s`, retry: false };
    }
    if (lost.aborted) return { status: 'failed', reason: 'lease lost' };
    const stderr = unmapText(run.stderr.toString('latin1'), root);
    if (!options.unsandboxed && (run.code === 126 || run.code === 127 || /^(bwrap|setpriv|prlimit): /m.test(stderr))) {
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
    const { outputs, inputs } =
      run.code === 0 ? await collectOutputs(ctx, { mapped, host, root, cwd, manifest }) : { outputs: [], inputs: [] };
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
 * A successful compile's outputs, and the digests of the inputs its dependency files name (what the job read,
 * not what it was given: the client compares them with its own).
 */
async function collectOutputs(
  ctx: WorkerContext,
  job: { mapped: MappedArgs; host: string; root: string; cwd: string; manifest: TreeManifest },
): Promise<{ outputs: JobOutput[]; inputs: [string, string][] }> {
  const { mapped, host, root, cwd, manifest } = job;
  const outputs: JobOutput[] = [];
  const inputs: [string, string][] = [];
  for (const path of mapped.outputs) {
    let data = readJobFile(host, path);
    if (!data) continue;
    if (mapped.depFiles.includes(path)) {
      const text = unmapText(data.toString('utf8'), root);
      data = Buffer.from(text);
      for (const dep of parseDepFile(text).deps) {
        const abs = resolve(cwd, dep);
        if (manifest.files[abs]) inputs.push([abs, readDigest(host, abs) ?? 'missing']);
      }
    }
    const digest = createHash('sha256').update(data).digest('hex');
    // readJobFile checked it is a regular file inside the job; the job's processes are gone by now.
    const executable = (statSync(join(host, path)).mode & 0o111) !== 0 ? { executable: true } : {};
    if (data.length <= INLINE_OUTPUT_MAX)
      outputs.push({ path, digest, size: data.length, data: data.toString('base64'), ...executable });
    else {
      await ctx.blobs.upload(digest, data);
      outputs.push({ path, digest, size: data.length, ...executable });
    }
  }
  return { outputs, inputs };
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
