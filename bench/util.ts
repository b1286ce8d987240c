import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Median wall time in ms of `runs` runs of `fn`. */
export async function medianMs(runs: number, fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

/** Runs a shell command and fails loudly: a benchmark that silently measures an error is worse than none. */
export function sh(script: string): string {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`benchmark command failed (${r.status}): ${script}\n${r.stderr}`);
  return r.stdout;
}

export function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}
