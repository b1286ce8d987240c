// `accel conda build` compiles through accel's own compile cache: a rebuild that changes nothing the compiler
// sees (a build number bump) is all hits, and its packages are byte-identical to a build without the cache.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
type Tests = { run: number; cached: number };
type Scripts = { run: number; reused: number };
type WithCc = ResultJson & { results: { cc?: Tally | null; tests?: Tests; scripts?: Scripts }[] };

const scriptsOf = (out: WithCc, feedstock: string) =>
  (out.results.find((x) => x.feedstock === feedstock) as { scripts?: Scripts } | undefined)?.scripts;

const testsOf = (out: WithCc, feedstock: string) =>
  (out.results.find((x) => x.feedstock === feedstock) as { tests?: Tests } | undefined)?.tests;

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
  // The build scripts run again (their kept results would leave nothing to compile).
  const warm = okJson(await condaBuild(run, ['--all', feedstocks, '--no-build-cache'])) as WithCc;
  for (const f of ['libgreet', 'libshout', 'hello']) {
    const c = tally(warm, f);
    assert.equal(c.miss, 0, `${f}: every cacheable compile is a hit`);
    assert.equal(c.hit, tally(cold, f).miss, `${f}: as many hits as the cold build compiled`);
  }
  assert.match(JSON.stringify(warm.results.map((r) => r.packages.map((p) => p.filename))), /_10\.conda/);
  // The packages' files are the same, so are their tests' inputs: the tests passed before and are not run again.
  assert.deepEqual(testsOf(cold, 'hello'), { run: 1, cached: 0 });
  assert.deepEqual(testsOf(warm, 'hello'), { run: 0, cached: 1 });
  assert.deepEqual(testsOf(warm, 'greet-data'), { run: 0, cached: 1 });
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
  assert.deepEqual(testsOf(plain, 'hello'), { run: 1, cached: 0 }, 'another store has no test results');
});

test('a test result is reused only while its inputs are the same: a changed test runs, a failing one is never kept, --no-test-cache runs all', async (t) => {
  const dir = tempDir(t, 'accel-conda-tests-');
  const feedstocks = copyFeedstocks(dir);
  const upstream = await startUpstream(t);
  const run: BuildRun = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const all = ['greet-data', 'libgreet', 'libshout', 'hello'];
  okJson(await condaBuild(run, ['--all', feedstocks]));
  const meta = join(feedstocks, 'hello-feedstock', 'recipe', 'meta.yaml');
  const original = readFileSync(meta, 'utf8');

  // A test command more: hello's tests run again (and only hello's).
  writeFileSync(
    meta,
    original.replace('    - hello --version\n', '    - hello --version\n    - hello Again | grep -x "Hello, Again!"\n'),
  );
  bumpBuildNumbers(feedstocks, all, 1);
  const changed = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  assert.deepEqual(testsOf(changed, 'hello'), { run: 1, cached: 0 });
  assert.deepEqual(testsOf(changed, 'libshout'), { run: 0, cached: 1 });

  // A file the test reads beside the recipe (run_test.sh) is an input too.
  const runTest = join(feedstocks, 'hello-feedstock', 'recipe', 'run_test.sh');
  writeFileSync(runTest, 'hello Test | grep -x "Hello, Test!"\n');
  bumpBuildNumbers(feedstocks, all, 1);
  const withScript = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  assert.deepEqual(testsOf(withScript, 'hello'), { run: 1, cached: 0 });

  // A failing test is not kept: the same inputs fail again, twice.
  writeFileSync(runTest, 'hello Test | grep -x "Goodbye"\n');
  for (const i of [1, 2]) {
    bumpBuildNumbers(feedstocks, all, 1);
    const r = await condaBuild(run, ['--all', feedstocks]);
    assert.equal(r.code, 1, `failing test, try ${i}: ${r.stderr}`);
    assert.match(r.stderr, /\[ACCEL_CONDA_TEST_FAILED\]/);
  }
  rmSync(runTest);

  // --no-test-cache: every test runs.
  bumpBuildNumbers(feedstocks, all, 1);
  const again = okJson(await condaBuild(run, ['--all', feedstocks, '--no-test-cache'])) as WithCc;
  for (const f of ['greet-data', 'libshout', 'hello']) assert.deepEqual(testsOf(again, f), { run: 1, cached: 0 }, f);
  const help = await runAccel(['--home', run.home, 'conda', 'build', '--help']);
  assert.match(help.stdout.toString(), /--no-test-cache/);
});

