import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import PQueue from 'p-queue';
import type { CompileFn } from '../compiler/run.ts';
import { runCompiler } from '../compiler/run.ts';
import { tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, isAccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import type { Store } from '../store/store.ts';
import { daemonStatus } from './daemon-client.ts';
import { type DaemonLock, takeDaemonLock } from './daemon-lock.ts';
import { type CompileWatchdog, startCompileWatchdog } from './daemon-watchdog.ts';
import type { StatMemo } from './filehash.ts';
import { daemonPaths, decodeRequest, frame, MAX_REQUEST, type Request } from './protocol.ts';
import type { RemoteCache } from './remote.ts';
import { runCc } from './wrapper.ts';

export interface DaemonOptions {
  home: string;
  store: Store;
  log: Log;
  /** Compiles at once (cheap lookups are not limited). */
  jobs: number;
  /** Exit after this long without a request. */
  idleMs: number;
  /** What the wrapper must never run as "the compiler" (accel, its client and the masquerade links). */
  skip: { dirs: string[]; self: string[] };
  remote?: RemoteCache;
  /** The farm's dispatcher, when a farm is configured. */
  compile?: CompileFn;
}

export interface Daemon {
  /** Resolves when the daemon has stopped (idle time-out, a stop request, or close()). */
  done: Promise<void>;
  close(): Promise<void>;
}

/** Keep-alive period while a compile runs; the client gives up after ACCEL_CC_SILENCE_MS (30 s) of silence. */
const KEEPALIVE_MS = 2000;

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
export function createDaemon(options: DaemonOptions): Daemon & { listen(): Promise<void> } {
  const paths = daemonPaths(options.home);
  const { log, store } = options;
  let secret = '';
  let lock: DaemonLock | undefined;
  let watchdog: CompileWatchdog | undefined;
  /** The compiles in flight, to stop when the daemon closes. */
  const inFlight = new Set<AbortController>();

  const queue = new PQueue({ concurrency: Math.max(1, options.jobs) });
  const statMemo: StatMemo = new Map();
  const sockets = new Set<Socket>();
  let active = 0;
  let served = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const started = Date.now();

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    readRequest(socket, (err, request) => {
      if (err) {
        log.debug(`cc daemon: ${err.message}`);
        socket.destroy();
        return;
      }
      if (!request || !secretMatches(request.secret, secret)) {
        log.warn('cc daemon: refused a request without the right secret');
        socket.destroy();
        return;
      }
      if (request.kind === 'status') {
        socket.end(frame('j', JSON.stringify(status())));
      } else if (request.kind === 'stop') {
        socket.end(frame('j', JSON.stringify({ stopping: true, pid: process.pid })));
        void close();
      } else if (request.kind === 'compile') {
        void serveCompile(socket, request);
      }
    });
  });

  const status = () => ({
    pid: process.pid,
    home: options.home,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    requests: served,
    active,
    compiling: queue.pending,
    queued: queue.size,
    jobs: options.jobs,
    idleTimeoutSeconds: Math.round(options.idleMs / 1000),
  });

  async function serveCompile(socket: Socket, request: Extract<Request, { kind: 'compile' }>) {
    active++;
    served++;
    clearTimeout(idleTimer);
    const abort = new AbortController();
    inFlight.add(abort);
    const onClose = () => abort.abort();
    socket.on('close', onClose);
    const keepalive = setInterval(() => socket.write(frame('k')), KEEPALIVE_MS);
    try {
      // Local compiles, the farm's fallbacks included, share one bounded queue.
      const runLocal = (path: string, args: string[]) =>
        queue.add(() =>
          runCompiler(path, args, {
            cwd: request.cwd,
            env: { ...request.env, ...watchdog?.env },
            signal: abort.signal,
            umask: request.umask,
            dieWithParent: true,
          }),
        );
      const outcome = await runCc({
        store,
        argv: request.argv,
        cwd: request.cwd,
        env: request.env,
        skip: options.skip,
        remote: options.remote,
        compile: options.compile,
        runLocal,
        delegate: true,
        signal: abort.signal,
        umask: request.umask,
        statMemo,
      });
      if (outcome.delegate) {
        socket.end(frame('r', outcome.delegate));
      } else {
        if (outcome.stdout.length) socket.write(frame('o', outcome.stdout));
        if (outcome.stderr.length) socket.write(frame('e', outcome.stderr));
        socket.end(frame('x', String(outcome.exitCode)));
      }
    } catch (err) {
      if (abort.signal.aborted) {
        log.debug(
          `cc daemon: the compile of client ${request.pid} was stopped (the client went away or the daemon is closing)`,
        );
        // No exit frame: a client still there compiles itself.
        socket.destroy();
      } else if (isAccelError(err)) {
        // The same words and exit code `accel cc --` would give.
        if (err.code !== 'ACCEL_CC_NO_COMPILER') store.counters.bump('errors');
        const hint = err.hint ? `accel: hint: ${err.hint}\n` : '';
        socket.write(frame('e', `accel: error: ${err.message} [${err.code}]\n${hint}`));
        socket.end(frame('x', String(err.exitCode)));
      } else {
        log.error(`cc daemon: internal error: ${(err as Error)?.stack ?? String(err)}`);
        // No exit frame: the client falls back to running the compiler itself.
        socket.destroy();
      }
    } finally {
      clearInterval(keepalive);
      socket.off('close', onClose);
      inFlight.delete(abort);
      active--;
      armIdle();
    }
  }

  function armIdle() {
    clearTimeout(idleTimer);
    if (active > 0) return;
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
      for (const abort of inFlight) abort.abort();
      while (active > 0) await new Promise((r) => setTimeout(r, 20));
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
    let umask: number | undefined;
    try {
      watchdog = startCompileWatchdog();
      const pidTemp = join(paths.dir, tempName('.pid.'));
      writeFileSync(pidTemp, `${process.pid}\n`, { mode: 0o600 });
      renameSync(pidTemp, paths.pid);
      secret = randomBytes(32).toString('hex');
      const secretTemp = join(dirname(paths.secret), tempName('.secret.'));
      writeFileSync(secretTemp, `${secret}\n`, { mode: 0o600 });
      renameSync(secretTemp, paths.secret);
      rmSync(paths.socket, { force: true });
      // The socket is created 0600 (umask), then the kernel checks it on every connect.
      umask = process.umask(0o077);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: paths.socket, backlog: 1024 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      process.umask(umask);
      umask = undefined;
      chmodSync(paths.socket, 0o600);
    } catch (err) {
      if (umask !== undefined) process.umask(umask);
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

function secretMatches(given: string, secret: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Collects one length-prefixed request from the socket. */
function readRequest(socket: Socket, callback: (err: Error | undefined, request?: Request) => void) {
  let pending = Buffer.alloc(0);
  let finished = false;
  const finish = (err: Error | undefined, request?: Request) => {
    if (finished) return;
    finished = true;
    socket.off('data', onData);
    callback(err, request);
  };
  const onData = (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    if (pending.length < 4) return;
    const length = pending.readUInt32LE(0);
    if (length > MAX_REQUEST) return finish(new Error(`a request of ${length} bytes is too large`));
    if (pending.length < 4 + length) return;
    try {
      finish(undefined, decodeRequest(pending.subarray(4, 4 + length)));
    } catch (err) {
      finish(err as Error);
    }
  };
  socket.on('data', onData);
  socket.on('end', () => finish(new Error('the client closed before sending a request')));
}
