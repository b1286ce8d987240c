// The pinned old sysroot (Debian 11's arm64 glibc 2.31): its .debs come through accel's mirror from a
// loopback stand-in for the Debian archive into the one store, and a later build needs neither; a program
// that calls a function newer than its variant's c_stdlib_version gets its true floor and a warning naming
// the symbol; its test runs under qemu on the pinned glibc. The .debs are downloaded before the tests by
// .ci/run (test/sysroot-debs.ts); the real feedstocks on that sysroot are in conda-build-real.test.ts. C++ on
// that sysroot compiles against its GCC 10 libstdc++ headers: its binaries need nothing newer than the GCC 10
// runtime it depends on, and its test runs on that runtime and glibc 2.31. The libm functions glibc 2.27 and
// 2.29 gave new symbol versions (pow, exp, log, …) bind their first ones, as on conda-forge's 2.17 sysroot.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PINNED_SYSROOTS } from '../../src/conda/builder/sysroot.ts';
import { elfMachines } from '../feedstock-set.ts';
import { ROOT, runAccel, sha256, tempDir, testNeeding } from '../helpers.ts';
import { startTestMirror } from '../mirror-harness.ts';
import { missingDebs, SYSROOT_DEBS, serveDebs } from '../sysroot-debs.ts';
import { CROSS_BUILD_TOOLS, okJson } from './conda-build-harness.ts';

const test = testNeeding(...CROSS_BUILD_TOOLS);
const FIXTURE = join(ROOT, 'test', 'fixtures', 'glibc-floor-feedstock');
const CXX_FIXTURE = join(ROOT, 'test', 'fixtures', 'cxx-floor-feedstock');
const CXX_FALLBACK = join(ROOT, 'test', 'fixtures', 'cxx-fallback-feedstock');
const LIBM_FIXTURE = join(ROOT, 'test', 'fixtures', 'libm-floor-feedstock');
const MESON_FIXTURE = join(ROOT, 'test', 'fixtures', 'meson-sysroot-feedstock');
const missing = missingDebs();
const skip =
  missing.length === 0 ? false : `the pinned sysroot's .debs are not in ${SYSROOT_DEBS}: run node test/sysroot-debs.ts`;

test('the pinned sysroot comes through accel’s mirror once, later builds are offline; a floor above c_stdlib_version is kept true and warned about, and tests run on glibc 2.31', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-');
  const home = join(dir, 'home');
  const channel = join(dir, 'channel');
  const feedstock = join(dir, 'glibc-floor-feedstock');
  cpSync(FIXTURE, feedstock, { recursive: true });
  mkdirSync(join(dir, 'tmp'));
  const debs = await serveDebs(t);
  // The mirror serves from the builder's own store: what it fetched, the builder finds there.
  const mirror = await startTestMirror(t, { home, allow: [debs.host] });
  const build = () =>
    runAccel(
      [
        '--home',
        home,
        '--json',
        'conda',
        'build',
        feedstock,
        '--target-platform',
        'linux-aarch64',
        '--channel',
        channel,
      ],
      {
        env: {
          ACCEL_CONDA_SYSROOT: 'pinned',
          ACCEL_CONDA_MIRROR: mirror.base,
          ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive,
          TMPDIR: join(dir, 'tmp'),
        },
      },
    );
  const first = await build();
  const out = okJson(first);
  assert.equal(out.results[0]?.status, 'built', first.stderr);
  // Each pinned .deb crossed the upstream once, asked for by the mirror (under /http/<host>/…).
  const pinned = PINNED_SYSROOTS[0]?.debs ?? [];
  assert.deepEqual(debs.requests.sort(), pinned.map((d) => `/debian/${d.path}`).sort());
  for (const d of pinned) assert.ok(mirror.store.has(d.sha256 as never), `${d.name} in the store`);
  // reallocarray is glibc 2.26: the package says so, and the warning names the symbol.
  assert.match(
    first.stderr,
    /warning: glibc-floor: needs glibc 2\.26, above its variant's c_stdlib_version 2\.17 .*bin\/glibc-floor: reallocarray@GLIBC_2\.26/,
  );
  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const records = Object.values(repodata['packages.conda']) as { name: string; version: string; depends: string[] }[];
  const record = (name: string) => records.find((r) => r.name === name);
  assert.ok(record('glibc-floor')?.depends.includes('__glibc >=2.26,<3.0.a0'), JSON.stringify(record('glibc-floor')));
  // The runtime it depends on is the sysroot's GCC 10 libgcc_s, whose floor is 2.17.
  assert.ok(record('glibc-floor')?.depends.includes('libgcc >=10'));
  assert.equal(record('libgcc')?.version, '10.2.1');
  assert.ok(record('libgcc')?.depends.includes('__glibc >=2.17,<3.0.a0'), JSON.stringify(record('libgcc')));
  // Its test (`glibc-floor | grep -x "glibc 2.31"`) ran and passed: the program ran on the pinned glibc.
  assert.deepEqual((out.results[0] as { tests?: unknown }).tests, { run: 1, cached: 0 });

  // Offline: the mirror and the archive are gone; a new build (build number 1) takes the .debs from the store.
  // Its variant names no c_stdlib_version (as giflib's, glog's and ncurses' do): it is built for conda-forge's
  // default, 2.17, and held to it.
  await mirror.close();
  await debs.stop();
  const meta = join(feedstock, 'recipe', 'meta.yaml');
  writeFileSync(meta, readFileSync(meta, 'utf8').replace('number: 0', 'number: 1'));
  const config = join(feedstock, 'recipe', 'conda_build_config.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/c_stdlib_version:\n.*\n/, ''));
  const second = await build();
  const again = okJson(second);
  assert.equal(again.results[0]?.status, 'built', second.stderr);
  assert.equal(debs.requests.length, pinned.length);
  assert.match(
    second.stderr,
    /warning: glibc-floor: needs glibc 2\.26, above conda-forge's default c_stdlib_version 2\.17 \(the variant names none\) .*reallocarray@GLIBC_2\.26/,
  );
});

