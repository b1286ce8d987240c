import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { runtimeGlibc } from '../../core/native.ts';
import { TOOLCHAIN_RUNTIME } from '../build-tools.ts';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import type { RenderedRecipe } from '../render-variants.ts';
import { localChannel, type SolverChannel, solveEnvironment, upstreamChannel } from '../solve/solve.ts';
import type { ChannelPackage } from './channel-packages.ts';
import type { BuildContext } from './context.ts';
import { isToolchainPackage, resolveToolchain, type Toolchain } from './cross-toolchain.ts';
import { starBareVersion } from './match.ts';
import { pickSysroot, sysrootFlags } from './sysroot.ts';
import { type Workspace, workspaceFor } from './workspace.ts';

/** Bump when a change to the builder changes what it produces: every package rebuilds once. */
const BUILDER_VERSION = 1;

/** A feedstock ready to build: requirements resolved against the machine and the channel, inputs digested. */
export interface PreparedFeedstock {
  feedstock: string;
  records: OutputRecord[];
  toolchain: Toolchain;
  host: ChannelPackage[];
  build: ChannelPackage[];
  /** The digest of everything the packages depend on; equal keys give equal packages. */
  key: string;
}

export function channelSubdirs(target: string): string[] {
  return target === 'noarch' ? ['noarch'] : [target, 'noarch'];
}

export async function prepareFeedstock(rendered: RenderedRecipe, ctx: BuildContext): Promise<PreparedFeedstock> {
  const records = rendered.records;
  const what = rendered.feedstock;
  if (records.length === 0) {
    throw new AccelError(
      'ACCEL_CONDA_NOTHING_TO_BUILD',
      `${what}: the recipe builds nothing for ${ctx.targetPlatform}`,
      {
        hint: 'check build/skip selectors',
      },
    );
  }
  const own = (s: string) => records.some((r) => r.name === specName(s));
  // A split recipe's shared build runs in the top-level environment (`make`, the compilers, its host).
  const top = records.flatMap((r) => (r.top_level ? [r.top_level.requirements] : []));
  const buildSpecs = unique([...records.flatMap((r) => r.requirements.build), ...top.flatMap((t) => t.build)]).filter(
    (s) => !own(s),
  );
  // libgcc and libstdcxx in host: the toolchain's runtime, which the compiler itself brings.
  const hostSpecs = unique([...records.flatMap((r) => r.requirements.host), ...top.flatMap((t) => t.host)]).filter(
    (s) => !own(s) && !TOOLCHAIN_RUNTIME.has(specName(s)),
  );
  const buildSubdir = process.arch === 'arm64' ? 'linux-aarch64' : 'linux-64';
  // Build tools an upstream channel has (meson, cmake, cross-python_…) come from it, as conda-build installs
  // them; the compilers stay the machine's cross gcc, and the machine's tools are the fallback.
  const upstreamTools = await upstreamHas(
    buildSpecs.filter(
      (s) => !isToolchainPackage(specName(s), ctx.targetPlatform === 'noarch' ? buildSubdir : ctx.targetPlatform),
    ),
    [buildSubdir, 'noarch'],
    ctx,
  );
  // --test skip needs no qemu (a build that runs what it built then fails saying so).
  const { toolchain: machine, missing } = resolveToolchain(
    ctx.targetPlatform,
    buildSpecs.filter((s) => !upstreamTools.has(s)),
    ctx.env,
    ctx.test !== 'skip',
  );
  const toolchain = withPinnedSysroot(machine, records, ctx, workspaceFor(what, ctx.targetPlatform));
  const channels = solverChannels(ctx);
  // Build requirements the machine lacks come from the channels' build platform and noarch packages.
  const build = await solveEnvironment({
    what: `${what}: the build environment`,
    specs: [...missing, ...upstreamTools].map(starBareVersion),
    channels,
    subdirs: [buildSubdir, 'noarch'],
    virtual: machineVirtual(),
  });
  const host = await solveEnvironment({
    what: `${what}: the host environment`,
    specs: hostSpecs.map(starBareVersion),
    channels,
    subdirs: channelSubdirs(ctx.targetPlatform),
    virtual: targetVirtual(toolchain),
  });
  await fetchPackages([...build, ...host], ctx);
  const key = inputKey(records, toolchain, [...build, ...host], ctx);
  return { feedstock: what, records, toolchain, host, build, key };
}

