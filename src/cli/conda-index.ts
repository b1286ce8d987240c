import { Command } from 'commander';
import { addToChannel, type ChannelIndex, indexChannel } from '../conda/pkg/channel-index.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/**
 * `accel conda index <channel> [packages...]`: checks and adds packages, then writes every subdir's
 * repodata.json. Attached under `accel conda` by the conda command group.
 */
export function condaIndexCommand(runner: Runner): Command {
  return new Command('index')
    .description('write <channel>/<subdir>/repodata.json for a local channel, adding packages first if given')
    .argument('<channel>', 'channel directory (holds linux-aarch64/, noarch/, ...)')
    .argument('[packages...]', '.conda files to check and copy into their subdir before indexing')
    .addHelpText(
      'after',
      `
Examples:
  $ accel conda index ./channel                          re-index every subdir (noarch always)
  $ accel conda index ./channel out/*.conda              check, add and index packages
  $ accel --json conda index ./channel                   machine-readable summary

Each package is format-checked before it is copied; repodata.json files are replaced atomically.
Serve the channel with \`accel mirror serve\` and config mirror.condaChannels (see docs/conda-channel.md).`,
    )
    .action(
      runner.action(async (g, channel: string, packages: string[]) => {
        const added: { path: string; subdir: string; added: boolean }[] = [];
        for (const file of packages) {
          const result = await addToChannel(channel, file);
          added.push({ path: result.path, subdir: result.subdir, added: result.added });
          g.log.info(`${result.added ? 'added' : 'already present'}: ${result.path}`);
        }
        const index: ChannelIndex = await indexChannel(channel);
        return dataResult({ ...index, added }, () =>
          index.subdirs
            .map((s) => `${s.subdir}\t${s.packages} package${s.packages === 1 ? '' : 's'}\t${s.repodata}`)
            .join('\n'),
        );
      }),
    );
}