test('an archive that serves other bytes than a pinned .deb fails the build, naming it, and nothing is stored', async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-bad-');
  const home = join(dir, 'home');
  mkdirSync(join(dir, 'tmp'));
  // A tampered archive (or a mirror in the middle): an ar archive, but not the pinned bytes.
  const evil = Buffer.from('!<arch>\nnot the pinned package\n');
  const server = createServer((_req, res) => res.writeHead(200).end(evil));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const args = ['--home', home, '--json', 'conda', 'build', FIXTURE, '--target-platform', 'linux-aarch64'];
  const r = await runAccel([...args, '--channel', join(dir, 'channel'), '--allow', host], {
    env: {
      ACCEL_CONDA_SYSROOT: 'pinned',
      ACCEL_CONDA_DEBIAN_ARCHIVE: `http://${host}/debian`,
      TMPDIR: join(dir, 'tmp'),
    },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /libc6-arm64-cross_2\.31-9cross4: does not match its pinned sha256 .*\[ACCEL_CONDA_SYSROOT_FETCH\]/,
  );
  const digest = sha256(evil);
  assert.equal(existsSync(join(home, 'blobs', 'sha256', digest.slice(0, 2), digest)), false);
  assert.equal(existsSync(join(dir, 'channel', 'linux-aarch64', 'repodata.json')), false);
});

