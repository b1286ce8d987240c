import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAIN, okStderr, runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';

const test = testNeeding('gcc');

function project(dir: string) {
  const src = join(dir, 'proj');
  mkdirSync(join(src, 'inc'), { recursive: true });
  writeFileSync(join(src, 'inc', 'h.h'), '#define ANSWER 42\n');
  writeFileSync(join(src, 'a.c'), '#include "h.h"\nint a(void) { return ANSWER; }\n');
  return src;
}

test('accel cc --explain: a hit, no entry for the source, an argument, a header, a variable, the source itself', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const src = project(dir);
  const accel = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCommand(process.execPath, [MAIN, '--home', home, 'cc', ...args], { cwd: src, env });
  const explain = async (args: string[], env: NodeJS.ProcessEnv = {}) =>
    okStderr(await accel(['--explain', '--', 'gcc', ...args], env)) === '' &&
    (await accel(['--explain', '--', 'gcc', ...args], env)).stdout.toString().trim();
  const compile = ['-O2', '-Iinc', '-c', 'a.c', '-o', 'a.o'];

  assert.equal(await explain(compile), 'no entry for this source (a.c) in this cache');
  assert.ok(!existsSync(join(src, 'a.o')), '--explain compiles nothing');
  okStderr(await accel(['--', 'gcc', ...compile]));
  assert.equal(await explain(compile), 'hit: a matching entry exists');
  assert.equal(
    await explain(['-O1', '-Iinc', '-c', 'a.c', '-o', 'a.o']),
    'differs from the nearest entry: argument "-O1" is new (the nearest entry has no such one); 1 argument(s) of the nearest entry are not in this compile',
  );
  assert.equal(
    await explain([...compile, '-DEXTRA=1']),
    'differs from the nearest entry: argument "-D EXTRA=1" is new (the nearest entry has no such one)',
  );
  assert.equal(
    await explain(compile, { LC_ALL: 'C' }),
    'differs from the nearest entry: environment variable LC_ALL differs (now "C")',
  );
  writeFileSync(join(src, 'inc', 'h.h'), '#define ANSWER 43\n');
  assert.equal(await explain(compile), 'same key; the nearest entry differs: header inc/h.h: content differs');
  writeFileSync(join(src, 'a.c'), '#include "h.h"\nint a(void) { return ANSWER + 1; }\n');
  assert.equal(await explain(compile), "differs from the nearest entry: the source's content differs");
  const uncacheable = await accel(['--explain', '--', 'gcc', '-E', 'a.c']);
  assert.equal(uncacheable.stdout.toString().trim(), 'uncacheable: preprocessing only (-E)');
  // Looking is not compiling: no counter moved.
  const stats = await runAccel(['--home', home, '--json', 'cc', '--stats']);
  assert.deepEqual(JSON.parse(stats.stdout.toString()).counters, { miss: 1 });
});

for (const mode of ['accel cc --', 'native client'] as const) {
  test(`${mode}: ACCEL_CC_EXPLAIN=1 appends a line per miss under the home, a path names the file; hits write nothing`, async (t) => {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const src = project(dir);
    let cc: (args: string[], env: NodeJS.ProcessEnv) => ReturnType<typeof runCommand>;
    if (mode === 'accel cc --') {
      cc = (args, env) =>
        runCommand(process.execPath, [MAIN, '--home', home, 'cc', '--', 'gcc', ...args], { cwd: src, env });
    } else {
      const r = await runAccel(['--home', home, 'cc', '--masquerade-dir']);
      assert.equal(r.code, 0, r.stderr.toString());
      t.after(async () => {
        await runAccel(['--home', home, 'cc', 'daemon', '--stop']);
      });
      const client = join(home, 'bin', 'accel-cc');
      // The daemon starts without the variable: each compile's own environment carries it.
      cc = (args, env) =>
        runCommand(client, ['gcc', ...args], { cwd: src, env: { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60', ...env } });
    }
    const compile = ['-Iinc', '-c', 'a.c', '-o', 'a.o'];
    okStderr(await cc(compile, {}));
    okStderr(await cc(compile, { ACCEL_CC_EXPLAIN: '1' }));
    okStderr(await cc(['-DX', ...compile], { ACCEL_CC_EXPLAIN: '1' }));
    const log = join(home, 'run', 'cc-explain.log');
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 1, 'the hit wrote nothing');
    assert.match(
      lines[0] as string,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\S+ miss ${src} a\\.c: differs from the nearest entry: argument "-D X" is new`,
      ),
    );
    okStderr(await cc(['-DY', ...compile], { ACCEL_CC_EXPLAIN: 'misses.txt' }));
    assert.match(
      readFileSync(join(src, 'misses.txt'), 'utf8'),
      /a\.c: differs from the nearest entry: argument "-D Y"/,
    );
    // A file that cannot be written: a clear error, and the build stops there rather than explain nothing.
    const bad = await cc(['-DZ', ...compile], { ACCEL_CC_EXPLAIN: join(src, 'a.c', 'log') });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr.toString(), /ACCEL_(FS|CC_EXPLAIN)_/);
  });
}
