// The solver every conda environment goes through (rattler's resolvo, as WebAssembly) and the upstream channels
// it reads: conda's version semantics, strict channel priority, virtual packages, an unsatisfiable request named
// with its chain and the channels searched; repodata (zstd or plain) and packages fetched into the store, checked
// against the sha256 the repodata gives, and used offline when the upstream is gone.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { compareVersions, starBareVersion, versionMatches } from '../../src/conda/builder/match.ts';
import { localChannel, solveEnvironment, stagedChannel, upstreamChannel } from '../../src/conda/solve/solve.ts';
import { UpstreamChannel } from '../../src/conda/solve/upstream.ts';
import { isAccelError } from '../../src/core/errors.ts';
import { createLog } from '../../src/core/log.ts';
import { Store } from '../../src/store/store.ts';
import { startFakeUpstream } from '../fake-upstream.ts';
import { tempDir } from '../helpers.ts';

const TARGET = 'linux-aarch64';
const log = createLog('quiet', () => {});

interface Rec {
  name: string;
  version: string;
  build?: string;
  build_number?: number;
  depends?: string[];
  sha256?: string;
  subdir?: string;
}

function repodata(subdir: string, recs: Rec[]): Buffer {
  const packages: Record<string, object> = {};
  for (const r of recs) {
    const build = r.build ?? `h0_${r.build_number ?? 0}`;
    packages[`${r.name}-${r.version}-${build}.conda`] = {
      name: r.name,
      version: r.version,
      build,
      build_number: r.build_number ?? 0,
      depends: r.depends ?? [],
      sha256: r.sha256 ?? createHash('sha256').update(`${r.name}${r.version}${build}`).digest('hex'),
      subdir,
      timestamp: 0,
    };
  }
  return Buffer.from(JSON.stringify({ info: { subdir }, packages: {}, 'packages.conda': packages }));
}

function channelDir(root: string, name: string, bySubdir: Record<string, Rec[]>): string {
  const dir = join(root, name);
  for (const [subdir, recs] of Object.entries(bySubdir)) {
    mkdirSync(join(dir, subdir), { recursive: true });
    writeFileSync(join(dir, subdir, 'repodata.json'), repodata(subdir, recs));
  }
  return dir;
}

const names = (ps: { name: string; version: string; build: string }[]) =>
  ps.map((p) => `${p.name}=${p.version}=${p.build}`);

test('conda version semantics come from rattler: fuzzy bare versions, pre-releases, alternatives', () => {
  assert.equal(versionMatches('1.2.7', '1.2.*'), true);
  assert.equal(versionMatches('1.20', '1.2.*'), false);
  assert.equal(versionMatches('1.3.0a0', '<1.3'), true, 'a pre-release sorts before its release');
  assert.equal(versionMatches('1.3.0', '>=1.2.0,<1.3.0a0'), false);
  assert.equal(versionMatches('0.9', '>=2|<1'), true);
  assert.equal(versionMatches('1.2.1', '==1.2'), false);
  assert.ok(compareVersions('2.28', '2.3') > 0, 'glibc 2.28 is newer than 2.3');
  assert.ok(compareVersions('2.17', '2.17.0') === 0);
});

test("conda-build's requirement rule: a bare version means that version's series, an exact pin stays exact", () => {
  assert.equal(starBareVersion('zlib 1.3'), 'zlib 1.3.*');
  assert.equal(starBareVersion('libshout 0.3'), 'libshout 0.3.*');
  assert.equal(starBareVersion('zlib >=1.3'), 'zlib >=1.3');
  assert.equal(starBareVersion('gtest 1.13.*'), 'gtest 1.13.*');
  assert.equal(starBareVersion('libgreet 1.2.0 hbb08499_0'), 'libgreet 1.2.0 hbb08499_0');
  assert.equal(starBareVersion('python x.x'), 'python x.x');
  assert.equal(starBareVersion('make'), 'make');
});

