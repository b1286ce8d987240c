// `node bench/upstream-gtest.ts CHANNEL_DIR`: builds the fixture recipe bench/fixtures/googletest-feedstock
// (Debian's googletest 1.12.1 numbered as conda-forge's gtest 1.13.0, which snappy pins; build string
// accel_fixture_debian_1_12_1) with accel for linux-aarch64, and adds its gtest and gmock packages to
// CHANNEL_DIR, the fixture channel bench/upstream-fixtures.ts writes (issue 31: snappy is blocked on them).
// The source is Debian's orig tarball, byte-identical to the release archive the recipe names: downloaded once
// from this machine's Debian archive (its apt sources, as ../shared/feedstocks/get-sources does), checked by
// sha256, and passed with --source. Only gtest and gmock go into CHANNEL_DIR: the toolchain runtime (libgcc,
// libstdcxx) they depend on is published by every accel build into its own channel.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FeedstockResult } from '../src/conda/builder/context.ts';
import { PINNED_SYSROOTS } from '../src/conda/builder/sysroot.ts';
import { addToChannel } from '../src/conda/pkg/channel-index.ts';
import { FEEDSTOCK_SOURCES } from '../test/feedstock-set.ts';
import { SYSROOT_DEBS } from '../test/sysroot-debs.ts';
import { poolFile } from './debian-source.ts';

const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
const FEEDSTOCK = join(import.meta.dirname, 'fixtures', 'googletest-feedstock');
/** Debian bookworm's googletest 1.12.1-0.2 source: the same bytes as googletest's release-1.12.1 archive. */
const ORIG = {
  file: 'googletest_1.12.1.orig.tar.gz',
  pool: 'pool/main/g/googletest',
  sha256: '81964fe578e9bd7c94dfdb09c8e4d6e6759e19967e397dbea48d1c10e45d0df2',
};
const OUTPUTS = ['gtest', 'gmock'];

const dir = process.argv[2];
if (!dir || process.argv.length > 3) {
  process.stderr.write('usage: node bench/upstream-gtest.ts CHANNEL_DIR\n');
  process.exit(2);
}
const channel = resolve(dir);
const source = await poolFile(ORIG, FEEDSTOCK_SOURCES);
const work = mkdtempSync(join(tmpdir(), 'accel-upstream-gtest-'));
const home = join(work, 'home');
const built = join(work, 'channel');
const set = join(work, 'feedstocks');
mkdirSync(set);
symlinkSync(FEEDSTOCK, join(set, 'googletest-feedstock'));
const accel = (args: string[], stderr: 'inherit' | 'pipe' = 'pipe') =>
  spawnSync(process.execPath, [MAIN, '--home', home, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', stderr],
  });
// The pinned sysroot's .debs, when .ci/run downloaded them: into the store, so the build fetches none.
for (const deb of PINNED_SYSROOTS.flatMap((x) => x.debs)) {
  const file = join(SYSROOT_DEBS, deb.path);
  if (existsSync(file)) accel(['store', 'put', file]);
}
const r = accel(
  [
    '--json',
    'conda',
    'build',
    '--all',
    set,
    '--target-platform',
    'linux-aarch64',
    '--channel',
    built,
    '--jobs',
    process.env.JOBS ?? '2',
    '--source',
    `googletest=${source}`,
  ],
  'inherit',
);
const result = r.stdout ? (JSON.parse(r.stdout) as { results: FeedstockResult[] }).results[0] : undefined;
if (r.status !== 0 || result?.status !== 'built') {
  // Kept for a look: `node src/main.ts --home HOME store get LOG`.
  process.stderr.write(
    `upstream-gtest: the fixture did not build (${result?.error?.message ?? `exit ${r.status}`}); ` +
      `work kept in ${work}${result?.log ? `, log: node src/main.ts --home ${home} store get ${result.log}` : ''}\n`,
  );
  process.exit(1);
}
try {
  for (const p of result.packages.filter((x) => OUTPUTS.includes(x.name))) {
    const added = await addToChannel(channel, join(built, p.subdir, p.filename));
    process.stdout.write(`${added.path}${added.added ? '' : ' (already there)'}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(`\nchannel: ${channel} (serve it as bench/upstream-fixtures.ts says)\n`);
