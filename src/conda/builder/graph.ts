import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError, isAccelError } from '../../core/errors.ts';
import type { Digest } from '../../store/digest.ts';
import { blobPath } from '../../store/layout.ts';
import { REF_NS } from '../../store/namespaces.ts';
import { feedstockGraph, feedstockNeeds, stronglyConnected } from '../plan.ts';
import type { RenderedRecipe } from '../render-variants.ts';
import { readChannel } from './channel-packages.ts';
import type { BuildContext, BuiltPackage, FeedstockResult } from './context.ts';
import { buildPrepared, toBuilt } from './feedstock.ts';
import { recordBuild } from './history.ts';
import { channelSubdirs, type PreparedFeedstock, prepareFeedstock } from './prepare.ts';
import { logLine } from './run-script.ts';
import { claimWorkspace, workspaceFor } from './workspace.ts';

/** Store refs of finished builds: input key → the packages it made (blobs in the store). */
const BUILT_NS = REF_NS.condaBuild;

/** Which feedstocks each one waits for, from the one feedstock graph (`conda plan` shows the same). */
export function feedstockDeps(recipes: RenderedRecipe[]): Map<string, string[]> {
  const { deps } = feedstockGraph(recipes);
  return new Map([...deps].map(([feedstock, from]) => [feedstock, [...from.keys()].sort()]));
}

/**
 * Builds feedstocks in dependency order, as many at once as `jobs` allows, each as soon as those it needs
 * are in the channel. A feedstock whose inputs match an earlier build is a store hit: its packages are
 * (re)published from the store without building. A failure blocks only its dependents.
 */
interface BuildRunOptions {
  jobs: number;
  /** Go on after a failure with everything that does not need the failed feedstock (make's -k). */
  keepGoing: boolean;
  /** Package names that will not be built this run (their feedstock failed to render) → that feedstock. */
  unavailable?: ReadonlyMap<string, string>;
}

export async function buildFeedstocks(
  recipes: RenderedRecipe[],
  ctx: BuildContext,
  options: BuildRunOptions,
): Promise<FeedstockResult[]> {
  const { jobs, keepGoing } = options;
  const unavailable = options.unavailable ?? new Map<string, string>();
  let stopped: string | null = null;
  const deps = feedstockDeps(recipes);
  const cycles = stronglyConnected(
    recipes.map((r) => r.feedstock),
    (n) => deps.get(n) ?? [],
  ).filter((c) => c.length > 1);
  if (cycles.length > 0) {
    throw new AccelError(
      'ACCEL_CONDA_CYCLE',
      `feedstocks need each other: ${cycles.map((c) => c.join(' <-> ')).join('; ')}`,
      {
        hint: 'bootstrap one member of the cycle into the channel first, then build the rest',
      },
    );
  }
  const queue = new PQueue({ concurrency: Math.max(1, jobs) });
  // Publishing re-indexes the channel: one at a time, so that two feedstocks finishing together never
  // race on a subdir's repodata.json.
  let last: Promise<unknown> = Promise.resolve();
  const publish = ctx.tools.publish;
  const serial: BuildContext = {
    ...ctx,
    tools: {
      ...ctx.tools,
      publish: (channel, file) => {
        const next = last.then(() => publish(channel, file));
        last = next.catch(() => {});
        return next;
      },
    },
  };
  const results = new Map<string, Promise<FeedstockResult>>();
  const byName = new Map(recipes.map((r) => [r.feedstock, r]));
  const start = (r: RenderedRecipe): Promise<FeedstockResult> => {
    let p = results.get(r.feedstock);
    if (p) return p;
    p = (async () => {
      const before = await Promise.all(
        (deps.get(r.feedstock) ?? []).map((d) => start(byName.get(d) as RenderedRecipe)),
      );
      const broken = [
        ...before.filter((b) => b.status === 'failed' || b.status === 'blocked').map((b) => b.feedstock),
        ...[...feedstockNeeds(r)].map((n) => unavailable.get(n)).filter((f): f is string => f !== undefined),
      ];
      if (broken.length > 0) {
        const detail = `needs ${[...new Set(broken)].join(', ')}, which failed`;
        ctx.onEvent?.({ feedstock: r.feedstock, state: 'blocked', detail });
        return blocked(r.feedstock, detail);
      }
      return queue.add(async () => {
        if (stopped !== null) {
          const detail = `not started: ${stopped} failed first (--keep-going builds the rest)`;
          ctx.onEvent?.({ feedstock: r.feedstock, state: 'blocked', detail });
          return blocked(r.feedstock, detail);
        }
        const result = await buildOne(r, serial);
        if (result.status === 'failed' && !keepGoing) stopped ??= r.feedstock;
        return result;
      }) as Promise<FeedstockResult>;
    })();
    results.set(r.feedstock, p);
    return p;
  };
  return Promise.all(recipes.map(start));
}

