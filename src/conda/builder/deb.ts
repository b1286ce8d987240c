import { execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { AccelError } from '../../core/errors.ts';

const run = promisify(execFile);
const MAGIC = '!<arch>\n';
const HEADER = 60;

/** The members of an `ar` archive (a .deb is one): name, offset of the bytes, length. */
function arMembers(fd: number): { name: string; offset: number; length: number }[] {
  const size = fstatSync(fd).size;
  const magic = Buffer.alloc(MAGIC.length);
  if (readSync(fd, magic, 0, magic.length, 0) < magic.length || magic.toString('latin1') !== MAGIC) return [];
  const members: { name: string; offset: number; length: number }[] = [];
  const header = Buffer.alloc(HEADER);
  let at = MAGIC.length;
  while (at + HEADER <= size) {
    if (readSync(fd, header, 0, HEADER, at) < HEADER || header.toString('latin1', 58, 60) !== '`\n') break;
    const length = Number(header.toString('latin1', 48, 58).trim());
    if (!Number.isInteger(length) || length < 0 || at + HEADER + length > size) break;
    members.push({ name: header.toString('latin1', 0, 16).trim().replace(/\/$/, ''), offset: at + HEADER, length });
    at += HEADER + length + (length % 2);
  }
  return members;
}

/**
 * Unpacks a Debian package's files (its `data.tar.*` member) into `dir`, as `dpkg-deb -x` does. The data
 * member is copied out next to `dir` and handed to tar, which picks the decompressor (xz, zstd, gzip).
 */
export async function unpackDeb(file: string, dir: string, what: string): Promise<void> {
  const fd = openSync(file, 'r');
  let data: Buffer;
  try {
    const member = arMembers(fd).find((m) => /^data\.tar(\.(xz|gz|zst|bz2))?$/.test(m.name));
    if (!member) {
      throw new AccelError('ACCEL_CONDA_SYSROOT_DEB', `${what}: not a Debian package (no data.tar member)`, {
        hint: 'the file in the store is not the pinned .deb: run accel store verify',
      });
    }
    data = Buffer.alloc(member.length);
    readSync(fd, data, 0, member.length, member.offset);
  } finally {
    closeSync(fd);
  }
  const tarFile = `${dir}.data.tar`;
  writeFileSync(tarFile, data);
  try {
    await run('tar', ['-xf', tarFile, '-C', dir, '--no-same-owner', '--no-same-permissions']);
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_SYSROOT_DEB', `${what}: cannot unpack: ${(err as Error).message}`, {
      hint: 'tar needs xz to read a .deb (apt-get install -y xz-utils)',
      cause: err,
    });
  } finally {
    rmSync(tarFile, { force: true });
  }
}
