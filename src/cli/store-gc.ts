import { Command } from 'commander';
import { createProgress, type Progress } from '../core/progress.ts';
import { formatSize, parseSize } from '../core/size.ts';
import { sweepFront } from '../mirror/front.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** `accel store gc`: evicts least recently used, unpinned blobs down to the budget. */
export function storeGcCommand(runner: Runner): Command {
  return new Command('gc')
    .description('evict least recently used, unpinned blobs until the store fits its budget')
    .option('--max-size <size>', 'budget such as 500M or 10G (default: config store.maxSize)')
    .action(
      runner.action(async (g, opts: { maxSize?: string }) => {
        const budget = parseSize(opts.maxSize ?? g.config.store.maxSize);
        const quiet = g.log.level === 'quiet';
        let progress: Progress | undefined;
        let shown = 0;
        const r = await withStore(g, (s) =>
          s.gc(budget, (done, total) => {
            progress ??= createProgress(total, 'gc: removing', { quiet });
            for (; shown < done; shown++) progress.tick();
            if (done >= total) progress.stop();
          }),
        );
        // The nginx front's links to evicted blobs (mirror config nginx) go with them.
        if (r.freed.blobs > 0) sweepFront(g.home);
        if (r.overBudget)
          g.log.warn(`pinned blobs (${formatSize(r.pinnedBytes)}) alone exceed the budget ${formatSize(budget)}`);
        return dataResult(r, () =>
          [
            `freed ${r.freed.blobs} blobs, ${formatSize(r.freed.bytes)}`,
            `store: ${r.after.blobs} blobs, ${formatSize(r.after.bytes)} of ${formatSize(budget)} budget`,
          ].join('\n'),
        );
      }),
    );
}