/** The channels a build solves against, in priority order: the local channel, then each upstream. */
export function solverChannels(ctx: BuildContext): SolverChannel[] {
  return [localChannel(ctx.channel), ...ctx.upstreams.map(upstreamChannel)];
}

/** This machine as conda's virtual packages say it (the build environment runs here). */
export function machineVirtual(): Record<string, string> {
  const glibc = runtimeGlibc();
  return glibc ? { __glibc: glibc } : {};
}

/**
 * The target system's glibc: the pinned sysroot's, which the build links against and the tests run on, or
 * the machine's cross libc (the same Debian release as the machine's own glibc).
 */
export function targetVirtual(toolchain: Toolchain): Record<string, string> {
  if (toolchain.pinned) return { __glibc: toolchain.pinned.glibc };
  return machineVirtual();
}

/** The specs whose package name an upstream channel has in one of the subdirs. */
async function upstreamHas(specs: string[], subdirs: string[], ctx: BuildContext): Promise<Set<string>> {
  const out = new Set<string>();
  if (ctx.upstreams.length === 0 || specs.length === 0) return out;
  const indexes = await Promise.all(ctx.upstreams.flatMap((u) => subdirs.map((subdir) => u.index(subdir))));
  for (const s of specs) if (indexes.some((index) => index.has(specName(s)))) out.add(s);
  return out;
}

/** Puts the upstream packages of an environment into the store and beside each other (offline after once). */
export async function fetchPackages(packages: ChannelPackage[], ctx: BuildContext): Promise<void> {
  for (const p of packages) {
    if (!p.url) continue;
    const upstream = ctx.upstreams.find((u) => u.url === p.channel);
    if (!upstream) throw new Error(`${p.filename}: from ${p.channel}, which is no upstream of this build`);
    await upstream.fetchPackage(p);
  }
}

/**
 * The toolchain with the pinned sysroot the variants' `c_stdlib_version` asks for, when a compiler builds
 * for a cross target: unpacked into the workspace (sysroot.ts, before the build), whose path does not depend
 * on ACCEL_HOME, so the flags and what they leave in packages are the same in every home.
 */
function withPinnedSysroot(toolchain: Toolchain, records: OutputRecord[], ctx: BuildContext, ws: Workspace): Toolchain {
  if (!toolchain.cross || !toolchain.paths.CC) return toolchain;
  const stdlib = records.map((r) => r.variant.c_stdlib_version).find((v) => typeof v === 'string');
  const pinned = pickSysroot(toolchain.target, stdlib, ctx.sysroot);
  if (!pinned) return toolchain;
  const root = sysrootDir(ws);
  const flags = sysrootFlags({
    root,
    triplet: pinned.triplet,
    cc: toolchain.paths.CC,
    cxx: toolchain.paths.CXX,
    cxxHeaders: pinned.cxxHeaders,
  });
  const debs = pinned.debs.map((d) => d.sha256).join(' ');
  return {
    ...toolchain,
    pinned,
    sysroot: join(root, 'usr', pinned.triplet),
    identity: `${toolchain.identity}\nsysroot ${pinned.id} ${debs}\n${JSON.stringify(flags)}`,
    sysrootFlags: flags,
  };
}

/** Where a workspace holds the pinned sysroot it builds against. */
export function sysrootDir(ws: Workspace): string {
  return join(ws.root, '_sysroot');
}

function inputKey(records: OutputRecord[], toolchain: Toolchain, deps: ChannelPackage[], ctx: BuildContext): string {
  const recipeDir = (records[0] as OutputRecord).recipe_dir;
  const inputs = {
    builder: BUILDER_VERSION,
    target: ctx.targetPlatform,
    test: ctx.test,
    records: records.map(({ recipe_dir: _dir, ...r }) => r),
    recipe: recipeFiles(recipeDir),
    deps: deps.map((p) => `${p.subdir}/${p.filename} ${p.sha256}`).sort(),
    toolchain: toolchain.identity,
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

/** Every file of the recipe directory with its digest: a build script or patch edit is a new input. */
function recipeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = join(e.parentPath, e.name);
    out.push(`${relative(dir, file)} ${createHash('sha256').update(readFileSync(file)).digest('hex')}`);
  }
  return out.sort();
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}