function blocked(feedstock: string, message: string): FeedstockResult {
  const error = { code: 'ACCEL_CONDA_BLOCKED', message };
  return { feedstock, status: 'blocked', packages: [], log: null, seconds: 0, scriptSeconds: 0, error, key: null };
}

interface BuiltMeta {
  feedstock: string;
  packages: BuiltPackage[];
}

async function buildOne(r: RenderedRecipe, ctx: BuildContext): Promise<FeedstockResult> {
  const started = performance.now();
  const startedAt = Date.now();
  const done = (res: Omit<FeedstockResult, 'seconds' | 'feedstock'>): FeedstockResult => {
    const out = { feedstock: r.feedstock, ...res, seconds: (performance.now() - started) / 1000 };
    recordBuild(ctx.store, out, startedAt);
    ctx.onEvent?.({
      feedstock: r.feedstock,
      state: out.status,
      detail: out.error
        ? out.error.message.split('\n')[0]
        : out.exists
          ? `exists: ${out.exists.join(', ')}`
          : `${out.seconds.toFixed(1)} s`,
    });
    return out;
  };
  let prep: PreparedFeedstock;
  try {
    const exists = ctx.skipExisting ? await existing(r, ctx) : null;
    if (exists) return done({ status: 'skipped', packages: [], log: null, scriptSeconds: 0, key: null, exists });
    prep = await prepareFeedstock(r, ctx);
  } catch (err) {
    return done({ status: 'failed', packages: [], log: null, scriptSeconds: 0, error: errorOf(err), key: null });
  }
  const hit = ctx.store.refs.get(BUILT_NS, prep.key);
  const meta = hit?.meta as BuiltMeta | undefined;
  if (hit && meta?.packages.every((p) => ctx.store.has(p.sha256 as Digest))) {
    try {
      await republish(meta.packages, ctx);
    } catch (err) {
      return done({
        status: 'failed',
        packages: [],
        log: hit.digest,
        scriptSeconds: 0,
        error: errorOf(err),
        key: prep.key,
      });
    }
    return done({ status: 'skipped', packages: meta.packages, log: hit.digest, scriptSeconds: 0, key: prep.key });
  }
  const ws = workspaceFor(r.feedstock, ctx.targetPlatform);
  ctx.onEvent?.({ feedstock: r.feedstock, state: 'start', detail: ws.log });
  let release: () => void;
  try {
    release = claimWorkspace(ws);
  } catch (err) {
    return done({ status: 'failed', packages: [], log: null, scriptSeconds: 0, error: errorOf(err), key: prep.key });
  }
  logLine(ws.log, `== accel conda build ${r.feedstock} for ${ctx.targetPlatform} (inputs ${prep.key})`);
  let pinnedFallback: string | null = null;
  try {
    let built: Awaited<ReturnType<typeof buildPrepared>>;
    const pinnedKey = prep.key;
    try {
      built = await buildPrepared(prep, ws, ctx);
    } catch (err) {
      if (!cxxOnPinned(prep, err)) throw err;
      // C++ compiles against GCC 10's libstdc++ headers there; code that needs more of the library (<latch>,
      // <source_location>) fails, and gcc 12's own libstdc++ needs glibc 2.34: it links against the machine's.
      const why = errorOf(err).message.split('\n')[0];
      ctx.log.warn(
        `${r.feedstock}: C++ that does not build against the pinned sysroot's GCC 10 libstdc++ (${why}): built against the machine's libc instead`,
      );
      prep = await prepareFeedstock(r, { ...ctx, sysroot: 'machine' });
      release();
      release = claimWorkspace(ws);
      logLine(ws.log, `== accel conda build ${r.feedstock}: C++, against the machine's libc (inputs ${prep.key})`);
      built = await buildPrepared(prep, ws, ctx);
      // The pinned inputs' result is this one too: the next run does not try the pinned sysroot again.
      pinnedFallback = pinnedKey;
    }
    const { staged, scriptSeconds, cc, tests, scripts } = built;
    const packages: BuiltPackage[] = [];
    for (const s of staged) {
      const info = await ctx.store.putFile(s.path, { expected: s.record.sha256 as Digest });
      packages.push(toBuilt(s, info.size));
    }
    // Publish only once every output built and passed its tests: a channel never holds half a feedstock.
    for (const s of staged) await ctx.tools.publish(ctx.channel, s.path);
    const log = (await ctx.store.putFile(ws.log)).digest;
    ctx.store.refs.set(BUILT_NS, prep.key, log, { feedstock: r.feedstock, packages } satisfies BuiltMeta);
    if (pinnedFallback) {
      ctx.store.refs.set(BUILT_NS, pinnedFallback, log, { feedstock: r.feedstock, packages } satisfies BuiltMeta);
    }
    return done({ status: 'built', packages, log, scriptSeconds, key: prep.key, cc, tests, scripts });
  } catch (err) {
    // One feedstock's failure, whatever it is, fails that feedstock (and its dependents), not the run.
    if (!isAccelError(err)) logLine(ws.log, `== unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    const { code, message } = errorOf(err);
    logLine(ws.log, `== failed: [${code}] ${message}`);
    const log = (await ctx.store.putFile(ws.log)).digest;
    return done({ status: 'failed', packages: [], log, scriptSeconds: 0, error: errorOf(err), key: prep.key });
  } finally {
    release();
  }
}

/**
 * `--skip-existing`, as conda-build and rattler-build mean it: when every output's name-version-build is in
 * the local channel or an upstream (its subdir), the feedstock is not built; the channel that has each is
 * returned. Null when any output is missing.
 */
async function existing(r: RenderedRecipe, ctx: BuildContext): Promise<string[] | null> {
  const found: string[] = [];
  for (const rec of r.records) {
    const stem = `${rec.name}-${rec.version}-${rec.build_string}`;
    const is = (filename: string) => filename === `${stem}.conda` || filename === `${stem}.tar.bz2`;
    const local = readChannel(ctx.channel, [rec.subdir]).find((p) => is(p.filename));
    let where = local ? ctx.channel : undefined;
    for (const u of ctx.upstreams) {
      if (where) break;
      const named = (await u.index(rec.subdir)).get(rec.name) ?? [];
      if (named.some((e) => is(e.filename))) where = u.url;
    }
    if (!where) return null;
    found.push(`${stem} in ${where}`);
  }
  return found;
}

/** A C++ build on the pinned sysroot that failed in its scripts or tests: it is tried on the machine's libc. */
function cxxOnPinned(prep: PreparedFeedstock, err: unknown): boolean {
  if (!prep.toolchain.pinned || !prep.toolchain.languages.cxx || !isAccelError(err)) return false;
  return err.code === 'ACCEL_CONDA_BUILD_FAILED' || err.code === 'ACCEL_CONDA_TEST_FAILED';
}

function errorOf(err: unknown): { code: string; message: string; hint?: string } {
  if (!isAccelError(err)) {
    return {
      code: 'ACCEL_CONDA_BUILD_UNEXPECTED',
      message: (err as Error)?.message ?? String(err),
      hint: 'an error accel did not expect (a bug worth reporting); the build log holds its trace',
    };
  }
  return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
}

/** Puts a hit's packages back into the channel when it lacks them (a new channel, or one cleaned up). */
async function republish(packages: BuiltPackage[], ctx: BuildContext): Promise<void> {
  const have = new Set(
    readChannel(ctx.channel, channelSubdirs(ctx.targetPlatform)).map((p) => `${p.subdir}/${p.filename} ${p.sha256}`),
  );
  for (const p of packages) {
    if (have.has(`${p.subdir}/${p.filename} ${p.sha256}`)) continue;
    const dir = join(ctx.store.layout.tmp, `republish-${process.pid}-${p.sha256.slice(0, 12)}`);
    makeDirs(dir);
    try {
      const file = join(dir, p.filename);
      copyFileSync(blobPath(ctx.store.layout, p.sha256 as Digest), file);
      await ctx.tools.publish(ctx.channel, file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
