import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { AccelError } from '../../core/errors.ts';

/** One member of a package tarball. Only regular files and symlinks occur in conda packages. */
export interface TarMember {
  name: string;
  type: 'file' | 'symlink';
  /** Permission bits, normalised to 0o755 or 0o644 so that umasks do not leak into the bytes. */
  mode: number;
  data: Buffer;
  linkname?: string;
}

/**
 * zstd level of the inner tarballs. conda-forge publishes at 19, but here packing sits between two builds:
 * on a 30 MB ELF sample level 6 ran at 36 MB/s against 1.6 MB/s for level 16 and 0.85 MB/s for 19, for
 * output 8 % and 14 % larger (docs/benchmarks.md). Pass `level: 19` for packages meant for distribution.
 */
export const DEFAULT_ZSTD_LEVEL = 6;
/** A package member larger than this when decompressed is refused rather than exhausting memory. */
const MAX_DECOMPRESSED = 4 * 1024 ** 3 - 1;

/**
 * A zstd-compressed tar of `members` in the order given. Every header field that could vary between two
 * builds of the same content (mtime, owner, user names) is fixed, so equal inputs give equal bytes.
 */
export async function packTarZst(members: TarMember[], mtimeMs: number, level = DEFAULT_ZSTD_LEVEL): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  const mtime = new Date(Math.floor(mtimeMs / 1000) * 1000);
  for (const m of members) {
    const header = { name: m.name, mode: m.mode, mtime, uid: 0, gid: 0, uname: '', gname: '' };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (m.type === 'symlink') tar.entry({ ...header, type: 'symlink', linkname: m.linkname ?? '' }, done);
      else tar.entry({ ...header, type: 'file', size: m.data.length }, m.data, done);
    });
  }
  tar.finalize();
  await ended;
  return zstdCompressSync(Buffer.concat(chunks), {
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
  });
}

/** The members of a zstd tarball; anything but files and symlinks (devices, hard links, `..`) is refused. */
export async function readTarZst(data: Buffer, what: string): Promise<TarMember[]> {
  let raw: Buffer;
  try {
    raw = zstdDecompressSync(data, { maxOutputLength: MAX_DECOMPRESSED });
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_PACKAGE_CORRUPT', `${what} is not valid zstd data: ${(err as Error).message}`, {
      hint: 'the package is damaged; build or download it again',
    });
  }
  const members: TarMember[] = [];
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c) => parts.push(c as Buffer));
      stream.on('end', () => {
        const type = header.type;
        if (type === 'directory') return next();
        if (type !== 'file' && type !== 'symlink') {
          return next(badMember(what, header.name, `a ${type} entry`));
        }
        if (!isSafeRelative(header.name)) return next(badMember(what, header.name, 'an unsafe path'));
        members.push({
          name: header.name,
          type,
          mode: (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644,
          data: Buffer.concat(parts),
          linkname: type === 'symlink' ? header.linkname : undefined,
        });
        next();
      });
      stream.on('error', reject);
    });
    reader.on('finish', resolve);
    reader.on('error', (err: Error) =>
      reject(
        err instanceof AccelError
          ? err
          : new AccelError('ACCEL_CONDA_PACKAGE_CORRUPT', `${what} is not a valid tar: ${err.message}`, {
              hint: 'the package is damaged; build or download it again',
            }),
      ),
    );
  });
  reader.end(raw);
  await done;
  return members;
}

function badMember(what: string, name: string, why: string): AccelError {
  return new AccelError('ACCEL_CONDA_PACKAGE_UNSAFE_PATH', `${what}: member '${name}' is ${why}`, {
    hint: 'conda packages hold only regular files and symlinks at relative paths inside the prefix',
  });
}

/** A relative path that stays below its root: no leading '/', no '..' or empty segments, no NUL or backslash. */
export function isSafeRelative(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\0') || path.includes('\\')) return false;
  return path.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}
