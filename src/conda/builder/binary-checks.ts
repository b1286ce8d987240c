import { lstatSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import type { Toolchain } from './cross-toolchain.ts';
import { ELF_MACHINES, elfMachine, elfMachineName, glibcNeeded, glibcSymbolsAbove } from './elf.ts';
import { compareVersions } from './match.ts';
import { DEFAULT_STDLIB } from './sysroot.ts';

/** The ELF files among `files`; any of the wrong architecture fails the build, naming it (zlib's x86-64 case). */
export function checkBinaries(prefix: string, files: string[], record: OutputRecord, toolchain: Toolchain): string[] {
  if (record.subdir === 'noarch') return [];
  const want = ELF_MACHINES[toolchain.cpu];
  const elves: string[] = [];
  for (const f of files) {
    const abs = join(prefix, f);
    if (!lstatSync(abs).isFile()) continue;
    const machine = elfMachine(abs);
    if (machine === undefined) continue;
    if (want !== undefined && machine !== want) {
      throw new AccelError(
        'ACCEL_CONDA_WRONG_ARCH',
        `${record.name}: ${f} is ${elfMachineName(machine)} code, not ${toolchain.target} (the package would be broken)`,
        {
          hint: 'the build used the build machine’s compiler for it: check that the build script uses $CC/$CXX and passes --host=$HOST (configure) or $CMAKE_ARGS (cmake)',
        },
      );
    }
    elves.push(abs);
  }
  return elves;
}

/**
 * The `__glibc` floor of an output: the variant's c_stdlib_version (the sysroot conda-forge would build
 * against), raised to the highest GLIBC_ symbol version the binaries actually need: the machine's sysroot may
 * be newer than the variant's, and a 2.17 claim over 2.34 symbols would install and then fail to load.
 */
export function glibcFloor(record: OutputRecord, binaries: string[], toolchain: Toolchain): string | null {
  const versions: string[] = [];
  const stdlib = record.variant.c_stdlib_version;
  const usesStdlib = record.requirements.build.some((b) => /^sysroot_/.test(specName(b)));
  if (stdlib && usesStdlib) versions.push(stdlib);
  const needed = binaries.length > 0 ? glibcNeeded(binaries, toolchain.paths.READELF ?? 'readelf') : null;
  if (needed) versions.push(needed);
  if (versions.length === 0) return null;
  return versions.sort(compareVersions).at(-1) as string;
}

/**
 * The warning for an output whose floor is above its variant's `c_stdlib_version`: it would not install where
 * conda-forge's package of the same variant does. Names the symbols that raised it, by file; null when the
 * floor holds.
 */
export function floorWarning(
  record: OutputRecord,
  floor: string | null,
  binaries: string[],
  prefix: string,
  toolchain: Toolchain,
): string | null {
  // A variant that names no c_stdlib_version gets conda-forge's default on the pinned sysroot: held to it too.
  const named = record.variant.c_stdlib_version;
  const stdlib = named ?? (toolchain.pinned ? DEFAULT_STDLIB : undefined);
  if (!floor || !stdlib || compareVersions(floor, stdlib) <= 0) return null;
  const found = glibcSymbolsAbove(binaries, stdlib, toolchain.paths.READELF ?? 'readelf');
  const symbols = [...found].map(([file, names]) => `${relative(prefix, file)}: ${names.join(', ')}`);
  const sysroot = toolchain.pinned ? `the pinned sysroot's glibc ${toolchain.pinned.glibc}` : 'the machine’s glibc';
  const wanted = named
    ? `its variant's c_stdlib_version ${stdlib}`
    : `conda-forge's default c_stdlib_version ${stdlib} (the variant names none)`;
  return `${record.name}: needs glibc ${floor}, above ${wanted} (built against ${sysroot}); it depends on __glibc >=${floor}, raised by ${symbols.join('; ') || 'the binaries’ version needs'}`;
}
