import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import {
  currentEpoch,
  findEpoch,
  listEpochs,
  listPins,
  pinEpoch,
  pinnedEpochId,
  unpinSuite,
} from '../mirror/apt/epochs.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** `accel mirror apt`: the Debian archives' snapshot epochs — list them, pin a suite to one, unpin it. */
export function mirrorAptCommand(runner: Runner): Command {
  const apt = new Command('apt').description('Debian archives through the mirror: consistent snapshot epochs');
  apt
    .command('epochs')
    .description('list the epochs (consistent Release snapshots) the mirror holds')
    .option('--remap <name>', 'only this remap')
    .action(
      runner.action(async (g, flags: { remap?: string }) => {
        const rows = await withStore(g, (store) =>
          listEpochs(store, flags.remap).map((e) => ({
            ...e,
            pinned: pinnedEpochId(store, e.remap, e.suite) === e.id,
            current: currentEpoch(store, e.remap, e.suite)?.id === e.id,
          })),
        );
        return dataResult(rows, () =>
          rows
            .map(
              (e) =>
                `${e.remap}\t${e.suite}\t${e.id}\t${new Date(e.createdAt).toISOString()}\t${e.release.InRelease ?? e.release.Release}${e.pinned ? '\tpinned' : e.current ? '\tcurrent' : ''}`,
            )
            .join('\n'),
        );
      }),
    );
  apt
    .command('pin')
    .description('make an epoch the one unpinned clients of its suite see')
    .argument('<remap>')
    .argument('<epoch>')
    .action(
      runner.action(async (g, remap: string, id: string) => {
        const epoch = await withStore(g, (store) => {
          const found = findEpoch(store, remap, id);
          if (!found) {
            throw new AccelError('ACCEL_APT_UNKNOWN_EPOCH', `no epoch ${id} of remap ${remap}`, {
              hint: 'list them with `accel mirror apt epochs`',
            });
          }
          pinEpoch(store, found);
          return found;
        });
        return dataResult(epoch, () => `${remap}/${epoch.suite} pinned to ${epoch.id}`);
      }),
    );
  apt
    .command('unpin')
    .description('let clients of a suite see the newest epoch again')
    .argument('<remap>')
    .argument('<suite>')
    .action(
      runner.action(async (g, remap: string, suite: string) => {
        await withStore(g, (store) => {
          if (unpinSuite(store, remap, suite)) return;
          const pinned = listPins(store);
          throw new AccelError('ACCEL_APT_NOT_PINNED', `${remap}/${suite} is not pinned`, {
            hint: pinned.length > 0 ? `pinned now: ${pinned.join(', ')}` : 'no suite is pinned',
          });
        });
        return dataResult({ removed: true }, () => `${remap}/${suite} follows the newest epoch`);
      }),
    );

  return apt;
}
