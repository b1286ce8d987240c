// Debian's Bazel 4 with accel's mirror as its HTTP remote cache, through the .bazelrc line `accel mirror config
// cache` prints (docs/cc.md, "Bazel"): a genrule compiling C with gcc runs once; from a clean output base it is
// a remote cache hit with gcc's own object; a client without the write token still reads hits.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildCacheConfig } from '../../src/mirror/client-config.ts';
import { bazelBuild, needsTools, ok, runCommand, tempDir } from '../helpers.ts';
import { startTestMirror, TEST_CACHE_TOKEN } from '../mirror-harness.ts';

test('Bazel 4 with the .bazelrc line of accel mirror config cache: a gcc genrule runs once, then from a clean output base is a remote cache hit with the same object; a reader without the token hits too', {
  ...needsTools('bazel', 'gcc'),
  timeout: 600_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-bazel-http-cache-');
  const m = await startTestMirror(t);
  const ws = join(dir, 'ws');
  mkdirSync(ws);
  writeFileSync(join(ws, 'WORKSPACE'), '');
  writeFileSync(join(ws, 'answer.c'), 'int answer(void) { return 42; }\n');
  writeFileSync(
    join(ws, 'BUILD'),
    'genrule(name = "obj", srcs = ["answer.c"], outs = ["answer.o"], cmd = "gcc -O2 -c $< -o $@")\n',
  );
  const line = buildCacheConfig(m.base, TEST_CACHE_TOKEN).lines.find((l) => l.startsWith('build --remote_cache='));
  assert.ok(line, 'accel mirror config cache prints a .bazelrc line');
  writeFileSync(join(ws, '.bazelrc'), `${line}\n`);
  ok(await runCommand('gcc', ['-O2', '-c', 'answer.c', '-o', join(dir, 'plain.o')], { cwd: ws }));
  const plain = readFileSync(join(dir, 'plain.o'));
  // bazelBuild gives every build an output base of its own: each is a clean build.
  const build = async (label: string) => {
    const r = await bazelBuild(t, ws, { target: '//:obj', label });
    assert.equal(r.code, 0, `${label}: bazel failed:\n${r.stderr}`);
    assert.ok(readFileSync(join(ws, 'bazel-bin', 'answer.o')).equals(plain), `${label}: gcc's own object`);
    return r.stderr;
  };

  assert.doesNotMatch(await build('cold'), /remote cache hit/);
  assert.match(await build('clean output base'), /1 remote cache hit/);
  writeFileSync(join(ws, '.bazelrc'), `build --remote_cache=${m.base}/cache\n`);
  assert.match(await build('reader without the token'), /1 remote cache hit/);
});
