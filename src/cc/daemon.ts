import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError } from '../core/errors.ts';
import { daemonStatus } from './daemon-client.ts';
import { type DaemonLock, takeDaemonLock } from './daemon-lock.ts';
import { createDaemonRequests, type DaemonOptions } from './daemon-requests.ts';
import { type CompileWatchdog, startCompileWatchdog } from './daemon-watchdog.ts';
import { daemonPaths } from './protocol.ts';

interface Daemon {
  /** Resolves when the daemon has stopped (idle time-out, a stop request, or close()). */
  done: Promise<void>;
  close(): Promise<void>;
}

/**
 * `accel cc daemon`: keeps the store and its index open and answers compile requests from accel-cc (and
 * `accel cc --`) over a Unix socket in ACCEL_HOME. Only this user can reach it: the socket's directory is
 * 0700 and the socket 0600 (the kernel checks both on connect), and every request must carry the secret in
 * run/cc.secret (0600), which only this uid can read. One daemon per home: a lock the kernel holds for the
 * daemon's life (daemon-lock.ts) guards the start; the pid file only says who it is.
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const daemon = createDaemon(options);
  await daemon.listen();
  return daemon;
}

/**
 * Builds the daemon without starting it (the service contract: create, then listen, then close). `listen()`
 * takes the lock, writes a new secret and listens on the socket; a failed listen undoes all three.
 */
function createDaemon(options: DaemonOptions): Daemon & { listen(): Promise<void> } {
  const paths = daemonPaths(options.home);
  const { log } = options;
  let secret = '';
  let lock: DaemonLock | undefined;
  let watchdog: CompileWatchdog | undefined;
  const sockets = new Set<Socket>();
  let idleTimer: NodeJS.Timeout | undefined;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });

  // Requests (status, stop, compiles) are daemon-requests.ts; this is the daemon's life around them.
  const requests = createDaemonRequests(options, {
    secret: () => secret,
    watchdogEnv: () => watchdog?.env,
    stop: () => void close(),
    busy: () => clearTimeout(idleTimer),
    settled: () => armIdle(),
  });

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    requests.accept(socket);
  });

  function armIdle() {
    clearTimeout(idleTimer);
    if (requests.active() > 0) return;
    idleTimer = setTimeout(() => {
      log.debug(`cc daemon: idle for ${Math.round(options.idleMs / 1000)} s, exiting`);
      void close();
    }, options.idleMs);
    idleTimer.unref();
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      clearTimeout(idleTimer);
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Compiles in flight are stopped (their process groups killed, partial outputs removed); their clients,
      // left without an answer, compile themselves. New clients find no socket and start a daemon.
      await requests.stopCompiles();
      watchdog?.close();
      watchdog = undefined;
      for (const s of sockets) s.destroy();
      await closed;
      rmSync(paths.secret, { force: true });
      rmSync(paths.pid, { force: true });
      // Last: the next daemon may start as soon as the lock is free.
      lock?.release();
      lock = undefined;
      resolveDone();
    })();
    return closing;
  }

  async function listen(): Promise<void> {
    makeDirs(paths.dir, { mode: 0o700 });
    chmodSync(paths.dir, 0o700);
    if (Buffer.byteLength(paths.socket) > 107) {
      throw new AccelError(
        'ACCEL_CC_DAEMON_PATH',
        `the socket path ${paths.socket} is longer than Unix sockets allow`,
        {
          hint: 'use a shorter ACCEL_HOME (at most ~95 characters)',
        },
      );
    }
    lock = takeDaemonLock(paths.lock, options.home);
    if (!lock) {
      // Who holds it? A real hello with the secret tells a serving daemon from one still starting.
      const running = await daemonStatus(options.home, 2000);
      throw new AccelError(
        'ACCEL_CC_DAEMON_RUNNING',
        running
          ? `a cc daemon already runs for this home (pid ${running.pid})`
          : 'another cc daemon is starting for this home',
        { hint: running ? 'accel cc daemon --status shows it; --stop stops it' : 'try again in a moment' },
      );
    }
    // Holding the lock, any pid file, secret or socket here was left by a daemon that died: replace them.
    // From here on a failed start undoes what it made, and lets the lock go.
    try {
      watchdog = startCompileWatchdog();
      secret = writeRunFiles(paths);
      await listenPrivately(server, paths.socket);
    } catch (err) {
      server.close();
      for (const path of [paths.pid, paths.secret]) rmSync(path, { force: true });
      watchdog?.close();
      watchdog = undefined;
      lock.release();
      lock = undefined;
      throw err;
    }
    armIdle();
    log.debug(`cc daemon: pid ${process.pid} listening on ${paths.socket}`);
  }

  return { listen, done, close };
}

/** Writes the pid file and a new secret (both 0600, each renamed into place); returns the secret. */
function writeRunFiles(paths: ReturnType<typeof daemonPaths>): string {
  const pidTemp = join(paths.dir, tempName('.pid.'));
  writeFileSync(pidTemp, `${process.pid}\n`, { mode: 0o600 });
  renameSync(pidTemp, paths.pid);
  const secret = randomBytes(32).toString('hex');
  const secretTemp = join(dirname(paths.secret), tempName('.secret.'));
  writeFileSync(secretTemp, `${secret}\n`, { mode: 0o600 });
  renameSync(secretTemp, paths.secret);
  return secret;
}

/** Listens on the Unix socket, created 0600: the kernel checks its mode on every connect. */
async function listenPrivately(server: Server, path: string): Promise<void> {
  rmSync(path, { force: true });
  const umask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
}
