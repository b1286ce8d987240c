import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { makeDirs } from '../core/dirs.ts';
import { errnoCode } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import type { TreeManifest } from './protocol.ts';

/** Where a worker keeps its job directories and the read-only copies of inputs they link to. */
function sandboxDirs(home: string): { jobs: string; inputs: string } {
  return homeLayout(home).sandbox;
}

/** A job directory's name carries its worker's pid, so a later worker can tell a dead worker's leftovers. */
export function createJobRoot(home: string): string {
  const { jobs } = sandboxDirs(home);
  makeDirs(jobs, { mode: 0o700 });
  return realpathSync(mkdtempSync(join(jobs, `job-${process.pid}-`)));
}

/**
 * Removes the job directories of workers that are no longer running (killed mid-job); returns how many.
 * A directory whose pid is alive may belong to another worker on the same home and is left alone.
 */
export function sweepJobRoots(home: string): number {
  const { jobs } = sandboxDirs(home);
  let swept = 0;
  let names: string[];
  try {
    names = readdirSync(jobs);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0;
    throw err;
  }
  for (const name of names) {
    const pid = Number(/^job-(\d+)-/.exec(name)?.[1]);
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && alive(pid))) continue;
    rmSync(join(jobs, name), { recursive: true, force: true });
    swept++;
  }
  return swept;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/** Past this many pooled inputs the pool starts over; jobs running then keep their links (hard links). */
const POOL_MAX = 50_000;

/**
 * How a job gets its inputs. Never links to store blobs: a job that could write one would change what every
 * later compile reads. `link` (sandboxed, the job runs as another uid): hard links to root-owned 0444 copies
 * in the worker's input pool, which the job cannot write or chmod, made once per digest. `copy`: a private
 * copy per job, for a job that runs with the worker's own uid.
 */
export type InputMode = { kind: 'link'; owner: { uid: number; gid: number } } | { kind: 'copy' };

export class InputPool {
  readonly #dir: string;
  readonly #store: Store;
  #count = -1;

  constructor(home: string, store: Store) {
    this.#dir = sandboxDirs(home).inputs;
    this.#store = store;
  }

  /** The pooled read-only copy of a blob (read-and-execute for an executable), verified when it is made. */
  path(digest: string, executable = false): string {
    const path = join(this.#dir, executable ? `${digest}.x` : digest);
    if (existsSync(path)) return path;
    if (this.#count < 0) {
      makeDirs(this.#dir, { mode: 0o700 });
      this.#count = readdirSync(this.#dir).length;
    }
    if (this.#count >= POOL_MAX) {
      rmSync(this.#dir, { recursive: true, force: true });
      makeDirs(this.#dir, { mode: 0o700 });
      this.#count = 0;
    }
    // read() hashes what it reads and throws (quarantining the blob) on a mismatch.
    const data = this.#store.read(digest as Digest, { verify: true });
    if (!data) throw new Error(`input ${digest} is not in the store`);
    // Written aside and renamed: a concurrent job sees the whole file or none.
    const tmp = join(this.#dir, `.${digest}.${randomBytes(4).toString('hex')}`);
    const mode = executable ? 0o555 : 0o444;
    writeFileSync(tmp, data, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, path);
    this.#count++;
    return path;
  }
}

/**
 * Lays the include tree out in the job root (client path P at root + P). Directories belong to the job's uid
 * (its outputs go there); the input files stay read-only to it. An REAPI input tree also brings executables,
 * empty directories and symlinks: the links are made last, once every file and directory is in place, so
 * nothing is ever written through one (their targets were checked to stay inside the tree).
 */
export function materialize(options: {
  store: Store;
  pool: InputPool;
  manifest: TreeManifest;
  root: string;
  mode: InputMode;
}): void {
  const { store, pool, manifest, root, mode } = options;
  const made = new Set<string>();
  const executables = new Set(manifest.executables ?? []);
  const inside = (path: string) => {
    const target = join(root, path);
    // Manifest paths are normalised client paths; one that climbs out of the job root is not laid out anywhere.
    if (!target.startsWith(`${root}/`)) throw new Error(`include-tree path ${path} leaves the job directory`);
    return target;
  };
  for (const [path, digest] of Object.entries(manifest.files)) {
    const target = inside(path);
    const executable = executables.has(path);
    makeJobDirs(root, dirname(target), made, mode);
    if (mode.kind === 'link') {
      try {
        linkSync(pool.path(digest, executable), target);
        continue;
      } catch (err) {
        if (errnoCode(err) !== 'EXDEV' && errnoCode(err) !== 'EMLINK') throw err;
      }
    }
    const data = store.read(digest as Digest, { verify: true });
    if (!data) throw new Error(`input ${digest} is not in the store`);
    writeFileSync(target, data, { mode: executable ? 0o555 : 0o444 });
  }
  for (const dir of manifest.dirs ?? []) makeJobDirs(root, inside(dir), made, mode);
  for (const [path, target] of Object.entries(manifest.symlinks ?? {})) {
    const at = inside(path);
    makeJobDirs(root, dirname(at), made, mode);
    symlinkSync(target, at);
  }
}

/** mkdir -p below `root`, each new directory owned by the job's uid when the job runs as another one. */
export function makeJobDirs(root: string, dir: string, made: Set<string>, mode: InputMode): void {
  if (made.has(dir) || dir === root || !dir.startsWith(`${root}/`)) return;
  makeJobDirs(root, dirname(dir), made, mode);
  try {
    mkdirSync(dir);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
  if (mode.kind === 'link') chownSync(dir, mode.owner.uid, mode.owner.gid);
  made.add(dir);
}

/**
 * The host path of a job path whose parent directory resolves inside the job root (the job may have planted
 * links above it); undefined when it does not, or does not exist. The last component is not followed.
 */
export function inJob(root: string, path: string): string | undefined {
  const target = join(root, path);
  let dir: string;
  try {
    dir = realpathSync(dirname(target));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
  if (dir !== root && !dir.startsWith(`${root}/`)) return undefined;
  return join(dir, basename(target));
}

/**
 * Reads a file the job left in its directory, as the worker (maybe root): the job may have planted a symlink
 * at that path or above it, so the file must resolve inside the job root and be a regular file.
 */
export function readJobFile(root: string, path: string): Buffer | undefined {
  const at = inJob(root, path);
  if (!at) return undefined;
  let fd: number;
  try {
    fd = openSync(at, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (['ENOENT', 'ELOOP', 'EISDIR', 'ENOTDIR'].includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What the job read, as it read it: the digest of the file in the job root now (a job may have replaced it). */
export function readDigest(root: string, path: string): string | undefined {
  const data = readJobFile(root, path);
  return data && createHash('sha256').update(data).digest('hex');
}

/** Replaces every occurrence of the sandbox root, so diagnostics and dependency files name client paths. */
export function unmapText(text: string, root: string): string {
  return text.split(root).join('');
}
