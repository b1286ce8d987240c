import { type FileLock, takeFileLock } from '../store/lock.ts';

/**
 * One daemon per home, held by the kernel: an exclusive lock on run/cc.lock (store/lock.ts), so a stale pid file
 * or socket can never block a start, and a reused pid means nothing.
 */
export type DaemonLock = FileLock;

/** How long a start waits for the lock: long enough for `lockHeld`'s probe, too short to queue behind a daemon. */
const WAIT_MS = 500;

/** Takes the lock, or returns undefined when another process (or connection) holds it. */
export function takeDaemonLock(path: string, home: string, waitMs = WAIT_MS): DaemonLock | undefined {
  return takeFileLock(path, home, waitMs);
}

/** Whether a daemon holds (or is taking) the lock; the probe holds it only for an instant. */
export function lockHeld(path: string, home: string): boolean {
  const lock = takeDaemonLock(path, home, 0);
  lock?.release();
  return lock === undefined;
}
