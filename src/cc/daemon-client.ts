import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { connect } from 'node:net';
import { isSea } from 'node:sea';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, errnoCode } from '../core/errors.ts';
import { lockHeld } from './daemon-lock.ts';
import { daemonPaths, encodeRequest, FrameReader, type FrameType, type Request } from './protocol.ts';

/** What a daemon said, frame by frame; undefined when no daemon answered properly. */
async function ask(
  home: string,
  request: (secret: string) => Request,
  silenceMs = 30_000,
): Promise<{ type: FrameType; payload: Buffer }[] | undefined> {
  const paths = daemonPaths(home);
  let secret: string;
  try {
    secret = readFileSync(paths.secret, 'utf8').trim();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EACCES') return undefined;
    throw err;
  }
  return new Promise((resolve) => {
    const frames: { type: FrameType; payload: Buffer }[] = [];
    const reader = new FrameReader();
    const socket = connect(paths.socket);
    let settled = false;
    const settle = (value: typeof frames | undefined) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(silenceMs, () => settle(undefined));
    socket.on('connect', () => socket.write(encodeRequest(request(secret))));
    socket.on('data', (chunk) => {
      for (const f of reader.push(chunk)) {
        if (f.type === 'k') continue;
        frames.push(f);
        if (f.type === 'x' || f.type === 'r' || f.type === 'j') settle(frames);
      }
    });
    // Refused, gone, or closed without an answer: the caller does the work itself.
    socket.on('error', () => settle(undefined));
    socket.on('close', () => settle(undefined));
  });
}

export type DaemonAnswer =
  | { kind: 'done'; exitCode: number; stdout: Buffer; stderr: Buffer }
  | { kind: 'delegate'; compiler: string };

/** `accel cc -- …` with a daemon running: the daemon does the work; undefined when there is none. */
export async function compileViaDaemon(
  home: string,
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<DaemonAnswer | undefined> {
  const frames = await ask(home, (secret) => ({
    kind: 'compile',
    secret,
    pid: process.pid,
    umask: process.umask(),
    cwd,
    argv,
    env,
  }));
  if (!frames) return undefined;
  const last = frames.at(-1);
  if (last?.type === 'r') return { kind: 'delegate', compiler: last.payload.toString() };
  if (last?.type !== 'x') return undefined;
  const of = (type: FrameType) => Buffer.concat(frames.filter((f) => f.type === type).map((f) => f.payload));
  return { kind: 'done', exitCode: Number(last.payload.toString()), stdout: of('o'), stderr: of('e') };
}

export interface DaemonStatus {
  pid: number;
  home: string;
  uptimeSeconds: number;
  requests: number;
  active: number;
  compiling: number;
  queued: number;
  jobs: number;
  idleTimeoutSeconds: number;
}

export async function daemonStatus(home: string, silenceMs = 5000): Promise<DaemonStatus | undefined> {
  const frames = await ask(home, (secret) => ({ kind: 'status', secret }), silenceMs);
  const json = frames?.find((f) => f.type === 'j');
  return json ? (JSON.parse(json.payload.toString()) as DaemonStatus) : undefined;
}

/** Asks the daemon to stop; resolves with its pid, or undefined when none ran. */
export async function stopDaemon(home: string): Promise<number | undefined> {
  const frames = await ask(home, (secret) => ({ kind: 'stop', secret }), 5000);
  const json = frames?.find((f) => f.type === 'j');
  return json ? (JSON.parse(json.payload.toString()) as { pid: number }).pid : undefined;
}

/**
 * `accel cc daemon --detach`: starts the daemon as a detached process logging to run/cc-daemon.log and
 * waits until it answers. A daemon already running (or one that another client started at the same
 * moment) is as good as our own.
 */
export async function startDetached(
  home: string,
  env: NodeJS.ProcessEnv,
  idleSeconds: number,
  jobs: number,
): Promise<DaemonStatus> {
  const paths = daemonPaths(home);
  const running = await daemonStatus(home);
  if (running) return running;
  makeDirs(paths.dir, { mode: 0o700 });
  // Keep the log short: it is for the last few starts, not an archive.
  if (existsSync(paths.log) && statSync(paths.log).size > 1 << 20) truncateSync(paths.log, 0);
  const self = isSea() ? [process.execPath] : [process.execPath, process.argv[1] as string];
  const args = ['--home', home, 'cc', 'daemon', '--idle-timeout', String(idleSeconds), '--jobs', String(jobs)];
  const log = openSync(paths.log, 'a', 0o600);
  let exited = false;
  try {
    const child = spawn(self[0] as string, [...self.slice(1), ...args], {
      detached: true,
      // Not the cwd of whichever build started it: that directory may be deleted while the daemon lives.
      cwd: home,
      stdio: ['ignore', log, log],
      env,
    });
    child.on('exit', () => {
      exited = true;
    });
    child.unref();
  } finally {
    closeSync(log);
  }
  let status: DaemonStatus | undefined;
  // Our child may have lost the race to another start: wait for whoever holds the lock to answer.
  await waitFor(async () => {
    status = await daemonStatus(home, 1000);
    return status !== undefined || (exited && !lockHeld(paths.lock, home));
  }, 10_000);
  if (!status) {
    const tail = readFileSync(paths.log, 'utf8').split('\n').slice(-6).join('\n');
    throw new AccelError('ACCEL_CC_DAEMON_START', 'the cc daemon did not start', {
      hint: `its log (${paths.log}) ends with:\n${tail}`,
    });
  }
  return status;
}

export async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
