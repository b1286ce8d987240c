// Real conda-forge feedstocks (../shared/feedstocks, pinned), built unchanged for linux-aarch64: a subset that
// keeps CI within its time and still covers a repack source override, patches, a split recipe with
// per-output scripts, autotools with build-machine tools, and a dependency (ncurses → readline). The sources
// are Debian's orig tarballs, which .ci/run downloads with get-sources before the tests. They link against the
// pinned Debian 11 sysroot (glibc 2.31), whose .debs .ci/run downloads too (test/sysroot-debs.ts) and a
// loopback upstream serves. The whole set is `npm run check:feedstocks`.
import assert from 'node:assert/strict';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleSolve } from '@conda-org/rattler';
import { readChannel } from '../../src/conda/builder/channel-packages.ts';
import { addToChannel } from '../../src/conda/pkg/channel-index.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { startFakeUpstream } from '../fake-upstream.ts';
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
import { ROOT, runAccel, tempDir, testNeeding } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';
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

/** The channel the first test built: the next one serves part of it as an upstream channel. */
let built: string | undefined;

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
  // The next test serves part of this channel as an upstream: a copy outlives this test's directory.
  built = mkdtempSync(join(tmpdir(), 'accel-conda-real-channel-'));
  cpSync(channel, built, { recursive: true });
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

/** A package written for the upstream channel, standing in for one of conda-forge's (build string says so). */
async function fixturePackage(
  dir: string,
  index: { name: string; version: string; subdir: string; noarch?: 'generic' },
  files: Record<string, { data: Buffer | string; mode?: number }>,
): Promise<string> {
  const prefix = join(dir, 'fixtures', index.name);
  for (const [rel, f] of Object.entries(files)) {
    mkdirSync(join(prefix, rel, '..'), { recursive: true });
    writeFileSync(join(prefix, rel), f.data);
    if (f.mode) chmodSync(join(prefix, rel), f.mode);
  }
  const pkg = await writeCondaPackage({
    prefix,
    files: Object.keys(files),
    index: { ...index, build: 'accel_fixture_0', build_number: 0, depends: [], timestamp: 0, license: 'MIT' },
    about: { summary: `a test fixture standing in for an upstream's ${index.name}` },
    placeholder: prefix,
    outDir: join(dir, 'fixtures', 'out'),
  });
  return pkg.path;
}

