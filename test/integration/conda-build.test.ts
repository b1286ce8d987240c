import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleSolve } from '@conda-org/rattler';
import { elfMachine } from '../../src/conda/builder/elf.ts';
import { installCondaPackage } from '../../src/conda/pkg/install.ts';
import { checkCondaPackage, readCondaPackage } from '../../src/conda/pkg/read.ts';
import { sysrootGlibc, writeTargetSystem } from '../feedstock-set.ts';
import { runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';
import {
  type BuildRun,
  CROSS_BUILD_TOOLS,
  condaBuild,
  copyFeedstocks,
  okJson,
  type ResultJson,
  startUpstream,
  statuses,
} from './conda-build-harness.ts';

/** Every test here runs the cross toolchain: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS);

const EM_AARCH64 = 183;
const QEMU = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];

/** The toolchain's runtime packages in the channel (libgcc, libgcc-ng, libstdcxx, libstdcxx-ng), sorted. */
function runtimePackages(channel: string): string[] {
  return readdirSync(join(channel, 'linux-aarch64'))
    .filter((f) => /^lib(gcc|stdcxx)(-ng)?-\d/.test(f))
    .map((f) => `linux-aarch64/${f}`)
    .sort();
}

function packageFiles(channel: string): string[] {
  return ['linux-aarch64', 'noarch'].flatMap((s) => {
    try {
      return readdirSync(join(channel, s))
        .filter((f) => f.endsWith('.conda'))
        .map((f) => join(channel, s, f));
    } catch {
      return [];
    }
  });
}

function digests(j: ResultJson): Record<string, string> {
  return Object.fromEntries(j.results.flatMap((r) => r.packages.map((p) => [p.filename, p.sha256])));
}

test('the example graph cross-builds for linux-aarch64, runs under qemu, rattler solves it, skips when unchanged, rebuilds what an edit touches, offline', async (t) => {
  const dir = tempDir(t, 'accel-conda-build-');
  const feedstocks = copyFeedstocks(dir);
  const upstream = await startUpstream(t);
  const run: BuildRun = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };

  // Cold: everything builds, in dependency order, with host requirements from the channel.
  const cold = okJson(await condaBuild(run, ['--all', feedstocks, '--jobs', '2']));
  assert.deepEqual(statuses(cold), { 'greet-data': 'built', hello: 'built', libgreet: 'built', libshout: 'built' });
  const files = packageFiles(run.channel).map((f) => f.slice(run.channel.length + 1));
  assert.deepEqual(
    files.sort(),
    [
      'linux-aarch64/hello-1.0.0-hd92aec2_0.conda',
      ...runtimePackages(run.channel),
      'linux-aarch64/libgreet-1.2.0-hbb08499_0.conda',
      'linux-aarch64/libgreet-devel-1.2.0-hbb08499_0.conda',
      'linux-aarch64/libshout-0.3.1-h34ee94e_1.conda',
      'noarch/greet-data-2024.1-hbf21a9e_0.conda',
    ].sort(),
  );
  assert.equal(runtimePackages(run.channel).length, 4, 'libgcc, libgcc-ng, libstdcxx, libstdcxx-ng');
  for (const f of packageFiles(run.channel)) await checkCondaPackage(f);
  const repodata = JSON.parse(readFileSync(join(run.channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  // Its own run requirements, the host libraries' run_exports, the compiler's runtime (libgcc at the cross
  // gcc's major version) and the glibc its binary needs (the sysroot's, newer than the variant's 2.17).
  const major = (await runCommand('aarch64-linux-gnu-gcc', ['-dumpversion'])).stdout.toString().trim();
  const depends: string[] = repodata['packages.conda']['hello-1.0.0-hd92aec2_0.conda'].depends;
  assert.deepEqual(
    depends.filter((d) => !d.startsWith('__glibc')),
    ['greet-data', `libgcc >=${major.split('.')[0]}`, 'libgreet >=1.2.0,<1.3.0a0', 'libshout >=0.3.1,<0.4.0a0'],
  );
  assert.match(depends.find((d) => d.startsWith('__glibc')) ?? '', /^__glibc >=2\.(3[4-9]|[4-9]\d),<3\.0\.a0$/);

  // The libraries and the program are aarch64 ELF files.
  const elf = async (pkg: string, path: string) => {
    const member = (await readCondaPackage(join(run.channel, 'linux-aarch64', pkg))).pkg.find((m) => m.name === path);
    assert.ok(member, `${path} in ${pkg}`);
    return member.data.readUInt16LE(18);
  };
  assert.equal(await elf('libgreet-1.2.0-hbb08499_0.conda', 'lib/libgreet.so.1'), EM_AARCH64);
  assert.equal(await elf('libshout-0.3.1-h34ee94e_1.conda', 'lib/libshout.so.0'), EM_AARCH64);
  assert.equal(await elf('hello-1.0.0-hd92aec2_0.conda', 'bin/hello'), EM_AARCH64);

  // Installed into a new prefix (placeholders replaced), the program runs under qemu and uses both libraries.
  const prefix = join(dir, 'env');
  for (const f of packageFiles(run.channel)) await installCondaPackage(f, prefix);
  assert.equal(elfMachine(join(prefix, 'bin', 'hello')), EM_AARCH64);
  const version = await runCommand(QEMU[0] as string, [...QEMU.slice(1), join(prefix, 'bin', 'hello'), '--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.toString().trim(), 'hello 1.0.0 (libgreet 1.2.0, libshout 0.3.1)');
  const loud = await runCommand(QEMU[0] as string, [...QEMU.slice(1), join(prefix, 'bin', 'hello'), '--loud', 'arm']);
  assert.equal(loud.stdout.toString().trim(), 'HELLO, ARM!');
  assert.equal(upstream.requests.length, 4, 'each source downloaded once');

  // An independent solver (rattler) resolves the CLI with its dependencies from the channel as
  // `accel mirror serve` serves it.
  const mirrorHome = join(dir, 'mirror-home');
  mkdirSync(mirrorHome);
  const target = writeTargetSystem(join(dir, 'target-system'), sysrootGlibc());
  writeFileSync(
    join(mirrorHome, 'config.json'),
    JSON.stringify({ mirror: { condaChannels: { local: run.channel, target } } }),
  );
  const mirror = await serveCli(t, mirrorHome);
  const channels = [`${mirror.base}/conda/local`, `${mirror.base}/conda/target`];
  const solved = await simpleSolve(['hello'], channels, ['linux-aarch64', 'noarch'], []);
  const gcc = (await runCommand('aarch64-linux-gnu-gcc', ['-dumpfullversion'])).stdout.toString().trim();
  assert.deepEqual(solved.map((p) => `${p.packageName}=${p.version}`).sort(), [
    `__glibc=${sysrootGlibc()}`,
    'greet-data=2024.1',
    'hello=1.0.0',
    `libgcc=${gcc}`,
    'libgreet=1.2.0',
    'libshout=0.3.1',
  ]);

  // Reproducible: another store and channel, the same inputs, the same bytes.
  const again = okJson(
    await condaBuild({ ...run, home: join(dir, 'home2'), channel: join(dir, 'channel2') }, ['--all', feedstocks]),
  );
  assert.deepEqual(digests(again), digests(cold));

  // No-op: every feedstock is a store hit; nothing is downloaded.
  const noop = okJson(await condaBuild(run, ['--all', feedstocks]));
  assert.deepEqual(statuses(noop), {
    'greet-data': 'skipped',
    hello: 'skipped',
    libgreet: 'skipped',
    libshout: 'skipped',
  });
  assert.equal(upstream.requests.length, 8, 'the no-op run downloads nothing');

  // An edit to libgreet's recipe rebuilds it and its dependents only, from sources in the store with the
  // upstream stopped.
  await upstream.stop();
  appendFileSync(join(feedstocks, 'libgreet-feedstock', 'recipe', 'meta.yaml'), '\n# edited\n');
  const edited = okJson(await condaBuild(run, ['--all', feedstocks]));
  assert.deepEqual(statuses(edited), { 'greet-data': 'skipped', hello: 'built', libgreet: 'built', libshout: 'built' });
  const before = digests(cold);
  const after = digests(edited);
  assert.notEqual(after['libgreet-1.2.0-hbb08499_0.conda'], before['libgreet-1.2.0-hbb08499_0.conda']);
  assert.equal(after['greet-data-2024.1-hbf21a9e_0.conda'], before['greet-data-2024.1-hbf21a9e_0.conda']);
  const published = JSON.parse(readFileSync(join(run.channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  assert.equal(
    published['packages.conda']['libgreet-1.2.0-hbb08499_0.conda'].sha256,
    after['libgreet-1.2.0-hbb08499_0.conda'],
  );

  // The history lists every build with its log in the store.
  const builds = await runAccel(['--home', run.home, '--json', 'conda', 'builds', '--limit', '100']);
  assert.equal(builds.code, 0, builds.stderr);
  const entries = JSON.parse(builds.stdout.toString()) as { feedstock: string; status: string; log: string }[];
  assert.equal(entries.length, 12);
  assert.deepEqual(
    entries
      .slice(0, 4)
      .map((e) => `${e.feedstock} ${e.status}`)
      .sort(),
    ['greet-data skipped', 'hello built', 'libgreet built', 'libshout built'],
  );
  // --jobs 2: libgreet and greet-data (both without dependencies) built at the same time in the cold run.
  const coldRun = entries.slice(-4);
  const span = (name: string) => {
    const e = coldRun.find((x) => x.feedstock === name) as (typeof entries)[number] & {
      started: string;
      seconds: number;
    };
    const start = Date.parse(e.started);
    return { start, end: start + e.seconds * 1000 };
  };
  const [a, b] = [span('libgreet'), span('greet-data')];
  assert.ok(a.start < b.end && b.start < a.end, 'the two ready feedstocks overlapped');
  // The cold build ran hello's tests; after the edit (a comment: libgreet's files are the same) nothing its
  // tests can see changed, and they were not run again.
  const logOf = async (e: (typeof entries)[number] | undefined) =>
    (await runAccel(['--home', run.home, 'store', 'get', e?.log as string])).stdout.toString();
  const helloBuilds = entries.filter((e) => e.feedstock === 'hello' && e.status === 'built');
  assert.match(await logOf(helloBuilds.at(-1)), /HELLO, WORLD!/);
  const rebuilt = await logOf(helloBuilds[0]);
  assert.match(rebuilt, /== test hello-1\.0\.0-\w+: passed before with the same inputs/);
  assert.doesNotMatch(rebuilt, /HELLO, WORLD!/);
});
