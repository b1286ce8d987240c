import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Median wall time in ms of `runs` runs of `fn`. */
export async function medianMs(runs: number, fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** The middle value (of an even count, the upper of the two middle ones). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
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

/** Runs a command and returns its stdout; a failure is an error with its stderr. */
export function run(cmd: string, args: string[], options: SpawnSyncOptions): string {
  const r = spawnSync(cmd, args, { ...options, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    throw new Error(`benchmark command failed (${r.status ?? r.signal}): ${cmd} ${args.join(' ')}\n${r.stderr}`);
  }
  return r.stdout;
}

/** The first line a command writes, e.g. of `gcc --version`. */
export function firstLine(cmd: string, args: string[]): string {
  return run(cmd, args, {}).split('\n')[0] as string;
}

/** Whether a command is on PATH. */
export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
