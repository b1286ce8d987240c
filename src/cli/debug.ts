import { resolve } from 'node:path';
import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import { type WatchEvent, watchDirectory } from '../core/watcher.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** Hidden diagnostics: checks that the parts a packaged accel depends on work on this machine. */
export function debugCommand(runner: Runner): Command {
  const debug = new Command('debug').description('diagnostics for the single executable (hidden)');
  debug
    .command('watch')
    .description('watch DIR and print the first file-change events (checks the native watcher)')
    .argument('<dir>')
    .option('--count <n>', 'stop after this many events', '1')
    .option('--timeout <seconds>', 'give up after this long', '30')
    .action(
      runner.action(async (g, dir: string, opts: { count: string; timeout: string }) => {
        const events = await collectEvents(resolve(dir), g.home, Number(opts.count), Number(opts.timeout) * 1000, () =>
          g.log.info(`watching ${resolve(dir)}`),
        );
        return dataResult(events, () => events.map((e) => `${e.type}\t${e.path}`).join('\n'));
      }),
    );
  return debug;
}

async function collectEvents(
  dir: string,
  home: string,
  count: number,
  timeoutMs: number,
  onReady: () => void,
): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  let finish: (err?: Error) => void = () => {};
  const done = new Promise<void>((resolvePromise, reject) => {
    finish = (err) => (err ? reject(err) : resolvePromise());
  });
  const subscription = await watchDirectory(
    dir,
    home,
    (batch) => {
      events.push(...batch);
      if (events.length >= count) finish();
    },
    (err) => finish(err),
  );
  onReady();
  const timer = setTimeout(
    () => finish(new AccelError('ACCEL_WATCH_TIMEOUT', `no change under ${dir} within ${timeoutMs / 1000} s`)),
    timeoutMs,
  );
  try {
    await done;
    return events.slice(0, count);
  } finally {
    clearTimeout(timer);
    await subscription.unsubscribe();
  }
}
