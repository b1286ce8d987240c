import { Command } from 'commander';
import { mirrorAptCommand } from './mirror-apt.ts';
import { mirrorConfigCommand } from './mirror-config.ts';
import { mirrorImportCommand } from './mirror-import.ts';
import { mirrorPrefetchCommand } from './mirror-prefetch.ts';
import { mirrorServeCommand } from './mirror-serve.ts';
import type { Runner } from './runner.ts';

/** `accel mirror`: one file per subcommand (mirror-serve.ts, mirror-config.ts, …), assembled in help order. */
export function mirrorCommand(runner: Runner): Command {
  return new Command('mirror')
    .description('caching mirror for build dependencies (source tarballs, apt, conda)')
    .addCommand(mirrorServeCommand(runner))
    .addCommand(mirrorPrefetchCommand(runner))
    .addCommand(mirrorImportCommand(runner))
    .addCommand(mirrorConfigCommand(runner))
    .addCommand(mirrorAptCommand(runner));
}
