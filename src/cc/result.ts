import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Compile } from '../compiler/args.ts';
import { CWD_MARK, expandCwd, relativeToCwd, underBaseDir } from '../compiler/base-dirs.ts';
import { mapDepFilePaths, retargetDepFile } from '../compiler/depfile.ts';
import type { CompilerRun } from '../compiler/run.ts';
import { replaceFileSync } from '../core/atomic-fs.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';

/** A cached compile: the output blobs and what the compiler printed (replayed on every hit: warnings too). */
export interface CompileResult {
  object: Digest;
  /**
   * The dependency file, paths under a base directory in their `$CWD` form (`portable`); without `portable`
   * as the compiler wrote it in `cwd` (when set: usable only there, a path in it could not be made relative).
   */
  dep?: { digest: Digest; target: string; portable?: true; cwd?: string };
  stdout: string;
  stderr: string;
}

/** Where a compile ran, and the base directories its key was made with. */
export interface ResultPlace {
  cwd: string;
  baseDirs: readonly string[];
}

export async function storeResult(
  store: Store,
  compile: Compile,
  run: CompilerRun,
  place: ResultPlace,
): Promise<Digest> {
  const at = (p: string) => resolve(place.cwd, p);
  const object = await store.putFile(at(compile.output));
  let dep: CompileResult['dep'];
  if (compile.deps) {
    const text = readFileSync(at(compile.deps.file), 'utf8');
    const portable = place.baseDirs.length > 0 ? portableDepFile(text, place) : text;
    const info = await store.putBuffer(Buffer.from(portable ?? text));
    dep = { digest: info.digest, target: compile.deps.target };
    if (place.baseDirs.length > 0) Object.assign(dep, portable === undefined ? { cwd: place.cwd } : { portable: true });
  }
  const result: CompileResult = {
    object: object.digest,
    dep,
    stdout: run.stdout.toString('base64'),
    stderr: run.stderr.toString('base64'),
  };
  return (await store.putBuffer(Buffer.from(JSON.stringify(result)))).digest;
}

/**
 * Writes a cached result where this compile would have: the object file and the dependency file atomically
 * (a reader never sees half an object), the dependency file naming this compile's target. Undefined when a
 * blob is missing or corrupt: the caller compiles instead, never serving wrong bytes.
 */
export async function restoreResult(
  store: Store,
  digest: Digest,
  compile: Compile,
  where: { cwd: string; mode: number },
): Promise<{ stdout: Buffer; stderr: Buffer } | undefined> {
  const cwdPath = (p: string) => resolve(where.cwd, p);
  const { mode } = where;
  let result: CompileResult;
  let depText: string | undefined;
  try {
    const raw = store.read(digest);
    if (!raw) return undefined;
    result = JSON.parse(raw.toString('utf8')) as CompileResult;
    if (compile.deps) {
      if (!result.dep) return undefined;
      // Made elsewhere and naming that place's paths: not for this compile (it compiles instead).
      if (result.dep.cwd !== undefined && result.dep.cwd !== where.cwd) return undefined;
      const depBytes = store.read(result.dep.digest);
      if (!depBytes) return undefined;
      let text = depBytes.toString('utf8');
      if (result.dep.portable) {
        const here = mapDepFilePaths(text, (p) => (p.startsWith(CWD_MARK) ? expandCwd(p, where.cwd) : undefined));
        if (here === undefined) return undefined;
        text = here;
      }
      depText = retargetDepFile(text, result.dep.target, compile.deps.target);
    }
    const object = store.read(result.object);
    if (!object) return undefined;
    // Atomic but not fsynced: a build output can be made again (neither ccache nor the compiler syncs).
    replaceFileSync(cwdPath(compile.output), object, mode);
  } catch (err) {
    if ((err as { code?: string }).code === 'ACCEL_STORE_CORRUPT') return undefined;
    throw err;
  }
  if (compile.deps && depText !== undefined) {
    const text = depText;
    replaceFileSync(cwdPath(compile.deps.file), text, mode);
  }
  return { stdout: Buffer.from(result.stdout, 'base64'), stderr: Buffer.from(result.stderr, 'base64') };
}

/**
 * The dependency file with its paths under a base directory in their `$CWD` form, or undefined when one of
 * them cannot be written so (it leaves the cwd's tree with `..`): then the file names this cwd only.
 */
function portableDepFile(text: string, place: ResultPlace): string | undefined {
  let stuck = false;
  const mapped = mapDepFilePaths(text, (p) => {
    if (!p.startsWith('/') || !underBaseDir(p, place.baseDirs)) return undefined;
    const rel = relativeToCwd(p, place.cwd, place.baseDirs);
    if (rel === undefined) stuck = true;
    return rel;
  });
  return stuck ? undefined : mapped;
}
