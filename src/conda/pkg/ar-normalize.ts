import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const MAGIC = '!<arch>\n';
const HEADER = 60;

/**
 * Makes a static library (`ar` archive) reproducible in place: each member header's mtime, uid and gid become 0
 * and its mode 644, as `ar D` writes them. Builds that pass `U` (ncurses' `ARFLAGS=-curvU`) store the objects'
 * real times, so the same sources gave a different `.a` on every build. Returns whether the file was an
 * archive. Only the headers change: the members' bytes and the symbol table stay as they are.
 */
export function normalizeArchive(file: string): boolean {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    const magic = Buffer.alloc(MAGIC.length);
    if (readSync(fd, magic, 0, magic.length, 0) < magic.length || magic.toString('latin1') !== MAGIC) return false;
    const header = Buffer.alloc(HEADER);
    let at = MAGIC.length;
    while (at + HEADER <= size) {
      if (readSync(fd, header, 0, HEADER, at) < HEADER || header.toString('latin1', 58, 60) !== '`\n') break;
      const length = Number(header.toString('latin1', 48, 58).trim());
      if (!Number.isInteger(length) || length < 0) break;
      // mtime (16..28), uid (28..34), gid (34..40), mode (40..48), space-padded decimal and octal text.
      header.write('0'.padEnd(12), 16, 'latin1');
      header.write('0'.padEnd(6), 28, 'latin1');
      header.write('0'.padEnd(6), 34, 'latin1');
      header.write('644'.padEnd(8), 40, 'latin1');
      writeSync(fd, header, 0, HEADER, at);
      at += HEADER + length + (length % 2);
    }
    return true;
  } finally {
    closeSync(fd);
  }
}
