import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { TOOLCHAIN_RUNTIME } from '../build-tools.ts';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import type { RenderedRecipe } from '../render-variants.ts';
import { type ChannelPackage, readChannel, solve } from './channel-packages.ts';
import type { BuildContext } from './context.ts';
import { resolveToolchain, type Toolchain } from './cross-toolchain.ts';
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

export function prepareFeedstock(rendered: RenderedRecipe, ctx: BuildContext): PreparedFeedstock {
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
  // --test skip needs no qemu (a build that runs what it built then fails saying so).
  const { toolchain: machine, missing } = resolveToolchain(
    ctx.targetPlatform,
    buildSpecs,
    ctx.env,
    ctx.test !== 'skip',
  );
  const toolchain = withPinnedSysroot(machine, records, ctx, workspaceFor(what, ctx.targetPlatform));
  const channel = readChannel(ctx.channel, channelSubdirs(ctx.targetPlatform));
  // Build requirements the machine lacks may come from the channel's noarch packages (they run anywhere).
  const build = solve(
    missing,
    channel.filter((p) => p.subdir === 'noarch'),
  );
  const host = solve(hostSpecs, channel);
  const unsatisfied = [...build.unsatisfied.map((s) => `build: ${s}`), ...host.unsatisfied.map((s) => `host: ${s}`)];
  if (unsatisfied.length > 0) {
    throw new AccelError(
      'ACCEL_CONDA_UNSATISFIABLE',
      `${what}: requirements neither the channel nor the toolchain satisfy: ${[...build.unsatisfied, ...host.unsatisfied].map(specName).join(', ')}\n  ${unsatisfied.join('\n  ')}`,
      {
        hint: `build the feedstocks that provide them into ${ctx.channel} first (or pass them all: accel conda build --all DIR)`,
      },
    );
  }
  const key = inputKey(records, toolchain, [...build.packages, ...host.packages], ctx);
  return { feedstock: what, records, toolchain, host: host.packages, build: build.packages, key };
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