test('the solver takes the newest candidates that fit together, follows run dependencies, and knows virtual packages', async (t) => {
  const root = tempDir(t);
  const dir = channelDir(root, 'local', {
    [TARGET]: [
      { name: 'libgreet', version: '1.1.0' },
      { name: 'libgreet', version: '1.2.0' },
      { name: 'libgreet', version: '1.2.0', build_number: 1 },
      { name: 'libgreet', version: '2.0.0' },
      { name: 'libshout', version: '0.3.1', depends: ['libgreet >=1.2.0,<1.3.0a0', '__glibc >=2.17'] },
      { name: 'libshout', version: '0.4.0', depends: ['libgreet >=2', '__glibc >=2.34'] },
    ],
    noarch: [{ name: 'greetdata', version: '2026.1' }],
  });
  const solve = (specs: string[], glibc: string) =>
    solveEnvironment({
      what: 'test',
      specs,
      channels: [localChannel(dir)],
      subdirs: [TARGET, 'noarch'],
      virtual: { __glibc: glibc },
    });
  // On glibc 2.31 libshout 0.4.0 does not install, so its older build and the libgreet it wants are chosen.
  assert.deepEqual(names(await solve(['libshout', 'greetdata'], '2.31')), [
    'greetdata=2026.1=h0_0',
    'libgreet=1.2.0=h0_1',
    'libshout=0.3.1=h0_0',
  ]);
  assert.deepEqual(names(await solve(['libshout'], '2.36')), ['libgreet=2.0.0=h0_0', 'libshout=0.4.0=h0_0']);
  const chosen = await solve(['greetdata'], '2.31');
  assert.equal(chosen[0]?.path, join(dir, 'noarch', 'greetdata-2026.1-h0_0.conda'));
  assert.equal(chosen[0]?.url, undefined, 'a local package has no URL to fetch');

  // Unsatisfiable: the chain of specs, and every channel searched, named.
  const err = await solve(['libshout 0.4.*', 'libgreet 1.1.*'], '2.36').then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isAccelError(err), String(err));
  assert.equal(err.code, 'ACCEL_CONDA_UNSATISFIABLE');
  assert.match(err.message, /libshout 0\.4\.\*/);
  assert.match(err.message, /libgreet/);
  assert.match(
    err.message,
    new RegExp(`channels searched, in priority order: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  );
  assert.doesNotMatch(err.message, /127\.0\.0\.1/, 'the loopback URLs the solver saw are not what the user sees');
  const none = await solve(['nothere >=1'], '2.36').catch((e: unknown) => e as Error);
  assert.match((none as Error).message, /nothere/);
});

test('strict channel priority: a name the first channel has comes from it, even when a later one has newer', async (t) => {
  const root = tempDir(t);
  const local = channelDir(root, 'local', { [TARGET]: [{ name: 'zlib', version: '1.2.13' }] });
  const other = channelDir(root, 'other', {
    [TARGET]: [
      { name: 'zlib', version: '1.3.1' },
      { name: 'readline', version: '8.2', depends: ['zlib >=1.2'] },
    ],
  });
  const solved = await solveEnvironment({
    what: 'test',
    specs: ['readline'],
    channels: [localChannel(local), localChannel(other)],
    subdirs: [TARGET, 'noarch'],
    virtual: {},
  });
  assert.deepEqual(names(solved), ['readline=8.2=h0_0', 'zlib=1.2.13=h0_0']);
  assert.equal(solved.find((p) => p.name === 'zlib')?.channel, local);
  assert.equal(solved.find((p) => p.name === 'readline')?.channel, other);
  // Packages of this build come first of all: the exact one asked for, from its own file.
  const staged = stagedChannel('this build', [
    {
      subdir: TARGET,
      filename: 'zlib-1.3.2-h9_0.conda',
      name: 'zlib',
      version: '1.3.2',
      build: 'h9_0',
      build_number: 0,
      depends: [],
      sha256: '0'.repeat(64),
      timestamp: 0,
      channel: 'this build',
      path: '/out/zlib-1.3.2-h9_0.conda',
    },
  ]);
  const test2 = await solveEnvironment({
    what: 'test',
    specs: ['zlib ==1.3.2 h9_0', 'readline'],
    channels: [staged, localChannel(local), localChannel(other)],
    subdirs: [TARGET, 'noarch'],
    virtual: {},
  });
  assert.deepEqual(names(test2), ['readline=8.2=h0_0', 'zlib=1.3.2=h9_0']);
  assert.equal(test2.find((p) => p.name === 'zlib')?.path, '/out/zlib-1.3.2-h9_0.conda');
});

test('an upstream channel: zstd repodata when offered, packages checked against their sha256, all offline the second time', async (t) => {
  const root = tempDir(t);
  const upstream = await startFakeUpstream();
  t.after(() => upstream.close());
  const good = Buffer.from('a package file');
  const evil = Buffer.from('something else');
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const aarch64 = repodata(TARGET, [
    { name: 'ncurses', version: '6.5', build: 'h1_0', sha256: sha(good) },
    { name: 'tampered', version: '1.0', build: 'h1_0', sha256: sha(Buffer.from('the package its index pins')) },
  ]);
  upstream.files.set('/ch/linux-aarch64/repodata.json.zst', { body: zstdCompressSync(aarch64), etag: '"r1"' });
  upstream.files.set('/ch/noarch/repodata.json', {
    body: repodata('noarch', [{ name: 'ca-certificates', version: '2026.1.1' }]),
  });
  upstream.files.set('/ch/linux-aarch64/ncurses-6.5-h1_0.conda', { body: good });
  upstream.files.set('/ch/linux-aarch64/tampered-1.0-h1_0.conda', { body: evil });
  const store = Store.open({ home: join(root, 'home') });
  t.after(() => store.close());
  const open = () =>
    new UpstreamChannel(`http://${upstream.origin}/ch/`, {
      store,
      mirror: '',
      allow: [`127.0.0.1:${upstream.port}`],
      stallMs: 5000,
      log,
    });
  const ch = open();
  assert.equal(ch.url, `http://${upstream.origin}/ch`);
  const solved = await solveEnvironment({
    what: 'test',
    specs: ['ncurses', 'ca-certificates'],
    channels: [upstreamChannel(ch)],
    subdirs: [TARGET, 'noarch'],
    virtual: {},
  });
  assert.deepEqual(names(solved), ['ca-certificates=2026.1.1=h0_0', 'ncurses=6.5=h1_0']);
  const ncurses = solved.find((p) => p.name === 'ncurses');
  assert.ok(ncurses);
  assert.equal(ncurses.url, `http://${upstream.origin}/ch/${TARGET}/ncurses-6.5-h1_0.conda`);
  const file = await ch.fetchPackage(ncurses);
  assert.ok(file.endsWith('/ncurses-6.5-h1_0.conda'), 'named as its repodata names it');
  assert.ok(file.startsWith(join(root, 'home', 'conda-pkgs', '')), `${file}: in the private home, not a shared tmp`);
  assert.deepEqual(readFileSync(file), good);
  assert.equal(
    upstream.count('/ch/linux-aarch64/repodata.json'),
    0,
    'the zstd index was offered, so the plain one was never fetched',
  );
  assert.equal(upstream.count('/ch/noarch/repodata.json'), 1);

  // The attack: the channel serves other bytes than its index pins. Nothing is stored or installed.
  const tampered = (await ch.packages(TARGET)).find((p) => p.name === 'tampered');
  assert.ok(tampered);
  const err = await ch.fetchPackage(tampered).catch((e: unknown) => e);
  assert.ok(isAccelError(err), String(err));
  assert.equal(err.code, 'ACCEL_CONDA_UPSTREAM_SHA256');
  assert.equal(store.has(sha(evil) as never), false);
  assert.equal(existsSync(tampered.path), false);

  // A second run asks again, conditionally (304); then with the upstream gone, the last repodata and the
  // stored package serve the same environment, offline.
  const again = open();
  assert.equal((await again.packages(TARGET)).length, 2);
  const zst = upstream.requests.filter((r) => r.path === '/ch/linux-aarch64/repodata.json.zst');
  assert.equal(zst.at(-1)?.headers['if-none-match'], '"r1"');
  await upstream.close();
  const offline = open();
  const solvedOffline = await solveEnvironment({
    what: 'test',
    specs: ['ncurses', 'ca-certificates'],
    channels: [upstreamChannel(offline)],
    subdirs: [TARGET, 'noarch'],
    virtual: {},
  });
  assert.deepEqual(names(solvedOffline), names(solved));
  const offlineFile = await offline.fetchPackage(solvedOffline.find((p) => p.name === 'ncurses') as never);
  assert.deepEqual(readFileSync(offlineFile), good);
  // A run's links go with it: the store's gc alone decides how long the bytes stay.
  ch.release();
  assert.equal(existsSync(file), false);
  assert.deepEqual(readFileSync(offlineFile), good, 'another run’s links are its own');
});

test('an upstream on a loopback address is refused unless allowed, and a never-fetched channel offline says so', async (t) => {
  const root = tempDir(t);
  const upstream = await startFakeUpstream();
  t.after(() => upstream.close());
  upstream.files.set('/ch/noarch/repodata.json', { body: repodata('noarch', [{ name: 'x', version: '1' }]) });
  const store = Store.open({ home: join(root, 'home') });
  t.after(() => store.close());
  const refused = new UpstreamChannel(`http://${upstream.origin}/ch`, {
    store,
    mirror: '',
    allow: [],
    stallMs: 5000,
    log,
  });
  const err = await refused.repodata('noarch').catch((e: unknown) => e);
  assert.ok(isAccelError(err), String(err));
  assert.equal(err.code, 'ACCEL_CONDA_UPSTREAM_FETCH');
  assert.equal(upstream.requests.length, 0, 'the guard refused before any request was sent');
  assert.throws(() => UpstreamChannel.check('file:///srv/channel'), { code: 'ACCEL_USAGE_UPSTREAM_CHANNEL' });
});
