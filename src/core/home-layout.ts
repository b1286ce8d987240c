import { join } from 'node:path';

/**
 * Every path under `$ACCEL_HOME`, spelled once. It lives in core, not store, because core (config, native
 * addons) and net (certificates) need it and sit below store; `store/layout.ts` builds the store's `Layout`
 * from it. Below a directory listed here its owner names entries by their key (blobs by digest, addons by
 * build, front links by URL, downloader configs by mirror). native/accel-cc.c, which cannot import this,
 * spells `bin/accel`, `run/cc.sock`, `run/cc.secret` and `run/start.lock` again: keep them in step.
 */
export function homeLayout(home: string) {
  const run = join(home, 'run');
  const certs = join(home, 'certs');
  const bin = join(home, 'bin');
  const sandbox = join(home, 'sandbox');
  const bazel = join(home, 'bazel');
  return {
    home,
    /** Optional settings, schema-checked (core/config.ts). */
    config: join(home, 'config.json'),
    store: {
      /** The SQLite index (store/db.ts). */
      index: join(home, 'index.db'),
      /** Complete, verified, read-only blobs by digest (store/cas.ts). */
      blobs: join(home, 'blobs', 'sha256'),
      /** Writes in progress, same file system as the blobs (store/cas-write.ts). */
      tmp: join(home, 'tmp'),
      /** Blobs that failed verification (store/verify.ts). */
      quarantine: join(home, 'quarantine'),
    },
    /** Runtime files of the processes on this home: sockets, pid files, locks, shared health state. */
    run: {
      dir: run,
      /** Held by the one process collecting garbage (store/gc.ts). */
      gcLock: join(run, 'gc.lock'),
      /** The cc daemon's socket, secret, lock, pid file and log (cc/protocol.ts, native/accel-cc.c). */
      ccSocket: join(run, 'cc.sock'),
      ccSecret: join(run, 'cc.secret'),
      ccLock: join(run, 'cc.lock'),
      ccPid: join(run, 'cc-daemon.pid'),
      ccLog: join(run, 'cc-daemon.log'),
      /** Why compiles missed, one line each, with `ACCEL_CC_EXPLAIN=1` (cc/explain.ts). */
      ccExplainLog: join(run, 'cc-explain.log'),
      /** Taken by the native client while it starts a daemon (native/accel-cc.c only). */
      ccStartLock: join(run, 'start.lock'),
      /** Cache servers found down, shared by one home's `accel cc` processes (cc/cache-health.ts). */
      cacheDown: join(run, 'cache-down.json'),
      /** What the clients know about reaching the syncer (farm/syncer-health.ts). */
      farmDown: join(run, 'farm-down.json'),
      /** Held by the one process probing the syncer (farm/syncer-health.ts). */
      farmProbeLock: join(run, 'farm-probe.lock'),
      /** When a build last warned that it compiles locally instead of on the farm (cc/wrapper.ts). */
      farmFallbackAnnounced: join(run, 'farm-fallback-announced'),
    },
    /** The installation's CA and this machine's identity (net/paths.ts, net/tls.ts). */
    certs: {
      dir: certs,
      caKey: join(certs, 'ca.key'),
      caCert: join(certs, 'ca.crt'),
      cert: join(certs, 'identity.crt'),
      key: join(certs, 'identity.key'),
      /** The identity's key in PKCS#8, for Bazel (farm/bazel-config.ts). */
      keyPkcs8: join(certs, 'identity.pk8.key'),
      /** Bundles issued for other machines. */
      issued: join(certs, 'issued'),
    },
    /**
     * Upstream conda packages linked from their blobs under the names their repodata gives (conda's pkgs
     * directory: package readers go by the file name), `<sha256 prefix>/<file>` (conda/solve/upstream.ts).
     */
    condaPkgs: join(home, 'conda-pkgs'),
    /** Native addons unpacked from the executable, one folder per build (core/native.ts). */
    native: join(home, 'native'),
    /** The native cc client and the `accel` it runs (cc/client-install.ts, native/accel-cc.c). */
    bin: { dir: bin, client: join(bin, 'accel-cc'), accel: join(bin, 'accel') },
    /** Compiler names linked to the native client, for the front of PATH (cc/masquerade.ts). */
    masquerade: join(home, 'masquerade'),
    /** A worker's job directories and the read-only input copies they link to (farm/sandbox.ts). */
    sandbox: { jobs: join(sandbox, 'jobs'), inputs: join(sandbox, 'inputs') },
    /** Files Bazel's .bazelrc lines point at. */
    bazel: {
      /** Downloader configs, `<host>_<port>.cfg` per mirror (mirror/client-config.ts). */
      dir: bazel,
      /** The netty-tcnative copy Debian's Bazel needs for grpcs:// (farm/bazel-config.ts). */
      jni: join(bazel, 'jni'),
    },
    /** Links to blobs that a web server in front of the mirror serves (mirror/front.ts). */
    front: join(home, 'front'),
    /** The token writes to the mirror's shared build cache need (mirror/cache-token.ts). */
    mirrorCacheToken: join(home, 'mirror-cache.token'),
  };
}

export type HomeLayout = ReturnType<typeof homeLayout>;
