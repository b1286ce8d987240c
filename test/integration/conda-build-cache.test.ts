// `accel conda build` compiles through accel's own compile cache: a rebuild that changes nothing the compiler
// sees (a build number bump) is all hits, and its packages are byte-identical to a build without the cache.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { bumpBuildNumbers, missingSources, SHARED_FEEDSTOCKS, sourceFlags } from '../feedstock-set.ts';
import { runAccel, tempDir, testNeeding } from '../helpers.ts';
import {
  type BuildRun,
  CROSS_BUILD_TOOLS,
  condaBuild,
  copyFeedstocks,
  okJson,
  type ResultJson,
  startUpstream,
} from './conda-build-harness.ts';

/** Every test here runs the cross toolchain: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS);

type Tally = { hit: number; miss: number; uncacheable: number; failed: number };
type WithCc = ResultJson & { results: { cc?: Tally | null }[] };

function tally(out: WithCc, feedstock: string): Tally {
  const r = out.results.find((x) => x.feedstock === feedstock) as { cc?: Tally | null } | undefined;
  assert.ok(r?.cc, `${feedstock} has compile cache numbers: ${JSON.stringify(r)}`);
  return r.cc;
}

const digests = (out: ResultJson) =>
  out.results.flatMap((r) => r.packages.map((p) => `${p.filename} ${p.sha256}`)).sort();

test('a build number bump rebuilds the example graph from the compile cache: all hits, packages identical to an uncached build', async (t) => {
  const dir = tempDir(t, 'accel-conda-cc-');
  const feedstocks = copyFeedstocks(dir);
  const upstream = await startUpstream(t);
  const run: BuildRun = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const cold = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  const coldShout = tally(cold, 'libshout');
  assert.ok(coldShout.miss >= 1, JSON.stringify(coldShout));
  assert.equal(coldShout.hit, 0);

  bumpBuildNumbers(feedstocks, ['greet-data', 'libgreet', 'libshout', 'hello'], 10);
  const warm = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  for (const f of ['libgreet', 'libshout', 'hello']) {
    const c = tally(warm, f);
    assert.equal(c.miss, 0, `${f}: every cacheable compile is a hit`);
    assert.equal(c.hit, tally(cold, f).miss, `${f}: as many hits as the cold build compiled`);
  }
  assert.match(JSON.stringify(warm.results.map((r) => r.packages.map((p) => p.filename))), /_10\.conda/);
  const history = JSON.parse(
    (await runAccel(['--home', run.home, '--json', 'conda', 'builds', '-n', '4'])).stdout.toString(),
  );
  assert.deepEqual(history.find((e: { feedstock: string }) => e.feedstock === 'libshout').cc, tally(warm, 'libshout'));

  // The same bumped recipes without the cache, in another store: the very same bytes.
  const plain = okJson(
    await condaBuild({ ...run, home: join(dir, 'home-plain'), channel: join(dir, 'channel-plain') }, [
      '--all',
      feedstocks,
      '--no-cc-cache',
    ]),
  ) as WithCc;
  assert.ok(
    plain.results.every((r) => !(r as { cc?: Tally | null }).cc),
    'no cache, no numbers',
  );
  assert.deepEqual(digests(plain), digests(warm));
});

const zlibMissing = existsSharedZlib() ? false : 'zlib’s source is not downloaded (get-sources; .ci/run does it)';

function existsSharedZlib(): boolean {
  try {
    return missingSources(['zlib']).length === 0;
  } catch {
    return false;
  }
}

test('zlib (the real feedstock) rebuilt after a build number bump: its library is compiled from the cache, the packages equal an uncached build', {
  skip: zlibMissing,
}, async (t) => {
  const dir = tempDir(t, 'accel-conda-cc-zlib-');
  const copy = join(dir, 'feedstocks');
  cpSync(join(SHARED_FEEDSTOCKS, 'zlib-feedstock'), join(copy, 'zlib-feedstock'), { recursive: true });
  const build = (home: string, channel: string, extra: string[] = []) =>
    runAccel([
      '--home',
      home,
      '--json',
      'conda',
      'build',
      '--all',
      copy,
      '--target-platform',
      'linux-aarch64',
      '--channel',
      channel,
      ...sourceFlags(['zlib']),
      ...extra,
    ]);
  const cold = okJson(await build(join(dir, 'home'), join(dir, 'channel'))) as WithCc;
  const first = tally(cold, 'zlib');
  bumpBuildNumbers(copy, ['zlib'], 90);
  const warm = okJson(await build(join(dir, 'home'), join(dir, 'channel'))) as WithCc;
  const second = tally(warm, 'zlib');
  // zlib's configure names its probes ztest<pid>.c, so those (and only those) are new sources each time; the
  // library's own objects are all hits.
  assert.ok(second.hit >= 30, JSON.stringify({ first, second }));
  assert.ok(second.miss < first.miss / 3, JSON.stringify({ first, second }));
  const plain = okJson(await build(join(dir, 'home-plain'), join(dir, 'channel-plain'), ['--no-cc-cache'])) as WithCc;
  assert.deepEqual(digests(plain), digests(warm));
});
