/** A running server as the CLI sees it: something to close, and (for one that can stop by itself) `done`. */
export interface RunningService {
  close(): Promise<void>;
  /** Resolves when the service stopped on its own (the cc daemon's idle time-out, a stop request). */
  done?: Promise<void>;
}

/**
 * Runs a started service until SIGINT or SIGTERM (or until it stops by itself), then closes it: always, and
 * before the caller closes the store, so work in flight ends first. The one place a server's process waits.
 */
export async function runService(service: RunningService): Promise<void> {
  let stop: () => void = () => {};
  const signalled = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await Promise.race([signalled, service.done ?? new Promise<never>(() => {})]);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await service.close();
  }
}
