import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, resolve } from 'node:path';
import { type Classification, type Compile, classify } from '../compiler/args.ts';
import { parseBaseDirs, relativeToCwd } from '../compiler/base-dirs.ts';
import { compilerIdentity, resolveCompiler } from '../compiler/compiler-identity.ts';
import { parseDepFile } from '../compiler/depfile.ts';
import { cachedCompilerVersion, cachedShowIncludesPrefix } from '../compiler/facts.ts';
import { classifyMsvc, isMsvcCompile, msvcFlavor } from '../compiler/msvc.ts';
import { splitShowIncludes } from '../compiler/msvc-show-includes.ts';
import { type CompileFn, type CompilerRun, runCompiler } from '../compiler/run.ts';
import { tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { isAccelError } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { explainMiss, recordMiss } from './explain.ts';
import { explainTarget, writeExplanation } from './explain-log.ts';
import { type FileHash, FileHasher, type StatMemo } from './filehash.ts';
import { keyIngredients, keyOf, macroPathStrings, macroPaths } from './key.ts';
import { findResult, type ManifestEntry, type ManifestLookup, recordEntry, shadowCandidates } from './manifest.ts';
import type { RemoteCache } from './remote.ts';
import { restoreResult, storeResult } from './result.ts';

export interface CcOptions {
  store: Store;
  /** The compiler and its arguments, as after `accel cc --`. */
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Directories and files that are accel itself: never run as "the compiler". */
  skip: { dirs: string[]; self: string[] };
  /** A shared cache to consult after the local one, and to publish new results to. */
  remote?: RemoteCache;
  /** Runs the compile on a miss (the farm's dispatcher); default: the local compiler. */
  compile?: CompileFn;
  /**
   * The daemon: an uncacheable call is not run here but handed back (`delegate`), so it runs in the
   * client with the client's terminal and stdin.
   */
  delegate?: boolean;
  /** Aborts a running compile (the daemon's client went away); its outputs are removed. */
  signal?: AbortSignal;
  /** The caller's umask, for the files a hit writes and a compile creates (default: this process's). */
  umask?: number;
  /** The daemon's in-memory stat cache, in front of the index's. */
  statMemo?: StatMemo;
  /** Runs a compile here (the daemon's bounded queue); default: at once. */
  runLocal?: (compilerPath: string, args: string[]) => Promise<CompilerRun>;
  /** Base directories from the settings (`cc.baseDirs`); `ACCEL_CC_BASEDIRS` in `env` overrides them. */
  baseDirs?: readonly string[];
  /** Explaining misses, from the settings (`cc.explain`); `ACCEL_CC_EXPLAIN` in `env` overrides it. */
  explain?: string;
  /** `accel cc --explain`: look up only and say whether it would hit, and why not (nothing runs or is written). */
  explainOnly?: boolean;
}

/**
 * How a miss gets compiled. `compilerPath` and `args` are what would run locally (args include the -MD -MF the
 * cache adds); `compile` is the classified call. A dispatcher that could not use the farm compiles locally
 * itself and says why in `fallback` (counted, and announced once).
 */

/** What the wrapper did; stdout/stderr are the compiler's own output (replayed on a hit). */
export interface CcOutcome {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** hit, miss, uncacheable: <reason>, failed. */
  status: string;
  /** With `delegate`: the compiler the caller must run itself, with the original arguments. */
  delegate?: string;
}

/**
 * `accel cc -- gcc …`: a direct-mode compile cache. The key is what is known before compiling (compiler,
 * arguments, source bytes, and the cwd when debug info embeds it); a manifest under the key lists the headers
 * each earlier compile read, with their hashes; a matching entry names the result. A miss compiles with the
 * compiler's own dependency output to learn the headers, so the cache never preprocesses.
 */
export async function runCc(options: CcOptions): Promise<CcOutcome> {
  const outcome = await compileOrReplay(options);
  // A build that wants its own numbers (conda build, per feedstock) tags its compiles.
  const tag = options.env.ACCEL_CC_TALLY;
  if (tag && /^[\w.-]{1,100}$/.test(tag)) {
    const s = outcome.status;
    const what =
      s === 'hit' || s === 'remote hit' ? 'hit' : s === 'miss' ? 'miss' : s === 'failed' ? 'failed' : 'uncacheable';
    if (s !== 'usage') options.store.counters.bumpTally(tag, what);
  }
  return outcome;
}

async function compileOrReplay(options: CcOptions): Promise<CcOutcome> {
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const [name, ...args] = options.argv;
  if (!name)
    return {
      exitCode: 2,
      stdout: Buffer.alloc(0),
      stderr: Buffer.from('accel cc: no compiler given\n'),
      status: 'usage',
    };
  const { store, cwd, env } = options;
  const umask = options.umask ?? process.umask();
  const baseDirs =
    env.ACCEL_CC_BASEDIRS !== undefined
      ? parseBaseDirs(env.ACCEL_CC_BASEDIRS, 'ACCEL_CC_BASEDIRS')
      : (options.baseDirs ?? []);
  const explainTo = options.explainOnly
    ? undefined
    : explainTarget(env.ACCEL_CC_EXPLAIN ?? options.explain, store.home, cwd);
  const compilerPath = resolveCompiler(name, env, cwd, options.skip);
  // The driver is read from the name it was called by (clang-cl is a link to clang) and `--driver-mode=cl`.
  const flavor = msvcFlavor(compilerPath, args);
  const classified: Classification = flavor
    ? classifyMsvc(compilerPath, args, cwd, env)
    : classify(compilerPath, args, cwd, { baseDirs });
  const passthrough = async (reason: string): Promise<CcOutcome> => {
    if (options.explainOnly) return said(`uncacheable: ${reason}`, 'uncacheable');
    store.counters.bump(`uncacheable: ${reason}`);
    if (options.delegate) {
      return {
        exitCode: 0,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        status: `uncacheable: ${reason}`,
        delegate: compilerPath,
      };
    }
    const run = await runCompiler(compilerPath, args, { cwd, env, inherit: true });
    return { exitCode: run.code, stdout: run.stdout, stderr: run.stderr, status: `uncacheable: ${reason}` };
  };
  if (classified.kind === 'uncacheable') return passthrough(classified.reason);
  const compile = classified.compile;
  const at = (p: string) => resolve(cwd, p);
  const hasher = new FileHasher(store, startNs, options.statMemo);
  const source = hasher.hash(at(compile.source));
  if (!source) return passthrough('missing source');
  if (source.timeMacros) return passthrough('__DATE__ or __TIME__ in the source');

  const identity = compilerIdentity(compilerPath);
  const version = await cachedCompilerVersion(store, identity, flavor);
  const ingredients = keyIngredients({ compile, identity, compilerVersion: version, source: source.digest, cwd, env });
  const key = keyOf(ingredients);
  const lookup: ManifestLookup = { cwd, hasher, macroPaths: macroPaths(compile) };

  const hit = findResult(store, key, lookup);
  if (options.explainOnly) {
    return hit
      ? said('hit: a matching entry exists', 'hit')
      : said(explainMiss(store, { compile, key, ingredients, lookup }), 'miss');
  }
  if (hit) {
    const restored = await restoreOrMiss(store, hit, compile, { cwd, mode: 0o666 & ~umask });
    if (restored) {
      store.counters.bump('hit');
      return { exitCode: 0, ...restored, status: 'hit' };
    }
  }
  const remoteHit = await options.remote?.fetchResult(store, key, lookup);
  if (remoteHit) {
    const restored = await restoreOrMiss(store, remoteHit.result, compile, { cwd, mode: 0o666 & ~umask });
    if (restored) {
      const entries = recordEntry(store, key, remoteHit.entry);
      // A hit at a lower tier is written back to the tiers before it, so the next reader finds it sooner.
      if (remoteHit.tier > 0) await options.remote?.publish(store, key, entries, remoteHit.entry, remoteHit.tier);
      store.counters.bump('remote hit');
      if ((options.remote?.tierCount ?? 0) > 1) store.counters.bump(`remote hit: tier ${remoteHit.tier + 1}`);
      return { exitCode: 0, ...restored, status: 'remote hit' };
    }
  }

  // Miss: compile, learning the headers from the compiler's own dependency output.
  const why = explainTo && explainMiss(store, { compile, key, ingredients, lookup });
  if (explainTo && why) writeExplanation(explainTo, { cwd, source: compile.source, why });
  const msvc = isMsvcCompile(compile) ? compile : undefined;
  const prefix = msvc && (await cachedShowIncludesPrefix(store, compilerPath, { env, scratch: store.layout.tmp }));
  if (msvc && !prefix) return passthrough("the compiler's /showIncludes prefix could not be learnt");
  const ownDeps = compile.deps !== undefined || msvc !== undefined;
  const depFile = compile.deps ? at(compile.deps.file) : join(store.layout.tmp, tempName('dep.'));
  // The MSVC driver names the headers on stdout (/showIncludes), first so that no `--` can make it a source.
  const runArgs = msvc
    ? msvc.showIncludes
      ? args
      : ['/showIncludes', ...args]
    : compile.deps
      ? args
      : [...args, '-MD', '-MF', depFile];
  let run: CompilerRun & { fallback?: string; remote?: boolean };
  try {
    const local =
      options.runLocal ??
      ((path: string, a: string[]) => runCompiler(path, a, { cwd, env, signal: options.signal, umask }));
    run = options.compile
      ? await options.compile(compilerPath, runArgs, { cwd, env, compile, local })
      : await local(compilerPath, runArgs);
  } catch (err) {
    // An abandoned compile may have written part of its output: remove it, as make removes an interrupted target.
    if (options.signal?.aborted) {
      rmSync(at(compile.output), { force: true });
      if (compile.deps) rmSync(at(compile.deps.file), { force: true });
    }
    throw err;
  } finally {
    if (!ownDeps) setImmediate(() => rmSync(depFile, { force: true }));
  }
  // Said once per build, on the stderr of the compile it happened to: never silent, never a flood.
  const stderr = run.fallback ? Buffer.concat([announceFallback(store, run.fallback), run.stderr]) : run.stderr;
  if (run.fallback) store.counters.bump(`farm fallback: ${run.fallback}`);
  else if (run.remote) store.counters.bump('farm compiled');
  if (run.code !== 0) {
    store.counters.bump('compile failed');
    return { exitCode: run.code, stdout: run.stdout, stderr, status: 'failed' };
  }
  // What the build sees and a hit replays: without the header lines when the build did not ask for them.
  const shown = msvc && splitShowIncludes(run.stdout, prefix as string);
  const stdout = shown && !msvc.showIncludes ? shown.rest : run.stdout;
  const deps = shown ? shown.headers.map(normalize) : parseDepFile(readFileSync(depFile, 'utf8')).deps;
  const entry = learnEntry(compile, deps, { cwd, hasher, baseDirs, source });
  if (typeof entry === 'string') {
    store.counters.bump(`uncacheable: ${entry}`);
    return { exitCode: 0, stdout, stderr, status: `uncacheable: ${entry}` };
  }
  const result = await storeResult(store, compile, { ...run, stdout }, { cwd, baseDirs });
  const newest = { ...entry, result };
  const entries = recordEntry(store, key, newest);
  recordMiss(store, { compile, key, ingredients, result });
  await options.remote?.publish(store, key, entries, newest);
  store.counters.bump('miss');
  return { exitCode: 0, stdout, stderr, status: 'miss' };
}

/** A build is taken to be the compiles of the last few minutes: one warning line per such window and home. */
const FALLBACK_QUIET_MS = 5 * 60_000;

function announceFallback(store: Store, reason: string): Buffer {
  const marker = homeLayout(store.home).run.farmFallbackAnnounced;
  try {
    if (Date.now() - statSync(marker).mtimeMs < FALLBACK_QUIET_MS) return Buffer.alloc(0);
  } catch {
    // never announced
  }
  try {
    makeDirs(dirname(marker), { mode: 0o700 });
    writeFileSync(marker, `${reason}\n`);
  } catch {
    // announcing is best effort; the counters still say it
  }
  return Buffer.from(
    `accel: warning: compiling locally, the farm could not take this compile (${reason}); ` +
      'later fallbacks in this build are only counted (accel cc --stats)\n',
  );
}

/**
 * A hit that cannot be written where asked (a missing or read-only output directory) becomes a miss: the
 * real compiler then fails with its own message and exit code, as it would without accel.
 */
async function restoreOrMiss(store: Store, digest: Digest, compile: Compile, where: { cwd: string; mode: number }) {
  try {
    return await restoreResult(store, digest, compile, where);
  } catch (err) {
    if (isAccelError(err) && err.code.startsWith('ACCEL_FS_')) return undefined;
    throw err;
  }
}

/** What learning a compile's headers needs: where it ran, its base directories, and its source's hash. */
interface LearnContext {
  cwd: string;
  hasher: FileHasher;
  baseDirs: readonly string[];
  source: FileHash;
}

/**
 * The manifest entry for a finished compile, or why it must not be cached. `deps`: the files it read, from its
 * dependency file or its `/showIncludes` lines. Paths under a base directory are kept relative to the cwd; when
 * a file read names `__FILE__`, so are the paths it would hold.
 */
function learnEntry(compile: Compile, deps: string[], ctx: LearnContext): Omit<ManifestEntry, 'result'> | string {
  const { cwd, hasher, baseDirs } = ctx;
  const includes: ManifestEntry['includes'] = [];
  const absent = new Set<string>();
  const kept = (path: string) => relativeToCwd(path, cwd, baseDirs) ?? path;
  let fileMacros = ctx.source.fileMacros;
  for (const dep of deps) {
    if (dep === compile.source) continue;
    const hash = hasher.hash(resolve(cwd, dep));
    if (!hash) return `header ${dep} vanished during the compile`;
    if (hash.tooNew) return `header ${dep} changed during the compile`;
    if (hash.timeMacros) return '__DATE__ or __TIME__ in a header';
    if (hash.fileMacros) fileMacros = true;
    includes.push([kept(dep), hash.digest]);
    // Only a header that appears where none was can change what the compiler finds: a candidate that was
    // there before the compile started and not taken (the same file by another name, a quoted search that
    // started in another header's directory, an angle include) must not make the entry unmatchable. One made
    // during the compile may or may not have been seen: not cached.
    for (const candidate of shadowCandidates(dep, compile.source, compile.includeDirs)) {
      const there = hasher.presence(resolve(cwd, candidate));
      if (there === 'new') return `header ${candidate} appeared during the compile`;
      if (there === 'absent') absent.add(kept(candidate));
    }
  }
  const embeds =
    fileMacros && compile.portablePaths.length > 0 && objectHoldsAny(resolve(cwd, compile.output), compile);
  return { includes, absent: [...absent], ...(embeds ? { fileMacroPaths: macroPaths(compile) } : {}) };
}

/**
 * Whether the object holds one of the paths `__FILE__` would give (a file names it, but most such uses sit in
 * macros a build never expands: zstd's error_private.h, assert.h under NDEBUG). Where it does not, the object
 * holds no path of this checkout and serves every checkout alike.
 */
function objectHoldsAny(object: string, compile: Compile): boolean {
  const bytes = readFileSync(object);
  return macroPathStrings(compile).some((p) => bytes.includes(Buffer.from(p)));
}

/** The answer of `accel cc --explain`: one line on stdout, and a status saying what it found. */
function said(line: string, status: string): CcOutcome {
  return { exitCode: 0, stdout: Buffer.from(`${line}\n`), stderr: Buffer.alloc(0), status };
}
