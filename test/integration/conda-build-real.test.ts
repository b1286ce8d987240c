// Real conda-forge feedstocks (../shared/feedstocks, pinned), built unchanged for linux-aarch64: a subset that
// keeps CI within its time and still covers a repack source override, patches, a split recipe with
// per-output scripts, autotools with build-machine tools, and a dependency (ncurses → readline). The sources
// are Debian's orig tarballs, which .ci/run downloads with get-sources before the tests. They link against the
// pinned Debian 11 sysroot (glibc 2.31), whose .debs .ci/run downloads too (test/sysroot-debs.ts) and a
// loopback upstream serves. The whole set is `npm run check:feedstocks`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildArgs,
  elfMachines,
  FEEDSTOCK_SOURCES,
  linkFeedstocks,
  missingSources,
  SHARED_FEEDSTOCKS,
  solveWithRattler,
  sysrootGlibc,
} from '../feedstock-set.ts';
import { runAccel, tempDir, testNeeding } from '../helpers.ts';
import { missingDebs, SYSROOT_DEBS, serveDebs } from '../sysroot-debs.ts';
import { CROSS_BUILD_TOOLS, okJson, type ResultJson, statuses } from './conda-build-harness.ts';

/** Every test here runs the cross toolchain, autoreconf, libtoolize, pkg-config, cmake, perl, patch: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS, 'autoreconf', 'libtoolize', 'pkg-config', 'cmake', 'perl', 'patch');

// yaml and libedit are rattler-build recipes (recipe.yaml): libedit builds on ncurses from the meta.yaml set.
const SUBSET = ['zlib', 'bzip2', 'lz4-c', 'ncurses', 'readline', 'yaml', 'libedit'];
const missing = existsSync(SHARED_FEEDSTOCKS) ? missingSources(SUBSET) : SUBSET;
const debsMissing = missingDebs();
const skip =
  missing.length > 0
    ? `the feedstocks' sources are not in ${FEEDSTOCK_SOURCES}: run ${join(SHARED_FEEDSTOCKS, 'get-sources')} ${FEEDSTOCK_SOURCES} ${missing.join(' ')}`
    : debsMissing.length > 0
      ? `the pinned sysroot's .debs are not in ${SYSROOT_DEBS}: run node test/sysroot-debs.ts`
      : false;

/** The Debian archive's loopback stand-in, serving the pinned sysroot's .debs. */
type Archive = Awaited<ReturnType<typeof serveDebs>>;

function build(home: string, channel: string, set: string, names: string[], debs: Archive) {
  return runAccel([...buildArgs(home, channel, set, names), '--allow', debs.host], {
    env: { ACCEL_CONDA_SYSROOT: 'pinned', ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive },
  });
}

/** The packages the issue holds to glibc 2.17 (bzip2, zlib, lz4-c, each output). */
const FLOOR_217 = ['bzip2', 'libzlib', 'zlib', 'lz4-c'];

test('real conda-forge feedstocks build unchanged for linux-aarch64 and pass their own tests under qemu; only aarch64 code; rattler solves them; the same inputs give the same bytes', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-real-');
  const set = linkFeedstocks(join(dir, 'feedstocks'), SUBSET);
  const channel = join(dir, 'channel');
  const debs = await serveDebs(t);
  const r = await build(join(dir, 'home'), channel, set, SUBSET, debs);
  const out = okJson(r);
  assert.deepEqual(statuses(out), {
    bzip2: 'built',
    libedit: 'built',
    'lz4-c': 'built',
    ncurses: 'built',
    readline: 'built',
    yaml: 'built',
    zlib: 'built',
  });
  // zlib's Debian tarball is a repack (relation=repack): the override is said, never silent.
  assert.match(r.stderr.toString(), /warning: zlib: source http:\/\/zlib\.net\/zlib-[\d.]+\.tar\.gz replaced by /);

  const packages = out.results.flatMap((x) => x.packages);
  const names = packages.map((p) => p.name).sort();
  for (const want of ['bzip2', 'libzlib', 'zlib', 'lz4-c', 'lz4-c-static', 'ncurses', 'readline', 'yaml', 'libedit']) {
    assert.ok(names.includes(want), `${want} in ${names.join(' ')}`);
  }
  let elves = 0;
  for (const p of packages) {
    for (const e of elfMachines(join(channel, p.subdir, p.filename), dir)) {
      assert.equal(e.machine, 'AArch64', `${p.filename}: ${e.file}`);
      // Built against glibc 2.31: nothing the code does not use comes in from a newer libc.
      const limit = FLOOR_217.includes(p.name) ? '2.17' : '2.28';
      assert.ok(
        e.glibc === null || e.glibc.localeCompare(limit, 'en', { numeric: true }) <= 0,
        `${p.filename}: ${e.file} needs GLIBC_${e.glibc}`,
      );
      elves++;
    }
  }
  assert.ok(elves > 20, `${elves} ELF files checked`);
  // Every output ran its tests under qemu, on the pinned glibc 2.31 (QEMU_LD_PREFIX: the sysroot).
  for (const x of out.results as { feedstock: string; tests?: { run: number } }[]) {
    if (FLOOR_217.includes(x.feedstock)) assert.ok((x.tests?.run ?? 0) > 0, `${x.feedstock} ran its tests`);
  }

  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const readline = Object.values(repodata['packages.conda']).find(
    (x) => (x as { name: string }).name === 'readline',
  ) as {
    depends: string[];
  };
  assert.ok(
    readline.depends.some((d) => d.startsWith('ncurses')),
    readline.depends.join(', '),
  );
  assert.ok(readline.depends.some((d) => /^__glibc >=2\.\d+/.test(d)));
  // The v1 recipes: libedit runs on ncurses through ncurses' run_exports, and exports its own pin.
  const record = (name: string) =>
    Object.values(repodata['packages.conda']).find((x) => (x as { name: string }).name === name) as {
      depends: string[];
      version: string;
    };
  assert.ok(
    record('libedit').depends.some((d) => /^ncurses >=6\.4/.test(d)),
    record('libedit').depends.join(', '),
  );
  assert.equal(record('yaml').version, '0.2.5');
  // The floor the issue asks for, in the packages and in the libgcc they depend on (Debian 11's GCC 10 runtime).
  for (const name of FLOOR_217) {
    assert.ok(record(name).depends.includes('__glibc >=2.17,<3.0.a0'), `${name}: ${record(name).depends.join(', ')}`);
  }
  assert.ok(record('libzlib').depends.includes('libgcc >=10'), record('libzlib').depends.join(', '));
  assert.ok(record('libgcc').depends.includes('__glibc >=2.17,<3.0.a0'), record('libgcc').depends.join(', '));

  const solved = await solveWithRattler(channel, [...new Set(names)], sysrootGlibc());
  for (const [spec, answer] of solved) assert.ok(answer.ok, `${spec}: ${JSON.stringify(answer)}`);

  // bzip2 applies patches: the same inputs in another store give byte-identical packages.
  const again = okJson(
    await build(
      join(dir, 'home2'),
      join(dir, 'channel2'),
      linkFeedstocks(join(dir, 'set2'), ['bzip2']),
      ['bzip2'],
      debs,
    ),
  );
  const digest = (j: ResultJson) => j.results.flatMap((x) => x.packages.map((p) => `${p.filename} ${p.sha256}`));
  assert.deepEqual(digest(again), digest({ ...out, results: out.results.filter((x) => x.feedstock === 'bzip2') }));
});
