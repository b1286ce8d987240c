import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../../core/dirs.ts';
import { MACHINE_TOOLS } from '../build-tools.ts';
import { findOnPath } from './cross-toolchain.ts';

/**
 * Puts the machine's build tools where conda-forge's packages would have put them, into an environment's
 * `bin` (recipes call `${BUILD_PREFIX}/bin/install`), and the no-op `activate` that old recipes source. Debian's
 * pkg-config is pkgconf, which ends `--libs` with a space that conda-forge's pkg-config does not print (and
 * that ncurses' tests grep for): a wrapper strips it.
 */
export function linkMachineTools(bin: string, names: Iterable<string>, path: string | undefined): void {
  makeDirs(bin);
  for (const name of names) {
    const machine = MACHINE_TOOLS[name];
    if (!machine) continue;
    const commands = {
      ...(machine.probe.startsWith('/') ? {} : { [machine.probe]: machine.probe }),
      ...machine.commands,
    };
    for (const [as, from] of Object.entries(commands)) {
      const file = findOnPath(from, path);
      if (!file || existsSync(join(bin, as))) continue;
      if (as === 'pkg-config') {
        writeFileSync(
          join(bin, as),
          `#!/bin/sh\n# accel: ${file}, without pkgconf's trailing blank\nout=$(${file} "$@") || exit $?\n[ -z "$out" ] || printf '%s\\n' "$out" | sed 's/[[:space:]]*$//'\n`,
          { mode: 0o755 },
        );
      } else symlinkSync(file, join(bin, as));
    }
  }
  for (const f of ['activate', 'deactivate']) {
    if (!existsSync(join(bin, f))) {
      // `source activate "$CONDA_DEFAULT_ENV"` (old recipes' workaround for conda-build#910): the environment
      // is active already.
      writeFileSync(join(bin, f), '# accel conda build: the environment is already active\n', { mode: 0o755 });
    }
  }
}
