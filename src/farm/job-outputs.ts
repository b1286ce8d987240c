import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDepFile } from '../compiler/depfile.ts';
import { errnoCode } from '../core/errors.ts';
import type { MappedArgs } from './policy.ts';
import { INLINE_OUTPUT_MAX, INLINE_TOTAL_MAX, type JobOutput, type TreeManifest } from './protocol.ts';
import { inJob, readDigest, readJobFile, unmapText } from './sandbox.ts';
import type { WorkerContext } from './worker-context.ts';

/** What a finished job left: files, links (with their targets, never followed) and directories. */
export interface CollectedOutputs {
  outputs: JobOutput[];
  links: { path: string; target: string }[];
  dirs: string[];
  /** The include-tree files the compile read (from its dependency files), with the digests it saw. */
  inputs: [string, string][];
}

/**
 * A successful job's outputs: the files its arguments write (a compile's -o, -MF) and the paths an REAPI action
 * declares — a file, a symlink, or a directory walked whole. The worker may be root and the job may have
 * planted links anywhere, so every path is resolved inside the job root, nothing is followed (a link is
 * reported as a link), and only regular files are read. Small outputs travel inline, up to a total; the rest
 * are uploaded as blobs.
 */
export async function collectOutputs(
  ctx: WorkerContext,
  job: {
    mapped: MappedArgs;
    host: string;
    root: string;
    cwd: string;
    manifest: TreeManifest;
    declared: { files: string[]; dirs: string[] } | undefined;
  },
): Promise<CollectedOutputs> {
  const { mapped, host, root, cwd, manifest } = job;
  const collected: CollectedOutputs = { outputs: [], links: [], dirs: [], inputs: [] };
  let inlined = 0;
  const seen = new Set<string>();
  const addFile = async (path: string, data: Buffer) => {
    const digest = createHash('sha256').update(data).digest('hex');
    // readJobFile checked it is a regular file inside the job; the job's processes are gone by now.
    const executable = (statSync(join(host, path)).mode & 0o111) !== 0 ? { executable: true } : {};
    if (data.length <= INLINE_OUTPUT_MAX && inlined + data.length <= INLINE_TOTAL_MAX) {
      inlined += data.length;
      collected.outputs.push({ path, digest, size: data.length, data: data.toString('base64'), ...executable });
    } else {
      await ctx.blobs.upload(digest, data);
      collected.outputs.push({ path, digest, size: data.length, ...executable });
    }
  };
  for (const path of mapped.outputs) {
    let data = readJobFile(host, path);
    if (!data || seen.has(path)) continue;
    seen.add(path);
    if (mapped.depFiles.includes(path)) {
      const text = unmapText(data.toString('utf8'), root);
      data = Buffer.from(text);
      for (const dep of parseDepFile(text).deps) {
        const abs = resolve(cwd, dep);
        if (manifest.files[abs]) collected.inputs.push([abs, readDigest(host, abs) ?? 'missing']);
      }
    }
    await addFile(path, data);
  }
  const walk = async (path: string, depth: number): Promise<void> => {
    if (seen.has(path) || depth > 256) return;
    seen.add(path);
    const at = inJob(host, path);
    if (!at) return;
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(at);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    if (st.isSymbolicLink()) collected.links.push({ path, target: readlinkSync(at) });
    else if (st.isFile()) {
      const data = readJobFile(host, path);
      if (data) await addFile(path, data);
    } else if (st.isDirectory()) {
      collected.dirs.push(path);
      for (const name of readdirSync(at).sort()) await walk(join(path, name), depth + 1);
    }
  };
  // Normalised from `/`: a declared `../../etc` names /etc inside the job, never outside it.
  for (const path of [...(job.declared?.files ?? []), ...(job.declared?.dirs ?? [])]) await walk(resolve('/', path), 0);
  return collected;
}
