import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A build prefix padded like conda-build's, so binary relocation has room. */
export function paddedPrefix(root: string): string {
  const base = join(root, 'build_env_');
  return base + '_placehold'.repeat(Math.ceil((200 - base.length) / 10));
}

export interface FixtureFile {
  path: string;
  data?: Buffer | string;
  /** A symlink to this target instead of a file. */
  link?: string;
  executable?: boolean;
}

/** Writes files into `prefix` and returns their relative paths. */
export function fillPrefix(prefix: string, files: FixtureFile[]): string[] {
  for (const f of files) {
    const abs = join(prefix, f.path);
    mkdirSync(dirname(abs), { recursive: true });
    rmSync(abs, { force: true });
    if (f.link !== undefined) symlinkSync(f.link, abs);
    else {
      writeFileSync(abs, f.data ?? '');
      chmodSync(abs, f.executable ? 0o755 : 0o644);
    }
  }
  return files.map((f) => f.path);
}

/** A C-string table as a linker leaves it: the prefix inside NUL-terminated strings among other bytes. */
export function binaryWithPrefix(prefix: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]),
    Buffer.from(`${prefix}/lib:${prefix}/lib64\0`),
    Buffer.from(`${prefix}/share/data\0other\0`),
    Buffer.from([0, 0, 0xff]),
  ]);
}