test('C++ on the pinned sysroot: GCC 10’s libstdc++ headers, every ELF needs GLIBC_2.17 and GLIBCXX ≤ 3.4.28, it depends on libstdcxx 10.2.1 (floor 2.18), and its test runs on that runtime and glibc 2.31 although the channel holds gcc 12’s', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-cxx-');
  const home = join(dir, 'home');
  const channel = join(dir, 'channel');
  const feedstock = join(dir, 'cxx-floor-feedstock');
  cpSync(CXX_FIXTURE, feedstock, { recursive: true });
  mkdirSync(join(dir, 'tmp'));
  const debs = await serveDebs(t);
  const build = (sysroot: string, ...more: string[]) =>
    runAccel(
      [
        ...['--home', home, '--json', 'conda', 'build'],
        ...['--target-platform', 'linux-aarch64', '--channel', channel, '--allow', debs.host, ...more],
      ],
      {
        env: { ACCEL_CONDA_SYSROOT: sysroot, ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive, TMPDIR: join(dir, 'tmp') },
      },
    );
  // First against the machine's libc (untested: its test wants glibc 2.31): the channel gets gcc 12's runtime,
  // libgcc/libstdcxx 12.2.0, whose libraries need glibc 2.35 and 2.36 and would not load on 2.31.
  const machine = await build('machine', feedstock, '--test', 'skip');
  assert.equal(okJson(machine).results[0]?.status, 'built', machine.stderr);
  const meta = join(feedstock, 'recipe', 'meta.yaml');
  writeFileSync(meta, readFileSync(meta, 'utf8').replace('number: 0', 'number: 1'));
  const pinned = await build('pinned', feedstock);
  const out = okJson(pinned);
  assert.equal(out.results[0]?.status, 'built', pinned.stderr);
  // Built on the pinned sysroot, not fallen back to the machine's libc.
  assert.doesNotMatch(pinned.stderr, /machine's libc instead|warning: cxx-floor/);
  // Its test (`cxx-floor one two | grep -x "glibc 2.31: …"`) ran and passed: threads, an exception thrown
  // across libwords.so, thread_local, on the pinned glibc with libstdcxx 10.2.1 from the test environment.
  assert.deepEqual((out.results[0] as { tests?: unknown }).tests, { run: 1, cached: 0 });

  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const records = Object.entries(repodata['packages.conda']).map(([filename, r]) => ({
    filename,
    ...(r as { name: string; version: string; build_number: number; depends: string[] }),
  }));
  const versions = (name: string) => records.filter((r) => r.name === name).map((r) => r.version);
  assert.deepEqual(versions('libstdcxx').sort(), ['10.2.1', '12.2.0']);
  const runtime = records.find((r) => r.name === 'libstdcxx' && r.version === '10.2.1');
  assert.ok(runtime?.depends.includes('__glibc >=2.18,<3.0.a0'), JSON.stringify(runtime));
  const gcc12 = records.find((r) => r.name === 'libstdcxx' && r.version === '12.2.0');
  assert.ok(gcc12?.depends.includes('__glibc >=2.36,<3.0.a0'), JSON.stringify(gcc12));
  const pkg = records.find((r) => r.name === 'cxx-floor' && r.build_number === 1);
  assert.ok(pkg, JSON.stringify(records));
  assert.ok(pkg.depends.includes('__glibc >=2.17,<3.0.a0'), JSON.stringify(pkg));
  assert.ok(pkg.depends.includes('libstdcxx >=10'), JSON.stringify(pkg));

  // By readelf, not by accel: every ELF needs GLIBC_2.17 at most and nothing of libstdc++ newer than GCC 10's.
  const elves = elfMachines(join(channel, 'linux-aarch64', pkg.filename), dir);
  assert.deepEqual(elves.map((e) => e.file).sort(), ['bin/cxx-floor', 'lib/libwords.so']);
  for (const e of elves) {
    assert.equal(e.glibc, '2.17', `${e.file} needs GLIBC_${e.glibc}`);
    const needs = execFileSync('readelf', ['-V', '-W', join(dir, `x-${pkg.filename}`, e.file)], { encoding: 'utf8' });
    const glibcxx = [...needs.matchAll(/Name: GLIBCXX_3\.4(?:\.(\d+))?/g)].map((m) => Number(m[1] ?? 0));
    assert.ok(glibcxx.length > 0, `${e.file} uses libstdc++`);
    assert.ok(Math.max(...glibcxx) <= 28, `${e.file} needs GLIBCXX_3.4.${Math.max(...glibcxx)}`);
  }
});

test('C++ that needs more of libstdc++ than GCC 10’s headers have is built against the machine’s libc, with a warning, and keeps its true floor', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-cxx-fallback-');
  const channel = join(dir, 'channel');
  mkdirSync(join(dir, 'tmp'));
  const debs = await serveDebs(t);
  const args = ['--home', join(dir, 'home'), '--json', 'conda', 'build', CXX_FALLBACK];
  const r = await runAccel(
    [...args, '--target-platform', 'linux-aarch64', '--channel', channel, '--allow', debs.host],
    {
      env: { ACCEL_CONDA_SYSROOT: 'pinned', ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive, TMPDIR: join(dir, 'tmp') },
    },
  );
  const out = okJson(r);
  assert.equal(out.results[0]?.status, 'built', r.stderr);
  assert.match(
    r.stderr,
    /warning: cxx-fallback: C\+\+ that does not build against the pinned sysroot's GCC 10 libstdc\+\+ \(.*build\.sh failed.*\): built against the machine's libc instead/,
  );
  assert.match(
    r.stderr,
    /warning: cxx-fallback: needs glibc 2\.3\d, above its variant's c_stdlib_version 2\.17 .*GLIBC_2\.3\d/,
  );
  // Its test (`cxx-fallback | grep -x "latched 3"`) ran, on the machine's glibc with gcc 12's libstdc++.
  assert.deepEqual((out.results[0] as { tests?: unknown }).tests, { run: 1, cached: 0 });
  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const records = Object.values(repodata['packages.conda']) as { name: string; version: string; depends: string[] }[];
  const pkg = records.find((p) => p.name === 'cxx-fallback');
  assert.ok(pkg?.depends.includes('libstdcxx >=12'), JSON.stringify(pkg));
  assert.ok(
    pkg?.depends.some((d) => /^__glibc >=2\.3\d,<3\.0\.a0$/.test(d)),
    JSON.stringify(pkg),
  );
});

