import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { errnoCode } from '../core/errors.ts';
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
