import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// Process helpers shared by the benchmarks that start servers (mirror beside nginx, apt beside apt-cacher-ng).

/** Polls `ready` for up to 30 s; fails with the server's log if it exits or never gets ready. */
export async function waitUntil(child: ChildProcess, log: string, ready: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await ready()) return;
    await sleep(100);
  }
  const output = existsSync(log) ? readFileSync(log, 'utf8') : '';
  throw new Error(`benchmark server did not start (${child.spawnargs.join(' ')}):\n${output}`);
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  if ((await Promise.race([exited, sleep(5000, 'timeout')])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

export interface Server {
  url: string;
  child: ChildProcess;
}

export const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts');

/**
 * `accel mirror serve --port 0` as a separate process (so the load generator does not share its event loop),
 * logging to `log` with `extraEnv` added to its environment; resolves with its URL once it listens.
 */
export async function startAccelMirror(
  home: string,
  log: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Server> {
  const fd = openSync(log, 'w');
  // Our own ACCEL_* variables would change what is measured (a token, a TTL, a quiet log).
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACCEL_'))),
    ...extraEnv,
  };
  const child = spawn(process.execPath, [MAIN, '--home', home, 'mirror', 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'ignore', fd],
    env,
  });
  closeSync(fd);
  let url = '';
  await waitUntil(child, log, async () => {
    url = /listening on (http:\/\/[^/\s]+)\//.exec(readFileSync(log, 'utf8'))?.[1] ?? '';
    return url !== '';
  });
  return { url, child };
}
