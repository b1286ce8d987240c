import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import PQueue from 'p-queue';
import { type CompileFn, runCompiler } from '../compiler/run.ts';
import { isAccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import type { Store } from '../store/store.ts';
import type { StatMemo } from './filehash.ts';
import { decodeRequest, frame, MAX_REQUEST, type Request } from './protocol.ts';
import type { RemoteCache } from './remote.ts';
import { runCc } from './wrapper.ts';

/** What a daemon is made of: where it lives, its store, how many compiles at once, and what it asks of others. */
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
  /** `cc.baseDirs` and `cc.explain` (a request's own ACCEL_CC_BASEDIRS and ACCEL_CC_EXPLAIN win). */
  baseDirs?: readonly string[];
  explain?: string;
}

/** Keep-alive period while a compile runs; the client gives up after ACCEL_CC_SILENCE_MS (30 s) of silence. */
const KEEPALIVE_MS = 2000;

/** What the request side needs of the daemon's lifecycle (daemon.ts). */
interface DaemonHooks {
  /** The secret every request must carry; written by listen(). */
  secret(): string;
  /** Added to the environment of every local compile (the compile watchdog's mark). */
  watchdogEnv(): Record<string, string> | undefined;
  /** A stop request: close the daemon. */
  stop(): void;
  /** A compile starts: the daemon is not idle. */
  busy(): void;
  /** A compile has ended, answered or not. */
  settled(): void;
}

interface DaemonRequests {
  /** Reads one request from a new connection and answers it (status, stop or a compile). */
  accept(socket: Socket): void;
  /** Compiles being served now. */
  active(): number;
  /** Stops the compiles in flight (process groups killed, partial outputs removed); resolves once none runs. */
  stopCompiles(): Promise<void>;
}

/**
 * The daemon's requests: each connection carries one, checked against the secret; compiles run through the
 * wrapper with one bounded queue for local compiles and one stat memo shared by all of them.
 */
export function createDaemonRequests(options: DaemonOptions, hooks: DaemonHooks): DaemonRequests {
  const { log, store } = options;
  /** The compiles in flight, to stop when the daemon closes. */
  const inFlight = new Set<AbortController>();
  const queue = new PQueue({ concurrency: Math.max(1, options.jobs) });
  const statMemo: StatMemo = new Map();
  let active = 0;
  let served = 0;
  const started = Date.now();

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

  function accept(socket: Socket): void {
    readRequest(socket, (err, request) => {
      if (err) {
        log.debug(`cc daemon: ${err.message}`);
        socket.destroy();
        return;
      }
      if (!request || !secretMatches(request.secret, hooks.secret())) {
        log.warn('cc daemon: refused a request without the right secret');
        socket.destroy();
        return;
      }
      if (request.kind === 'status') {
        socket.end(frame('j', JSON.stringify(status())));
      } else if (request.kind === 'stop') {
        socket.end(frame('j', JSON.stringify({ stopping: true, pid: process.pid })));
        hooks.stop();
      } else if (request.kind === 'compile') {
        void serveCompile(socket, request);
      }
    });
  }

  async function serveCompile(socket: Socket, request: Extract<Request, { kind: 'compile' }>) {
    active++;
    served++;
    hooks.busy();
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
            env: { ...request.env, ...hooks.watchdogEnv() },
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
        baseDirs: options.baseDirs,
        explain: options.explain,
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
      hooks.settled();
    }
  }

  async function stopCompiles(): Promise<void> {
    for (const abort of inFlight) abort.abort();
    while (active > 0) await new Promise((r) => setTimeout(r, 20));
  }

  return { accept, active: () => active, stopCompiles };
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
