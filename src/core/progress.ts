import { SingleBar } from 'cli-progress';

/** Progress of a long operation: a bar on a TTY (cli-progress draws it), nothing otherwise. */
export interface Progress {
  tick(detail?: string): void;
  stop(): void;
}

export function createProgress(total: number, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY || total === 0) return { tick: () => {}, stop: () => {} };
  const bar = new SingleBar({
    stream,
    format: `${label} [{bar}] {value}/{total} {detail}`,
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(total, 0, { detail: '' });
  return {
    tick: (detail = '') => bar.increment(1, { detail: detail.slice(-50) }),
    stop: () => bar.stop(),
  };
}
