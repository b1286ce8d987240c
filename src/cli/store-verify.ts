import { setPriority } from 'node:os';
import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import { createProgress, type Progress } from '../core/progress.ts';
import { formatSize, parseSize } from '../core/size.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** What `verify --scrub` reads per second unless --rate says otherwise: a few percent of a disk's bandwidth. */
const SCRUB_RATE = '32M';

/** `accel store verify`: rehashes every blob, quarantines mismatches; `--scrub` paces it beside running builds. */
export function storeVerifyCommand(runner: Runner): Command {
  return new Command('verify')
    .description('rehash every blob; quarantine and list mismatches (exit 1 if any)')
    .option('--scrub', `a background pass beside running builds: lowest CPU priority, reads paced (${SCRUB_RATE}/s)`)
    .option('--rate <size>', 'read at most SIZE per second, e.g. 50M (default: unlimited, or the scrub pace)')
    .addHelpText('after', '\nFrom cron, weekly at low priority:\n  0 3 * * 0  accel store verify --scrub -q')
    .action(
      runner.action(async (g, opts: { scrub?: boolean; rate?: string }) => {
        const rate = opts.rate ?? (opts.scrub ? SCRUB_RATE : undefined);
        if (opts.scrub) lowerPriority(g.log);
        const bytesPerSecond = rate === undefined ? undefined : parseSize(rate);
        if (bytesPerSecond === 0) {
          throw new AccelError('ACCEL_USAGE_BAD_SIZE', '--rate must be more than 0', { hint: 'e.g. --rate 50M' });
        }
        const quiet = g.log.level === 'quiet';
        let progress: Progress | undefined;
        const r = await withStore(g, (s) =>
          s.verify({
            bytesPerSecond,
            onProgress: (done, total, bytes) => {
              progress ??= createProgress(total, 'verify', { quiet, withBytes: true });
              progress.bytes(bytes);
              progress.tick();
              if (done === total) progress.stop();
            },
          }),
        );
        const bad = r.corrupt.length + r.missing.length;
        const lines = [
          ...r.corrupt.map((c) => `corrupt ${c.digest} (quarantined to ${c.quarantinedTo})`),
          ...r.missing.map((d) => `missing ${d} (index row dropped)`),
          ...r.adopted.map((d) => `adopted ${d} (file had no index row)`),
          `checked ${r.checked} blobs, ${formatSize(r.bytes)} good; ${r.corrupt.length} corrupt, ${r.missing.length} missing`,
        ];
        return dataResult(r, () => lines.join('\n'), bad > 0 ? 1 : 0);
      }),
    );
}

/**
 * The lowest CPU priority (nice 19), so hashing yields to compiles. Best effort: a process that may not
 * change its priority still scrubs, paced.
 */
function lowerPriority(log: Log): void {
  try {
    setPriority(19);
  } catch (err) {
    log.debug(`could not lower the CPU priority: ${(err as Error).message}`);
  }
}
