import { createHash } from 'node:crypto';
import { copyFileSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError } from '../../core/errors.ts';
import { readChannel } from './channel-packages.ts';
import type { BuildContext } from './context.ts';
import type { Toolchain } from './cross-toolchain.ts';
import { glibcNeeded } from './elf.ts';

/**
 * The toolchain's runtime as conda packages, as conda-forge's compiler feedstock makes them: `libgcc`
 * (libgcc_s), `libstdcxx` (libstdc++) and the `-ng` names that older packages depend on. Every package built
 * with the cross gcc depends on them (the compilers' run_exports), so the channel carries them at the version
 * of the gcc that built it: an environment solved from the channel alone, by conda or rattler, is complete.
 * The files come from the sysroot the build linked against: the pinned one's (Debian 11's GCC 10 runtime,
 * floor glibc 2.17 and 2.18) or the machine's cross toolchain's.
 */
interface RuntimeSpec {
  name: string;
  /** Files of `<sysroot>/lib` by name pattern; symlinks are kept. */
  files: RegExp;
  depends: (version: string) => string[];
}

const RUNTIME: RuntimeSpec[] = [
  { name: 'libgcc', files: /^libgcc_s\.so\.1$/, depends: () => [] },
  { name: 'libstdcxx', files: /^libstdc\+\+\.so\.6(\.\d+)*$/, depends: (v) => [`libgcc ${v}`] },
  { name: 'libgcc-ng', files: /^$/, depends: (v) => [`libgcc ${v}`] },
  { name: 'libstdcxx-ng', files: /^$/, depends: (v) => [`libstdcxx ${v}`] },
];

const pending = new Map<string, Promise<void>>();

/**
 * The version of the runtime the toolchain links against: the pinned sysroot's GCC runtime (libgcc_s and
 * libstdc++ of its release, older than the compiler, so that their glibc floor is the sysroot's), else the
 * cross gcc's own.
 */
export function runtimeVersion(toolchain: Toolchain): string | null {
  if (!toolchain.gccVersion) return null;
  return toolchain.pinned?.runtime ?? toolchain.gccVersion;
}

/** Publishes the runtime packages of the toolchain's gcc into the channel unless it has them already. */
export function ensureRuntimePackages(ctx: BuildContext, toolchain: Toolchain, workDir: string): Promise<void> {
  const version = runtimeVersion(toolchain);
  if (!version || !toolchain.cross) return Promise.resolve();
  const key = `${ctx.channel}\n${toolchain.target}\n${version}`;
  let p = pending.get(key);
  if (!p) {
    p = publishRuntime(ctx, toolchain, version, workDir);
    pending.set(key, p);
    p.catch(() => pending.delete(key));
  }
  return p;
}

async function publishRuntime(ctx: BuildContext, toolchain: Toolchain, version: string, workDir: string) {
  const have = readChannel(ctx.channel, [toolchain.target]);
  const missing = RUNTIME.filter((r) => !have.some((p) => p.name === r.name && p.version === version));
  if (missing.length === 0) return;
  const { writeCondaPackage } = await import('../pkg/write.ts');
  const lib = join(toolchain.sysroot, 'lib');
  const root = join(workDir, 'toolchain-runtime');
  rmSync(root, { recursive: true, force: true });
  try {
    for (const spec of missing) {
      const prefix = join(root, spec.name);
      makeDirs(join(prefix, 'lib'));
      const names = readdirSync(lib).filter((n) => spec.files.test(n));
      if (spec.files.source !== '^$' && names.length === 0) {
        throw new AccelError('ACCEL_CONDA_NO_TOOLCHAIN', `the cross toolchain has no ${spec.name} runtime in ${lib}`, {
          hint: `install it with: apt-get install -y ${spec.name === 'libgcc' ? 'libgcc-s1' : 'libstdc++6'}-${toolchain.debArch}-cross`,
        });
      }
      let newest = 0;
      const digest = createHash('sha256').update(`${spec.name} ${version}`);
      for (const n of names.sort()) {
        const from = join(lib, n);
        const st = lstatSync(from);
        if (st.isSymbolicLink()) {
          symlinkSync(readlinkSync(from), join(prefix, 'lib', n));
          digest.update(`${n} -> ${readlinkSync(from)}`);
        } else {
          copyFileSync(from, join(prefix, 'lib', n));
          digest.update(n).update(readFileSync(from));
          newest = Math.max(newest, st.mtimeMs);
        }
      }
      const elves = names.filter((n) => !lstatSync(join(lib, n)).isSymbolicLink()).map((n) => join(prefix, 'lib', n));
      const glibc = elves.length > 0 ? glibcNeeded(elves, toolchain.paths.READELF ?? 'readelf') : null;
      const pkg = await writeCondaPackage({
        prefix,
        files: names.map((n) => `lib/${n}`),
        index: {
          name: spec.name,
          version,
          build: `h${digest.digest('hex').slice(0, 7)}_0`,
          build_number: 0,
          depends: [...spec.depends(version), ...(glibc ? [`__glibc >=${glibc},<3.0.a0`] : [])],
          subdir: toolchain.target,
          // The library's own date, so that the same toolchain always gives the same bytes.
          timestamp: Math.floor(newest / 1000) * 1000,
          license: 'GPL-3.0-only WITH GCC-exception-3.1',
        },
        about: {
          summary: `The GNU compiler runtime (${spec.name}) of the cross toolchain that built this channel's packages`,
          license: 'GPL-3.0-only WITH GCC-exception-3.1',
        },
        placeholder: prefix,
        outDir: join(root, 'out'),
      });
      await ctx.tools.publish(ctx.channel, pkg.path);
      ctx.log.info(`published ${pkg.filename}: the toolchain's runtime, which the channel's packages depend on`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
