import { readFileSync } from 'node:fs';
import type { Compile } from '../compiler/args.ts';
import { retargetDepFile } from '../compiler/depfile.ts';
import type { CompilerRun } from '../compiler/run.ts';
import { replaceFileSync } from '../core/atomic-fs.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';

/** A cached compile: the output blobs and what the compiler printed (replayed on every hit: warnings too). */
export interface CompileResult {
  object: Digest;
  dep?: { digest: Digest; target: string };
  stdout: string;
  stderr: string;
}

export async function storeResult(
  store: Store,
  compile: Compile,
  run: CompilerRun,
  cwdPath: (p: string) => string,
): Promise<Digest> {
  const object = await store.putFile(cwdPath(compile.output));
  let dep: CompileResult['dep'];
  if (compile.deps) {
    const info = await store.putBuffer(readFileSync(cwdPath(compile.deps.file)));
    dep = { digest: info.digest, target: compile.deps.target };
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
  cwdPath: (p: string) => string,
  mode: number,
): Promise<{ stdout: Buffer; stderr: Buffer } | undefined> {
  let result: CompileResult;
  let depText: string | undefined;
  try {
    const raw = store.read(digest);
    if (!raw) return undefined;
    result = JSON.parse(raw.toString('utf8')) as CompileResult;
    if (compile.deps) {
      if (!result.dep) return undefined;
      const depBytes = store.read(result.dep.digest);
      if (!depBytes) return undefined;
      depText = retargetDepFile(depBytes.toString('utf8'), result.dep.target, compile.deps.target);
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
