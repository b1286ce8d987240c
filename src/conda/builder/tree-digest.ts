/** Digests of directory trees, for the keys of cached build and test results. */
import { createHash, type Hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

type TextSink = (rel: string, text: string) => void;

/**
 * A directory tree's digest: each entry's path, its kind, a file's executable bit and content, a link's
 * target, in sorted order. `skip` leaves out entries by path relative to the root; `text` is given the text of every
 * file under 1 MiB with its path, when asked (to look for the names of variables a script uses).
 */
export function treeDigest(root: string, skip: (rel: string) => boolean, text?: TextSink): string {
  const h = createHash('sha256');
  walk(root, '', skip, h, text);
  return h.digest('hex');
}

function walk(root: string, rel: string, skip: (rel: string) => boolean, h: Hash, text?: TextSink): void {
  let names: string[];
  try {
    names = readdirSync(join(root, rel)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (skip(r)) continue;
    const file = join(root, r);
    const st = lstatSync(file);
    if (st.isDirectory()) {
      h.update(`d ${r}\0`);
      walk(root, r, skip, h, text);
    } else if (st.isSymbolicLink()) {
      h.update(`l ${r}\0${readlinkSync(file)}\0`);
    } else if (st.isFile()) {
      const data = readFileSync(file);
      h.update(`f ${r} ${st.mode & 0o111 ? 'x' : '-'} ${data.length}\0`);
      h.update(data);
      if (text && data.length < 1 << 20) text(r, data.toString('latin1'));
    } else {
      h.update(`o ${r}\0`);
    }
  }
}

/** The machine tools a test uses: each link's name and the size and time of the file it reaches; scripts' text. */
export function toolsDigest(dir: string): string {
  const h = createHash('sha256');
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    // No tools linked.
  }
  for (const name of names) {
    const file = join(dir, name);
    if (lstatSync(file).isSymbolicLink()) {
      const target = realpathSync(file);
      const s = statSync(target);
      h.update(`l ${name} ${target} ${s.size} ${s.mtimeMs}\0`);
    } else {
      // A script accel writes (pkg-config's wrapper, activate): what it says.
      const data = readFileSync(file);
      h.update(`f ${name} ${data.length}\0`);
      h.update(data);
    }
  }
  return h.digest('hex');
}
