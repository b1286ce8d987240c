// Real conda-forge feedstocks (../shared/feedstocks, pinned), built unchanged for linux-aarch64: a subset that
// keeps CI within its time and still covers a repack source override, patches, a split recipe with
// per-output scripts, autotools with build-machine tools, and a dependency (ncurses → readline). The sources
// are Debian's orig tarballs, which .ci/run downloads with get-sources before the tests. The whole set is
// `npm run check:feedstocks`.
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
import { CROSS_BUILD_TOOLS, okJson, type ResultJson, statuses } from './conda-build-harness.ts';

/** Every test here runs the cross toolchain, autoreconf, libtoolize, pkg-config, cmake, perl, patch: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS, 'autoreconf', 'libtoolize', 'pkg-config', 'cmake', 'perl', 'patch');

// yaml and libedit are rattler-build recipes (recipe.yaml): libedit builds on ncurses from the meta.yaml set.
const SUBSET = ['zlib', 'bzip2', 'lz4-c', 'ncurses', 'readline', 'yaml', 'libedit'];
const missing = existsSync(SHARED_FEEDSTOCKS) ? missingSources(SUBSET) : SUBSET;
const skip =
  missing.length === 0
    ? false
    : `the feedstocks' sources are not in ${FEEDSTOCK_SOURCES}: run ${join(SHARED_FEEDSTOCKS, 'get-sources')} ${FEEDSTOCK_SOURCES} ${missing.join(' ')}`;

function build(home: string, channel: string, set: string, names: string[]) {
  return runAccel(buildArgs(home, channel, set, names));
}

test('real conda-forge feedstocks build unchanged for linux-aarch64 and pass their own tests under qemu; only aarch64 code; rattler solves them; the same inputs give the same bytes', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-real-');
  const set = linkFeedstocks(join(dir, 'feedstocks'), SUBSET);
  const channel = join(dir, 'channel');
  const r = await build(join(dir, 'home'), channel, set, SUBSET);
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
      elves++;
    }
  }
  assert.ok(elves > 20, `${elves} ELF files checked`);

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

  const solved = await solveWithRattler(channel, [...new Set(names)], sysrootGlibc());
  for (const [spec, answer] of solved) assert.ok(answer.ok, `${spec}: ${JSON.stringify(answer)}`);

  // bzip2 applies patches: the same inputs in another store give byte-identical packages.
  const again = okJson(
    await build(join(dir, 'home2'), join(dir, 'channel2'), linkFeedstocks(join(dir, 'set2'), ['bzip2']), ['bzip2']),
  );
  const digest = (j: ResultJson) => j.results.flatMap((x) => x.packages.map((p) => `${p.filename} ${p.sha256}`));
  assert.deepEqual(digest(again), digest({ ...out, results: out.results.filter((x) => x.feedstock === 'bzip2') }));
});
