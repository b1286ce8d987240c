import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Store } from '../../src/store/store.ts';
import { MAIN, okStderr, type RunResult, runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';

const test = testNeeding('gcc');

/**
 * Two checkouts of one project at different paths (a CI runner's job directories), compiled through the cache
 * with both under a base directory: each case compiles in checkout A, then in checkout B, and B's object (and
 * dependency file) must be byte for byte what gcc makes in place in B. Whether B may hit is decided by gcc
 * itself: where plain gcc's objects of A and B are identical the cache must hit, where they differ it must
 * miss — a hit there would hand out an object holding A's paths.
 */
interface Case {
  name: string;
  /** gcc's arguments in checkout `ck` (its absolute path), run in `ck/build`. */
  args: (ck: string) => string[];
  /** Whether gcc's objects of A and B are identical, i.e. whether B must hit (checked against plain gcc too). */
  same: boolean;
}

const CASES: Case[] = [
  { name: 'relative -I', args: () => ['-O1', '-I../inc', '-c', '../src/plain.c', '-o', 'plain.o'], same: true },
  {
    name: 'absolute -I',
    args: (ck) => ['-O1', `-I${ck}/inc`, '-c', '../src/plain.c', '-o', 'plain-abs.o'],
    same: true,
  },
  { name: 'source by absolute path', args: (ck) => ['-I../inc', '-c', `${ck}/src/plain.c`, '-o', 'abs.o'], same: true },
  { name: '-g, no prefix map', args: () => ['-g', '-I../inc', '-c', '../src/plain.c', '-o', 'g.o'], same: false },
  {
    name: '-g with -fdebug-prefix-map of the checkout, absolute -I and source',
    args: (ck) => ['-g', `-fdebug-prefix-map=${ck}=/src`, `-I${ck}/inc`, '-c', `${ck}/src/plain.c`, '-o', 'gmap.o'],
    same: true,
  },
  {
    // The map names the build directory only: debug info still holds the header's absolute directory.
    name: '-g with a prefix map of the build directory only, absolute -I',
    args: (ck) => ['-g', `-fdebug-prefix-map=${ck}/build=/b`, `-I${ck}/inc`, '-c', '../src/plain.c', '-o', 'gb.o'],
    same: false,
  },
  {
    name: '-g with -fmacro-prefix-map only (debug info is not mapped)',
    args: (ck) => ['-g', `-fmacro-prefix-map=${ck}=/src`, '-I../inc', '-c', '../src/plain.c', '-o', 'gm.o'],
    same: false,
  },
  {
    name: '__FILE__ in the source, named by absolute path',
    args: (ck) => ['-I../inc', '-c', `${ck}/src/file.c`, '-o', 'file.o'],
    same: false,
  },
  {
    name: '__FILE__ in the source, -fmacro-prefix-map of the checkout',
    args: (ck) => [`-fmacro-prefix-map=${ck}=/src`, '-I../inc', '-c', `${ck}/src/file.c`, '-o', 'filemap.o'],
    same: true,
  },
  {
    name: '__FILE__ in the source, relative',
    args: () => ['-I../inc', '-c', '../src/file.c', '-o', 'filerel.o'],
    same: true,
  },
  {
    name: '__FILE__ in a header found by absolute -I',
    args: (ck) => [`-I${ck}/inc`, '-c', '../src/where.c', '-o', 'where.o'],
    same: false,
  },
  {
    // zstd's error_private.h: __FILE__ in a macro this compile never expands leaves no path in the object.
    name: '__FILE__ in a header macro never expanded, absolute -I and source',
    args: (ck) => [`-I${ck}/inc`, '-c', `${ck}/src/quiet.c`, '-o', 'quiet.o'],
    same: true,
  },
  {
    name: '__FILE__ in a header found by absolute -I, -ffile-prefix-map of the checkout',
    args: (ck) => [`-ffile-prefix-map=${ck}=/src`, `-I${ck}/inc`, '-c', '../src/where.c', '-o', 'wheremap.o'],
    same: true,
  },
];

function checkouts(t: TestContext) {
  const dir = tempDir(t);
  const a = join(dir, 'jobs', '1001', 'proj');
  mkdirSync(join(a, 'src'), { recursive: true });
  mkdirSync(join(a, 'inc'));
  mkdirSync(join(a, 'build'));
  writeFileSync(join(a, 'inc', 'h.h'), '#define ANSWER 42\nstatic inline int twice(int x) { return 2 * x; }\n');
  writeFileSync(join(a, 'inc', 'here.h'), 'static const char *const here = __FILE__;\n');
  writeFileSync(join(a, 'inc', 'check.h'), '#define CHECK(c) ((c) ? 0 : report(__FILE__, __LINE__))\n');
  writeFileSync(join(a, 'src', 'quiet.c'), '#include "check.h"\nint quiet(int x) { return x + 1; }\n');
  writeFileSync(join(a, 'src', 'plain.c'), '#include "h.h"\nint plain(int x) { return twice(x) + ANSWER; }\n');
  writeFileSync(join(a, 'src', 'file.c'), '#include "h.h"\nconst char *file(void) { return __FILE__; }\n');
  writeFileSync(join(a, 'src', 'where.c'), '#include "here.h"\nconst char *where(void) { return here; }\n');
  const b = join(dir, 'jobs', '2002', 'proj');
  cpSync(a, b, { recursive: true });
  return { dir, a, b, home: join(dir, 'home'), base: join(dir, 'jobs') };
}

async function plain(ck: string, args: string[]): Promise<RunResult> {
  return okResult(await runCommand('gcc', args, { cwd: join(ck, 'build') }));
}

function okResult(r: RunResult): RunResult {
  okStderr(r);
  return r;
}

/** Each compile tagged with its case and checkout, so the store's tallies say which ones hit. */
function tallies(home: string, tags: string[]): Map<string, Record<string, number>> {
  const store = Store.open({ home });
  try {
    return new Map(tags.map((tag) => [tag, store.counters.takeTally(tag)]));
  } finally {
    store.close();
  }
}

for (const mode of ['accel cc --', 'native client'] as const) {
  test(`${mode}: two checkouts under a base directory: B hits exactly where gcc makes A's object in B too, and B's objects are gcc's own`, async (t) => {
    const { a, b, home, base } = checkouts(t);
    const accelCc = await compilerVia(t, mode, home);
    const cc = async (ck: string, c: Case, tag: string, extra: string[] = []) =>
      okResult(
        await accelCc([...c.args(ck), ...extra], {
          cwd: join(ck, 'build'),
          env: { ACCEL_CC_BASEDIRS: base, ACCEL_CC_TALLY: tag },
        }),
      );
    for (const [i, c] of CASES.entries()) {
      await cc(a, c, `a${i}`);
      await cc(b, c, `b${i}`);
    }
    const tags = CASES.flatMap((_, i) => [`a${i}`, `b${i}`]);
    const counted = tallies(home, tags);
    for (const [i, c] of CASES.entries()) {
      const out = (ck: string) => join(ck, 'build', c.args(ck).at(-1) as string);
      const viaAccel = readFileSync(out(b));
      await plain(b, c.args(b));
      assert.ok(viaAccel.equals(readFileSync(out(b))), `${c.name}: B's object is what gcc makes in B`);
      await plain(a, c.args(a));
      const gccSame = readFileSync(out(a)).equals(readFileSync(out(b)));
      assert.equal(gccSame, c.same, `${c.name}: gcc's objects of A and B are ${gccSame ? 'identical' : 'different'}`);
      assert.deepEqual(counted.get(`a${i}`), { miss: 1 }, `${c.name}: A compiles`);
      assert.deepEqual(
        counted.get(`b${i}`),
        c.same ? { hit: 1 } : { miss: 1 },
        `${c.name}: B ${c.same ? 'hits' : 'misses'}`,
      );
    }
  });
}

test('the dependency file of a hit names checkout B, as gcc writes it there; a header changed in B misses', async (t) => {
  const { a, b, home, base } = checkouts(t);
  const accelCc = await compilerVia(t, 'accel cc --', home);
  const env = { ACCEL_CC_BASEDIRS: base };
  // Absolute -I and source: gcc writes absolute header paths, `../inc/more.h` as `<B>/src/../inc/more.h`.
  writeFileSync(join(a, 'inc', 'more.h'), '#define MORE 1\n');
  writeFileSync(join(b, 'inc', 'more.h'), '#define MORE 1\n');
  writeFileSync(
    join(a, 'src', 'deps.c'),
    '#include "h.h"\n#include "../inc/more.h"\nint d(void) { return ANSWER + MORE; }\n',
  );
  writeFileSync(join(b, 'src', 'deps.c'), readFileSync(join(a, 'src', 'deps.c')));
  const args = (ck: string) => [`-I${ck}/inc`, '-MD', '-MP', '-MF', 'deps.d', '-c', `${ck}/src/deps.c`, '-o', 'deps.o'];
  for (const ck of [a, b]) {
    const r = okResult(await accelCc(args(ck), { cwd: join(ck, 'build'), env: { ...env, ACCEL_CC_TALLY: 'deps' } }));
    assert.equal(r.code, 0);
  }
  const viaAccel = readFileSync(join(b, 'build', 'deps.d'), 'utf8');
  assert.ok(viaAccel.includes(`${b}/inc/h.h`) && viaAccel.includes(`${b}/src/../inc/more.h`), viaAccel);
  assert.ok(!viaAccel.includes(a), `no path of checkout A in B's dependency file:\n${viaAccel}`);
  await plain(b, args(b));
  assert.equal(viaAccel, readFileSync(join(b, 'build', 'deps.d'), 'utf8'), 'byte for byte what gcc writes in B');
  assert.deepEqual(tallies(home, ['deps']).get('deps'), { miss: 1, hit: 1 });

  // The manifest names the header relative to the cwd: B's own header is checked, and a change there misses.
  writeFileSync(join(b, 'inc', 'h.h'), '#define ANSWER 43\nstatic inline int twice(int x) { return 2 * x; }\n');
  okResult(await accelCc(args(b), { cwd: join(b, 'build'), env: { ...env, ACCEL_CC_TALLY: 'changed' } }));
  const object = readFileSync(join(b, 'build', 'deps.o'));
  await plain(b, args(b));
  assert.ok(object.equals(readFileSync(join(b, 'build', 'deps.o'))));
  assert.deepEqual(tallies(home, ['changed']).get('changed'), { miss: 1 });
});

test('a relative base directory is refused with its variable named, and the compile does not run', async (t) => {
  const { a, home } = checkouts(t);
  const accelCc = await compilerVia(t, 'accel cc --', home);
  const r = await accelCc(['-c', '../src/plain.c', '-I../inc', '-o', 'refused.o'], {
    cwd: join(a, 'build'),
    env: { ACCEL_CC_BASEDIRS: 'jobs' },
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ACCEL_CONFIG_/);
  assert.match(r.stderr, /absolute/);
});

type AccelCc = (args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) => Promise<RunResult>;

/** gcc through `accel cc --` (a process per compile) or the native client (its daemon, started on demand). */
async function compilerVia(t: TestContext, mode: 'accel cc --' | 'native client', home: string): Promise<AccelCc> {
  if (mode === 'accel cc --') {
    return (args, o) => runCommand(process.execPath, [MAIN, '--home', home, 'cc', '--', 'gcc', ...args], o);
  }
  const r = await runAccel(['--home', home, 'cc', '--masquerade-dir']);
  assert.equal(r.code, 0, r.stderr.toString());
  t.after(async () => {
    await runAccel(['--home', home, 'cc', 'daemon', '--stop']);
  });
  const env = { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' };
  return (args, o) => runCommand(join(home, 'bin', 'accel-cc'), ['gcc', ...args], { ...o, env: { ...env, ...o.env } });
}
