import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** The environment variable that marks every process of one daemon's compiles (children of compilers too). */
const COMPILE_MARK = 'ACCEL_CC_DAEMON_COMPILE';

/**
 * Waits for EOF on stdin, which comes when the daemon exits however it exits (kill -9 included: the kernel closes
 * its end of the pipe), then kills every process whose environment carries the daemon's mark, until none is left.
 * A parent-death signal reaches only the compiler driver, not the cc1 or as it started; the environment reaches
 * them all, and a random mark cannot name a process that is not one of this daemon's compiles.
 */
const SCRIPT = `trap '' INT TERM HUP
while read -r _; do :; done
for _ in 1 2 3 4 5 6 7 8; do
  found=
  for f in $(grep -lsxzF "${COMPILE_MARK}=$1" /proc/[0-9]*/environ); do
    p=\${f#/proc/}; p=\${p%/environ}
    [ "$p" = "$$" ] && continue
    kill -KILL "$p" 2>/dev/null && found=1
  done
  [ -z "$found" ] && exit 0
done`;

export interface CompileWatchdog {
  /** Add to the environment of every compile the daemon runs. */
  env: Record<string, string>;
  /** The daemon is closing: compiles still marked are killed now. */
  close(): void;
}

/**
 * Starts the watchdog of a daemon's compiles: a small `sh` in its own session (a Ctrl-C meant for the daemon
 * does not reach it) that outlives the daemon only long enough to kill what the daemon left running.
 */
export function startCompileWatchdog(): CompileWatchdog {
  const mark = `${process.pid}-${randomBytes(12).toString('hex')}`;
  const child = spawn('/bin/sh', ['-c', SCRIPT, 'accel-cc-watchdog', mark], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
    cwd: '/',
  });
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  // Neither the process nor the pipe may keep the daemon's event loop alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    env: { [COMPILE_MARK]: mark },
    close() {
      child.stdin?.end();
    },
  };
}