test('libm’s re-versioned functions (pow, exp, log, … and their float forms) bind GLIBC_2.17 on the pinned glibc 2.31, from C and C++; an assembler source builds, a program that calls none gains none, and the results under qemu are right', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-libm-');
  const channel = join(dir, 'channel');
  mkdirSync(join(dir, 'tmp'));
  const debs = await serveDebs(t);
  const args = ['--home', join(dir, 'home'), '--json', 'conda', 'build', LIBM_FIXTURE];
  const r = await runAccel(
    [...args, '--target-platform', 'linux-aarch64', '--channel', channel, '--allow', debs.host],
    {
      env: { ACCEL_CONDA_SYSROOT: 'pinned', ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive, TMPDIR: join(dir, 'tmp') },
    },
  );
  const out = okJson(r);
  assert.equal(out.results[0]?.status, 'built', r.stderr);
  // Its floor is conda-forge's default: nothing to warn about (2.29 from pow@GLIBC_2.29 otherwise).
  assert.doesNotMatch(r.stderr, /warning: libm-floor/);
  // Its tests ran under qemu on glibc 2.31: the C program printed 42 from answer.S and libm's values for 2.5
  // (the machine's own libm gives the same digits), the C++ one std::pow's and std::log's, no-libm its line.
  assert.deepEqual((out.results[0] as { tests?: unknown }).tests, { run: 1, cached: 0 });
  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const [file, pkg] = Object.entries(repodata['packages.conda']).find(
    ([, p]) => (p as { name: string }).name === 'libm-floor',
  ) as [string, { depends: string[] }];
  assert.ok(pkg.depends.includes('__glibc >=2.17,<3.0.a0'), JSON.stringify(pkg));

  // By readelf, not by accel.
  const elves = elfMachines(join(channel, 'linux-aarch64', file), dir);
  assert.deepEqual(elves.map((e) => e.file).sort(), ['bin/libm-floor', 'bin/libm-floor-cxx', 'bin/no-libm']);
  for (const e of elves) assert.equal(e.glibc, '2.17', `${e.file} needs GLIBC_${e.glibc}`);
  const libm = ['exp', 'exp2', 'log', 'log2', 'pow', 'expf', 'exp2f', 'logf', 'log2f', 'powf'];
  const refs = (bin: string) => {
    const syms = execFileSync('readelf', ['--dyn-syms', '-W', join(dir, `x-${file}`, 'bin', bin)], {
      encoding: 'utf8',
    });
    return [...syms.matchAll(/ UND (\w+)@(GLIBC_[\d.]+)/g)]
      .filter((m) => libm.includes(m[1] as string))
      .map((m) => `${m[1]}@${m[2]}`)
      .sort();
  };
  assert.deepEqual(refs('libm-floor'), libm.map((f) => `${f}@GLIBC_2.17`).sort());
  assert.deepEqual(refs('libm-floor-cxx'), ['log@GLIBC_2.17', 'pow@GLIBC_2.17']);
  assert.deepEqual(refs('no-libm'), []);
});

test('a meson build on the pinned sysroot keeps GCC’s own headers (stddef.h, stdarg.h, arm_neon.h) though meson drops -isystem for default directories: C and C++ build there, floor 2.17, tested under qemu', {
  skip,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-sysroot-meson-');
  const channel = join(dir, 'channel');
  mkdirSync(join(dir, 'tmp'));
  const debs = await serveDebs(t);
  const args = ['--home', join(dir, 'home'), '--json', 'conda', 'build', MESON_FIXTURE];
  const r = await runAccel(
    [...args, '--target-platform', 'linux-aarch64', '--channel', channel, '--allow', debs.host],
    {
      env: { ACCEL_CONDA_SYSROOT: 'pinned', ACCEL_CONDA_DEBIAN_ARCHIVE: debs.archive, TMPDIR: join(dir, 'tmp') },
    },
  );
  const out = okJson(r);
  assert.equal(out.results[0]?.status, 'built', r.stderr);
  // Built on the pinned sysroot, not on the machine's libc after a failure there.
  assert.doesNotMatch(r.stderr, /built against the machine's libc instead/);
  assert.deepEqual((out.results[0] as { tests?: unknown }).tests, { run: 1, cached: 0 });
  const repodata = JSON.parse(readFileSync(join(channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const [file, pkg] = Object.entries(repodata['packages.conda']).find(
    ([, p]) => (p as { name: string }).name === 'meson-sysroot',
  ) as [string, { depends: string[] }];
  assert.ok(pkg.depends.includes('__glibc >=2.17,<3.0.a0'), JSON.stringify(pkg));
  const elves = elfMachines(join(channel, 'linux-aarch64', file), dir);
  assert.deepEqual(
    elves.map((e) => `${e.file} ${e.glibc}`),
    ['bin/sysroot-probe 2.17'],
  );
});
