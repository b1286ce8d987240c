// accel-cc in the build systems people use, on a real project (jsoncpp 1.9.6, Debian's orig tarball, which has a
// CMake and a Meson build): CMake + Ninja with accel-cc as CMAKE_CXX_COMPILER_LAUNCHER and with the masquerade
// directory first on PATH at configure time, Meson + Ninja with CXX="accel-cc g++" and with the masquerade.
// Each is built once plainly and twice through accel (cold, then warm in a fresh build directory): every object
// is the plain build's, byte for byte, and the warm build is all hits.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { test as nodeTest } from 'node:test';
import { FEEDSTOCK_SOURCES, missingSources, SHARED_FEEDSTOCKS, sourceRows } from '../feedstock-set.ts';
import {
  ccCounters,
  failed,
  nativeClientHome,
  needsTools,
  objectFiles,
  ok,
  okStderr,
  type RunResult,
  runAccel,
  runCommand,
  tempDir,
  testNeeding,
} from '../helpers.ts';

const test = testNeeding('cmake', 'meson', 'ninja', 'g++', 'tar');

const missing = existsSync(SHARED_FEEDSTOCKS) ? missingSources(['jsoncpp']) : ['jsoncpp'];
const skip =
  missing.length === 0
    ? false
    : `jsoncpp's source is not in ${FEEDSTOCK_SOURCES}: run ${join(SHARED_FEEDSTOCKS, 'get-sources')} ${FEEDSTOCK_SOURCES} jsoncpp`;