test('against an upstream channel through accel mirror: readline and libedit build on its ncurses without building it, a test takes ca-certificates and the build a newer make from it; offline after once; --skip-existing builds nothing it has; rattler solves the union', {
  skip,
}, async (t) => {
  assert.ok(built, 'the test above builds the packages that this one serves as an upstream channel');
  const kept = built;
  t.after(() => rmSync(kept, { recursive: true, force: true }));
  const dir = tempDir(t, 'accel-conda-upstream-');
  // The upstream: accel's zlib and ncurses with the runtime they depend on, and two fixtures named as such.
  const up = join(dir, 'upstream');
  const keep = new Set(['zlib', 'libzlib', 'ncurses', 'libgcc', 'libstdcxx', 'libgcc-ng', 'libstdcxx-ng']);
  for (const p of readChannel(kept, ['linux-aarch64', 'noarch'])) if (keep.has(p.name)) await addToChannel(up, p.path);
  const bundle = readFileSync('/etc/ssl/certs/ca-certificates.crt');
  await addToChannel(
    up,
    await fixturePackage(
      dir,
      { name: 'ca-certificates', version: '2026.11.18', subdir: 'noarch', noarch: 'generic' },
      {
        'ssl/cacert.pem': { data: bundle },
      },
    ),
  );
  // A build tool of the build platform, newer than the machine's make 4.3: it says its version, and runs make.
  const make =
    '#!/bin/sh\nif [ "$1" = --version ]; then echo "GNU Make 4.4.1 (accel test fixture)"; exit 0; fi\nexec /usr/bin/make "$@"\n';
  await addToChannel(
    up,
    await fixturePackage(
      dir,
      { name: 'make', version: '4.4.1', subdir: 'linux-64' },
      { 'bin/make': { data: make, mode: 0o755 } },
    ),
  );
  const upstream = await startFakeUpstream();
  t.after(() => upstream.close());
  for (const subdir of readdirSync(up)) {
    for (const f of readdirSync(join(up, subdir)))
      upstream.files.set(`/cf/${subdir}/${f}`, { body: readFileSync(join(up, subdir, f)) });
  }
  const upstreamUrl = `http://${upstream.origin}/cf`;
  const ncursesFile = readChannel(up, ['linux-aarch64']).find((p) => p.name === 'ncurses')?.filename as string;

  const debs = await serveDebs(t);
  const channel = join(dir, 'channel');
  const mirrorHome = join(dir, 'mirror-home');
  mkdirSync(mirrorHome);
  writeFileSync(
    join(mirrorHome, 'config.json'),
    JSON.stringify({ mirror: { allow: [upstream.origin, debs.host], condaChannels: { local: channel } } }),
  );
  const mirror = await serveCli(t, mirrorHome);
  const home = join(dir, 'home');
  const set = linkFeedstocks(join(dir, 'set'), ['readline', 'libedit']);
  symlinkSync(join(ROOT, 'test', 'fixtures', 'cacert-user-feedstock'), join(set, 'cacert-user-feedstock'));
  const env = {
    ACCEL_CONDA_SYSROOT: 'pinned',
    ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive,
    ACCEL_CONDA_MIRROR: mirror.base,
  };
  const buildInto = (ch: string, extra: string[] = []) =>
    runAccel([...buildArgs(home, ch, set, ['readline', 'libedit']), '--upstream-channel', upstreamUrl, ...extra], {
      env,
    });

  const first = okJson(await buildInto(channel));
  assert.deepEqual(statuses(first), { 'cacert-user': 'built', libedit: 'built', readline: 'built' });
  const local = readChannel(channel, ['linux-aarch64', 'noarch']);
  assert.ok(!local.some((p) => p.name === 'ncurses'), 'ncurses is not built: it comes from the upstream');
  assert.ok(local.find((p) => p.name === 'readline')?.depends.some((d) => d.startsWith('ncurses')));
  // The upstream was reached through the mirror, once per file.
  assert.equal(upstream.count(`/cf/linux-aarch64/${ncursesFile}`), 1);
  assert.equal(upstream.count('/cf/noarch/ca-certificates-2026.11.18-accel_fixture_0.conda'), 1);
  // The build ran the upstream's make (installed into $BUILD_PREFIX), the test had ca-certificates installed.
  const result = first.results.find((x) => x.feedstock === 'cacert-user') as unknown as {
    log: string;
    tests?: { run: number };
  };
  assert.equal(result.tests?.run, 1);
  const log = await runAccel(['--home', home, 'store', 'get', result.log]);
  assert.match(log.stdout.toString(), /GNU Make 4\.4\.1 \(accel test fixture\)/);
  assert.match(log.stdout.toString(), /ca-certificates-2026\.11\.18-accel_fixture_0\.conda/);

  // The union solves with rattler, both channels through the mirror: readline's ncurses is the upstream's.
  const glibc = {
    url: 'https://virtual.invalid/__glibc-2.31-0.conda',
    packageName: '__glibc',
    version: '2.31',
    build: '0',
    buildNumber: 0,
    filename: '__glibc-2.31-0.conda',
    subdir: 'linux-aarch64',
    depends: [],
  };
  const solved = await simpleSolve(
    ['readline', 'libedit', 'cacert-user'],
    [`${mirror.base}/conda/local`, `${mirror.base}/http/${upstream.origin}/cf`],
    ['linux-aarch64', 'noarch'],
    [glibc],
  );
  const from = (name: string) => solved.find((p) => p.packageName === name)?.url ?? '';
  assert.match(from('ncurses'), /\/cf\/linux-aarch64\//);
  assert.match(from('readline'), /\/conda\/local\//);
  assert.match(from('ca-certificates'), /\/cf\/noarch\//);

  // --skip-existing: what the upstream has (zlib, ncurses, same name-version-build) is not built.
  const have = linkFeedstocks(join(dir, 'have'), ['zlib', 'ncurses']);
  const skipped = okJson(
    await runAccel(
      [
        ...buildArgs(home, join(dir, 'channel-skip'), have, ['zlib', 'ncurses']),
        '--upstream-channel',
        upstreamUrl,
        '--skip-existing',
      ],
      { env },
    ),
  );
  assert.deepEqual(statuses(skipped), { ncurses: 'skipped', zlib: 'skipped' });
  for (const x of skipped.results as { exists?: string[] }[]) {
    assert.ok(
      x.exists?.every((e) => e.endsWith(` in ${upstreamUrl}`)),
      JSON.stringify(x.exists),
    );
  }
  assert.equal(readChannel(join(dir, 'channel-skip'), ['linux-aarch64']).length, 0);

  // Offline: the upstream is gone (the mirror serves what it holds), then the mirror too (the builder's store
  // holds the repodata and the packages): the same builds come out of the store into fresh channels.
  await upstream.close();
  const offline = okJson(await buildInto(join(dir, 'channel-offline')));
  assert.deepEqual(statuses(offline), { 'cacert-user': 'skipped', libedit: 'skipped', readline: 'skipped' });
  mirror.child.kill('SIGTERM');
  await mirror.exited;
  const noMirror = await buildInto(join(dir, 'channel-no-mirror'));
  assert.deepEqual(statuses(okJson(noMirror)), { 'cacert-user': 'skipped', libedit: 'skipped', readline: 'skipped' });
  assert.match(noMirror.stderr.toString(), /the upstream cannot be reached .*: using the repodata fetched /);
  assert.ok(readChannel(join(dir, 'channel-no-mirror'), ['linux-aarch64']).some((p) => p.name === 'readline'));
});
