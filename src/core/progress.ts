import { SingleBar } from 'cli-progress';
import { formatSize } from './size.ts';

/**
 * Progress of a long operation: a bar on a TTY (cli-progress draws it, and redraws during synchronous loops
 * too), nothing otherwise, so logs and pipes stay clean. Items and, where the work moves data, bytes with
 * their rate.
 */
export interface Progress {
  /** One more item done. */
  tick(detail?: string): void;
  /** Bytes moved (downloaded, hashed): shown with their rate. */
  bytes(n: number): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Show nothing (`-q`). */
  quiet?: boolean;
  /** Show bytes and the rate beside the item count. */
  withBytes?: boolean;
}

const SILENT: Progress = { tick: () => {}, bytes: () => {}, stop: () => {} };

export function createProgress(total: number, label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY || total === 0 || options.quiet) return SILENT;
  const bar = new SingleBar({
    stream,
    format: `${label} [{bar}] {value}/{total}${options.withBytes ? ' {moved} {rate}' : ''} {detail}`,
    hideCursor: true,
    clearOnComplete: true,
  });
  const started = Date.now();
  let moved = 0;
  let detail = '';
  const payload = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    return { detail: detail.slice(-50), moved: formatSize(moved), rate: `${formatSize(moved / seconds)}/s` };
  };
  bar.start(total, 0, payload());
  return {
    tick: (d = '') => {
      detail = d;
      bar.increment(1, payload());
    },
    bytes: (n) => {
      moved += n;
      bar.update(payload());
    },
    stop: () => bar.stop(),
  };
}
