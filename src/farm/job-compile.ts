import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_LIMITS, sandboxCommand } from './bubblewrap.ts';
import type { WorkerContext } from './worker-context.ts';

interface CompileRun {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

/**
 * Runs the compiler confined (or, unsandboxed, in a process group of its own) and waits for it. Whatever it
 * started is killed when it ends, times out, loses its lease or the worker closes.
 */
export function compileConfined(
  ctx: WorkerContext,
  path: string,
  args: string[],
  o: {
    host: string;
    root: string;
    cwd: string;
    env: NodeJS.ProcessEnv;
    /** A command's own environment: set by `env -i` as the last step before it runs, after any privilege drop. */
    commandEnv?: Record<string, string>;
    signal: AbortSignal;
  },
): Promise<CompileRun> {
  const { options, children } = ctx;
  if (o.commandEnv) {
    const assignments = Object.entries(o.commandEnv).map(([k, v]) => `${k}=${v}`);
    args = ['-i', '--', ...assignments, path, ...args];
    path = '/usr/bin/env';
  }
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    if (options.unsandboxed) {
      // setpriv's parent-death signal: a worker killed with -9 takes the compiler driver with it.
      child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', path, ...args], {
        cwd: join(o.host, o.cwd),
        env: o.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } else {
      const command = sandboxCommand({
        compiler: path,
        args,
        host: o.host,
        jobRoot: o.root,
        cwd: join(o.root, o.cwd),
        toolchain: [...ctx.compilerPaths.values()],
        limits: { ...DEFAULT_LIMITS, cpuSeconds: Math.ceil(options.jobTimeoutMs / 1000) },
        user: ctx.user,
      });
      child = spawn(command.file, command.args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    }
    children.add(child);
    let timedOut = false;
    const killGroup = () => killProcessGroup(child);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.jobTimeoutMs);
    o.signal.addEventListener('abort', killGroup, { once: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    const done = () => {
      clearTimeout(timer);
      children.delete(child);
      o.signal.removeEventListener('abort', killGroup);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      // Anything the compile left running in its group (a daemonised child) goes with it.
      killGroup();
      resolvePromise({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut });
    });
  });
}

/** Kills a compile's whole process group: it was started detached, as the group's leader. */
export function killProcessGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
