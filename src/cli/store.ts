import { Command } from 'commander';
import { formatSize } from '../core/size.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';
import { storeGetCommand, storePinCommand, storePutCommand, storeStatCommand } from './store-blob.ts';
import { storeGcCommand } from './store-gc.ts';
import { storeVerifyCommand } from './store-verify.ts';

/** `accel store`: the blob commands (store-blob.ts), refs and totals here, gc and verify in files of their own. */
export function storeCommand(runner: Runner): Command {
  const store = new Command('store')
    .description('the content-addressed store that every subcommand shares')
    .addCommand(storePutCommand(runner))
    .addCommand(storeGetCommand(runner))
    .addCommand(storeStatCommand(runner))
    .addCommand(storePinCommand(runner, true))
    .addCommand(storePinCommand(runner, false));

  store
    .command('ls')
    .description('list refs (named pointers to blobs), optionally in one namespace')
    .option('--ns <namespace>', 'only this namespace (url, cc, tree, conda, apt-epoch, ...)')
    .action(
      runner.action(async (g, opts: { ns?: string }) => {
        const refs = await withStore(g, (s) => [...s.refs.list(opts.ns)]);
        return dataResult(refs, () =>
          refs.map((r) => `${r.ns}\t${r.key}\t${r.digest}\t${new Date(r.updatedAt).toISOString()}`).join('\n'),
        );
      }),
    );

  store
    .command('info')
    .description('show where the store is and how much it holds')
    .action(
      runner.action(async (g) => {
        const info = await withStore(g, (s) => s.info());
        return dataResult(info, () =>
          [
            `home:            ${info.home}`,
            `schema version:  ${info.schemaVersion}`,
            `blobs:           ${info.blobs}`,
            `size:            ${formatSize(info.bytes)} (${info.bytes} bytes)`,
            `pinned:          ${info.pinnedBlobs} blobs, ${formatSize(info.pinnedBytes)}`,
            `refs:            ${info.refs}`,
            `gc budget:       ${g.config.store.maxSize}`,
          ].join('\n'),
        );
      }),
    );

  return store.addCommand(storeGcCommand(runner)).addCommand(storeVerifyCommand(runner));
}