/** No optimisation, no post-build test run: the test is about the build system's calls, not the compiler's work. */
const CMAKE_ARGS = [
  ...['-G', 'Ninja', '-DCMAKE_BUILD_TYPE=None', '-DJSONCPP_WITH_POST_BUILD_UNITTEST=OFF'],
  // The object library compiles the static library's sources a third time.
  '-DBUILD_OBJECT_LIBS=OFF',
];
const MESON_ARGS = ['--buildtype=plain'];
const ENV = { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60', LANG: 'C' };

/** jsoncpp's sources unpacked into `dir`; returns the source tree. */
async function unpackJsoncpp(dir: string): Promise<string> {
  const row = sourceRows().find((r) => r.feedstock === 'jsoncpp');
  assert.ok(row, 'jsoncpp is in SOURCES.tsv');
  ok(await runCommand('tar', ['-xf', join(FEEDSTOCK_SOURCES, row.file), '-C', dir]), 'tar');
  const top = readdirSync(dir).find((d) => d.startsWith('jsoncpp-'));
  assert.ok(top, 'the tarball unpacks to jsoncpp-<version>');
  return join(dir, top);
}

/** Hits and misses (a compile's other outcomes, e.g. an uncacheable link, are not in it). */
async function tally(homePath: string): Promise<{ hit: number; miss: number }> {
  const { hit = 0, miss = 0 } = await ccCounters(homePath);
  return { hit, miss };
}

async function zeroStats(homePath: string): Promise<void> {
  ok(await runAccel(['--home', homePath, 'cc', '--zero-stats']), 'accel cc --zero-stats');
}

function assertSameObjects(built: string, plain: Map<string, Buffer>, what: string): void {
  const got = objectFiles(built);
  assert.deepEqual([...got.keys()].sort(), [...plain.keys()].sort(), `${what}: the same objects as the plain build`);
  for (const [name, bytes] of plain) assert.ok(got.get(name)?.equals(bytes), `${what}: ${name} differs from plain`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<RunResult> {
  return runCommand(cmd, args, { env: { ...ENV, ...env } }).then((r) => {
    okStderr(r, what);
    return r;
  });
}

/** PATH with `dir` in front. */
const pathWith = (dir: string) => `${dir}${delimiter}${process.env.PATH}`;

test('CMake + Ninja builds jsoncpp through accel-cc as CMAKE_CXX_COMPILER_LAUNCHER and through the masquerade on PATH at configure time: identical objects, the warm build all hits', {
  skip,
  timeout: 300_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-cc-cmake-');
  const src = await unpackJsoncpp(dir);
  const cmake = async (build: string, env: NodeJS.ProcessEnv, extra: string[] = []) => {
    await run('cmake', ['-S', src, '-B', join(dir, build), ...CMAKE_ARGS, ...extra], env, `cmake ${build}`);
  };
  const ninja = (build: string, env: NodeJS.ProcessEnv = {}) =>
    run('ninja', ['-C', join(dir, build)], env, `ninja ${build}`);

  await cmake('plain', {});
  await ninja('plain');
  const plain = objectFiles(join(dir, 'plain'));
  assert.ok(plain.size >= 10, `jsoncpp builds its library and tests (${plain.size} objects)`);

  // The launcher: CMake runs `accel-cc /usr/bin/c++ … -c <absolute source>`, the compiler by absolute path.
  const launched = await nativeClientHome(join(dir, 'home-launcher'));
  const launcher = [`-DCMAKE_CXX_COMPILER_LAUNCHER=${launched.client}`];
  await cmake('cold', {}, launcher);
  const commands = ok(await runCommand('ninja', ['-C', join(dir, 'cold'), '-t', 'commands']));
  assert.match(commands, new RegExp(`^${launched.client} /\\S+/c\\+\\+ .* -c \\S+\\.cpp$`, 'm'));
  await ninja('cold');
  assertSameObjects(join(dir, 'cold'), plain, 'launcher, cold');
  assert.deepEqual(await tally(launched.home), { hit: 0, miss: plain.size }, 'cold: every compile a miss');
  await cmake('warm', {}, launcher);
  await ninja('warm');
  assertSameObjects(join(dir, 'warm'), plain, 'launcher, warm');
  assert.deepEqual(await tally(launched.home), { hit: plain.size, miss: plain.size }, 'warm: every compile hit');
  // The dependency files a hit writes are what Ninja needs: nothing left to do, and the headers are known.
  const upToDate = await run('ninja', ['-C', join(dir, 'warm'), '-n'], {}, 'ninja -n');
  assert.match(upToDate.stdout.toString(), /no work to do/);
  const deps = ok(await runCommand('ninja', ['-C', join(dir, 'warm'), '-t', 'deps']));
  assert.match(deps, /json_value\.cpp\.o: #deps \d+[\s\S]*include\/json\/value\.h/);

  // The masquerade: CMake records the link as its compiler and runs its identification and try_compile steps
  // (which link: uncacheable, run by the client itself) through it.
  const masq = await nativeClientHome(join(dir, 'home-masquerade'));
  const onPath = { PATH: pathWith(masq.masq) };
  await cmake('masq-cold', onPath);
  const cache = readFileSync(join(dir, 'masq-cold', 'CMakeCache.txt'), 'utf8');
  assert.match(cache, new RegExp(`^CMAKE_CXX_COMPILER:FILEPATH=${masq.masq}/c\\+\\+$`, 'm'));
  const configured = await ccCounters(masq.home);
  assert.ok((configured['uncacheable: linking'] ?? 0) > 0, `CMake's compiler checks linked through the client`);
  await zeroStats(masq.home);
  // The build's PATH need not hold the masquerade: the recorded link finds the real c++ past it.
  await ninja('masq-cold');
  assertSameObjects(join(dir, 'masq-cold'), plain, 'masquerade, cold');
  const masqCold = await ccCounters(masq.home);
  assert.deepEqual(
    { hit: masqCold.hit ?? 0, miss: masqCold.miss },
    { hit: 0, miss: plain.size },
    'every compile a miss',
  );
  assert.equal(masqCold['uncacheable: linking'], 3, 'its links (libjsoncpp.so, two test programs) ran through it');
  // Both at once: the launcher is handed the masquerade link as the compiler, and must not call itself.
  await cmake('masq-warm', onPath, [`-DCMAKE_CXX_COMPILER_LAUNCHER=${masq.client}`]);
  const both = ok(await runCommand('ninja', ['-C', join(dir, 'masq-warm'), '-t', 'commands']));
  assert.match(both, new RegExp(`^${masq.client} ${masq.masq}/c\\+\\+ .* -c \\S+\\.cpp$`, 'm'));
  await zeroStats(masq.home);
  await ninja('masq-warm');
  assertSameObjects(join(dir, 'masq-warm'), plain, 'masquerade and launcher, warm');
  assert.deepEqual(await tally(masq.home), { hit: plain.size, miss: 0 }, 'masquerade warm: every compile hit');
});

test('Meson + Ninja builds jsoncpp with CXX="accel-cc g++", then in a fresh build directory through the masquerade on PATH: identical objects, the warm build all hits', {
  skip,
  timeout: 300_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-cc-meson-');
  const src = await unpackJsoncpp(dir);
  // Meson runs ccache by itself when it is installed and CXX is not set: CXX is always set here.
  const meson = async (build: string, env: NodeJS.ProcessEnv) => {
    await run('meson', ['setup', join(dir, build), src, ...MESON_ARGS], env, `meson setup ${build}`);
    return readFileSync(join(dir, build, 'meson-logs', 'meson-log.txt'), 'utf8');
  };
  const ninja = (build: string, env: NodeJS.ProcessEnv) =>
    run('ninja', ['-C', join(dir, build)], env, `ninja ${build}`);

  await meson('plain', { CXX: 'g++' });
  await ninja('plain', {});
  const plain = objectFiles(join(dir, 'plain'));
  assert.ok(plain.size >= 5, `jsoncpp builds its library and tests (${plain.size} objects)`);

  // accel-cc by name on PATH, the compiler by name: Meson's sanity checks and every compile go through it.
  const h = await nativeClientHome(join(dir, 'home'));
  const launcher = { PATH: pathWith(join(h.home, 'bin')), CXX: 'accel-cc g++' };
  const log = await meson('cold', launcher);
  assert.match(log, /C\+\+ compiler for the host machine: accel-cc g\+\+/);
  await zeroStats(h.home);
  await ninja('cold', launcher);
  assertSameObjects(join(dir, 'cold'), plain, 'CXX="accel-cc g++", cold');
  assert.deepEqual(await tally(h.home), { hit: 0, miss: plain.size }, 'cold: every compile a miss');

  // The masquerade: Meson records plain `g++`, which the build finds first on PATH; the warm build hits
  // what the launcher stored (the same compiler, arguments and sources).
  const masquerade = { PATH: pathWith(h.masq), CXX: 'g++' };
  const masqLog = await meson('warm', masquerade);
  assert.match(masqLog, /C\+\+ compiler for the host machine: g\+\+ /);
  await zeroStats(h.home);
  await ninja('warm', masquerade);
  assertSameObjects(join(dir, 'warm'), plain, 'masquerade, warm');
  assert.deepEqual(await tally(h.home), { hit: plain.size, miss: 0 }, 'warm: every compile hit');
  // The dependency files of hits, written for Meson's -MQ targets, are what Ninja reads.
  const upToDate = await run('ninja', ['-C', join(dir, 'warm'), '-n'], masquerade, 'ninja -n');
  assert.match(upToDate.stdout.toString(), /no work to do/);
  const deps = ok(await runCommand('ninja', ['-C', join(dir, 'warm'), '-t', 'deps']));
  assert.match(deps, /json_value\.cpp\.o: #deps \d+[\s\S]*include\/json\/value\.h/);
});

nodeTest(
  'accel-cc as a launcher: the compiler by name or by path; handed a masquerade link or accel-cc again it unwraps them and never calls itself',
  needsTools('gcc'),
  async (t) => {
    const dir = tempDir(t, 'accel-cc-launcher-');
    const h = await nativeClientHome(join(dir, 'home'));
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 42; }\n');
    const cc = (args: string[]) => runCommand(h.client, args, { cwd: dir, env: ENV });
    okStderr(await runCommand('gcc', ['-c', 'x.c', '-o', 'plain.o'], { cwd: dir }));
    const plain = readFileSync(join(dir, 'plain.o'));
    const calls = [
      ['gcc', '-c', 'x.c', '-o', 'by-name.o'],
      ['/usr/bin/gcc', '-c', 'x.c', '-o', 'by-path.o'],
      [join(h.masq, 'gcc'), '-c', 'x.c', '-o', 'masquerade-link.o'],
      [h.client, 'gcc', '-c', 'x.c', '-o', 'twice.o'],
      ['accel-cc', join(h.masq, 'cc'), '-c', 'x.c', '-o', 'twice-link.o'],
    ];
    for (const args of calls) {
      okStderr(await cc(args), args.join(' '));
      assert.ok(readFileSync(join(dir, args.at(-1) as string)).equals(plain), `${args.join(' ')}: the plain object`);
    }
    assert.deepEqual(await tally(h.home), { hit: calls.length - 1, miss: 1 }, 'one compile, then hits');
    // Linking through the launcher: uncacheable, run by the client with the real compiler.
    okStderr(await cc([join(h.masq, 'gcc'), 'plain.o', '-shared', '-o', 'libx.so']), 'link');
    assert.ok(existsSync(join(dir, 'libx.so')));
    const noCompiler = await cc([h.client]);
    assert.equal(noCompiler.code, 2);
    assert.match(noCompiler.stderr, /accel-cc: no compiler given/);
    failed(await cc(['no-such-compiler-here', '-c', 'x.c']), 127, 'ACCEL_CC_NO_COMPILER');
  },
);
