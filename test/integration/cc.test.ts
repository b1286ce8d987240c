import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { TestContext } from 'node:test';
import { blobPath } from '../../src/store/layout.ts';
import { Store } from '../../src/store/store.ts';
import { MAIN, okStderr, ROOT, type RunResult, runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';
import { startTestMirror, TEST_CACHE_TOKEN } from '../mirror-harness.ts';

/** Every test here runs gcc, g++, make: without them it skips, naming them. */
const test = testNeeding('gcc', 'g++', 'make');

const EXAMPLE = join(ROOT, 'examples', 'c-project');
const TUS = 22;

/** A copy of the example project that the test may edit, and a store. */
function project(t: TestContext) {
  const dir = tempDir(t);
  const src = join(dir, 'src');
  cpSync(EXAMPLE, src, { recursive: true, filter: (p) => !relative(EXAMPLE, p).startsWith('build') });
  return { dir, src, home: join(dir, 'home') };
}

/**
 * The two ways a compile reaches the cache, and every correctness test runs through both: `accel cc --`
 * (one process per compile) and the native client (accel-cc, via the masquerade links, talking to the
 * daemon it starts on demand).
 */
const MODES = ['accel cc --', 'native client'] as const;
type Mode = (typeof MODES)[number];

interface Wrapper {
  /** Runs `<compiler> args…` through the cache. */
  run(args: string[], options?: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** make variables that compile through the cache. */
  vars: Record<string, string>;
}

/** Daemons started by a test exit on their own soon after, even if the test dies before stopping them. */
const DAEMON_ENV = { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' };

async function wrapper(t: TestContext, mode: Mode, home: string): Promise<Wrapper> {
  if (mode === 'accel cc --') {
    const accelCc = (compiler: string) => `${process.execPath} ${MAIN} --home ${home} cc -- ${compiler}`;
    return {
      run: (args, o = {}) => runCommand(process.execPath, [MAIN, '--home', home, 'cc', '--', ...args], o),
      vars: { CC: accelCc('gcc'), CXX: accelCc('g++') },
    };
  }
  const r = await runAccel(['--home', home, 'cc', '--masquerade-dir']);
  assert.equal(r.code, 0, r.stderr);
  const masq = r.stdout.toString().trim();
  t.after(async () => {
    await runAccel(['--home', home, 'cc', 'daemon', '--stop']);
  });
  return {
    run: (args, o = {}) => runCommand(join(home, 'bin', 'accel-cc'), args, { ...o, env: { ...DAEMON_ENV, ...o.env } }),
    vars: { CC: join(masq, 'gcc'), CXX: join(masq, 'g++') },
  };
}

function make(src: string, build: string, vars: Record<string, string> = {}, target = 'all'): Promise<RunResult> {
  const assignments = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  return runCommand('make', ['-C', src, '-j8', `BUILD=${build}`, ...assignments, target], { env: DAEMON_ENV });
}

async function stats(home: string): Promise<Record<string, number>> {
  const r = await runAccel(['--home', home, '--json', 'cc', '--stats']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()).counters;
}

function files(dir: string, ext: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(ext))
      out.set(relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}

for (const mode of MODES) {
  test(`${mode}: cold then warm build of a 22-TU project: all hits, objects and dependency files identical to plain gcc`, async (t) => {
    const { dir, src, home } = project(t);
    const cc = await wrapper(t, mode, home);
    const build = join(dir, 'build');
    okStderr(await make(src, build));
    const plainObjects = files(build, '.o');
    const plainDeps = files(build, '.d');
    assert.equal(plainObjects.size, TUS);
    okStderr(await make(src, build, {}, 'clean'));

    okStderr(await make(src, build, cc.vars));
    assert.deepEqual(await stats(home), { miss: TUS, 'uncacheable: linking': 2 });
    okStderr(await make(src, build, {}, 'clean'));
    const warm = okStderr(await make(src, build, cc.vars));
    const counters = await stats(home);
    assert.equal(counters.hit, TUS, JSON.stringify(counters));
    assert.equal(counters.miss, TUS);
    assert.match(warm, /stats\.c.*unused variable/s, 'the warning is replayed on a hit');
    for (const [name, bytes] of files(build, '.o'))
      assert.ok(plainObjects.get(name)?.equals(bytes), `${name} differs from plain gcc's`);
    for (const [name, text] of files(build, '.d')) assert.equal(text.toString(), plainDeps.get(name)?.toString(), name);
    okStderr(await make(src, build, {}, 'check'));
  });

  test(`${mode}: editing a header misses only its includers; a new header shadowing an old one misses; a changed -D misses`, async (t) => {
    const { dir, src, home } = project(t);
    const cc = await wrapper(t, mode, home);
    const build = join(dir, 'build');
    okStderr(await make(src, build, cc.vars));
    const before = await stats(home);

    writeFileSync(
      join(src, 'include', 'rare.h'),
      `${readFileSync(join(src, 'include', 'rare.h'), 'utf8')}\n/* edited */\n`,
    );
    okStderr(await make(src, build, cc.vars));
    let now = await stats(home);
    assert.equal((now.miss ?? 0) - (before.miss ?? 0), 2, 'only the two includers of rare.h');

    // Same name, earlier include directory: ccache would hit here and use the old header.
    okStderr(await make(src, build, {}, 'clean'));
    const shadow = readFileSync(join(src, 'third_party', 'include', 'tp_hash.h'), 'utf8').replace(
      /0x[0-9a-fA-F]+/,
      '0x1234567',
    );
    writeFileSync(join(src, 'include', 'tp_hash.h'), shadow);
    const missesBefore = now.miss ?? 0;
    okStderr(await make(src, build, cc.vars));
    now = await stats(home);
    assert.equal((now.miss ?? 0) - missesBefore, 2, 'the two includers of tp_hash.h compile again');

    const missesBeforeD = now.miss ?? 0;
    okStderr(await make(src, build, {}, 'clean'));
    okStderr(await make(src, build, { ...cc.vars, CPPFLAGS: '-DACCEL_EXTRA=1' }));
    assert.equal(((await stats(home)).miss ?? 0) - missesBeforeD, TUS);
  });

  test(`${mode}: a header switching between two states hits in both (ncurses' narrow and wide builds); a header the compiler passed over does not stop hits`, async (t) => {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const cc = await wrapper(t, mode, home);
    const w = join(dir, 'w');
    mkdirSync(join(w, 'inc'), { recursive: true });
    mkdirSync(join(w, 'src'));
    writeFileSync(join(w, 'src', 'x.c'), '#include "cfg.h"\n#include <eti.h>\nint x(void) { return CFG + ETI; }\n');
    writeFileSync(join(w, 'inc', 'eti.h'), '#define ETI 2\n');
    // Beside the source, but an angle include does not look there: it was there, and passed over.
    writeFileSync(join(w, 'src', 'eti.h'), '#define ETI 3\n');
    writeFileSync(join(w, 'src', 'y.c'), '#include "y.h"\nint y(void) { return Y; }\n');
    writeFileSync(join(w, 'src', 'y.h'), '#define Y 4\n');
    const outcome = async (args: string[], cwd: string) => {
      const before = (await stats(home)).hit ?? 0;
      const r = await cc.run(args, { cwd });
      assert.equal(r.code, 0, r.stderr.toString());
      return ((await stats(home)).hit ?? 0) > before ? 'hit' : 'miss';
    };
    // Two contents of a generated header that make the same object: each state keeps its own entry.
    const states = ['/* narrow */\n#define CFG 1\n', '/* wide characters */\n#define CFG 1\n'];
    const seen: string[] = [];
    for (const s of [0, 1, 0, 1]) {
      writeFileSync(join(w, 'inc', 'cfg.h'), states[s] as string);
      seen.push(await outcome(['gcc', '-Iinc', '-c', 'src/x.c', '-o', 'x.o'], w));
    }
    assert.deepEqual(seen, ['miss', 'miss', 'hit', 'hit']);
    const nm = await runCommand('nm', [join(w, 'x.o')]);
    assert.match(nm.stdout.toString(), /T x$/m);
    // The same header by two names (cwd is the source's directory, -I.): not a shadow of itself.
    const twice = [];
    for (let i = 0; i < 2; i++)
      twice.push(await outcome(['gcc', '-I.', '-c', '../src/y.c', '-o', '../y.o'], join(w, 'src')));
    assert.deepEqual(twice, ['miss', 'hit']);
    // A file in a shadowing place made or changed while the compile ran (here: a time from the future) may or
    // may not have been seen by the compiler: that compile is not cached.
    const future = new Date(Date.now() + 3_600_000);
    utimesSync(join(w, 'src', 'eti.h'), future, future);
    writeFileSync(join(w, 'inc', 'cfg.h'), '/* third */\n#define CFG 1\n');
    await cc.run(['gcc', '-Iinc', '-c', 'src/x.c', '-o', 'x.o'], { cwd: w });
    const counters = await stats(home);
    assert.equal(counters['uncacheable: header src/eti.h appeared during the compile'], 1, JSON.stringify(counters));
    // A header appearing where the compiler would now find it first still misses, and compiles the new value.
    writeFileSync(join(w, 'src', 'cfg.h'), '#define CFG 5\n');
    assert.equal(await outcome(['gcc', '-Iinc', '-c', 'src/x.c', '-o', 'x.o'], w), 'miss');
    const plain = join(w, 'plain.o');
    await runCommand('gcc', ['-Iinc', '-c', 'src/x.c', '-o', plain], { cwd: w });
    assert.ok(
      readFileSync(join(w, 'x.o')).equals(readFileSync(plain)),
      'the object is what gcc makes of the new header',
    );
  });
}

test('make -j8 through the masquerade directory: eight wrappers at once, no errors, counters add up', async (t) => {
  const { dir, src, home } = project(t);
  const r = await runAccel(['--home', home, 'cc', '--masquerade-dir']);
  const masq = r.stdout.toString().trim();
  assert.equal(r.code, 0, r.stderr);
  const env = { PATH: `${masq}:${process.env.PATH}` };
  const build = join(dir, 'build');
  for (let round = 0; round < 2; round++) {
    const m = await runCommand('make', ['-C', src, '-j8', `BUILD=${build}`], { env });
    okStderr(m);
    assert.doesNotMatch(m.stderr, /accel: (error|internal)/);
    await runCommand('make', ['-C', src, `BUILD=${build}`, 'clean'], { env });
  }
  const c = await stats(home);
  assert.equal(c.miss, TUS);
  assert.equal(c.hit, TUS);
  assert.equal(c['uncacheable: linking'], 4);
  assert.equal(c.errors, undefined);
});

test('accel cc -- with a masquerade link by path (what CMake recorded at configure time) compiles with the real compiler', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const r = await runAccel(['--home', home, 'cc', '--masquerade-dir']);
  assert.equal(r.code, 0, r.stderr);
  const masq = r.stdout.toString().trim();
  writeFileSync(join(dir, 'x.c'), 'int x(void) { return 42; }\n');
  const plain = await runCommand('gcc', ['-c', 'x.c', '-o', 'plain.o'], { cwd: dir });
  assert.equal(plain.code, 0, plain.stderr);
  for (const out of ['a.o', 'b.o']) {
    const c = await runCommand(
      process.execPath,
      [MAIN, '--home', home, 'cc', '--', join(masq, 'gcc'), '-c', 'x.c', '-o', out],
      {
        cwd: dir,
      },
    );
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(readFileSync(join(dir, out)), readFileSync(join(dir, 'plain.o')));
  }
  const c = await stats(home);
  assert.equal(c.miss, 1);
  assert.equal(c.hit, 1);
});

for (const mode of MODES) {
  test(`${mode}: -g: the same source in another directory misses, unless a prefix map makes the output identical`, async (t) => {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const wrap = await wrapper(t, mode, home);
    for (const sub of ['one', 'two', 'three']) {
      mkdirSync(join(dir, sub));
      writeFileSync(join(dir, sub, 'x.c'), 'int x(void) { return 42; }\n');
    }
    const cc = async (sub: string, extra: string[] = []) =>
      okStderr(await wrap.run(['gcc', '-g', ...extra, '-c', 'x.c'], { cwd: join(dir, sub) }));
    await cc('one');
    await cc('two');
    assert.equal((await stats(home)).miss, 2, 'cwd is in the debug info, so in the key');
    await cc('two', [`-fdebug-prefix-map=${join(dir, 'two')}=/src`]);
    await cc('three', [`-fdebug-prefix-map=${join(dir, 'three')}=/src`]);
    const c = await stats(home);
    assert.equal(c.miss, 3);
    assert.equal(c.hit, 1);
    assert.ok(readFileSync(join(dir, 'two', 'x.o')).equals(readFileSync(join(dir, 'three', 'x.o'))));
  });

  test(`${mode}: failures: gcc's own message and exit code; failed compiles are not cached; a corrupt cached object is recompiled`, async (t) => {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const wrap = await wrapper(t, mode, home);
    const cc = (args: string[]) => wrap.run(args, { cwd: dir });
    const plain = (args: string[]) => runCommand(args[0] as string, args.slice(1), { cwd: dir });
    writeFileSync(join(dir, 'bad.c'), 'int f(void) { return undeclared; }\n');
    for (const args of [
      ['gcc', '-c', 'bad.c', '-o', 'bad.o'],
      ['gcc', '-c', 'missing.c', '-o', 'missing.o'],
    ]) {
      const [a, b] = [await cc(args), await plain(args)];
      assert.equal(a.code, b.code);
      assert.equal(a.stderr, b.stderr);
    }
    const again = await cc(['gcc', '-c', 'bad.c', '-o', 'bad.o']);
    assert.equal(again.code, 1);
    const c = await stats(home);
    assert.equal(c['compile failed'], 2);
    assert.equal(c.hit, undefined);
    const none = await cc(['no-such-compiler-accel', '-c', 'x.c']);
    assert.equal(none.code, 127);
    assert.match(none.stderr, /no-such-compiler-accel: command not found/);

    writeFileSync(join(dir, 'good.c'), 'int g(void) { return 7; }\n');
    okStderr(await cc(['gcc', '-c', 'good.c', '-o', 'good.o']));
    const good = readFileSync(join(dir, 'good.o'));
    // Output directory missing on a hit: gcc's own error, as without accel.
    const [a, b] = [
      await cc(['gcc', '-c', 'good.c', '-o', 'nodir/good.o']),
      await plain(['gcc', '-c', 'good.c', '-o', 'nodir/good.o']),
    ];
    assert.equal(a.code, b.code);
    assert.equal(a.stderr, b.stderr);
    // Corrupt every stored copy of the object: the next lookup must recompile, not restore bad bytes.
    const store = Store.open({ home });
    const digest = (await store.putBuffer(good)).digest;
    const path = blobPath(store.layout, digest);
    store.close();
    const { chmodSync } = await import('node:fs');
    chmodSync(path, 0o644);
    writeFileSync(path, Buffer.alloc(good.length, 0));
    okStderr(await cc(['gcc', '-c', 'good.c', '-o', 'good2.o']));
    assert.ok(readFileSync(join(dir, 'good2.o')).equals(good));
  });

  test(`${mode}: -MD -MF: the dependency file on a hit is byte-identical to plain gcc, for another target too`, async (t) => {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const wrap = await wrapper(t, mode, home);
    mkdirSync(join(dir, 'inc'));
    writeFileSync(join(dir, 'inc', 'a.h'), '#define A 1\n');
    writeFileSync(join(dir, 'x.c'), '#include "a.h"\n#include <stdio.h>\nint x(void) { return A; }\n');
    const args = (out: string) => ['gcc', '-Iinc', '-c', 'x.c', '-o', `${out}.o`, '-MD', '-MF', `${out}.dep`, '-MP'];
    okStderr(await runCommand('gcc', args('plain').slice(1), { cwd: dir }));
    okStderr(await runCommand('gcc', args('plain2').slice(1), { cwd: dir }));
    const cc = (out: string) => wrap.run(args(out), { cwd: dir });
    okStderr(await cc('first'));
    okStderr(await cc('plain2'));
    assert.equal((await stats(home)).hit, 1);
    assert.equal(
      readFileSync(join(dir, 'plain2.dep'), 'utf8'),
      readFileSync(join(dir, 'plain.dep'), 'utf8').replaceAll('plain.o', 'plain2.o'),
    );
    assert.ok(readFileSync(join(dir, 'plain2.o')).equals(readFileSync(join(dir, 'plain.o'))));
  });

  test(`${mode}: cc.remote: a second machine (another store) gets a remote hit from the mirror, identical bytes`, async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 5; }\n');
    const mirror = await startTestMirror(t);
    const env = { ACCEL_CC_REMOTE: `${mirror.base}/cache`, ACCEL_CC_REMOTE_TOKEN: TEST_CACHE_TOKEN };
    const wraps = { one: await wrapper(t, mode, join(dir, 'one')), two: await wrapper(t, mode, join(dir, 'two')) };
    const cc = (home: 'one' | 'two', out: string) =>
      wraps[home].run(['gcc', '-c', 'x.c', '-o', out], { cwd: dir, env });
    okStderr(await cc('one', 'a.o'));
    okStderr(await cc('two', 'b.o'));
    const two = await stats(join(dir, 'two'));
    assert.equal(two['remote hit'], 1, JSON.stringify(two));
    assert.equal(two.miss, undefined);
    assert.ok(readFileSync(join(dir, 'a.o')).equals(readFileSync(join(dir, 'b.o'))));
  });
}
