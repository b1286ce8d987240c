import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { AccelError } from '../core/errors.ts';
import type { Compile } from './args.ts';

export interface CompilerRun {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** util-linux's setpriv (Debian: always there), for the parent-death signal Node cannot set itself. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * Compiles somewhere other than here (the farm) and says how it went; `local` is how to compile here when that
 * cannot be done, with the caller's own limits, abort signal and umask.
 */
export type CompileFn = (
  compilerPath: string,
  args: string[],
  options: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    compile: Compile;
    /** How to compile here when the farm cannot: the caller's own limits, abort signal and umask apply. */
    local: (compilerPath: string, args: string[]) => Promise<CompilerRun>;
  },
) => Promise<CompilerRun & { fallback?: string; remote?: boolean }>;

/**
 * Runs the real compiler, capturing its output (a cache hit must replay it); stdin is passed through for
 * the rare compile that reads it.
 */
export function runCompiler(
  path: string,
  args: string[],
  options: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    inherit?: boolean;
    signal?: AbortSignal;
    umask?: number;
    /**
     * The compiler dies when this process does, even by SIGKILL (setpriv's parent-death signal): a long-lived
     * server's compiles must not outlive it and race the client that then compiles the same output itself.
     * Killing the driver is enough: it runs the assembler, the only writer of the output, last.
     */
    dieWithParent?: boolean;
  },
): Promise<CompilerRun> {
  return new Promise((resolve, reject) => {
    // inherit: an uncacheable call gets the terminal itself (colours, interleaving), exactly as without accel.
    const stdio: StdioOptions = options.inherit ? 'inherit' : ['inherit', 'pipe', 'pipe'];
    const { signal } = options;
    if (signal?.aborted) return reject(abortError());
    // With a signal the compiler gets its own process group, so an abort stops cc1 and as with the driver.
    // The caller's umask (the daemon serving a client with another one) for the files the compiler creates:
    // the child inherits it at fork, and spawn forks synchronously.
    const previous = options.umask === undefined ? undefined : process.umask(options.umask);
    let child: ChildProcess;
    try {
      const [file, argv] =
        options.dieWithParent && SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', path, ...args]] : [path, args];
      child = spawn(file, argv, { cwd: options.cwd, env: options.env, stdio, detached: !!signal });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    const abort = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    signal?.addEventListener('abort', abort, { once: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new AccelError('ACCEL_CC_NO_COMPILER', `${path}: command not found`, { exitCode: 127 })
          : e,
      ),
    );
    child.on('close', (code, killedBy) => {
      signal?.removeEventListener('abort', abort);
      if (signal?.aborted) return reject(abortError());
      resolve({
        code: code ?? (killedBy ? 128 + signalNumber(killedBy) : 1),
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err),
      });
    });
  });
}

function abortError(): AccelError {
  return new AccelError('ACCEL_CC_ABORTED', 'the compile was abandoned: its client went away');
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGKILL: 9,
    SIGTERM: 15,
    SIGSEGV: 11,
    SIGINT: 2,
    SIGABRT: 6,
  };
  return numbers[signal] ?? 1;
}
