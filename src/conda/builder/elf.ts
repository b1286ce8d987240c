import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { compareVersions } from './match.ts';

/** ELF `e_machine` of each GNU CPU name accel builds for. */
export const ELF_MACHINES: Readonly<Record<string, number>> = { aarch64: 183, x86_64: 62, powerpc64le: 21 };

/** The ELF machine of a file (`e_machine`), or undefined when it is not an ELF file. */
export function elfMachine(file: string): number | undefined {
  const head = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, head, 0, 20, 0) < 20) return undefined;
  } finally {
    closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  // EI_DATA (byte 5): 1 little-endian, 2 big-endian.
  return head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
}

export function elfMachineName(machine: number): string {
  const name = Object.entries(ELF_MACHINES).find(([, m]) => m === machine)?.[0];
  return name ?? `ELF machine ${machine}`;
}

/** The highest GLIBC_ symbol version any of the ELF files needs (readelf's version-needs section), or null. */
export function glibcNeeded(files: string[], readelf: string): string | null {
  const versions: string[] = [];
  for (let i = 0; i < files.length; i += 200) {
    const out = execFileSync(readelf, ['-V', '-W', ...files.slice(i, i + 200)], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    for (const m of out.matchAll(/Name: GLIBC_(\d+(?:\.\d+)+)\s/g)) versions.push(m[1] as string);
  }
  return versions.sort(compareVersions).at(-1) ?? null;
}

/**
 * The glibc symbols the ELF files import at a version above `floor` (readelf's dynamic symbol table:
 * `closefrom@GLIBC_2.34`), by file: what raised a package's floor, for the warning that names them.
 */
export function glibcSymbolsAbove(files: string[], floor: string, readelf: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of files) {
    const out = execFileSync(readelf, ['--dyn-syms', '-W', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const symbols = new Set<string>();
    for (const m of out.matchAll(/\sUND\s+(\S+?)@GLIBC_(\d+(?:\.\d+)+)/g)) {
      if (compareVersions(m[2] as string, floor) > 0) symbols.add(`${m[1]}@GLIBC_${m[2]}`);
    }
    if (symbols.size > 0) found.set(file, [...symbols].sort());
  }
  return found;
}