test('build scripts that ran with the same inputs are not run again: a bump reuses them all, a changed script or a changed dependency runs them, the packages equal a build that ran them', async (t) => {
  const dir = tempDir(t, 'accel-conda-scripts-');
  const feedstocks = copyFeedstocks(dir);
  const upstream = await startUpstream(t);
  const run: BuildRun = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const all = ['greet-data', 'libgreet', 'libshout', 'hello'];
  // libgreet gets an output with a script of its own and its sibling in host, pinned exactly (as xz's and
  // lz4-c's static outputs have it): the pin names the build number, and must not keep the script running.
  const greetRecipe = join(feedstocks, 'libgreet-feedstock', 'recipe');
  const greetMeta = join(greetRecipe, 'meta.yaml');
  writeFileSync(
    greetMeta,
    readFileSync(greetMeta, 'utf8').replace(
      '\nabout:',
      [
        '  - name: {{ name }}-extra',
        '    script: install-extra.sh',
        '    requirements:',
        '      host:',
        '        - {{ pin_subpackage(name, exact=True) }}',
        '',
        'about:',
      ].join('\n'),
    ),
  );
  writeFileSync(
    join(greetRecipe, 'install-extra.sh'),
    'mkdir -p "$PREFIX/share/greet"\nls "$PREFIX/lib" > "$PREFIX/share/greet/libs.txt"\n',
  );
  const scriptsIn = (f: string) => (f === 'libgreet' ? 2 : 1);
  const ran = (f: string) => ({ run: scriptsIn(f), reused: 0 });
  const reused = (f: string) => ({ run: 0, reused: scriptsIn(f) });
  const cold = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  for (const f of all) assert.deepEqual(scriptsOf(cold, f), ran(f), f);

  // A build number bump: no script runs, nothing is compiled, and the packages are those of a build that ran
  // every script (another store, --no-build-cache), byte for byte.
  bumpBuildNumbers(feedstocks, all, 10);
  const warm = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  for (const f of all) assert.deepEqual(scriptsOf(warm, f), reused(f), f);
  for (const f of ['libgreet', 'libshout', 'hello'])
    assert.deepEqual(tally(warm, f), { hit: 0, miss: 0, uncacheable: 0, failed: 0 }, f);
  const plain = okJson(
    await condaBuild({ ...run, home: join(dir, 'home-plain'), channel: join(dir, 'channel-plain') }, [
      '--all',
      feedstocks,
      '--no-build-cache',
    ]),
  ) as WithCc;
  for (const f of all) assert.deepEqual(scriptsOf(plain, f), ran(f), f);
  assert.deepEqual(digests(plain), digests(warm));

  // libshout's build script changes (a comment): its script runs; hello, built on libshout, gets a libshout
  // with the same files and does not; libgreet and greet-data are untouched.
  const script = join(feedstocks, 'libshout-feedstock', 'recipe', 'build.sh');
  writeFileSync(script, `${readFileSync(script, 'utf8')}# rebuilt\n`);
  bumpBuildNumbers(feedstocks, all, 1);
  const edited = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  assert.deepEqual(scriptsOf(edited, 'libshout'), { run: 1, reused: 0 });
  for (const f of ['greet-data', 'libgreet', 'hello']) assert.deepEqual(scriptsOf(edited, f), reused(f), f);

  // libgreet's library changes (built at -O0): libgreet runs, and so do libshout and hello, whose host
  // prefixes now hold other files.
  const greet = join(feedstocks, 'libgreet-feedstock', 'recipe', 'build.sh');
  const flags = ['CFLAGS="$', '{CFLAGS}"'].join('');
  writeFileSync(greet, readFileSync(greet, 'utf8').replace(flags, flags.replace('}', '} -O0')));
  bumpBuildNumbers(feedstocks, all, 1);
  const changed = okJson(await condaBuild(run, ['--all', feedstocks])) as WithCc;
  assert.deepEqual(scriptsOf(changed, 'greet-data'), { run: 0, reused: 1 });
  for (const f of ['libgreet', 'libshout', 'hello']) assert.deepEqual(scriptsOf(changed, f), ran(f), f);

  // --no-build-cache runs every script.
  bumpBuildNumbers(feedstocks, all, 1);
  const again = okJson(await condaBuild(run, ['--all', feedstocks, '--no-build-cache'])) as WithCc;
  for (const f of all) assert.deepEqual(scriptsOf(again, f), ran(f), f);
  const history = JSON.parse(
    (await runAccel(['--home', run.home, '--json', 'conda', 'builds', '-n', '20'])).stdout.toString(),
  ) as { feedstock: string; scripts?: Scripts }[];
  assert.ok(
    history.some((e) => e.feedstock === 'hello' && e.scripts?.reused === 1),
    JSON.stringify(history),
  );
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
  const warm = okJson(await build(join(dir, 'home'), join(dir, 'channel'), ['--no-build-cache'])) as WithCc;
  const second = tally(warm, 'zlib');
  // zlib's configure names its probes ztest<pid>.c, so those (and only those) are new sources each time; the
  // library's own objects are all hits.
  assert.ok(second.hit >= 30, JSON.stringify({ first, second }));
  assert.ok(second.miss < first.miss / 3, JSON.stringify({ first, second }));
  const plain = okJson(await build(join(dir, 'home-plain'), join(dir, 'channel-plain'), ['--no-cc-cache'])) as WithCc;
  assert.deepEqual(digests(plain), digests(warm));
});
