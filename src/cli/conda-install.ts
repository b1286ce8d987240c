import { resolve } from 'node:path';
import { Command } from 'commander';
import { readChannel } from '../conda/builder/channel-packages.ts';
import { channelSubdirs, machineVirtual } from '../conda/builder/prepare.ts';
import { hostSubdir } from '../conda/platform.ts';
import { localChannel, solveEnvironment } from '../conda/solve/solve.ts';
import { AccelError } from '../core/errors.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

interface InstallFlags {
  channel: string;
  prefix: string;
  platform?: string;
}

/**
 * `accel conda install --channel CH --prefix DIR PKG…`: solves the specs against a local channel with rattler
 * (run dependencies too; virtual packages such as __glibc are the machine's) and installs
 * each package into the prefix, relocated. For trying a channel `conda build` made, with no conda around.
 */
export function condaInstallCommand(runner: Runner): Command {
  return new Command('install')
    .description('install packages and their run dependencies from a local channel into a prefix')
    .argument('<specs...>', 'match specs: name, "name 1.2.*", "name >=1.2,<2"')
    .requiredOption('--channel <dir>', 'local channel directory (as conda build writes it)')
    .requiredOption('--prefix <dir>', 'environment directory to install into (created if missing)')
    .option('--platform <subdir>', 'channel subdir to install from (default: this machine)')
    .addHelpText(
      'after',
      `
Examples:
  $ accel conda install --channel ./channel --prefix /tmp/env --platform linux-aarch64 bzip2
  $ qemu-aarch64-static -L /usr/aarch64-linux-gnu /tmp/env/bin/bzip2 --help`,
    )
    .action(
      runner.action(async (g, specs: string[], flags: InstallFlags) => {
        const platform = flags.platform ?? hostSubdir();
        const channel = resolve(flags.channel);
        const packages = readChannel(channel, channelSubdirs(platform));
        if (packages.length === 0) {
          throw new AccelError('ACCEL_CONDA_EMPTY_CHANNEL', `${channel} has no packages for ${platform} or noarch`, {
            hint: 'build into it with accel conda build --channel, or index it with accel conda index',
            exitCode: 2,
          });
        }
        const solved = await solveEnvironment({
          what: `the environment of ${flags.prefix}`,
          specs,
          channels: [localChannel(channel)],
          subdirs: channelSubdirs(platform),
          virtual: machineVirtual(),
          hint: `build what is missing into the channel first: accel conda build --channel ${channel} …`,
        });
        const { installCondaPackage } = await import('../conda/pkg/install.ts');
        const prefix = resolve(flags.prefix);
        const installed: { name: string; version: string; build: string; files: number }[] = [];
        for (const p of solved) {
          const r = await installCondaPackage(p.path, prefix);
          installed.push({ name: r.name, version: r.version, build: r.build, files: r.files.length });
          g.log.info(`installed ${p.filename}`);
        }
        return dataResult({ prefix, installed }, () =>
          [...installed.map((i) => `${i.name}-${i.version}-${i.build}\t${i.files} files`), `prefix: ${prefix}`].join(
            '\n',
          ),
        );
      }),
    );
}
