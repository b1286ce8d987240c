// `node bench/upstream-meson.ts CHANNEL_DIR`: adds a `meson` fixture to CHANNEL_DIR, the fixture channel
// bench/upstream-fixtures.ts writes (issue 31: pixman's meson.build needs meson >= 1.3, Debian 12 has 1.0.1).
// The fixture is Debian's meson .deb from this machine's Debian archive (its apt sources, as
// ../shared/feedstocks/get-sources does), downloaded once and checked against the SHA256 of the archive's
// Packages index, pinned below. Meson is pure Python: the package holds the mesonbuild tree under
// lib/accel-meson/ and a bin/meson that runs it with the machine's python3 (meson needs 3.10+), so it is
// noarch generic with no dependencies, version = the real meson version, build string accel_fixture_debian.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { addToChannel } from '../src/conda/pkg/channel-index.ts';
import { writeCondaPackage } from '../src/conda/pkg/write.ts';
import { FEEDSTOCK_SOURCES } from '../test/feedstock-set.ts';
import { poolFile } from './debian-source.ts';

/** sid's (and forky's) meson, the newest in the archive; Filename and SHA256 from dists/sid/main/binary-all/Packages.xz. */
const DEB = {
  file: 'meson_1.12.1-2_all.deb',
  pool: 'pool/main/m/meson',
  sha256: '3fdbe63dacb2ae5a973a44a5c6955dfd940e20bf8464a24fb9a58e01127a634c',
  version: '1.12.1',
};
const LIB = 'lib/accel-meson';

/**
 * Runs lib/accel-meson/meson.py (Debian's /usr/bin/meson) with python3 from PATH. The script finds its own
 * directory (through symlinks), so the package works from any prefix; meson.py then puts its directory first on sys.path, and
 * records `python3 …/meson.py` as the command ninja re-runs to regenerate. No PYTHONPATH: it would leak into
 * every Python the build runs. No bytecode: the prefix stays as installed.
 */
const LAUNCHER = `#!/bin/sh
# accel test fixture standing in for conda-forge's meson: Debian's meson ${DEB.version} run by this machine's python3.
self=$(readlink -f -- "$0") || exit 1
here=$(dirname -- "$self")
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
exec python3 "$here/../${LIB}/meson.py" "$@"
`;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`upstream-meson: ${cmd} ${args.join(' ')}: ${r.stderr || `exit ${r.status}`}`);
  return r.stdout;
}

function filesUnder(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(root, join(dir, e.name)) : [relative(root, join(dir, e.name))],
  );
}

/** Lays out the fixture's prefix from the unpacked .deb and checks that its bin/meson runs as that version. */
function stagePrefix(unpacked: string, prefix: string): string[] {
  const lib = join(prefix, LIB);
  mkdirSync(lib, { recursive: true });
  cpSync(join(unpacked, 'usr/lib/python3/dist-packages/mesonbuild'), join(lib, 'mesonbuild'), { recursive: true });
  copyFileSync(join(unpacked, 'usr/bin/meson'), join(lib, 'meson.py'));
  copyFileSync(join(unpacked, 'usr/share/doc/meson/copyright'), join(lib, 'COPYRIGHT'));
  mkdirSync(join(prefix, 'bin'));
  writeFileSync(join(prefix, 'bin/meson'), LAUNCHER);
  chmodSync(join(prefix, 'bin/meson'), 0o755);
  const printed = run(join(prefix, 'bin/meson'), ['--version']).trim();
  if (printed !== DEB.version)
    throw new Error(`upstream-meson: bin/meson --version printed ${printed}, want ${DEB.version}`);
  return filesUnder(prefix);
}

const dir = process.argv[2];
if (!dir || process.argv.length > 3) {
  process.stderr.write('usage: node bench/upstream-meson.ts CHANNEL_DIR\n');
  process.exit(2);
}
const channel = resolve(dir);
const deb = await poolFile(DEB, FEEDSTOCK_SOURCES);
const work = mkdtempSync(join(tmpdir(), 'accel-upstream-meson-'));
try {
  const unpacked = join(work, 'deb');
  run('dpkg-deb', ['-x', deb, unpacked]);
  const prefix = join(work, 'prefix');
  const files = stagePrefix(unpacked, prefix);
  const pkg = await writeCondaPackage({
    prefix,
    files,
    index: {
      name: 'meson',
      version: DEB.version,
      build: 'accel_fixture_debian',
      build_number: 0,
      subdir: 'noarch',
      noarch: 'generic',
      depends: [],
      timestamp: 0,
      license: 'Apache-2.0',
    },
    about: {
      summary: `test fixture: Debian's meson ${DEB.version} (pure Python) run by this machine's python3, standing in for conda-forge's`,
    },
    placeholder: prefix,
    outDir: join(work, 'out'),
  });
  const added = await addToChannel(channel, pkg.path);
  process.stdout.write(`${added.path}${added.added ? '' : ' (already there)'}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(`\nchannel: ${channel} (serve it as bench/upstream-fixtures.ts says)\n`);
