import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { replaceFileSync } from './atomic-fs.ts';
import { makeDirs } from './dirs.ts';
import { AccelError, errnoCode, isAccelError } from './errors.ts';
import { homeLayout } from './home-layout.ts';

/** The native addons accel uses; in the single executable they are embedded assets. */
export type AddonName = 'better_sqlite3' | 'watcher';

/** `native.json`, written by the build beside the addons: what each asset is and what it needs. */
export interface NativeManifest {
  arch: string;
  addons: Record<AddonName, { asset: string; sha256: string; glibc: string }>;
}

const loaded = new Map<AddonName, object>();

/**
 * The addon's exports inside the single executable, or undefined when running from source (the packages load
 * their own binaries then). Each asset is written once to `$ACCEL_HOME/native/<hash>-<arch>/` and loaded from
 * there: dlopen needs a file, and content-hashed folders let two accel versions share a home.
 */
export function nativeAddon(name: AddonName, home: string): object | undefined {
  if (!isSea()) return undefined;
  const cached = loaded.get(name);
  if (cached) return cached;
  const text = getAsset('native.json', 'utf8');
  const manifest = JSON.parse(text) as NativeManifest;
  const entry = manifest.addons[name];
  // One folder per build's set of addons, named by the manifest (which holds each addon's digest).
  const folder = `${createHash('sha256').update(text).digest('hex').slice(0, 16)}-${manifest.arch}`;
  let file = join(homeLayout(home).native, folder, `${name}.node`);
  if (!existsSync(file)) {
    try {
      extract(entry.asset, entry.sha256, dirname(file), file);
    } catch (err) {
      // A home we may not write (read-only, another user's): `accel version`, `--help` and `config` must still
      // work, so unpack into a private folder of this user's under the temp directory instead.
      const fallback = privateTempDir();
      if (!isAccelError(err) || err.code !== 'ACCEL_NATIVE_NOT_WRITABLE' || !fallback) throw err;
      file = join(fallback, folder, `${name}.node`);
      if (!existsSync(file)) extract(entry.asset, entry.sha256, dirname(file), file);
    }
  }
  const exports = dlopenAddon(file, entry.glibc);
  loaded.set(name, exports);
  return exports;
}

/** The watcher binding for `@parcel/watcher/wrapper`: embedded in the executable, else the platform package. */
export function watcherBinding(home: string): object {
  const embedded = nativeAddon('watcher', home);
  if (embedded) return embedded;
  const require = createRequire(import.meta.url);
  return require(`@parcel/watcher-${process.platform}-${process.arch}-glibc`) as object;
}

/**
 * `$TMPDIR/accel-native-<uid>`, made 0700 by this user, or undefined when it is anything else (a link, someone
 * else's, open to others): a folder another user could write into would let them choose the code accel loads.
 */
function privateTempDir(): string | undefined {
  const dir = join(tmpdir(), `accel-native-${process.getuid?.() ?? 'user'}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') return undefined;
  }
  const stat = lstatSync(dir);
  const own = process.getuid === undefined || stat.uid === process.getuid();
  return stat.isDirectory() && own && (stat.mode & 0o077) === 0 ? dir : undefined;
}

function extract(asset: string, sha256: string, dir: string, file: string): void {
  try {
    makeDirs(dir);
    const data = Buffer.from(getAsset(asset));
    if (createHash('sha256').update(data).digest('hex') !== sha256) {
      throw new Error(`embedded asset ${asset} does not match its manifest: the executable is damaged`);
    }
    // Another accel starting at the same moment either sees no file or a complete one.
    replaceFileSync(file, data, { mode: 0o555, umask: true, durable: true, unlinkFirst: false });
  } catch (err) {
    // replaceFileSync reports a file system refusal as an AccelError whose cause is the system error.
    const code = errnoCode(isAccelError(err) ? err.cause : err);
    if (code && ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EEXIST', 'ENOENT', 'EDQUOT'].includes(code)) {
      throw new AccelError('ACCEL_NATIVE_NOT_WRITABLE', `cannot unpack native code into ${dir} (${code})`, {
        hint: 'accel writes its native addons under ACCEL_HOME once; point ACCEL_HOME or --home at a writable directory',
        cause: err,
      });
    }
    throw err;
  }
}

/** Loads a native addon file, turning the loader's errors a user can hit into AccelErrors that say what to do. */
export function dlopenAddon(file: string, glibcNeeded?: string): object {
  const module = { exports: {} };
  try {
    process.dlopen(module, file);
  } catch (err) {
    throw explainLoadError(err, file, glibcNeeded);
  }
  return module.exports;
}

function explainLoadError(err: unknown, file: string, glibcNeeded: string | undefined): unknown {
  const message = err instanceof Error ? err.message : String(err);
  const missing = /version [`']GLIBC_([\d.]+)' not found/.exec(message)?.[1];
  if (missing || /libc\.musl|ld-musl/.test(message)) {
    const needed = missing ?? glibcNeeded ?? 'unknown';
    const have = runtimeGlibc() ?? 'none (not a glibc system)';
    return new AccelError(
      'ACCEL_NATIVE_GLIBC',
      `this system's C library is too old for accel: ${file} needs glibc ${needed} or newer, this system has glibc ${have}`,
      { hint: 'run accel on Debian 12, Ubuntu 22.04, RHEL 9 or newer (glibc 2.34+)', cause: err },
    );
  }
  return new AccelError('ACCEL_NATIVE_LOAD', `cannot load native code ${file}: ${message}`, {
    hint: 'remove the native/ folder under ACCEL_HOME so it is unpacked again',
    cause: err,
  });
}

/** The running glibc version, e.g. "2.36"; undefined on other C libraries. */
export function runtimeGlibc(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}
